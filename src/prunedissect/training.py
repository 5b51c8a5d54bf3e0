"""Training with masks, lottery-ticket rewinding and resumable checkpoints.

The pieces, each usable on its own:

- :class:`TrainingConfig` / :class:`PruningConfig`: typed views of the ``training`` and
  ``pruning`` config sections.
- :func:`learning_rate`: the schedule (step, cosine or constant, optional linear warm-up) as a
  pure function of the iteration, so a resumed or rewound run needs no scheduler state.
- :func:`load_split`: an ImageFolder split, decoded once into memory when small (augmented with
  tensor ops) or streamed through a DataLoader with ``data.transforms.make_transform``.
- :func:`train` / :func:`evaluate`: SGD with the mask enforced after every step; top-1, top-5 and
  loss.
- :func:`run_level`: one level of iterative magnitude pruning (Frankle & Carbin 2019, with
  rewinding as in Frankle et al. 2020 and facebookresearch/open_lth): level 0 trains dense and
  records the rewind point; level n prunes level n-1's trained weights, rewinds the survivors and
  retrains (or fine-tunes them).

Randomness comes only from seeds derived from the trial seed (model init, data order,
augmentation), never from the global RNG state, and every epoch's randomness depends only on
(seed, epoch), so a run resumed from an epoch checkpoint continues exactly like an uninterrupted
one. On the CPU the same inputs give byte-identical model and mask files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F
from torchvision import datasets
from torchvision import transforms as T

from prunedissect.data.transforms import make_transform
from prunedissect.models import get_model
from prunedissect.checkpoints import sha256_file, verify_all, write_bytes_atomic, write_checksum
from prunedissect.pruning import Mask, prune_global_magnitude
from prunedissect.torchfiles import ResumePoints, load_verified, save_torch

IN_MEMORY_LIMIT_BYTES = 2 * 1024**3
"""Decoded ImageFolder splits up to this size are held in memory (uint8) instead of streamed."""


# --------------------------------------------------------------------------- configuration


def _unknown_keys(section: str, given: Mapping[str, Any], known: Sequence[str]) -> None:
    extra = sorted(set(given) - set(known))
    if extra:
        raise ValueError(
            f"unknown key(s) {extra} in config section {section!r}; allowed: {sorted(known)}"
        )


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Optimiser, schedule and batching; field names are the ``training`` config keys."""

    epochs: int = 6
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    schedule: str = "step"
    milestones: tuple[int, ...] = ()
    gamma: float = 0.1
    warmup_epochs: int = 0
    augment: bool = True
    num_workers: int = 0
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        if self.schedule not in ("step", "cosine", "constant"):
            raise ValueError(
                f"training.schedule must be step, cosine or constant, got {self.schedule!r}"
            )
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("training.epochs, batch_size and eval_batch_size must be >= 1")
        if self.nesterov and self.momentum <= 0:
            raise ValueError("training.nesterov needs training.momentum > 0")
        if self.warmup_epochs > self.epochs:
            raise ValueError(
                f"training.warmup_epochs ({self.warmup_epochs}) exceeds training.epochs "
                f"({self.epochs})"
            )

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> TrainingConfig:
        """Build from ``config["training"]``; missing keys take the schema defaults."""
        names = [f.name for f in dataclasses.fields(cls)]
        _unknown_keys("training", section, names)
        values = dict(section)
        if "milestones" in values:
            values["milestones"] = tuple(int(m) for m in values["milestones"])
        return cls(**values)


