"""Training: schedule, data, masked SGD, the level chain, determinism and resume after SIGKILL."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import pruning_config, schema_defaults, training_config
from prunedissect.logs import RESUMED_MARKER, THIS_ATTEMPT_MARKER
from prunedissect.models import get_model
from prunedissect.pruning import Mask, prune_global_magnitude
from prunedissect.torchfiles import save_torch
from prunedissect.training import (
    InMemoryImages,
    LevelJob,
    LevelOutputs,
    PreviousLevel,
    PruningConfig,
    StreamingImages,
    TrainingConfig,
    evaluate,
    learning_rate,
    load_split,
    prepare_level,
    run_level,
    train,
    untrained_model,
)
from prunedissect.training.level import init_seed

COLOURS = [(220, 40, 40), (40, 200, 40), (40, 40, 220)]
METRIC_KEYS = {
    "trial", "level", "density", "params_remaining", "params_total", "top1", "top5", "loss",
    "epochs", "wall_time_s", "seed", "model_kwargs",
}  # fmt: skip


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def write_image_folder(root: Path, *, per_class: int, val_per_class: int, size: int = 16) -> Path:
    """Three classes told apart by the colour of a square on a noisy background."""
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("val", val_per_class)):
        for c, colour in enumerate(COLOURS):
            folder = root / split / f"class{c}"
            folder.mkdir(parents=True)
            for i in range(count):
                array = rng.integers(0, 90, (size, size, 3), dtype=np.uint8)
                x, y = rng.integers(0, size // 2, 2)
                array[y : y + size // 2, x : x + size // 2] = colour
                Image.fromarray(array).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return write_image_folder(tmp_path_factory.mktemp("images"), per_class=16, val_per_class=6)


def small_job(images: Path, *, level: int = 0, **overrides) -> LevelJob:
    training = training_config(
        epochs=3, batch_size=8, lr=0.05, milestones=(2,), weight_decay=5e-4, momentum=0.9
    )
    pruning = pruning_config(fraction=0.5, rewind_unit="iteration", rewind_step=3)
    fields = dict(
        trial=0, level=level, seed=7, arch="resnet20", model_kwargs={"width": 4}, images=images,
        image_size=16, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), training=training,
        pruning=pruning,
    )  # fmt: skip
    fields.update(overrides)
    return LevelJob(**fields)


def outputs_in(directory: Path, level: int) -> LevelOutputs:
    return LevelOutputs(
        model=directory / "model.pt",
        mask=directory / "mask.npz",
        metrics=directory / "metrics.json",
        rewind=directory / "rewind.pt" if level == 0 else None,
    )


def run_chain(images: Path, root: Path, levels: int, **overrides) -> list[LevelOutputs]:
    log = logging.getLogger("test_training")
    chain, previous = [], None
    for level in range(levels + 1):
        outputs = outputs_in(root / f"level{level}", level)
        run_level(
            small_job(images, level=level, **overrides),
            outputs=outputs,
            previous=previous,
            device="cpu",
            logger=log,
        )
        chain.append(outputs)
        previous = PreviousLevel(model=outputs.model, mask=outputs.mask, rewind=chain[0].rewind)
    return chain


# ---------------------------------------------------------------- configuration and schedule


def test_step_schedule_with_warmup_is_hand_computed():
    config = training_config(epochs=6, lr=0.1, milestones=(2, 4), gamma=0.1, warmup_epochs=1)
    rates = [learning_rate(config, it, 10) for it in (0, 4, 9, 10, 19, 20, 39, 40, 59)]
    assert rates == pytest.approx([0.01, 0.05, 0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_cosine_and_constant_schedules():
    cosine = training_config(epochs=4, lr=0.2, schedule="cosine")
    assert learning_rate(cosine, 0, 10) == pytest.approx(0.2)
    assert learning_rate(cosine, 20, 10) == pytest.approx(0.1)
    assert learning_rate(cosine, 30, 10) == pytest.approx(0.1 * (1 - 2**-0.5))
    constant = training_config(epochs=4, lr=0.3, schedule="constant", milestones=(1,))
    assert {learning_rate(constant, it, 10) for it in range(40)} == {0.3}


def test_configs_from_the_config_sections():
    training = TrainingConfig.from_config(
        {**schema_defaults("training"), "epochs": 3, "milestones": [1, 2], "nesterov": True}
    )
    assert training.milestones == (1, 2) and training.nesterov and training.batch_size == 64
    with pytest.raises(TypeError, match="epoch"):
        TrainingConfig.from_config({**schema_defaults("training"), "epoch": 3})
    pruning = PruningConfig.from_config(
        {"fraction": 0.36, "rewind": {"unit": "epoch", "step": 2}, "exclude": ["fc"],
         "method": {"kind": "finetune", "epochs": 1, "lr": 0.01}}
    )  # fmt: skip
    assert pruning.rewind_iteration(50) == 100 and pruning.exclude == ("fc",)
    assert pruning.fraction == 0.36 and pruning.kind == "finetune"
    finetune = pruning.finetune_training(training)
    assert (finetune.epochs, finetune.lr, finetune.schedule) == (1, 0.01, "constant")
    # level 0's rule passes only rewind and exclude: the pruning values are absent, not defaulted
    level0 = PruningConfig.from_config({"rewind": {"unit": "epoch", "step": 2}, "exclude": []})
    assert level0.fraction is None and level0.kind is None
    # a reinit level's rule passes no rewind point: asking for one is an error, not a default
    reinit = PruningConfig.from_config({"exclude": [], "method": {"kind": "reinit"}})
    with pytest.raises(ValueError, match="pruning.rewind"):
        reinit.rewind_iteration(50)


def test_a_pruned_level_without_a_fraction_or_a_method_is_refused(images, tmp_path):
    chain = run_chain(images, tmp_path / "refuse", levels=0)
    previous = PreviousLevel(model=chain[0].model, mask=chain[0].mask, rewind=chain[0].rewind)
    model = get_model("resnet20", num_classes=3, width=4)
    for kind in ("lottery", "oneshot", "finetune"):
        job = small_job(images, level=1, pruning=PruningConfig(
            rewind_unit="iteration", rewind_step=3, exclude=(), kind=kind))  # fmt: skip
        with pytest.raises(ValueError, match="pruning.fraction"):
            prepare_level(job, previous, model, 6)
    job = small_job(images, level=1, pruning=PruningConfig(exclude=(), fraction=0.5))
    with pytest.raises(ValueError, match="pruning method"):
        prepare_level(job, previous, model, 6)
    job = small_job(images, level=1, pruning=PruningConfig(
        exclude=(), fraction=0.5, kind="oneshot"))  # fmt: skip
    with pytest.raises(ValueError, match="rewind"):
        prepare_level(job, PreviousLevel(model=chain[0].model, mask=chain[0].mask), model, 6)


# ---------------------------------------------------------------- data


def test_in_memory_and_streaming_evaluation_batches_are_identical(images):
    kwargs = dict(image_size=16, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3), train=False)
    memory = load_split(images / "val", augment=False, **kwargs)
    stream = load_split(images / "val", augment=False, in_memory_limit=0, **kwargs)
    assert isinstance(memory, InMemoryImages) and isinstance(stream, StreamingImages)
    assert memory.classes == stream.classes == ["class0", "class1", "class2"]
    for (xa, ya), (xb, yb) in zip(
        memory.batches(batch_size=5, order=None, seed=0),
        stream.batches(batch_size=5, order=None, seed=0),
        strict=True,
    ):
        assert torch.equal(ya, yb)
        torch.testing.assert_close(xa, xb, rtol=0, atol=1e-6)


def test_augmentation_is_a_padded_crop_with_optional_flip(images):
    data = load_split(images / "train", image_size=16, mean=(0, 0, 0), std=(1, 1, 1),
                      train=True, augment=True)  # fmt: skip
    order = torch.arange(12)
    (batch, _), = data.batches(batch_size=12, order=order, seed=3)  # fmt: skip
    padded = torch.nn.functional.pad(data.images[:12].float() / 255, (2, 2, 2, 2))
    seen_flip = seen_shift = False
    for i in range(12):
        candidates = [
            (top, left, flip)
            for top in range(5)
            for left in range(5)
            for flip in (False, True)
            if torch.equal(
                batch[i],
                (lambda crop: crop.flip(-1) if flip else crop)(
                    padded[i, :, top : top + 16, left : left + 16]
                ),
            )
        ]
        assert candidates, f"image {i} is not a padded crop of its source"
        seen_flip |= any(flip for _, _, flip in candidates)
        seen_shift |= any((top, left) != (2, 2) for top, left, _ in candidates)
    assert seen_flip and seen_shift
    # The same seed and batch number give the same augmentation; another seed does not.
    (again, _), = data.batches(batch_size=12, order=order, seed=3)  # fmt: skip
    (other, _), = data.batches(batch_size=12, order=order, seed=4)  # fmt: skip
    assert torch.equal(batch, again) and not torch.equal(batch, other)


def test_missing_folder_and_tiny_training_sets_have_clear_errors(tmp_path, images):
    with pytest.raises(FileNotFoundError, match="train/<class>"):
        load_split(tmp_path / "nope", image_size=16, mean=(0,) * 3, std=(1,) * 3,
                   train=True, augment=False)  # fmt: skip
    data = load_split(images / "val", image_size=16, mean=(0,) * 3, std=(1,) * 3, train=True,
                      augment=False)  # fmt: skip
    model = get_model("resnet20", num_classes=3, width=2)
    with pytest.raises(ValueError, match="batch_size"):
        train(model, data, config=training_config(batch_size=64), seed=0, device="cpu",
              logger=logging.getLogger("t"))  # fmt: skip


# ---------------------------------------------------------------- masked training


def test_pruned_weights_stay_exactly_zero_despite_momentum_and_decay(images):
    data = load_split(images / "train", image_size=16, mean=(0.5,) * 3, std=(0.25,) * 3,
                      train=True, augment=True)  # fmt: skip
    model = get_model("resnet20", num_classes=3, width=4,
                      generator=torch.Generator().manual_seed(0))  # fmt: skip
    mask = prune_global_magnitude(
        dict(model.named_parameters()), Mask.ones_like(model), fraction=0.7
    )
    mask.apply_(model)
    config = training_config(epochs=2, batch_size=8, lr=0.1, momentum=0.9, nesterov=True,
                            weight_decay=1e-3, schedule="constant")  # fmt: skip
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    log = logging.getLogger("masked")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, data, config=config, seed=1, device="cpu", logger=log, mask=mask)
    params = dict(model.named_parameters())
    for name, keep in mask.items():
        assert torch.count_nonzero(params[name][~keep]) == 0, name
        assert not torch.equal(params[name][keep], before[name][keep]), name
    lines = [r.getMessage() for r in records]
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2 loss ")
    assert all(key in lines[0] for key in ("acc", "lr", "images/s"))


def test_masking_is_what_keeps_pruned_weights_at_zero(images):
    """Control for the test above: without the mask, momentum and decay do revive them."""
    data = load_split(images / "train", image_size=16, mean=(0.5,) * 3, std=(0.25,) * 3,
                      train=True, augment=False)  # fmt: skip
    model = get_model("resnet20", num_classes=3, width=4,
                      generator=torch.Generator().manual_seed(0))  # fmt: skip
    mask = prune_global_magnitude(
        dict(model.named_parameters()), Mask.ones_like(model), fraction=0.7
    )
    mask.apply_(model)
    config = training_config(epochs=1, batch_size=8, schedule="constant")
    train(model, data, config=config, seed=1, device="cpu", logger=logging.getLogger("t"))
    params = dict(model.named_parameters())
    assert any(torch.count_nonzero(params[n][~keep]) > 0 for n, keep in mask.items())


# ---------------------------------------------------------------- levels


def test_level_chain_outputs_masks_and_rewinding(images, tmp_path):
    chain = run_chain(images, tmp_path / "chain", levels=2)
    masks = [Mask.load(out.mask) for out in chain]
    total = masks[0].num_total
    for level, (out, mask) in enumerate(zip(chain, masks, strict=True)):
        metrics = json.loads(out.metrics.read_text())
        assert set(metrics) == METRIC_KEYS
        assert metrics["level"] == level and metrics["trial"] == 0 and metrics["seed"] == 7
        assert metrics["params_total"] == total == mask.num_total
        assert metrics["params_remaining"] == mask.num_remaining
        assert abs(metrics["density"] - 0.5**level) <= 1 / total
        assert 0 <= metrics["top1"] <= metrics["top5"] <= 1
        # Plain state dict: loads into the bare architecture with no pruning code.
        state = torch.load(out.model, weights_only=True)
        model = get_model("resnet20", num_classes=3, width=4)
        model.load_state_dict(state)
        for name, keep in mask.items():
            assert torch.count_nonzero(state[name][~keep]) == 0
        assert not out.resume.exists()
        if level:
            assert mask.is_subset_of(masks[level - 1]) and not masks[level - 1].is_subset_of(mask)
    assert json.loads(chain[1].metrics.read_text())["epochs"] == pytest.approx(3 - 3 / 6)
    rewind = torch.load(chain[0].rewind, weights_only=True)
    assert rewind["iteration"] == 3 and rewind["iterations_per_epoch"] == 6
    trained = torch.load(chain[0].model, weights_only=True)
    assert not torch.equal(rewind["state_dict"]["conv1.weight"], trained["conv1.weight"])
    # Level 1's mask is global magnitude pruning of level 0's trained weights.
    expected = prune_global_magnitude(trained, masks[0], fraction=0.5)
    assert all(torch.equal(expected[n], masks[1][n]) for n in expected)


def test_prepare_level_rewinds_or_keeps_the_trained_weights(images, tmp_path):
    chain = run_chain(images, tmp_path / "prep", levels=0)
    previous = PreviousLevel(model=chain[0].model, mask=chain[0].mask, rewind=chain[0].rewind)
    rewind = torch.load(chain[0].rewind, weights_only=True)["state_dict"]
    trained = torch.load(chain[0].model, weights_only=True)
    expected_mask = prune_global_magnitude(trained, Mask.load(chain[0].mask), fraction=0.5)

    job = small_job(images, level=1)
    model = get_model("resnet20", num_classes=3, width=4)
    mask, start, schedule = prepare_level(job, previous, model, 6)
    assert (start, schedule) == (3, job.training)
    assert all(torch.equal(mask[n], expected_mask[n]) for n in mask)
    for name, value in model.state_dict().items():  # weights masked, BN state as rewound
        expected = rewind[name] * mask[name] if name in mask else rewind[name]
        assert torch.equal(value, expected), name

    pruning = dataclasses.replace(
        job.pruning, kind="finetune", finetune_epochs=2, finetune_lr=0.001
    )
    job = small_job(images, level=1, pruning=pruning)
    mask, start, schedule = prepare_level(job, previous, model, 6)
    assert (start, schedule.epochs, schedule.lr, schedule.schedule) == (0, 2, 0.001, "constant")
    for name, value in model.state_dict().items():
        expected = trained[name] * mask[name] if name in mask else trained[name]
        assert torch.equal(value, expected), name

    with pytest.raises(ValueError, match="iterations per epoch"):
        prepare_level(small_job(images, level=1), previous, model, 5)


def test_finetune_keeps_the_trained_weights(images, tmp_path):
    pruning = dataclasses.replace(
        small_job(images).pruning, kind="finetune", finetune_epochs=1, finetune_lr=1e-6
    )
    chain = run_chain(images, tmp_path / "ft", levels=1, pruning=pruning)
    trained = torch.load(chain[0].model, weights_only=True)
    tuned = torch.load(chain[1].model, weights_only=True)
    mask = Mask.load(chain[1].mask)
    for name, keep in mask.items():
        torch.testing.assert_close(tuned[name], trained[name] * keep, rtol=0, atol=1e-4)
    assert json.loads(chain[1].metrics.read_text())["epochs"] == 1


def _kind(images, kind: str, level: int, **fields) -> LevelJob:
    pruning = dataclasses.replace(small_job(images).pruning, kind=kind, **fields)
    return small_job(images, level=level, pruning=pruning)


def _top_magnitudes(weights, mask: Mask, keep: int) -> dict[str, torch.Tensor]:
    """Brute force: the ``keep`` largest |w| over every masked tensor, ties to the later index."""
    flat = torch.cat([weights[n].reshape(-1).abs().double() for n in mask])
    order = sorted(range(flat.numel()), key=lambda i: (float(flat[i]), i), reverse=True)
    kept = torch.zeros(flat.numel(), dtype=torch.bool)
    kept[order[:keep]] = True
    out, start = {}, 0
    for name, tensor in mask.items():
        out[name] = kept[start : start + tensor.numel()].reshape(tensor.shape)
        start += tensor.numel()
    return out


def test_oneshot_prunes_the_dense_weights_straight_to_the_levels_density(images, tmp_path):
    chain = run_chain(images, tmp_path / "oneshot", levels=0)
    dense = PreviousLevel(model=chain[0].model, mask=chain[0].mask, rewind=chain[0].rewind)
    trained = torch.load(chain[0].model, weights_only=True)
    rewind = torch.load(chain[0].rewind, weights_only=True)["state_dict"]
    full = Mask.load(chain[0].mask)
    for level in (1, 3):
        model = get_model("resnet20", num_classes=3, width=4)
        mask, start, _ = prepare_level(_kind(images, "oneshot", level), dense, model, 6)
        # the removed count (1 - 0.5**level) * total rounded half up, as in iterative pruning
        keep = full.num_total - int(np.floor((1 - 0.5**level) * full.num_total + 0.5))
        expected = _top_magnitudes(trained, full, keep)
        assert mask.num_remaining == keep
        assert all(torch.equal(mask[n], expected[n]) for n in mask), level
        assert start == 3  # rewound to the rewind point
        for name in mask:
            assert torch.equal(model.state_dict()[name], rewind[name] * mask[name])


def test_reinit_copies_the_source_mask_and_starts_from_fresh_weights(images, tmp_path):
    chain = run_chain(images, tmp_path / "reinit", levels=1)
    lottery_mask = Mask.load(chain[1].mask)
    rewind = torch.load(chain[0].rewind, weights_only=True)["state_dict"]
    job = _kind(images, "reinit", 1, rewind_unit=None, rewind_step=None, fraction=None)
    model = get_model("resnet20", num_classes=3, width=4)
    mask, start, schedule = prepare_level(job, PreviousLevel(mask=chain[1].mask), model, 6)
    assert all(torch.equal(mask[n], lottery_mask[n]) for n in mask)
    assert (start, schedule) == (0, job.training)  # the whole schedule, from step 0
    state = model.state_dict()
    for name, keep in mask.items():
        assert torch.count_nonzero(state[name][~keep]) == 0
        assert not torch.equal(state[name], rewind[name] * keep), name
    # the level-0 initialisation is not reused either: reinit draws its own weights
    level0_init = get_model("resnet20", num_classes=3, width=4, generator=torch.Generator()
                            .manual_seed(init_seed(small_job(images))))  # fmt: skip
    assert not torch.equal(state["conv1.weight"], level0_init.state_dict()["conv1.weight"])
    assert init_seed(job) != init_seed(_kind(images, "reinit", 2))


def test_random_levels_match_the_source_counts_and_ignore_the_weights(images, tmp_path):
    chain = run_chain(images, tmp_path / "random", levels=1)
    source = Mask.load(chain[1].mask)
    previous = PreviousLevel(mask=chain[1].mask, rewind=chain[0].rewind)
    model = get_model("resnet20", num_classes=3, width=4)
    layerwise = _kind(images, "random", 1, scope="layerwise")
    mask, start, _ = prepare_level(layerwise, previous, model, 6)
    assert start == 3
    assert {n: int(mask[n].sum()) for n in mask} == {n: int(source[n].sum()) for n in source}
    assert not all(torch.equal(mask[n], source[n]) for n in mask)
    again, _, _ = prepare_level(layerwise, previous, model, 6)
    assert all(torch.equal(mask[n], again[n]) for n in mask)  # seeded: same job, same mask
    other_level, _, _ = prepare_level(
        _kind(images, "random", 2, scope="layerwise"), previous, model, 6
    )
    assert not all(torch.equal(mask[n], other_level[n]) for n in mask)
    # global scope: the level's scheduled density over the dense full mask
    dense = PreviousLevel(mask=chain[0].mask, rewind=chain[0].rewind)
    wide, _, _ = prepare_level(_kind(images, "random", 2, scope="global"), dense, model, 6)
    assert wide.num_remaining == wide.num_total - int(np.floor(0.75 * wide.num_total + 0.5))


def test_a_finetune_level_starts_from_the_previous_levels_trained_weights(images, tmp_path):
    pruning = dataclasses.replace(
        small_job(images).pruning, kind="finetune", finetune_epochs=1, finetune_lr=0.01
    )
    chain = run_chain(images, tmp_path / "ft2", levels=1, pruning=pruning)
    previous = PreviousLevel(model=chain[1].model, mask=chain[1].mask)
    level1 = torch.load(chain[1].model, weights_only=True)
    model = get_model("resnet20", num_classes=3, width=4)
    job = small_job(images, level=2, pruning=pruning)
    mask, start, schedule = prepare_level(job, previous, model, 6)
    expected = prune_global_magnitude(level1, Mask.load(chain[1].mask), fraction=0.5)
    assert all(torch.equal(mask[n], expected[n]) for n in mask)
    assert (start, schedule.epochs, schedule.lr) == (0, 1, 0.01)
    for name, value in model.state_dict().items():
        assert torch.equal(value, level1[name] * mask[name] if name in mask else level1[name])


def test_cpu_runs_are_byte_identical(images, tmp_path):
    first = run_chain(images, tmp_path / "a", levels=1)
    second = run_chain(images, tmp_path / "b", levels=1)
    for a, b in zip(first, second, strict=True):
        for name in ("model", "mask", "rewind"):
            if getattr(a, name) is not None:
                assert getattr(a, name).read_bytes() == getattr(b, name).read_bytes(), name
    other_seed = run_chain(images, tmp_path / "c", levels=0, seed=8)
    assert other_seed[0].model.read_bytes() != first[0].model.read_bytes()


# ---------------------------------------------------------------- resume after SIGKILL

LEVEL_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    import torch
    sys.path.insert(0, sys.argv[3])
    from helpers import pruning_config, training_config
    from prunedissect.logs import finish_attempts, log_to_file
    from prunedissect.training import (
        LevelJob, LevelOutputs, run_level
    )

    torch.set_num_threads(1)
    images, out = Path(sys.argv[1]), Path(sys.argv[2])
    # as the workflow's train_level.py: a fresh log per attempt (Snakemake deletes the old one)
    log = log_to_file(out / "train.log", name="t", attempts=out / "attempt.log")
    job = LevelJob(
        trial=0, level=0, seed=3, arch="resnet20", model_kwargs={"width": 4}, images=images,
        image_size=16, mean=(0.5,) * 3, std=(0.25,) * 3,
        training=training_config(epochs=25, batch_size=8, lr=0.05, milestones=(20,)),
        pruning=pruning_config(rewind_unit="iteration", rewind_step=3),
    )
    outputs = LevelOutputs(model=out / "model.pt", mask=out / "mask.npz",
                           metrics=out / "metrics.json", rewind=out / "rewind.pt")
    run_level(job, outputs=outputs, previous=None, device="cpu", logger=log)
    finish_attempts(out / "attempt.log")
    """)


