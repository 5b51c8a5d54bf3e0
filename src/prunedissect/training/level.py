"""One level of one pruning method: load, train, write.

Level 0 trains dense and records the rewind point; level n of an arm chooses its mask as its
kind says (:mod:`prunedissect.methods`: magnitude pruning of level n-1 or of the dense network,
a copied or a random mask) and trains the survivors from the rewind point, from fresh weights or
from level n-1's trained weights. Frankle & Carbin 2019, with rewinding as in Frankle et al.
2020 and facebookresearch/open_lth.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from prunedissect.checkpoints import sha256_file, verify_all, write_checksum
from prunedissect.data.images import ImageData, load_split
from prunedissect.files import write_bytes_atomic
from prunedissect.models import get_model
from prunedissect.models.reduced import prunable_count, reduced_kwargs
from prunedissect.pruning import (
    Mask,
    channel_families,
    kept_at_level,
    prune_channels,
    prune_connections,
    prune_global_magnitude,
    prune_one_shot,
    random_mask,
)
from prunedissect.seeds import derive_seed
from prunedissect.torchfiles import ResumePoints, load_verified, save_torch
from prunedissect.training.loop import evaluate, train
from prunedissect.training.resume import TrainResult, state_dict_cpu
from prunedissect.training.settings import PruningConfig, TrainingConfig


@dataclasses.dataclass(frozen=True)
class LevelJob:
    """Everything that determines one level's result (the resume fingerprint hashes it)."""

    trial: int
    level: int
    seed: int
    arch: str
    model_kwargs: Mapping[str, Any]
    images: Path
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    training: TrainingConfig
    pruning: PruningConfig

    def __post_init__(self) -> None:
        if self.level < 0 or self.trial < 0:
            raise ValueError(f"level and trial must be >= 0, got {self.level} and {self.trial}")


@dataclasses.dataclass(frozen=True)
class LevelOutputs:
    """Files one level writes (``rewind`` only at level 0; ``resume`` is removed on success).

    ``model``, ``mask`` and ``rewind`` each get a ``<file>.sha256`` sidecar."""

    model: Path
    mask: Path
    metrics: Path
    rewind: Path | None = None

    @property
    def resume(self) -> Path:
        return self.model.parent / "resume.pt"


@dataclasses.dataclass(frozen=True)
class PreviousLevel:
    """Inputs of a level >= 1, by kind (:mod:`prunedissect.methods`).

    ``mask``: the mask pruned further (lottery, finetune: level n-1's; oneshot, random global:
    the dense full mask) or copied/matched (reinit, random layerwise: the source arm's level-n
    mask). ``model``: the trained weights ranked by magnitude or fine-tuned from (level n-1's;
    oneshot: the dense network's); None where no weight is read. ``rewind``: level 0's rewind
    state, for kinds that rewind.
    """

    mask: Path
    model: Path | None = None
    rewind: Path | None = None

    def files(self) -> list[Path]:
        return [Path(p) for p in (self.model, self.mask, self.rewind) if p]