@dataclasses.dataclass(frozen=True)
class PruningConfig:
    """How each level prunes and restarts; built from ``config["pruning"]``."""

    fraction: float = 0.2
    strategy: str = "rewind"
    rewind_unit: str = "iteration"
    rewind_step: int = 100
    finetune_epochs: int = 2
    finetune_lr: float = 0.001
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 < self.fraction < 1.0:
            raise ValueError(f"pruning.fraction must be in (0, 1), got {self.fraction}")
        if self.strategy not in ("rewind", "finetune"):
            raise ValueError(f"pruning.strategy must be rewind or finetune, got {self.strategy!r}")
        if self.rewind_unit not in ("iteration", "epoch"):
            raise ValueError(
                f"pruning.rewind.unit must be iteration or epoch, got {self.rewind_unit!r}"
            )

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> PruningConfig:
        """Build from ``config["pruning"]`` (``levels`` is the workflow's business, ignored)."""
        _unknown_keys(
            "pruning", section, ["levels", "fraction", "strategy", "rewind", "finetune", "exclude"]
        )
        rewind = section.get("rewind", {})
        finetune = section.get("finetune", {})
        _unknown_keys("pruning.rewind", rewind, ["unit", "step"])
        _unknown_keys("pruning.finetune", finetune, ["epochs", "lr"])
        defaults = cls()
        return cls(
            fraction=float(section.get("fraction", defaults.fraction)),
            strategy=section.get("strategy", defaults.strategy),
            rewind_unit=rewind.get("unit", defaults.rewind_unit),
            rewind_step=int(rewind.get("step", defaults.rewind_step)),
            finetune_epochs=int(finetune.get("epochs", defaults.finetune_epochs)),
            finetune_lr=float(finetune.get("lr", defaults.finetune_lr)),
            exclude=tuple(section.get("exclude", ())),
        )

    def rewind_iteration(self, iterations_per_epoch: int) -> int:
        """The rewind point in optimiser steps."""
        if self.rewind_unit == "epoch":
            return self.rewind_step * iterations_per_epoch
        return self.rewind_step

    def finetune_training(self, training: TrainingConfig) -> TrainingConfig:
        """``training`` changed to ``finetune_epochs`` at the constant rate ``finetune_lr``."""
        return dataclasses.replace(
            training,
            epochs=self.finetune_epochs,
            lr=self.finetune_lr,
            schedule="constant",
            milestones=(),
            warmup_epochs=0,
        )


def learning_rate(config: TrainingConfig, iteration: int, iterations_per_epoch: int) -> float:
    """The learning rate of optimiser step ``iteration`` (0-based).

    step: ``lr * gamma ** (number of milestones <= current epoch)``; cosine: half-cosine decay
    from ``lr`` to 0 over all iterations; constant: ``lr``. A linear warm-up over
    ``warmup_epochs`` multiplies the result by ``(iteration + 1) / warmup_iterations``.
    """
    total = config.epochs * iterations_per_epoch
    if config.schedule == "step":
        epoch = iteration / iterations_per_epoch
        rate = config.lr * config.gamma ** sum(1 for m in config.milestones if epoch >= m)
    elif config.schedule == "cosine":
        rate = config.lr * 0.5 * (1.0 + math.cos(math.pi * iteration / total))
    else:
        rate = config.lr
    warmup = config.warmup_epochs * iterations_per_epoch
    if warmup and iteration < warmup:
        rate *= (iteration + 1) / warmup
    return rate