def start_level(script: Path, images: Path, out: Path) -> subprocess.Popen:
    out.mkdir(parents=True, exist_ok=True)
    tests = str(Path(__file__).parents[1])  # tests/, where helpers.py lives
    return subprocess.Popen([sys.executable, str(script), str(images), str(out), tests])


@pytest.mark.slow
def test_a_killed_level_resumes_to_the_same_bytes(images, tmp_path):
    script = tmp_path / "level.py"
    script.write_text(LEVEL_SCRIPT)
    reference = tmp_path / "reference"
    assert start_level(script, images, reference).wait(timeout=300) == 0

    killed = tmp_path / "killed"
    process = start_level(script, images, killed)
    deadline = time.monotonic() + 300
    # the sidecar is written after the file: a kill between the two leaves a resume point that
    # is rightly treated as corrupt (moved aside), so wait for both
    while not (killed / "resume.pt.sha256").exists():
        assert process.poll() is None, "the run ended before writing a resume checkpoint"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert not (killed / "model.pt").exists() and (killed / "resume.pt").exists()

    killed_lines = (killed / "attempt.log").read_text().splitlines()
    assert any("epoch 1/25" in line for line in killed_lines)
    assert start_level(script, images, killed).wait(timeout=300) == 0
    log = (killed / "train.log").read_text()
    assert "resuming from" in log and "at epoch 0" not in log
    # the killed attempt's lines survive, under a marker, before this attempt's
    lines = log.splitlines()
    assert lines[0] == RESUMED_MARKER
    assert lines[1 : len(killed_lines) + 1] == killed_lines
    assert lines[len(killed_lines) + 1] == THIS_ATTEMPT_MARKER
    assert not (killed / "attempt.log").exists()
    for name in ("model.pt", "mask.npz", "rewind.pt"):
        assert (killed / name).read_bytes() == (reference / name).read_bytes(), name
    assert not (killed / "resume.pt").exists()


