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
    """How a level is pruned and where its training restarts; built from its rule's params.

    Level 0 prunes nothing: its rule passes ``rewind`` (the point it records) and ``exclude``.
    A pruned level gets its arm's values (:mod:`prunedissect.methods`): ``kind`` and the kind's
    options, ``fraction`` where the kind prunes by it, ``rewind`` where it rewinds. Values a
    level does not use are None (absent, not defaulted), and
    :func:`~prunedissect.training.level.prepare_level` refuses to prune without the ones its
    kind needs.
    """

    exclude: tuple[str, ...]
    rewind_unit: str | None = None
    rewind_step: int | None = None
    fraction: float | None = None
    kind: str | None = None
    finetune_epochs: int | None = None
    finetune_lr: float | None = None
    scope: str | None = None
    retrain: str | None = None

    @property
    def finetunes(self) -> bool:
        """True when a pruned level fine-tunes its level n-1 (kind finetune, or a structured
        or connection arm with ``retrain: finetune``)."""
        return self.kind == "finetune" or self.retrain == "finetune"

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> PruningConfig:
        """Build from the part of ``config["pruning"]`` a rule passes, plus ``method`` (an
        arm's :meth:`~prunedissect.methods.Method.options`) for a pruned level."""
        rewind = section.get("rewind") or {}
        method = section.get("method") or {}
        return cls(
            exclude=tuple(section["exclude"]),
            rewind_unit=rewind.get("unit"),
            rewind_step=None if rewind.get("step") is None else int(rewind["step"]),
            fraction=section.get("fraction"),
            kind=method.get("kind"),
            finetune_epochs=method.get("epochs"),
            finetune_lr=method.get("lr"),
            scope=method.get("scope"),
            retrain=method.get("retrain"),
        )

    def rewind_iteration(self, iterations_per_epoch: int) -> int:
        """The rewind point in optimiser steps."""
        if self.rewind_unit is None or self.rewind_step is None:
            raise ValueError("no rewind point given (config key pruning.rewind)")
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
