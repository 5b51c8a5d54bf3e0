"""Checking a study configuration before any job runs.

The JSON schema (workflow/schemas/config.schema.yaml) is the single description of every key;
this module turns its violations into messages that name the key, the bad value and what is
allowed, and adds the checks a schema cannot express (paths that must exist, cross-key bounds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import jsonschema

from prunedissect.data.broden.checks import check_broden_dir
from prunedissect.data.imagefolder import check_imagefolder
from prunedissect.layer_table import layer_errors
from prunedissect.methods import REDUCIBLE, method_errors

_REPLACED = {
    "pruning.strategy": "the list `methods` (strategy rewind is an arm "
    "{name: lottery, kind: lottery})",
    "pruning.finetune": "an arm of `methods` with kind finetune and its own epochs and lr "
    "({name: finetune, kind: finetune, epochs: 2, lr: 0.001})",
}
"""Keys of earlier releases -> where their meaning moved (named in the unknown-key error)."""


class ConfigError(ValueError):
    """A study configuration is invalid; the message lists every problem found."""


def _key(path: Iterable[Any]) -> str:
    """A config key as written in messages: ``pruning.rewind.step``, ``methods[2].kind``."""
    key = ""
    for part in path:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
    return key or "<top level>"


def _allowed(error: jsonschema.ValidationError) -> str:
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    validator = error.validator
    if validator == "enum":
        return "one of " + ", ".join(repr(v) for v in error.validator_value)
    if validator == "type":
        return f"a value of type {error.validator_value}"
    if validator == "minimum":
        return f"a number >= {error.validator_value}"
    if validator == "maximum":
        return f"a number <= {error.validator_value}"
    if validator in ("exclusiveMinimum", "exclusiveMaximum"):
        low = schema.get("exclusiveMinimum", schema.get("minimum"))
        high = schema.get("exclusiveMaximum", schema.get("maximum"))
        lo = "" if low is None else f"> {low}"
        hi = "" if high is None else f"< {high}"
        return "a number " + " and ".join(s for s in (lo, hi) if s)
    if validator == "additionalProperties":
        known = sorted(schema.get("properties", {}))
        return "only the documented keys: " + ", ".join(known)
    if validator == "pattern":
        return f"a string matching {error.validator_value!r}"
    if validator in ("minItems", "maxItems"):
        return f"a list with {validator[:3]} {error.validator_value} items"
    return f"a value satisfying {validator}={error.validator_value!r}"


def schema_errors(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Return one readable line per schema violation (empty when the config is valid)."""
    validator = jsonschema.Draft202012Validator(schema)
    lines = []
    for error in sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path))):
        if error.validator == "additionalProperties":
            known = set(error.schema.get("properties", {}))
            for extra in sorted(set(error.instance) - known):
                key = _key([*error.path, extra])
                if key in _REPLACED:
                    lines.append(f"config key {key}: removed; use {_REPLACED[key]} instead")
                    continue
                lines.append(
                    f"config key {key}: unknown key (misspelt or removed?); allowed here: "
                    + ", ".join(sorted(known))
                )
            continue
        description = ""
        if isinstance(error.schema, Mapping) and error.schema.get("description"):
            description = f" ({error.schema['description']})"
        lines.append(
            f"config key {_key(error.path)}: got {error.instance!r}; "
            f"allowed: {_allowed(error)}{description}"
        )
    return lines