@pytest.mark.parametrize("kind", ["stale", "garbage"])
def test_a_stale_or_garbage_resume_point_is_set_aside(kind, images, tmp_path):
    job = small_job(images)
    out = outputs_in(tmp_path / kind, 0)
    out.model.parent.mkdir(parents=True)
    if kind == "stale":  # from a run with other settings
        save_torch({"fingerprint": "something else", "iteration": 12}, out.resume)
    else:  # issue 13: garbage used to fail every retry inside torch.load
        out.resume.write_bytes(b"this is not a torch checkpoint" * 10)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    log = logging.getLogger(kind)
    log.addHandler(handler)
    run_level(job, outputs=out, previous=None, device="cpu", logger=log)
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(out.resume) in warnings[0], warnings
    if kind == "stale":
        assert "ignoring" in warnings[0]
    else:
        assert "from its start" in warnings[0]
        aside = list(out.model.parent.glob("resume.pt.corrupt-*Z"))
        assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")
    assert not out.resume.exists() and not out.resume.with_name("resume.prev.pt").exists()
    fresh = outputs_in(tmp_path / "fresh", 0)
    run_level(job, outputs=fresh, previous=None, device="cpu", logger=logging.getLogger("t"))
    assert out.model.read_bytes() == fresh.model.read_bytes()


