"""The training loop and evaluation: SGD with the mask enforced after every step.

Every epoch's data order and augmentation depend only on (seed, epoch), and a resume point
(:mod:`prunedissect.training.resume`) holds the model, optimiser and position, so a run resumed
from an epoch checkpoint ends with the weights of an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from prunedissect.data.images import ImageData
from prunedissect.pruning import Mask
from prunedissect.seeds import derive_seed
from prunedissect.training.resume import TrainResult, load_resume, save_resume, state_dict_cpu
from prunedissect.training.schedule import learning_rate
from prunedissect.training.settings import TrainingConfig


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
    load_resume(checkpoint, fingerprint, model, optimizer, progress, logger)
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
            save_resume(checkpoint, fingerprint, epoch + 1, model, optimizer, progress)
    return progress

