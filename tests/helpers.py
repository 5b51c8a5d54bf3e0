"""Builders shared by the test modules: the config schema's defaults, training settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from prunedissect.training import PruningConfig, TrainingConfig

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def schema_defaults(section: str) -> dict[str, Any]:
    """The defaults the config schema fills into ``section`` (one level of nesting)."""
    properties = yaml.safe_load(SCHEMA.read_text())["properties"][section]["properties"]
    defaults = {}
    for key, spec in properties.items():
        if "properties" in spec:
            defaults[key] = {k: v["default"] for k, v in spec["properties"].items()}
        elif "default" in spec:
            defaults[key] = spec["default"]
    return defaults


def training_config(**overrides: Any) -> TrainingConfig:
    """The schema's ``training`` defaults with ``overrides``."""
    return TrainingConfig.from_config({**schema_defaults("training"), **overrides})


def pruning_config(**overrides: Any) -> PruningConfig:
    """The schema's ``pruning`` defaults (a pruned level's) with ``overrides`` of the fields."""
    section = PruningConfig.from_config(schema_defaults("pruning"))
    return PruningConfig(**{**section.__dict__, **overrides})