def test_a_corrupt_input_checkpoint_is_named_before_training(images, tmp_path):
    chain = run_chain(images, tmp_path / "chain", 0)
    with open(chain[0].model, "r+b") as handle:
        handle.truncate(100)
    job = small_job(images, level=1)
    previous = PreviousLevel(model=chain[0].model, mask=chain[0].mask, rewind=chain[0].rewind)
    with pytest.raises(ValueError, match=f"{chain[0].model}: SHA-256 .* truncated"):
        run_level(job, outputs=outputs_in(tmp_path / "l1", 1), previous=previous,
                  device="cpu", logger=logging.getLogger("t"))  # fmt: skip
    assert not (tmp_path / "l1").exists()


def test_evaluate_counts_top1_and_top5(images):
    data = load_split(images / "val", image_size=16, mean=(0.5,) * 3, std=(0.25,) * 3,
                      train=False, augment=False)  # fmt: skip

    class Constant(torch.nn.Module):
        def forward(self, x):
            return torch.tensor([[3.0, 2.0, 1.0]]).expand(x.shape[0], 3)

    scores = evaluate(Constant(), data, device="cpu", batch_size=7)
    assert scores.top1 == pytest.approx(1 / 3)  # 6 of 18 images are class0
    assert scores.top5 == 1.0  # k = min(5, 3 classes)
    expected = float(torch.nn.functional.cross_entropy(
        torch.tensor([[3.0, 2.0, 1.0]]).expand(3, 3), torch.tensor([0, 1, 2])))  # fmt: skip
    assert scores.loss == pytest.approx(expected)


