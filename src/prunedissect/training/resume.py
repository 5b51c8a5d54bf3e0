"""Checkpoint and resume: where a training run stands, and its epoch resume points.

A resume point holds the model, optimiser, position, captured rewind state and the run's
fingerprint; one with another fingerprint (other inputs or settings) is ignored. The files are
:class:`~prunedissect.torchfiles.ResumePoints` (the newest two, with checksums).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import torch
from torch import nn

from prunedissect.torchfiles import ResumePoints


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



def load_resume(
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


def save_resume(
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