def derive_seed(*keys: int) -> int:
    """A 63-bit seed mixed from non-negative integer ``keys`` (numpy SeedSequence)."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(1, dtype=np.uint64)
    return int(state[0] >> np.uint64(1))


# --------------------------------------------------------------------------- data


class ImageData(Protocol):
    """One split of an image classification set, batched on demand."""

    classes: list[str]

    def __len__(self) -> int: ...

    def content_hash(self) -> str:
        """A digest identifying the split's content."""
        ...

    def batches(
        self, *, batch_size: int, order: torch.Tensor | None, seed: int, first_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (normalised float images, int64 targets) in ``order`` (None: file order).

        ``seed`` and the absolute batch number ``first_batch + j`` fix the augmentation.
        """
        ...


class InMemoryImages:
    """A split decoded once to uint8 ``(N, 3, H, W)``; augmentation by batched tensor ops.

    The augmentation is the small-image one of :func:`make_transform`: a random crop of the
    image zero-padded by ``side // 8`` pixels, then a horizontal flip with probability 1/2,
    then normalisation. Each batch draws from its own generator seeded by (seed, batch number),
    so a batch looks the same however the epoch was entered (resume, rewind mid-epoch).
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        *,
        classes: list[str],
        mean: Sequence[float],
        std: Sequence[float],
        augment: bool,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"images must be uint8 (N, 3, H, W), got {images.dtype} {images.shape}"
            )
        self.images, self.targets, self.classes = images, targets, classes
        self.augment = augment
        self._mean = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def content_hash(self) -> str:
        """SHA-256 of the decoded pixels and targets (resume checkpoints are tied to it)."""
        digest = hashlib.sha256(self.images.cpu().numpy().tobytes())
        digest.update(self.targets.cpu().numpy().tobytes())
        return digest.hexdigest()

    def _augment(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, height, width = batch.shape
        pad = height // 8
        padded = F.pad(batch, (pad, pad, pad, pad))
        top = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        left = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        flip = torch.rand(n, generator=generator) < 0.5
        rows = (top[:, None] + torch.arange(height)[None, :]).to(batch.device)
        cols = left[:, None] + torch.arange(width)[None, :]
        cols = torch.where(flip[:, None], cols.flip(1), cols).to(batch.device)
        index_n = torch.arange(n, device=batch.device)[:, None, None, None]
        index_c = torch.arange(3, device=batch.device)[None, :, None, None]
        return padded[index_n, index_c, rows[:, None, :, None], cols[:, None, None, :]]

    def batches(
        self, *, batch_size: int, order: torch.Tensor | None, seed: int, first_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        indices = torch.arange(len(self)) if order is None else order
        for j, start in enumerate(range(0, len(indices), batch_size)):
            chosen = indices[start : start + batch_size].to(self.images.device)
            batch = self.images[chosen]
            if self.augment:
                generator = torch.Generator().manual_seed(derive_seed(seed, first_batch + j))
                batch = self._augment(batch, generator)
            images = (batch.float() / 255.0 - self._mean) / self._std
            yield images, self.targets[chosen]


class StreamingImages:
    """A split read from disk each epoch through a DataLoader and a torchvision transform."""

    def __init__(self, folder: datasets.ImageFolder, *, num_workers: int) -> None:
        self.folder, self.classes, self.num_workers = folder, list(folder.classes), num_workers

    def __len__(self) -> int:
        return len(self.folder)

    def content_hash(self) -> str:
        """SHA-256 of the file list and targets (hashing every image would take too long)."""
        root = Path(self.folder.root)
        listing = [
            (str(Path(path).relative_to(root)), target) for path, target in self.folder.samples
        ]
        return hashlib.sha256(json.dumps(listing).encode()).hexdigest()

    def batches(
        self, *, batch_size: int, order: torch.Tensor | None, seed: int, first_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        sampler = list(range(len(self))) if order is None else order.tolist()
        generator = torch.Generator().manual_seed(derive_seed(seed, first_batch))
        loader = torch.utils.data.DataLoader(
            self.folder,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            generator=generator,
            persistent_workers=False,
        )
        # Without workers the transforms draw from the global RNG: fork and seed it per epoch.
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(derive_seed(seed, first_batch, 1))
            yield from loader


def _decode(path: str, size: int) -> torch.Tensor:
    geometry = T.Compose([T.Resize(size), T.CenterCrop(size)])
    with Image.open(path) as image:
        array = np.asarray(geometry(image.convert("RGB")), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def load_split(
    root: str | os.PathLike,
    *,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    train: bool,
    augment: bool,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    in_memory_limit: int = IN_MEMORY_LIMIT_BYTES,
) -> ImageData:
    """Open the ImageFolder split ``root`` (one sub-directory per class).

    Small-image splits (side < 128 px) whose decoded size stays under ``in_memory_limit`` bytes
    are decoded once into memory on ``device``; larger ones stream from disk with
    :func:`make_transform` (ImageNet-style geometry for large sides).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"image folder {root} does not exist; expected <images>/train/<class>/*.png and "
            "<images>/val/<class>/*.png"
        )
    folder = datasets.ImageFolder(
        str(root),
        transform=make_transform(
            image_size=image_size, mean=mean, std=std, train=train, augment=augment
        ),
    )
    decoded_bytes = len(folder) * 3 * image_size * image_size
    if image_size >= 128 or decoded_bytes > in_memory_limit:
        return StreamingImages(folder, num_workers=num_workers)
    images = torch.stack([_decode(path, image_size) for path, _ in folder.samples])
    targets = torch.tensor(folder.targets, dtype=torch.int64)
    return InMemoryImages(
        images.to(device),
        targets.to(device),
        classes=list(folder.classes),
        mean=mean,
        std=std,
        augment=train and augment,
    )


# --------------------------------------------------------------------------- training loop


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """Validation metrics: top-1 and top-5 accuracy as fractions, mean cross-entropy loss."""

    top1: float
    top5: float
    loss: float


@torch.no_grad()
def evaluate(
    model: nn.Module, data: ImageData, *, device: torch.device | str, batch_size: int = 256
) -> Evaluation:
    """Top-1, top-5 (top-k with k = min(5, classes)) and mean loss of ``model`` on ``data``."""
    model.eval()
    device = torch.device(device)
    correct1 = correct5 = 0
    loss_sum = 0.0
    for images, targets in data.batches(batch_size=batch_size, order=None, seed=0):
        images = images.to(device)
        targets = targets.to(device)
        logits = model(images)
        loss_sum += float(F.cross_entropy(logits.float(), targets, reduction="sum"))
        top = logits.topk(min(5, logits.shape[1]), dim=1).indices
        hits = top == targets[:, None]
        correct1 += int(hits[:, 0].sum())
        correct5 += int(hits.any(dim=1).sum())
    n = len(data)
    return Evaluation(top1=correct1 / n, top5=correct5 / n, loss=loss_sum / n)


@dataclasses.dataclass
class TrainResult:
    """Where a :func:`train` call ended, besides the trained model itself."""

    iteration: int
    """Optimiser steps done since the start of the schedule."""
    rewind_state: dict[str, torch.Tensor] | None = None
    """The state dict before step ``capture_at`` (None when not asked for)."""
    wall_time_s: float = 0.0
    """Training seconds summed over every attempt (a resumed run includes the killed one's)."""
    resumed_from_epoch: int | None = None
    """The epoch a resume checkpoint restarted training at (None: not resumed)."""


def state_dict_cpu(model: nn.Module) -> dict[str, torch.Tensor]:
    """A detached, contiguous CPU copy of ``model.state_dict()`` (standard keys)."""
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}


def _make_optimizer(model: nn.Module, config: TrainingConfig) -> torch.optim.SGD:
    return torch.optim.SGD(
        model.parameters(),
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.nesterov,
        weight_decay=config.weight_decay,
    )


def _masked_pairs(
    model: nn.Module, mask: Mask | None, device: torch.device
) -> list[tuple[nn.Parameter, torch.Tensor]]:
    if mask is None:
        return []
    mask.check_matches(model)
    params = dict(model.named_parameters())
    pairs = []
    for name, keep in mask.items():
        if bool(keep.all()):
            continue  # nothing pruned in this tensor: skip the multiplications
        param = params[name]
        keep = keep.to(device=device, dtype=param.dtype)
        pairs.append((param, keep))
    return pairs


def _seeded(
    items: Iterator[tuple[torch.Tensor, torch.Tensor]], seed: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Iterate ``items`` with the global RNG forked and seeded (dropout draws from it)."""
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.random.default_generator.manual_seed(seed)
        if device.type == "cuda":
            torch.cuda.manual_seed(seed)
        yield from items


def _resume(
    path: Path | None,
    fingerprint: str,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    progress: TrainResult,
    logger: logging.Logger,
) -> None:
    """Load a matching resume checkpoint into ``model``, ``optimizer`` and ``progress``.

    A corrupt newest point is moved aside and the previous one used (:class:`ResumePoints`).
    """
    if path is None:
        return
    checkpoint = ResumePoints(path).load(logger)
    if checkpoint is None:
        return
    if not isinstance(checkpoint, dict) or checkpoint.get("fingerprint") != fingerprint:
        logger.warning("ignoring %s: it belongs to a run with other inputs or settings", path)
        return
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    progress.iteration = checkpoint["iteration"]
    progress.rewind_state = checkpoint["rewind_state"]
    progress.wall_time_s = checkpoint["wall_time_s"]
    progress.resumed_from_epoch = checkpoint["epoch"]
    logger.info(
        "resuming from %s at epoch %d (iteration %d)", path, checkpoint["epoch"], progress.iteration
    )


def _save_resume(
    path: Path,
    fingerprint: str,
    epoch: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    progress: TrainResult,
) -> None:
    ResumePoints(path).save(
        {
            "fingerprint": fingerprint,
            "epoch": epoch,
            "iteration": progress.iteration,
            "model": state_dict_cpu(model),
            "optimizer": optimizer.state_dict(),
            "rewind_state": progress.rewind_state,
            "wall_time_s": progress.wall_time_s,
        },
    )


@dataclasses.dataclass
class _Step:
    """What one epoch needs to take optimiser steps."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    masked: list[tuple[nn.Parameter, torch.Tensor]]
    config: TrainingConfig
    iterations_per_epoch: int
    device: torch.device
    capture_at: int | None


def _train_epoch(
    step: _Step, data: ImageData, *, seed: int, epoch: int, progress: TrainResult
) -> tuple[float, float, int, float]:
    """Run the rest of ``epoch``; return mean loss, accuracy, images seen and the last rate."""
    config, per_epoch, device = step.config, step.iterations_per_epoch, step.device
    skip = progress.iteration - epoch * per_epoch
    epoch_seed = derive_seed(seed, 1, epoch)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(epoch_seed))
    order = order[skip * config.batch_size : per_epoch * config.batch_size]
    batches = data.batches(
        batch_size=config.batch_size, order=order, seed=epoch_seed, first_batch=skip
    )
    step.model.train()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.int64)
    seen, rate = 0, float("nan")
    for images, targets in _seeded(batches, derive_seed(epoch_seed, skip, 2), device):
        if progress.iteration == step.capture_at:
            progress.rewind_state = state_dict_cpu(step.model)
        rate = learning_rate(config, progress.iteration, per_epoch)
        for group in step.optimizer.param_groups:
            group["lr"] = rate
        images = images.to(device, non_blocking=True)
        targets = targets.to(device, non_blocking=True)
        logits = step.model(images)
        loss = F.cross_entropy(logits, targets)
        step.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        with torch.no_grad():
            for param, keep in step.masked:
                param.grad.mul_(keep)
            step.optimizer.step()
            for param, keep in step.masked:
                param.mul_(keep)
            loss_sum += loss.detach() * targets.shape[0]
            correct += (logits.argmax(dim=1) == targets).sum()
        seen += int(targets.shape[0])
        progress.iteration += 1
    return float(loss_sum) / max(seen, 1), int(correct) / max(seen, 1), seen, rate


def train(
    model: nn.Module,
    data: ImageData,
    *,
    config: TrainingConfig,
    seed: int,
    device: torch.device | str,
    logger: logging.Logger,
    mask: Mask | None = None,
    start_iteration: int = 0,
    capture_at: int | None = None,
    checkpoint: str | os.PathLike | None = None,
    fingerprint: str = "",
) -> TrainResult:
    """Train ``model`` in place from ``start_iteration`` to the end of the schedule.

    With a ``mask``, pruned weights get zero gradients and are re-zeroed after every optimiser
    step, so neither momentum nor weight decay can revive them. ``capture_at`` (an iteration
    >= ``start_iteration``) records the state dict before that step: the rewind point.
    ``checkpoint`` is written at the end of every epoch but the last (model, optimiser,
    position, captured state; the previous epoch's is kept as ``<stem>.prev.pt``, see
    :class:`~prunedissect.torchfiles.ResumePoints`); when it exists with the same
    ``fingerprint``, training resumes
    from it and ends with exactly the weights an uninterrupted run gets, since the data order
    of epoch e and the augmentation of batch b depend only on (seed, e, b).
    One log line per epoch: epoch, mean training loss and accuracy, learning rate, images/s.
    """
    device = torch.device(device)
    per_epoch = len(data) // config.batch_size
    if per_epoch < 1:
        raise ValueError(
            f"the training set has {len(data)} images, fewer than one batch of "
            f"{config.batch_size}; lower training.batch_size"
        )
    total = config.epochs * per_epoch
    if not 0 <= start_iteration < total:
        raise ValueError(f"start iteration {start_iteration} outside the schedule [0, {total})")
    if capture_at is not None and not start_iteration <= capture_at < total:
        raise ValueError(
            f"rewind point {capture_at} (iterations) must lie in [{start_iteration}, {total}); "
            "lower pruning.rewind.step or train longer"
        )
    # Default (NCHW) memory format on purpose: channels_last is ~20% faster for ResNet-20 on the
    # CPU but crashes oneDNN's backward pass (heap corruption) for layers under 8 channels.
    model.to(device)
    optimizer = _make_optimizer(model, config)
    step = _Step(model, optimizer, _masked_pairs(model, mask, device), config, per_epoch, device,
                 capture_at)  # fmt: skip
    progress = TrainResult(iteration=start_iteration)
    checkpoint = None if checkpoint is None else Path(checkpoint)
    _resume(checkpoint, fingerprint, model, optimizer, progress, logger)
    for epoch in range(progress.iteration // per_epoch, config.epochs):
        started = time.perf_counter()
        loss, accuracy, seen, rate = _train_epoch(
            step, data, seed=seed, epoch=epoch, progress=progress
        )
        seconds = time.perf_counter() - started
        progress.wall_time_s += seconds
        logger.info(
            "epoch %d/%d loss %.4f acc %.4f lr %.5f images/s %.1f",
            epoch + 1, config.epochs, loss, accuracy, rate, seen / max(seconds, 1e-9),
        )  # fmt: skip
        if checkpoint is not None and epoch + 1 < config.epochs:
            _save_resume(checkpoint, fingerprint, epoch + 1, model, optimizer, progress)
    return progress


# --------------------------------------------------------------------------- levels


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
    """Inputs of a level >= 1: level n-1's trained model and mask, and level 0's rewind state."""

    model: Path
    mask: Path
    rewind: Path | None = None


def _fingerprint(job: LevelJob, previous: PreviousLevel | None, data: ImageData) -> str:
    """Identity of a level's run: settings, training data and input files (resume key)."""
    record = {
        "job": dataclasses.asdict(job),
        "data": data.content_hash(),
        "inputs": (
            []
            if previous is None
            else [
                sha256_file(Path(p)) for p in (previous.model, previous.mask, previous.rewind) if p
            ]
        ),
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


def prepare_level(
    job: LevelJob, previous: PreviousLevel | None, model: nn.Module, iterations_per_epoch: int
) -> tuple[Mask, int, TrainingConfig]:
    """Put the level's starting weights into ``model``; return its mask, start step, schedule.

    Level 0: the full mask, step 0, the training schedule (``model`` keeps its seeded init).
    Level n: the mask pruned from level n-1's trained weights; with ``rewind``, ``model`` gets
    level 0's rewind state (weights and BatchNorm buffers) masked and training restarts at the
    rewind step; with ``finetune``, it gets level n-1's trained weights masked and the
    fine-tuning schedule from step 0.
    """
    if job.level == 0:
        return Mask.ones_like(model, exclude=job.pruning.exclude), 0, job.training
    if previous is None:
        raise ValueError(f"level {job.level} needs level {job.level - 1}'s model and mask")
    verify_all(p for p in (previous.model, previous.mask, previous.rewind) if p)
    trained = load_verified(previous.model)
    old_mask = Mask.load(previous.mask)
    mask = prune_global_magnitude(trained, old_mask, fraction=job.pruning.fraction)
    if job.pruning.strategy == "finetune":
        model.load_state_dict(trained)
        mask.apply_(model)
        return mask, 0, job.pruning.finetune_training(job.training)
    if previous.rewind is None:
        raise ValueError("pruning.strategy 'rewind' needs level 0's rewind.pt")
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


def run_level(
    job: LevelJob,
    *,
    outputs: LevelOutputs,
    previous: PreviousLevel | None,
    device: torch.device | str,
    logger: logging.Logger,
) -> dict[str, Any]:
    """Train one level of the pruning chain and write its files; return its metrics record.

    Level 0 trains dense from a seeded initialisation and also writes ``outputs.rewind`` (the
    state dict before optimiser step ``pruning.rewind``, plus that step and the iterations per
    epoch). Level n >= 1 prunes ``fraction`` of the weights alive in level n-1 by global
    magnitude of level n-1's trained weights, then either rewinds the survivors (and BatchNorm
    state) to the rewind point and retrains to the end of the schedule, or (``finetune``) keeps
    level n-1's trained weights and trains ``finetune_epochs`` at ``finetune_lr``.
    A ``resume.pt`` (and the epoch before's ``resume.prev.pt``) beside the model is written
    each epoch and removed at the end. Inputs are checked against their ``.sha256`` sidecars
    before use and every output but ``metrics`` gets one (:mod:`prunedissect.checkpoints`).
    """
    device = torch.device(device)
    started = time.perf_counter()
    with _deterministic(device):
        train_data = load_split(
            job.images / "train",
            image_size=job.image_size,
            mean=job.mean,
            std=job.std,
            train=True,
            augment=job.training.augment,
            num_workers=job.training.num_workers,
            device=device,
        )
        val_data = load_split(
            job.images / "val",
            image_size=job.image_size,
            mean=job.mean,
            std=job.std,
            train=False,
            augment=False,
            num_workers=job.training.num_workers,
            device=device,
        )
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
        model = get_model(
            job.arch,
            num_classes=len(train_data.classes),
            generator=torch.Generator().manual_seed(derive_seed(job.seed, 0)),
            **dict(job.model_kwargs),
        )
        iterations_per_epoch = len(train_data) // job.training.batch_size
        mask, start, schedule = prepare_level(job, previous, model, iterations_per_epoch)
        logger.info(
            "trial %d level %d: density %.4f (%d of %d prunable weights), start iteration %d",
            job.trial,
            job.level,
            mask.density,
            mask.num_remaining,
            mask.num_total,
            start,
        )
        capture_at = None
        if job.level == 0:
            capture_at = job.pruning.rewind_iteration(iterations_per_epoch)
        result = train(
            model,
            train_data,
            config=schedule,
            seed=job.seed,
            device=device,
            logger=logger,
            mask=mask,
            start_iteration=start,
            capture_at=capture_at,
            checkpoint=outputs.resume,
            fingerprint=_fingerprint(job, previous, train_data),
        )
        scores = evaluate(model, val_data, device=device, batch_size=job.training.eval_batch_size)
    trained_epochs = (schedule.epochs * iterations_per_epoch - start) / iterations_per_epoch
    metrics = {
        "trial": job.trial,
        "level": job.level,
        "density": mask.density,
        "params_remaining": mask.num_remaining,
        "params_total": mask.num_total,
        "top1": scores.top1,
        "top5": scores.top5,
        "loss": scores.loss,
        "epochs": round(trained_epochs, 6),
        "wall_time_s": round(result.wall_time_s + load_seconds, 3),
        "seed": job.seed,
    }
    mask.apply_(model)  # already zero; makes the file's zeros independent of training details
    if job.level == 0 and outputs.rewind is not None:
        save_torch(
            {
                "state_dict": result.rewind_state,
                "iteration": capture_at,
                "iterations_per_epoch": iterations_per_epoch,
            },
            outputs.rewind,
        )
    mask.save(outputs.mask)
    write_checksum(outputs.mask)
    save_torch(state_dict_cpu(model), outputs.model)
    write_bytes_atomic(outputs.metrics, (json.dumps(metrics, indent=2) + "\n").encode())
    ResumePoints(outputs.resume).clear()
    logger.info(
        "trial %d level %d done: top1 %.4f top5 %.4f loss %.4f density %.4f in %.1f s",
        job.trial,
        job.level,
        scores.top1,
        scores.top5,
        scores.loss,
        mask.density,
        time.perf_counter() - started,
    )
    return metrics