def test_content_hash_tracks_the_pixels_and_the_file_list(tmp_path):
    root = write_image_folder(tmp_path / "imgs", per_class=2, val_per_class=1)
    kwargs = dict(image_size=16, mean=(0.5,) * 3, std=(0.25,) * 3, train=False, augment=False)
    memory = load_split(root / "train", **kwargs).content_hash()
    stream = load_split(root / "train", in_memory_limit=0, **kwargs).content_hash()
    array = np.asarray(Image.open(root / "train/class0/000.png")).copy()
    array[0, 0] ^= 1
    Image.fromarray(array).save(root / "train/class0/000.png")
    assert load_split(root / "train", **kwargs).content_hash() != memory
    assert load_split(root / "train", in_memory_limit=0, **kwargs).content_hash() == stream
    (root / "train/class0/000.png").rename(root / "train/class0/009.png")
    assert load_split(root / "train", in_memory_limit=0, **kwargs).content_hash() != stream


# ---------------------------------------------------------------- the Snakemake rules


def study_config(path: Path, images: Path, **changes) -> Path:
    import yaml

    config = {
        "device": "cpu",
        "trials": 1,
        "dataset": {"kind": "imagefolder", "path": str(images), "image_size": 16},
        "model": {"arch": "resnet20", "width": 4},
        "training": {"epochs": 2, "batch_size": 8, "lr": 0.05, "schedule": "constant"},
        "pruning": {"levels": 2, "fraction": 0.5, "rewind": {"unit": "iteration", "step": 2}},
    }
    for section, values in changes.items():
        config[section] = values if isinstance(values, list) else {**config[section], **values}
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.slow
def test_train_rules_chain_levels_and_rerun_only_what_changed(images, tmp_path):
    from conftest import REPO, job_counts, run_snakemake

    def snakemake(config: Path, *targets_and_flags: str):
        return run_snakemake(
            "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path / "wd"),
            "--configfile", str(config), "--cores", "2", *targets_and_flags,
        )  # fmt: skip

    def metrics(level: int, method: str = "lottery") -> str:
        return f"results/train/{'dense' if level == 0 else method}/trial0/level{level}/metrics.json"

    base = study_config(tmp_path / "base.yaml", images)
    snakemake(base, metrics(2), "results/tables/accuracy.parquet")
    train = tmp_path / "wd" / "results" / "train"
    for level in range(3):
        directory = train / ("dense" if level == 0 else "lottery") / "trial0" / f"level{level}"
        assert (directory / "model.pt").is_file()
        assert not (directory / "resume.pt").exists()
    assert (train / "dense" / "trial0" / "level0" / "rewind.pt").is_file()
    log = (tmp_path / "wd" / "logs" / "train_pruned" / "lottery_trial0_level2.log").read_text()
    assert "epoch 2/2" in log and "level 2 done" in log

    def planned(config: Path, *targets: str) -> dict[str, int]:
        proc = snakemake(config, *targets, "-n", "--quiet", "rules")
        return job_counts(proc.stdout + proc.stderr)

    assert planned(base, metrics(2)) == {}
    # One more level: only that level trains; the finished chain is reused.
    deeper = study_config(tmp_path / "deeper.yaml", images, pruning={"levels": 3})
    assert planned(deeper, metrics(3)) == {"train_pruned": 1}
    # Another pruning fraction retrains the pruned levels only; the dense level stays.
    other_fraction = study_config(tmp_path / "fraction.yaml", images, pruning={"fraction": 0.4})
    assert planned(other_fraction, metrics(2)) == {"train_pruned": 2}
    # Another schedule retrains everything.
    longer = study_config(tmp_path / "longer.yaml", images, training={"epochs": 3})
    assert planned(longer, metrics(2)) == {"train_dense": 1, "train_pruned": 2}
    # Adding arms to the finished study trains only their levels (the dense level and the
    # lottery chain are reused) and gathers the table again.
    lottery = {"name": "lottery", "kind": "lottery"}
    arms = [lottery, {"name": "ft", "kind": "finetune", "epochs": 1},
            {"name": "scratch", "kind": "reinit"}]  # fmt: skip
    wider = study_config(tmp_path / "wider.yaml", images, methods=arms)
    accuracy = "results/tables/accuracy.parquet"
    assert planned(wider, accuracy) == {"train_pruned": 4, "gather_accuracy": 1}
    dry = snakemake(wider, accuracy, "-n")
    assert not re.search(r"wildcards: method=lottery", dry.stdout + dry.stderr)
    # Once they are trained, changing one arm's options retrains that arm alone.
    snakemake(wider, accuracy)
    arms[1] = {**arms[1], "lr": 0.002}
    changed = study_config(tmp_path / "changed.yaml", images, methods=arms)
    dry = snakemake(changed, accuracy, "-n")
    output = dry.stdout + dry.stderr
    assert job_counts(output) == {"train_pruned": 2, "gather_accuracy": 1}
    assert set(re.findall(r"wildcards: method=(\w+)", output)) == {"ft"}


def test_the_untrained_model_is_level_0s_initialisation(images, tmp_path):
    # rewinding to iteration 0 stores level 0's weights before its first step
    pruning = pruning_config(fraction=0.5, rewind_unit="iteration", rewind_step=0)
    chain = run_chain(images, tmp_path / "init", levels=0, pruning=pruning)
    start = torch.load(chain[0].rewind, weights_only=True)["state_dict"]
    model = untrained_model("resnet20", num_classes=3, seed=7, model_kwargs={"width": 4})
    state = model.state_dict()
    assert state.keys() == start.keys()
    for name, value in start.items():
        assert torch.equal(state[name], value), name
    other = untrained_model("resnet20", num_classes=3, seed=8, model_kwargs={"width": 4})
    assert not torch.equal(other.state_dict()["conv1.weight"], state["conv1.weight"])
