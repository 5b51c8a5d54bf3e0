"""Typed views of the ``training`` and ``pruning`` config sections.

The workflow's JSON schema (``workflow/schemas/config.schema.yaml``) fills every default and
checks every value before a rule runs; these dataclasses take the checked values as they are.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Optimiser, schedule and batching; field names are the ``training`` config keys.

    Every field is required: the values come checked and completed by the config schema (in
    the workflow) or from the caller; cross-key checks live in :mod:`prunedissect.config`.
    """

    epochs: int
    batch_size: int
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    schedule: str
    milestones: tuple[int, ...]
    gamma: float
    warmup_epochs: int
    augment: bool
    num_workers: int
    eval_batch_size: int

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> TrainingConfig:
        """Build from the checked ``config["training"]`` (an unknown key is a TypeError)."""
        return cls(**{**section, "milestones": tuple(int(m) for m in section["milestones"])})


@dataclasses.dataclass(frozen=True)
class PruningConfig:
    """How each level prunes and restarts; built from ``config["pruning"]``.

    Level 0 prunes nothing, so its rule passes only ``rewind`` and ``exclude``: ``fraction``,
    ``strategy`` and the fine-tuning values are then None (absent, not defaulted) and
    :func:`~prunedissect.training.level.prepare_level` refuses to prune with them.
    """

    rewind_unit: str
    rewind_step: int
    exclude: tuple[str, ...]
    fraction: float | None = None
    strategy: str | None = None
    finetune_epochs: int | None = None
    finetune_lr: float | None = None

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> PruningConfig:
        """Build from the checked ``config["pruning"]`` or the part of it a rule passes."""
        finetune = section.get("finetune") or {}
        return cls(
            rewind_unit=section["rewind"]["unit"],
            rewind_step=int(section["rewind"]["step"]),
            exclude=tuple(section["exclude"]),
            fraction=section.get("fraction"),
            strategy=section.get("strategy"),
            finetune_epochs=finetune.get("epochs"),
            finetune_lr=finetune.get("lr"),
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