def _fingerprint(job: LevelJob, previous: PreviousLevel | None, data: ImageData) -> str:
    """Identity of a level's run: settings, training data and input files (resume key)."""
    record = {
        "job": dataclasses.asdict(job),
        "data": data.content_hash(),
        "inputs": ([] if previous is None else [sha256_file(p) for p in previous.files()]),
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


@contextlib.contextmanager
def _deterministic(device: torch.device) -> Iterator[None]:
    """Deterministic kernels on the CPU, restoring the caller's setting afterwards."""
    if device.type != "cpu":
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


_REINIT, _RANDOM_MASK, _REDUCED = 1, 2, 3  # seed keys beside level 0's initialisation (key 0)


def untrained_model(
    arch: str, *, num_classes: int, seed: int, model_kwargs: Mapping[str, Any]
) -> nn.Module:
    """The network level 0 of the trial with seed ``seed`` starts from, untrained: the floor
    of interpretability (Bau et al. 2017's random-initialisation control), dissected as level
    ``init``."""
    generator = torch.Generator().manual_seed(derive_seed(seed, 0))
    return get_model(arch, num_classes=num_classes, generator=generator, **dict(model_kwargs))


def init_seed(job: LevelJob) -> int:
    """Seed of the model's initial weights: level 0's for every level, except reinit and
    reduced levels, which draw fresh weights per level."""
    if job.level > 0 and job.pruning.kind == "reinit":
        return derive_seed(job.seed, _REINIT, job.level)
    if job.level > 0 and job.pruning.kind == "reduced":
        return derive_seed(job.seed, _REDUCED, job.level)
    return derive_seed(job.seed, 0)


def level_model_kwargs(job: LevelJob, num_classes: int) -> dict[str, Any]:
    """The builder kwargs of the level's network: the study's (``job.model_kwargs``), except a
    reduced level's, narrowed until its prunable weights match the level's scheduled count
    (:func:`~prunedissect.models.reduced_kwargs`; target: ``kept_at_level`` of the dense
    network's prunable weights)."""
    kwargs = dict(job.model_kwargs)
    if job.level == 0 or job.pruning.kind != "reduced":
        return kwargs
    dense = prunable_count(
        job.arch, num_classes=num_classes, model_kwargs=kwargs, exclude=job.pruning.exclude
    )
    fraction = _need(job.pruning.fraction, "pruning.fraction", job)
    return reduced_kwargs(
        job.arch,
        model_kwargs=kwargs,
        num_classes=num_classes,
        target=kept_at_level(dense, fraction, job.level),
        exclude=job.pruning.exclude,
    )


def _need(value: Any, what: str, job: LevelJob) -> Any:
    if value is None:
        raise ValueError(f"level {job.level} of kind {job.pruning.kind!r} needs {what}")
    return value


def level_mask(job: LevelJob, previous: PreviousLevel, model: nn.Module | None = None) -> Mask:
    """The mask of a level >= 1, chosen as its kind says (:mod:`prunedissect.methods`).

    ``model`` (the architecture; its weights are not read) gives a structured level the
    channels tied by residual additions, traced on a ``job.image_size`` input."""
    kind, pruning = job.pruning.kind, job.pruning
    mask = Mask.load(previous.mask)
    if kind in ("structured", "connection"):
        trained = load_verified(_need(previous.model, "trained weights", job))
        fraction = _need(pruning.fraction, "pruning.fraction", job)
        if kind == "connection":
            return prune_connections(trained, mask, fraction=fraction, level=job.level)
        example = torch.zeros(1, 3, job.image_size, job.image_size)
        families = channel_families(
            _need(model, "the model", job), example, exclude=pruning.exclude
        )
        return prune_channels(
            trained,
            mask,
            families,
            fraction=fraction,
            level=job.level,
            scope=pruning.scope or "layer",
        )
    if kind in ("lottery", "finetune", "oneshot"):
        trained = load_verified(_need(previous.model, "trained weights", job))
        fraction = _need(pruning.fraction, "pruning.fraction", job)
        if kind == "oneshot":
            return prune_one_shot(trained, mask, fraction=fraction, level=job.level)
        return prune_global_magnitude(trained, mask, fraction=fraction)
    if kind == "reinit":
        return mask
    if kind == "random":
        generator = torch.Generator().manual_seed(derive_seed(job.seed, _RANDOM_MASK, job.level))
        if pruning.scope == "global":
            keep = kept_at_level(
                mask.num_total, _need(pruning.fraction, "pruning.fraction", job), job.level
            )
            return random_mask(mask, generator=generator, scope="global", keep=keep)
        return random_mask(mask, generator=generator, scope="layerwise")
    raise ValueError(f"level {job.level}: unknown pruning kind {kind!r}")


def prepare_level(
    job: LevelJob, previous: PreviousLevel | None, model: nn.Module, iterations_per_epoch: int
) -> tuple[Mask, int, TrainingConfig]:
    """Put the level's starting weights into ``model``; return its mask, start step, schedule.

    Level 0, and a reduced level (a narrower ``model``, :func:`level_model_kwargs`): the full
    mask, step 0, the training schedule (``model`` keeps its seeded init).
    Level n: the mask of :func:`level_mask`; then by kind, ``model`` gets level 0's rewind state
    (weights and BatchNorm buffers) masked and training restarts at the rewind step (lottery,
    oneshot, random), keeps its fresh initialisation (:func:`init_seed`) and trains the whole
    schedule (reinit), or gets level n-1's trained weights and the fine-tuning schedule from
    step 0 (finetune; structured and connection arms with ``retrain: finetune``).
    """
    if job.level == 0 or job.pruning.kind == "reduced":
        return Mask.ones_like(model, exclude=job.pruning.exclude), 0, job.training
    if previous is None:
        raise ValueError(f"level {job.level} needs its inputs (mask, and model or rewind)")
    if job.pruning.kind is None:
        raise ValueError(f"level {job.level} needs a pruning method (an arm of config methods)")
    verify_all(previous.files())
    mask = level_mask(job, previous, model)
    if job.pruning.finetunes:
        model.load_state_dict(load_verified(previous.model))
        mask.apply_(model)
        return mask, 0, job.pruning.finetune_training(job.training)
    if job.pruning.kind == "reinit":
        mask.apply_(model)
        return mask, 0, job.training
    if previous.rewind is None:
        raise ValueError(f"kind {job.pruning.kind!r} rewinds and needs level 0's rewind.pt")
    rewind = load_verified(previous.rewind)
    if rewind["iterations_per_epoch"] != iterations_per_epoch:
        raise ValueError(
            f"{previous.rewind} was saved with {rewind['iterations_per_epoch']} iterations per "
            f"epoch, this run has {iterations_per_epoch}; retrain level 0 with the same "
            "training set and batch size"
        )
    model.load_state_dict(rewind["state_dict"])
    mask.apply_(model)
    return mask, int(rewind["iteration"]), job.training


@dataclasses.dataclass(frozen=True)
class LevelData:
    """A level's training and validation splits, and the seconds it took to open them."""

    train: ImageData
    val: ImageData
    load_seconds: float


@dataclasses.dataclass
class TrainedLevel:
    """What training one level produced, before anything is written."""

    model: nn.Module
    mask: Mask
    result: TrainResult
    metrics: dict[str, Any]
    capture_at: int | None
    iterations_per_epoch: int


def load_level_data(job: LevelJob, *, device: torch.device, logger: logging.Logger) -> LevelData:
    """Open ``job.images``'s train/ and val/ splits (same class directories required)."""
    started = time.perf_counter()
    splits = {
        name: load_split(
            job.images / name,
            image_size=job.image_size,
            mean=job.mean,
            std=job.std,
            train=name == "train",
            augment=job.training.augment and name == "train",
            num_workers=job.training.num_workers,
            device=device,
        )
        for name in ("train", "val")
    }
    train_data, val_data = splits["train"], splits["val"]
    if train_data.classes != val_data.classes:
        raise ValueError(
            f"{job.images}/train and {job.images}/val have different class directories"
        )
    load_seconds = time.perf_counter() - started
    logger.info(
        "trial %d level %d: %d train / %d val images, %d classes, loaded in %.1f s (%s)",
        job.trial,
        job.level,
        len(train_data),
        len(val_data),
        len(train_data.classes),
        load_seconds,
        type(train_data).__name__,
    )
    return LevelData(train_data, val_data, load_seconds)


def train_level(
    job: LevelJob,
    data: LevelData,
    *,
    previous: PreviousLevel | None,
    resume: Path | None,
    device: torch.device,
    logger: logging.Logger,
) -> TrainedLevel:
    """Build the seeded model, prepare the level's start (:func:`prepare_level`), train it and
    evaluate it on ``data.val``; ``resume`` is the level's resume point (None: no resuming)."""
    num_classes = len(data.train.classes)
    kwargs = level_model_kwargs(job, num_classes)
    model = get_model(
        job.arch,
        num_classes=num_classes,
        generator=torch.Generator().manual_seed(init_seed(job)),
        **kwargs,
    )
    iterations_per_epoch = len(data.train) // job.training.batch_size
    mask, start, schedule = prepare_level(job, previous, model, iterations_per_epoch)
    remaining, total = mask.num_remaining, mask.num_total
    if kwargs != dict(job.model_kwargs):  # a reduced network: its size against the dense one
        logger.info("trial %d level %d: reduced network %s", job.trial, job.level, kwargs)
        total = prunable_count(
            job.arch,
            num_classes=num_classes,
            model_kwargs=job.model_kwargs,
            exclude=job.pruning.exclude,
        )
    logger.info(
        "trial %d level %d (%s): density %.4f (%d of %d prunable weights), start iteration %d",
        job.trial,
        job.level,
        job.pruning.kind or "dense",
        remaining / total,
        remaining,
        total,
        start,
    )
    capture_at = None
    if job.level == 0:
        capture_at = job.pruning.rewind_iteration(iterations_per_epoch)
    result = train(
        model,
        data.train,
        config=schedule,
        seed=job.seed,
        device=device,
        logger=logger,
        mask=mask,
        start_iteration=start,
        capture_at=capture_at,
        checkpoint=resume,
        fingerprint=_fingerprint(job, previous, data.train),
    )
    scores = evaluate(model, data.val, device=device, batch_size=job.training.eval_batch_size)
    trained_epochs = (schedule.epochs * iterations_per_epoch - start) / iterations_per_epoch
    metrics = {
        "trial": job.trial,
        "level": job.level,
        "density": remaining / total,
        "params_remaining": remaining,
        "params_total": total,
        "model_kwargs": kwargs,
        "top1": scores.top1,
        "top5": scores.top5,
        "loss": scores.loss,
        "epochs": round(trained_epochs, 6),
        "wall_time_s": round(result.wall_time_s + data.load_seconds, 3),
        "seed": job.seed,
    }
    return TrainedLevel(model, mask, result, metrics, capture_at, iterations_per_epoch)


def write_level(trained: TrainedLevel, outputs: LevelOutputs) -> None:
    """Write the level's files (each checkpoint with its sidecar) and clear its resume points."""
    mask, model = trained.mask, trained.model
    mask.apply_(model)  # already zero; makes the file's zeros independent of training details
    if trained.metrics["level"] == 0 and outputs.rewind is not None:
        save_torch(
            {
                "state_dict": trained.result.rewind_state,
                "iteration": trained.capture_at,
                "iterations_per_epoch": trained.iterations_per_epoch,
            },
            outputs.rewind,
        )
    mask.save(outputs.mask)
    write_checksum(outputs.mask)
    save_torch(state_dict_cpu(model), outputs.model)
    write_bytes_atomic(outputs.metrics, (json.dumps(trained.metrics, indent=2) + "\n").encode())
    ResumePoints(outputs.resume).clear()


def run_level(
    job: LevelJob,
    *,
    outputs: LevelOutputs,
    previous: PreviousLevel | None,
    device: torch.device | str,
    logger: logging.Logger,
) -> dict[str, Any]:
    """Train one level of one pruning method and write its files; return its metrics record.

    Level 0 trains dense from a seeded initialisation and also writes ``outputs.rewind`` (the
    state dict before optimiser step ``pruning.rewind``, plus that step and the iterations per
    epoch). Level n >= 1 takes the mask its kind chooses (:func:`level_mask`) and trains the
    survivors from the start :func:`prepare_level` gives: rewound (and BatchNorm state) to the
    rewind point and retrained to the end of the schedule, freshly initialised (reinit), or
    level n-1's trained weights fine-tuned ``finetune_epochs`` at ``finetune_lr`` (finetune).
    A ``resume.pt`` (and the epoch before's ``resume.prev.pt``) beside the model is written
    each epoch and removed at the end. Inputs are checked against their ``.sha256`` sidecars
    before use and every output but ``metrics`` gets one (:mod:`prunedissect.checkpoints`).
    The three steps are :func:`load_level_data`, :func:`train_level` and :func:`write_level`.
    """
    device = torch.device(device)
    started = time.perf_counter()
    with _deterministic(device):
        data = load_level_data(job, device=device, logger=logger)
        trained = train_level(
            job, data, previous=previous, resume=outputs.resume, device=device, logger=logger
        )
    write_level(trained, outputs)
    metrics = trained.metrics
    logger.info(
        "trial %d level %d done: top1 %.4f top5 %.4f loss %.4f density %.4f in %.1f s",
        job.trial,
        job.level,
        metrics["top1"],
        metrics["top5"],
        metrics["loss"],
        metrics["density"],
        time.perf_counter() - started,
    )
    return metrics