def semantic_errors(config: Mapping[str, Any], *, base: Path = Path(".")) -> list[str]:
    """Checks across keys and on the file system, for a config whose schema check passed.

    ``dissection.layers`` is checked against the committed table of each architecture's
    modules (:mod:`prunedissect.layer_table`) at ``dataset.image_size``, without torch.
    """
    lines = []
    dataset, probe = config["dataset"], config["probe"]
    if dataset["kind"] == "imagefolder":
        try:
            check_imagefolder(base / dataset["path"] if dataset.get("path") else None)
        except ValueError as error:
            lines.append(f"config key dataset.path: {error}")
    if probe["kind"] == "broden" and probe.get("path"):
        try:
            check_broden_dir(base / probe["path"])
        except ValueError as error:
            lines.append(f"config key probe.path: {error}")
    for problem in layer_errors(
        config["dissection"]["layers"],
        arch=config["model"]["arch"],
        image_size=config["dataset"]["image_size"],
    ):
        lines.append(f"config key dissection.layers: {problem}")
    training = config["training"]
    if training["nesterov"] and training["momentum"] <= 0:
        lines.append(
            f"config key training.nesterov: got true with training.momentum "
            f"{training['momentum']}; allowed: nesterov needs momentum > 0"
        )
    if training["warmup_epochs"] > training["epochs"]:
        lines.append(
            f"config key training.warmup_epochs: got {training['warmup_epochs']}; allowed: "
            f"0..{training['epochs']} (training.epochs)"
        )
    lines += method_errors(config["methods"])
    for index, arm in enumerate(config["methods"]):
        if arm["kind"] == "reduced" and config["model"]["arch"] not in REDUCIBLE:
            lines.append(
                f"config key methods[{index}].kind: reduced narrows model.arch "
                f"{', '.join(REDUCIBLE)} only, not {config['model']['arch']!r}; remove the arm "
                "or change model.arch"
            )
    n_levels = config["pruning"]["levels"]
    for key, values in (
        ("dissection.levels", config["dissection"].get("levels")),
        ("report.levels", config["report"].get("levels")),
        ("speed.levels", config.get("speed", {}).get("levels")),
    ):
        bad = [v for v in values or [] if v > n_levels]
        if bad:
            lines.append(
                f"config key {key}: levels {bad} do not exist; allowed: 0..{n_levels} "
                "(pruning.levels)"
            )
    names = [arm["name"] for arm in config["methods"]]
    unknown = [m for m in config["report"].get("methods") or [] if m not in names]
    if unknown:
        lines.append(
            f"config key report.methods: {unknown} are not arms of methods; allowed: "
            + ", ".join(names)
        )
    reduced = [a["name"] for a in config["methods"] if a["kind"] == "reduced"]
    shown = [m for m in config["report"].get("methods") or [] if m in reduced]
    if shown:
        lines.append(
            f"config key report.methods: {shown} are reduced arms, whose units are not level "
            "0's; the per-unit report compares units with level 0; remove them"
        )
    if config["report"]["trial"] >= config["trials"]:
        lines.append(
            f"config key report.trial: got {config['report']['trial']}; allowed: "
            f"0..{config['trials'] - 1} (there are {config['trials']} trials)"
        )
    speed_trial = config.get("speed", {}).get("trial", 0)
    if speed_trial >= config["trials"]:
        lines.append(
            f"config key speed.trial: got {speed_trial}; allowed: "
            f"0..{config['trials'] - 1} (there are {config['trials']} trials)"
        )
    return lines


def model_kwargs(model_config: Mapping[str, Any]) -> dict[str, Any]:
    """Builder keyword arguments from the (checked) ``model`` config section.

    Only ``resnet20`` takes ``width``; the torchvision builders take nothing beyond
    ``num_classes``, so the key is dropped for them rather than passed to a builder that
    would reject it. Torch-free, so the workflow calls it while it parses.
    """
    if model_config["arch"] == "resnet20":
        return {"width": int(model_config["width"])}
    return {}


def raise_for(problems: list[str]) -> None:
    """Raise one :class:`ConfigError` listing ``problems``; do nothing when there are none."""
    if problems:
        raise ConfigError(
            "invalid configuration:\n  - "
            + "\n  - ".join(problems)
            + "\nEvery key is documented in config/README.md."
        )


def check_config(
    config: Mapping[str, Any], schema: Mapping[str, Any], *, base: Path = Path(".")
) -> None:
    """Raise :class:`ConfigError` listing every problem in ``config``; return None when valid.

    ``config`` must already have its defaults filled (``snakemake.utils.validate`` does that)
    for the semantic checks; schema violations are reported first, on their own.
    """
    raise_for(schema_errors(config, schema))
    raise_for(semantic_errors(config, base=base))
