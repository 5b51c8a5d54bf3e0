"""The structured, connection and reduced arms: masks checked against brute force and the
density schedule, dead channels, reduced networks' sizes."""

from __future__ import annotations

import dataclasses
import json
import logging

import numpy as np
import pytest
import torch
from torch import nn

from helpers import pruning_config, training_config
from prunedissect.dissection.pipeline import alive_units
from prunedissect.models import get_model, kwargs_for_state_dict, reduced_kwargs
from prunedissect.models.reduced import prunable_count, resnet20_shapes
from prunedissect.pruning import (
    Mask,
    channel_families,
    kept_at_level,
    prune_channels,
    prune_connections,
)
from prunedissect.training import LevelJob, LevelOutputs, PreviousLevel, run_level
from prunedissect.training.level import init_seed, level_model_kwargs, prepare_level

EXAMPLE = torch.zeros(1, 3, 32, 32)


def trained_like(width: int = 4, seed: int = 0) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """A resnet20 with random weights and BatchNorm scales (stands in for a trained one)."""
    model = get_model(
        "resnet20", num_classes=10, width=width, generator=torch.Generator().manual_seed(seed)
    )
    return model, {k: v.clone() for k, v in model.state_dict().items()}


def pruned_channels(family, mask: Mask) -> list[set[int]]:
    """Per output member of ``family``: the family channels whose whole filter is masked."""
    out = []
    for name, idxs in family.outputs:
        out.append({j for j in range(family.size) if not bool(mask[name][idxs[j]].any())})
    return out


# ---------------------------------------------------------------- channel families


def test_residual_additions_tie_the_stage_outputs_into_one_family():
    model, _ = trained_like()
    families = {f.name: f for f in channel_families(model, EXAMPLE)}
    # 3 stage families (tied by additions) + one per block's first conv
    assert len(families) == 3 + 9
    stem = families["conv1"]
    assert {n for n, _ in stem.outputs} == {
        "conv1.weight", *(f"layer1.{b}.conv2.weight" for b in range(3))
    }
    assert {n for n, _ in stem.zeroed} == {
        f"{bn}.{p}" for bn in ("bn1", "layer1.0.bn2", "layer1.1.bn2", "layer1.2.bn2")
        for p in ("weight", "bias")
    }  # fmt: skip
    assert {n for n, _ in stem.inputs} == {
        *(f"layer1.{b}.conv1.weight" for b in range(3)),
        "layer2.0.conv1.weight",
        "layer2.0.shortcut.0.weight",
    }
    last = next(f for f in families.values() if "layer3.0.shortcut.0.weight" in dict(f.outputs))
    assert "fc.weight" in dict(last.inputs)  # the classifier reads the last stage
    block = families["layer2.1.conv1"]
    assert dict(block.outputs).keys() == {"layer2.1.conv1.weight"}
    assert dict(block.inputs).keys() == {"layer2.1.conv2.weight"}
    # excluding a tied member leaves its whole family whole
    names = {f.name for f in channel_families(model, EXAMPLE, exclude=["layer1.1.conv2"])}
    assert "conv1" not in names and len(names) == 11


# ---------------------------------------------------------------- structured masks


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_structured_masks_remove_whole_tied_channels_at_the_scheduled_density(scope):
    model, weights = trained_like()
    families = channel_families(model, EXAMPLE)
    mask = Mask.ones_like(model)
    total = mask.num_total
    biggest = max(  # counted weights one channel of any family carries
        sum(weights[n][i[0]].numel() for n, i in f.outputs)
        + sum(weights[n][:, i[0]].numel() for n, i in f.inputs)
        for f in families
    )
    previous = mask
    for level in (1, 2, 3):
        mask = prune_channels(weights, previous, families, fraction=0.5, level=level, scope=scope)
        assert mask.is_subset_of(previous)
        assert mask.num_total == total  # BatchNorm entries are enforced, never counted
        assert mask.uncounted == {n for f in families for n, _ in f.zeroed}
        assert abs(mask.num_remaining - kept_at_level(total, 0.5, level)) <= biggest / 2
        for family in families:
            sets = pruned_channels(family, mask)
            assert all(s == sets[0] for s in sets), family.name  # tied members together
            dead = sets[0]
            assert len(dead) < family.size  # a channel always stays
            for name, idxs in family.outputs:  # whole filters go; alive ones keep weights
                for j in range(family.size):
                    assert bool(mask[name][idxs[j]].any()) == (j not in dead)
            for name, idxs in family.zeroed:
                assert {j for j in range(family.size) if not mask[name][idxs[j]]} == dead
            for name, idxs in family.inputs:
                for j in dead:
                    assert not bool(mask[name][:, idxs[j]].any())
        # nothing else is masked: every masked weight belongs to a pruned channel's slices
        explained = {n: torch.ones_like(k) for n, k in mask.items()}
        for family in families:
            for j in pruned_channels(family, mask)[0]:
                for name, idxs in family.outputs + family.zeroed:
                    explained[name][idxs[j]] = False
                for name, idxs in family.inputs:
                    explained[name][:, idxs[j]] = False
        assert all(torch.equal(explained[n], mask[n]) for n in mask)
        previous = mask
    if scope == "layer":  # every family keeps the same share of channels, up to one channel
        shares = [
            (f.size - len(pruned_channels(f, mask)[0])) / f.size for f in families
        ]
        assert max(shares) - min(shares) <= max(1 / f.size for f in families) + 1e-12


