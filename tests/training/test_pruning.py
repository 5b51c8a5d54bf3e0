"""Masks, global magnitude pruning and the bit-packed mask files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from prunedissect.models import get_model
from prunedissect.pruning import (
    Mask,
    kept_at_level,
    prunable_parameters,
    prune_global_magnitude,
    prune_one_shot,
    random_mask,
)


def tiny_model() -> nn.Module:
    return get_model("resnet20", num_classes=3, width=2, generator=torch.Generator().manual_seed(0))


def brute_force_prune(weights: dict, mask: Mask, fraction: float) -> dict[str, np.ndarray]:
    """Reference: list every alive weight as (|w|, position), sort, drop the first k."""
    alive = []
    position = 0
    for name, keep in mask.items():
        for value, kept in zip(weights[name].flatten().tolist(), keep.flatten().tolist()):
            if kept:
                alive.append((abs(value), position))
            position += 1
    k = int(np.floor(fraction * len(alive) + 0.5))
    pruned = {pos for _, pos in sorted(alive)[:k]}
    result, position = {}, 0
    for name, keep in mask.items():
        flat = keep.flatten().numpy().copy()
        for i in range(flat.size):
            if position + i in pruned:
                flat[i] = False
        result[name] = flat.reshape(tuple(keep.shape))
        position += flat.size
    return result


def test_prunable_parameters_are_conv_and_linear_weights_only():
    model = tiny_model()
    names = prunable_parameters(model)
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert names == [f"{n}.weight" for n in convs] + ["fc.weight"]
    assert not any("bn" in n or n.endswith("bias") for n in names)
    assert "layer2.0.shortcut.0.weight" in names


def test_exclude_drops_modules_and_everything_inside_containers():
    model = tiny_model()
    names = prunable_parameters(model, exclude=["conv1", "fc", "layer1"])
    assert "conv1.weight" not in names and "fc.weight" not in names
    assert not any(n.startswith("layer1.") for n in names)
    assert "layer2.0.conv1.weight" in names
    with pytest.raises(ValueError, match="do not exist"):
        prunable_parameters(model, exclude=["conv_1"])


@pytest.mark.parametrize("bad", [0.5, 2.0, -1.0, float("nan")])
def test_mask_refuses_values_other_than_zero_and_one(bad):
    with pytest.raises(ValueError, match="other than 0 and 1"):
        Mask({"w": torch.tensor([1.0, 0.0, bad])})


def test_mask_accepts_numeric_zero_one_and_stores_bool():
    mask = Mask({"a": torch.tensor([1, 0, 1]), "b": np.array([[0.0, 1.0]])})
    assert mask["a"].dtype == torch.bool and mask["b"].dtype == torch.bool
    assert mask.num_total == 5 and mask.num_remaining == 3
    assert mask.density == pytest.approx(0.6)
    scale = Mask({"a": torch.tensor([1, 0, 1]), "bn": torch.tensor([0, 1])}, uncounted=["bn"])
    assert (scale.num_total, scale.num_remaining) == (3, 2)  # "bn" enforced, not counted
    with pytest.raises(ValueError, match="uncounted names entries the mask lacks"):
        Mask({"a": torch.tensor([1])}, uncounted=["b"])


def test_hand_computed_global_pruning():
    weights = {
        "a": torch.tensor([[0.1, -0.5], [0.3, 0.05]]),
        "b": torch.tensor([-0.2, 0.4, 0.01]),
    }
    full = Mask({k: torch.ones_like(v, dtype=torch.bool) for k, v in weights.items()})
    # 7 alive, fraction 0.4 -> round(2.8) = 3 removed: |0.01|, |0.05|, |0.1| across both tensors.
    mask = prune_global_magnitude(weights, full, fraction=0.4)
    assert mask["a"].tolist() == [[False, True], [True, False]]
    assert mask["b"].tolist() == [True, True, False]


def test_only_alive_weights_are_ranked_and_pruned_ones_stay_pruned():
    weights = {"w": torch.tensor([10.0, 1.0, 2.0, 3.0])}
    mask = Mask({"w": torch.tensor([0, 1, 1, 1])})
    new = prune_global_magnitude(weights, mask, fraction=1 / 3)
    assert new["w"].tolist() == [False, False, True, True]


def test_ties_are_broken_by_position():
    weights = {"a": torch.ones(4), "b": -torch.ones(4)}
    full = Mask({k: torch.ones(4, dtype=torch.bool) for k in weights})
    new = prune_global_magnitude(weights, full, fraction=0.5)
    assert new["a"].tolist() == [False] * 4 and new["b"].tolist() == [True] * 4


@pytest.mark.parametrize("seed", range(4))
def test_pruning_matches_a_brute_force_reference(seed):
    generator = torch.Generator().manual_seed(seed)
    shapes = {"x": (3, 4), "y": (5,), "z": (2, 2, 3)}
    # Rounded values create ties; the reference breaks them by position too.
    weights = {
        k: torch.round(torch.randn(s, generator=generator) * 4) / 4 for k, s in shapes.items()
    }
    mask = Mask({k: torch.rand(s, generator=generator) < 0.8 for k, s in shapes.items()})
    expected = brute_force_prune(weights, mask, 0.3)
    result = prune_global_magnitude(weights, mask, fraction=0.3)
    for name in shapes:
        assert result[name].numpy().tolist() == expected[name].tolist(), name


def test_density_after_n_levels_is_the_power_of_the_kept_fraction():
    model = tiny_model()
    mask = Mask.ones_like(model)
    total = mask.num_total
    generator = torch.Generator().manual_seed(0)
    fraction = 0.2
    for level in range(1, 16):
        # New "trained" weights each level, as after retraining.
        weights = {k: torch.randn(v.shape, generator=generator) for k, v in mask.items()}
        new = prune_global_magnitude(weights, mask, fraction=fraction)
        assert new.is_subset_of(mask)
        # Rounding to whole weights: each level is off by <= 1/2 weight, shrinking geometrically.
        bound = 0.5 / fraction / total
        assert abs(new.density - (1 - fraction) ** level) <= bound, level
        assert mask.num_remaining - new.num_remaining == round(fraction * mask.num_remaining)
        mask = new


def test_apply_zeroes_pruned_weights_and_checks_shapes():
    model = tiny_model()
    names = prunable_parameters(model)
    mask = prune_global_magnitude(
        dict(model.named_parameters()), Mask.ones_like(model), fraction=0.5
    )
    mask.apply_(model)
    params = dict(model.named_parameters())
    for name in names:
        assert torch.all(params[name][~mask[name]] == 0)
        assert torch.all(params[name][mask[name]] != 0)
    wrong = Mask({"conv1.weight": torch.ones(1, 1, 1, 1)})
    with pytest.raises(ValueError, match="shape"):
        wrong.apply_(model)
    with pytest.raises(ValueError, match="lacks"):
        Mask({"nope.weight": torch.ones(1)}).apply_(model)


def test_save_load_round_trip_is_bit_packed_and_byte_stable(tmp_path):
    generator = torch.Generator().manual_seed(3)
    shapes = {"conv.weight": (4, 3, 3, 3), "fc.weight": (5, 7), "odd": (13,)}
    mask = Mask(
        {k: torch.rand(s, generator=generator) < 0.5 for k, s in shapes.items()}, uncounted=["odd"]
    )
    first, second = tmp_path / "a" / "mask.npz", tmp_path / "b" / "mask.npz"
    mask.save(first)
    mask.save(second)
    assert first.read_bytes() == second.read_bytes()
    loaded = Mask.load(first)
    assert list(loaded) == list(mask) and loaded.uncounted == {"odd"}
    for name in mask:
        assert loaded[name].dtype == torch.bool
        assert torch.equal(loaded[name], mask[name])
    with np.load(first) as data:
        for i, shape in enumerate(shapes.values()):
            assert data[f"bits_{i}"].dtype == np.uint8
            assert data[f"bits_{i}"].size == -(-int(np.prod(shape)) // 8)


def test_subset_relation():
    a = Mask({"w": torch.tensor([1, 1, 0])})
    b = Mask({"w": torch.tensor([1, 0, 0])})
    assert b.is_subset_of(a) and not a.is_subset_of(b)
    assert not b.is_subset_of(Mask({"v": torch.tensor([1, 1, 1])}))
    # an uncounted entry one mask lacks counts as fully kept there
    c = Mask({"w": torch.tensor([1, 0, 0]), "bn": torch.tensor([0, 1])}, uncounted=["bn"])
    assert c.is_subset_of(a) and not a.is_subset_of(c)


@pytest.mark.parametrize("level", [1, 2, 5])
def test_one_shot_is_brute_force_pruning_of_the_dense_weights_to_the_levels_density(level):
    model = tiny_model()
    weights = model.state_dict()
    full = Mask.ones_like(model)
    mask = prune_one_shot(weights, full, fraction=0.2, level=level)
    expected = brute_force_prune(weights, full, 1 - 0.8**level)
    assert all(np.array_equal(mask[n].numpy(), expected[n]) for n in mask)
    assert mask.num_remaining == kept_at_level(full.num_total, 0.2, level)
    assert abs(mask.density - 0.8**level) <= 1 / full.num_total
    with pytest.raises(ValueError, match="level >= 1"):
        prune_one_shot(weights, full, fraction=0.2, level=0)


def test_random_masks_keep_the_requested_counts_and_ignore_magnitudes():
    generator = torch.Generator().manual_seed(1)
    model = get_model("resnet20", num_classes=10, width=8, generator=generator)
    weights = model.state_dict()
    full = Mask.ones_like(model)
    magnitude = prune_global_magnitude(weights, full, fraction=0.9)
    layerwise = random_mask(magnitude, generator=torch.Generator().manual_seed(0))
    assert {n: int(layerwise[n].sum()) for n in layerwise} == {
        n: int(magnitude[n].sum()) for n in magnitude
    }
    keep = kept_at_level(full.num_total, 0.5, 3)
    wide = random_mask(full, generator=torch.Generator().manual_seed(0), scope="global", keep=keep)
    assert wide.num_remaining == keep
    # Unrelated to magnitudes: in every tensor the random mask keeps the magnitude mask's
    # survivors at the rate chance predicts (hypergeometric mean: survivors x the random mask's
    # density there), summed over tensors within 4 standard deviations; magnitude pruning
    # itself would keep all of them.
    for mask in (layerwise, wide):
        overlap = sum(int((mask[n] & magnitude[n]).sum()) for n in mask)
        mean = variance = 0.0
        for name in mask:
            survivors, p = int(magnitude[name].sum()), float(mask[name].float().mean())
            mean += survivors * p
            variance += survivors * p * (1 - p)
        assert abs(overlap - mean) < 4 * variance**0.5, (overlap, mean, variance**0.5)
        assert overlap < 0.5 * magnitude.num_remaining
    # which weights are kept depends on the generator alone
    again = random_mask(magnitude, generator=torch.Generator().manual_seed(0))
    other = random_mask(magnitude, generator=torch.Generator().manual_seed(1))
    assert all(torch.equal(layerwise[n], again[n]) for n in layerwise)
    assert not all(torch.equal(layerwise[n], other[n]) for n in layerwise)
    with pytest.raises(ValueError, match="scope"):
        random_mask(full, generator=torch.Generator(), scope="per-unit")
    with pytest.raises(ValueError, match="keep must be"):
        random_mask(full, generator=torch.Generator(), scope="global", keep=full.num_total + 1)