def test_structured_pruning_removes_the_lowest_l1_filters_of_a_layer():
    model, weights = trained_like(width=8)
    families = channel_families(model, EXAMPLE)
    mask = prune_channels(
        weights, Mask.ones_like(model), families, fraction=0.5, level=1, scope="layer"
    )
    for family in families:
        scores = [
            sum(float(weights[n][i[j]].abs().sum()) for n, i in family.outputs)
            for j in range(family.size)
        ]
        dead = pruned_channels(family, mask)[0]
        alive = set(range(family.size)) - dead
        if dead:  # Li et al.: the smallest summed L1 norms go
            assert max(scores[j] for j in dead) <= min(scores[j] for j in alive)


def test_a_structured_checkpoint_has_dead_channels_exactly_zero():
    model, weights = trained_like()
    families = channel_families(model, EXAMPLE)
    mask = prune_channels(weights, Mask.ones_like(model), families, fraction=0.5, level=2)
    mask.apply_(model)
    outputs = {}
    for name in ("layer1", "layer2", "layer3", "layer2.1.bn1"):
        model.get_submodule(name).register_forward_hook(
            lambda _m, _i, out, name=name: outputs.__setitem__(name, out.detach())
        )
    for mode in (model.train, model.eval):
        mode()
        model(torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
        for family in families:
            dead = pruned_channels(family, mask)[0]
            for layer in outputs:
                bn = layer if layer.endswith("bn1") else f"{layer}.2.bn2"
                if f"{bn}.weight" in dict(family.zeroed):
                    idxs = dict(family.zeroed)[f"{bn}.weight"]
                    for j in range(family.size):
                        silent = not bool(outputs[layer][:, idxs[j]].any())
                        assert silent == (j in dead), (layer, j)
    acts = torch.stack([outputs["layer3"]] * 2).flatten(0, 1).numpy()
    thresholds = np.quantile(acts.transpose(1, 0, 2, 3).reshape(acts.shape[1], -1), 0.995, axis=1)
    alive = alive_units(acts, thresholds)
    stage3 = next(f for f in families if "layer3.2.conv2.weight" in dict(f.outputs))
    idxs = dict(stage3.outputs)["layer3.2.conv2.weight"]
    dead = {idxs[j] for j in pruned_channels(stage3, mask)[0]}
    assert dead and {int(k) for k in np.flatnonzero(~alive)} == dead


def test_structured_pruning_refuses_a_density_it_cannot_reach():
    model, weights = trained_like()
    families = channel_families(model, EXAMPLE)
    with pytest.raises(ValueError, match="one channel"):
        prune_channels(weights, Mask.ones_like(model), families, fraction=0.5, level=12)


# ---------------------------------------------------------------- connection masks


def test_connection_masks_remove_whole_kernel_slices_at_the_scheduled_density():
    model, weights = trained_like()
    mask = full = Mask.ones_like(model)
    for level in (1, 2, 3):
        previous = mask
        mask = prune_connections(weights, previous, fraction=0.5, level=level)
        assert mask.is_subset_of(previous)
        assert set(mask) == set(full)  # no BatchNorm entry: units keep their outputs
        assert abs(mask.num_remaining - kept_at_level(full.num_total, 0.5, level)) <= 9 // 2
        slices = {}
        for name, keep in mask.items():
            flat = keep.reshape(keep.shape[0], keep.shape[1], -1)
            assert torch.equal(flat.all(dim=2), flat.any(dim=2)), name  # whole slices only
            magnitude = weights[name].abs().double().reshape(flat.shape).mean(dim=2)
            slices[name] = (flat.any(dim=2), magnitude)
    # brute force at level 1: every removed slice scores at most every kept one
    mask = prune_connections(weights, full, fraction=0.5, level=1)
    removed, kept = [], []
    for name, keep in mask.items():
        flat = keep.reshape(keep.shape[0], keep.shape[1], -1).any(dim=2)
        score = weights[name].abs().double().reshape(*flat.shape, -1).mean(dim=2)
        removed += score[~flat].tolist()
        kept += score[flat].tolist()
    assert removed and max(removed) <= min(kept)


# ---------------------------------------------------------------- reduced networks


@pytest.mark.parametrize(
    ("width", "fraction", "levels"), [(16, 0.2, 20), (16, 0.8, 3), (4, 0.5, 2), (4, 0.2, 8)]
)
def test_reduced_networks_match_each_levels_remaining_weights_within_5_percent(
    width, fraction, levels
):
    dense = prunable_count("resnet20", num_classes=10, model_kwargs={"width": width})
    previous = None
    for level in range(1, levels + 1):
        target = kept_at_level(dense, fraction, level)
        kwargs = reduced_kwargs(
            "resnet20", model_kwargs={"width": width}, num_classes=10, target=target
        )
        model = get_model("resnet20", num_classes=10, **kwargs)
        count = sum(model.get_parameter(n).numel() for n in Mask.ones_like(model))
        assert abs(count - target) <= 0.05 * target, (level, kwargs, count, target)
        assert all(1 <= w <= b for w, b in zip(kwargs["widths"], (width, 2 * width, 4 * width)))
        if previous is not None:
            assert count < previous
        previous = count


def test_resnet20_arithmetic_matches_the_built_network():
    for widths, classes in (((3, 6, 13), 10), ((2, 2, 6), 7), ((16, 32, 64), 10)):
        model = get_model("resnet20", num_classes=classes, widths=widths)
        built = {n: model.get_parameter(n).numel() for n in Mask.ones_like(model)}
        assert resnet20_shapes(widths, classes) == built
    assert prunable_count(
        "resnet20", num_classes=10, model_kwargs={"width": 4}, exclude=["conv1", "fc"]
    ) == sum(resnet20_shapes((4, 8, 16), 10).values()) - 3 * 4 * 9 - 16 * 10


def test_a_reduced_checkpoints_kwargs_are_recovered_from_its_shapes():
    reduced = get_model("resnet20", num_classes=10, widths=[3, 6, 11])
    kwargs = kwargs_for_state_dict("resnet20", reduced.state_dict(), {"width": 4})
    assert kwargs == {"widths": [3, 6, 11]}
    get_model("resnet20", num_classes=10, **kwargs).load_state_dict(reduced.state_dict())
    dense = get_model("resnet20", num_classes=10, width=4)
    assert kwargs_for_state_dict("resnet20", dense.state_dict(), {"width": 4}) == {"width": 4}
    with pytest.raises(ValueError, match="resnet20 only"):
        reduced_kwargs("resnet50", model_kwargs={}, num_classes=10, target=1000)


# ---------------------------------------------------------------- levels of the new arms


def write_images(root, size=16):
    rng = np.random.default_rng(0)
    from PIL import Image

    for split, count in (("train", 16), ("val", 6)):
        for c, colour in enumerate([(220, 40, 40), (40, 200, 40), (40, 40, 220)]):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(count):
                array = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
                array[4:12, 4:12] = colour
                Image.fromarray(array).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_images(tmp_path_factory.mktemp("images"))


def job_of(images, level, **pruning):
    return LevelJob(
        trial=0, level=level, seed=7, arch="resnet20", model_kwargs={"width": 4}, images=images,
        image_size=16, mean=(0.5,) * 3, std=(0.25,) * 3,
        training=training_config(epochs=2, batch_size=8, lr=0.05, milestones=(), momentum=0.9),
        pruning=pruning_config(
            **{"fraction": 0.5, "rewind_unit": "iteration", "rewind_step": 2, **pruning}
        ),
    )  # fmt: skip


def outputs(directory, level):
    return LevelOutputs(
        model=directory / "model.pt",
        mask=directory / "mask.npz",
        metrics=directory / "metrics.json",
        rewind=directory / "rewind.pt" if level == 0 else None,
    )


@pytest.fixture(scope="module")
def dense(images, tmp_path_factory):
    out = outputs(tmp_path_factory.mktemp("dense"), 0)
    run_level(job_of(images, 0), outputs=out, previous=None, device="cpu",
              logger=logging.getLogger("test"))  # fmt: skip
    return out


@pytest.mark.parametrize("retrain", ["rewind", "finetune"])
def test_a_structured_level_trains_with_its_channels_dead(images, dense, tmp_path, retrain):
    pruning = dict(kind="structured", scope="layer", retrain=retrain)
    if retrain == "finetune":
        pruning.update(finetune_epochs=1, finetune_lr=0.01)
    out = outputs(tmp_path, 1)
    previous = PreviousLevel(model=dense.model, mask=dense.mask, rewind=dense.rewind)
    metrics = run_level(job_of(images, 1, **pruning), outputs=out, previous=previous,
                        device="cpu", logger=logging.getLogger("test"))  # fmt: skip
    mask = Mask.load(out.mask)
    state = torch.load(out.model, weights_only=True)
    assert "layer1.0.bn1.weight" in mask and "layer1.0.bn1.bias" in mask
    assert {"layer1.0.bn1.weight", "layer1.0.bn1.bias"} <= mask.uncounted  # saved and loaded
    for name, keep in mask.items():  # after training: still exactly zero, BatchNorm too
        assert torch.count_nonzero(state[name][~keep]) == 0, name
    assert abs(metrics["density"] - 0.5) < 0.05
    assert metrics["epochs"] == (1 if retrain == "finetune" else pytest.approx(2 - 2 / 6))


def test_a_reduced_level_is_a_narrower_network_trained_from_scratch(images, dense, tmp_path):
    job = job_of(images, 2, kind="reduced", rewind_unit=None, rewind_step=None)
    kwargs = level_model_kwargs(job, 3)
    assert kwargs == reduced_kwargs(
        "resnet20", model_kwargs={"width": 4}, num_classes=3,
        target=kept_at_level(prunable_count("resnet20", num_classes=3,
                                            model_kwargs={"width": 4}), 0.5, 2),
    )  # fmt: skip
    model = get_model("resnet20", num_classes=3, **kwargs)
    mask, start, schedule = prepare_level(job, None, model, 6)
    assert (mask.density, start, schedule) == (1.0, 0, job.training)
    assert init_seed(job) not in (init_seed(job_of(images, 0)), init_seed(dataclasses.replace(
        job, level=1)))  # fmt: skip
    out = outputs(tmp_path, 2)
    metrics = run_level(job, outputs=out, previous=None, device="cpu",
                        logger=logging.getLogger("test"))  # fmt: skip
    dense_total = json.loads(dense.metrics.read_text())["params_total"]
    assert metrics["params_total"] == dense_total
    assert metrics["model_kwargs"] == kwargs
    assert abs(metrics["params_remaining"] - 0.25 * dense_total) <= 0.05 * 0.25 * dense_total
    assert metrics["density"] == metrics["params_remaining"] / dense_total
    state = torch.load(out.model, weights_only=True)
    rebuilt = kwargs_for_state_dict("resnet20", state, {"width": 4})
    get_model("resnet20", num_classes=3, **rebuilt).load_state_dict(state)


def test_a_connection_level_keeps_whole_slices_through_training(images, dense, tmp_path):
    out = outputs(tmp_path, 1)
    previous = PreviousLevel(model=dense.model, mask=dense.mask, rewind=dense.rewind)
    job = job_of(images, 1, kind="connection", retrain="rewind")
    metrics = run_level(job, outputs=out, previous=previous, device="cpu",
                        logger=logging.getLogger("test"))  # fmt: skip
    mask = Mask.load(out.mask)
    expected = prune_connections(
        torch.load(dense.model, weights_only=True), Mask.load(dense.mask), fraction=0.5, level=1
    )
    assert all(torch.equal(mask[n], expected[n]) for n in expected)
    assert abs(metrics["density"] - 0.5) <= 9 / metrics["params_total"]
