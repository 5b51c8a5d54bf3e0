"""Pruning methods: the arms of a study, each a way to choose a mask and retrain the survivors.

Every arm of a trial starts from the same dense level 0 (trained once); level ``n`` of an arm
has density ``(1 - pruning.fraction) ** n`` (up to rounding to whole weights). The kinds:

========  ===================================================  ===============================
kind      mask of level n                                      weights it trains from
========  ===================================================  ===============================
lottery   global magnitude pruning of this arm's level n-1     rewound to level 0's rewind
          (level 1: of the dense level 0), ``fraction`` of     point, trained to the end of
          the survivors                                        the schedule (Frankle & Carbin)
finetune  as lottery                                           level n-1's trained weights,
                                                               ``epochs`` at constant ``lr``
oneshot   global magnitude pruning of the dense level 0        rewound, as lottery
          straight to the level's density (no chain)
reinit    the ``source`` arm's level-n mask, copied            freshly initialised (a new
                                                               seed per level), full schedule
random    ``layerwise``: in every tensor as many weights as    rewound, as lottery
          the ``source`` arm's level-n mask keeps, drawn
          uniformly; ``global``: the level's density drawn
          uniformly over all prunable weights
struct-   whole output channels of conv layers removed by      ``retrain: rewind`` (default):
ured      the L1 norm of their filters (Li et al. 2016),       as lottery; ``finetune``: as
          per layer (``scope: layer``) or ranked globally,     finetune
          from this arm's level n-1; channels tied by a
          residual addition pruned together
connec-   whole kernel slices ``W[k, c]`` (unit k's weights    as structured
tion      reading input channel c) removed by their mean
          absolute weight, globally, from this arm's level n-1
reduced   none: the same architecture narrowed until its       freshly initialised (a new
          weights match the level's remaining weights          seed per level), full schedule
========  ===================================================  ===============================

``reinit`` is the "pruned architecture trained from scratch" control (Crowley et al. 2018,
Frankle & Carbin's random reinitialisation); ``random`` separates which weights are kept from how
many. ``structured`` kills whole units (a pruned channel outputs exactly zero), ``connection``
keeps every unit and cuts its inputs, ``reduced`` is the thinner network trained from scratch
(Crowley et al. 2018) that structured pruning competes with. Torch-free: the workflow imports it
while it parses the config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

DENSE = "dense"
"""The name under which the shared level 0 is stored; no arm may take it."""
INIT = "init"
"""The name under which each trial's untrained network (its level-0 initialisation, the floor
of interpretability) is stored; no arm may take it."""
INIT_LEVEL = -1
"""The ``level`` of the untrained network's rows in the uncertainty tables (its density is 1.0:
no weight is pruned); they are repeated under every method, as level 0's are."""

CHAINED = frozenset({"lottery", "finetune", "structured", "connection"})
"""Kinds whose level n starts from their own level n-1."""
REWOUND = frozenset({"lottery", "oneshot", "random"})
"""Kinds whose survivors always restart from level 0's rewind point (structured and connection
arms do when ``retrain`` is ``rewind``)."""
RETRAINED = frozenset({"structured", "connection"})
"""Kinds whose ``retrain`` option chooses rewinding or fine-tuning."""
MASK_SOURCES = frozenset({"lottery", "finetune", "oneshot"})
"""Kinds whose masks reinit and random arms may copy (masks chosen by magnitude)."""

FINETUNE_DEFAULTS: Mapping[str, Any] = {"epochs": 2, "lr": 0.001}
DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "finetune": FINETUNE_DEFAULTS,
    "random": {"scope": "layerwise"},
    "structured": {"scope": "layer", "retrain": "rewind"},
    "connection": {"retrain": "rewind"},
}
"""Kind-specific keys and their defaults (the schema describes them; arms fill them here).
A structured or connection arm with ``retrain: finetune`` also gets :data:`FINETUNE_DEFAULTS`."""
_OPTIONS = {
    "finetune": {"epochs", "lr"},
    "reinit": {"source"},
    "random": {"scope", "source"},
    "structured": {"scope", "retrain", "epochs", "lr"},
    "connection": {"retrain", "epochs", "lr"},
}
REDUCIBLE = ("resnet20",)
"""Architectures a ``reduced`` arm can narrow (per-stage widths,
:func:`prunedissect.models.reduced_kwargs`)."""
SCOPES: Mapping[str, tuple[str, ...]] = {
    "random": ("layerwise", "global"),
    "structured": ("layer", "global"),
}
"""Allowed ``scope`` values per kind (the schema allows their union)."""

@dataclasses.dataclass(frozen=True)
class Method:
    """One arm of the study, as checked and completed by :func:`methods_from_config`."""

    name: str
    kind: str
    epochs: int | None = None
    lr: float | None = None
    source: str | None = None
    scope: str | None = None
    retrain: str | None = None

    @property
    def chained(self) -> bool:
        return self.kind in CHAINED

    @property
    def rewinds(self) -> bool:
        return self.kind in REWOUND or (self.kind in RETRAINED and self.retrain == "rewind")

    @property
    def finetunes(self) -> bool:
        """True when level n fine-tunes level n-1's trained weights (``epochs`` at ``lr``)."""
        return self.kind == "finetune" or (self.kind in RETRAINED and self.retrain == "finetune")

    @property
    def reads_weights(self) -> bool:
        """True when level n reads trained weights (to rank them or to fine-tune them)."""
        return self.chained or self.kind == "oneshot"

    @property
    def copies_source(self) -> bool:
        """True when level n reads the ``source`` arm's level-n mask."""
        return self.kind == "reinit" or (self.kind == "random" and self.scope == "layerwise")

    def options(self) -> dict[str, Any]:
        """The kind and its options: what this arm's results depend on besides the inputs."""
        fields = {
            "kind": self.kind,
            "epochs": self.epochs,
            "lr": self.lr,
            "scope": self.scope,
            "retrain": self.retrain,
        }
        return {key: value for key, value in fields.items() if value is not None}


def method_errors(arms: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per problem in the (schema-checked) ``methods`` list, naming the key."""
    lines = []
    names = [str(arm["name"]) for arm in arms]
    kinds = {arm["name"]: arm["kind"] for arm in arms}
    for index, arm in enumerate(arms):
        key = f"config key methods[{index}]"
        name, kind = arm["name"], arm["kind"]
        if name in (DENSE, INIT):
            lines.append(
                f"{key}.name: {name!r} is reserved (the shared level 0 and the untrained "
                "network are stored under 'dense' and 'init'); choose another name"
            )
        if names.count(name) > 1 and names.index(name) == index:
            lines.append(f"{key}.name: {name!r} is used by more than one arm; names must differ")
        for option in sorted(set(arm) - {"name", "kind"} - _OPTIONS.get(kind, set())):
            owners = sorted(k for k, keys in _OPTIONS.items() if option in keys)
            lines.append(
                f"{key}.{option}: applies to kind {' or '.join(owners)} only, not {kind!r}; "
                "remove it or change the kind"
            )
        scope = arm.get("scope")
        if scope is not None and kind in SCOPES and scope not in SCOPES[kind]:
            lines.append(
                f"{key}.scope: {scope!r} is not a scope of kind {kind!r}; allowed: "
                f"{', '.join(SCOPES[kind])}"
            )
        if kind in RETRAINED and arm.get("retrain", "rewind") == "rewind":
            lines += [
                f"{key}.{option}: applies with retrain: finetune only; remove it or set "
                f"methods[{index}].retrain: finetune"
                for option in ("epochs", "lr")
                if option in arm
            ]
        if not _with_defaults(arm).copies_source:
            continue
        source = arm.get("source")
        if source is None and "lottery" not in kinds.values():
            lines.append(
                f"{key}: kind {kind!r} copies the masks of a pruning chain, and no arm has kind "
                "'lottery'; add {name: lottery, kind: lottery} to methods or name a lottery, "
                f"finetune or oneshot arm in methods[{index}].source"
                + ("; or use scope: global" if kind == "random" else "")
            )
        elif source is not None and source not in kinds:
            lines.append(
                f"{key}.source: {source!r} is not an arm of methods (arms: {', '.join(names)})"
            )
        elif source is not None and kinds[source] not in MASK_SOURCES:
            lines.append(
                f"{key}.source: arm {source!r} has kind {kinds[source]!r}; allowed: an arm of "
                f"kind {', '.join(sorted(MASK_SOURCES))} (masks chosen by magnitude)"
            )
    return lines


def _with_defaults(arm: Mapping[str, Any]) -> Method:
    """The arm as a :class:`Method`, its kind's defaults filled in (``source`` left as given)."""
    values = {**DEFAULTS.get(arm["kind"], {}), **arm}
    if arm["kind"] in RETRAINED and values["retrain"] == "finetune":
        values = {**FINETUNE_DEFAULTS, **values}
    return Method(**values)


def methods_from_config(arms: Sequence[Mapping[str, Any]]) -> list[Method]:
    """The checked ``methods`` list as :class:`Method` objects, kind defaults filled in.

    A reinit or layer-wise random arm without ``source`` copies the first ``lottery`` arm.
    Raises ValueError listing the problems of :func:`method_errors`.
    """
    problems = method_errors(arms)
    if problems:
        raise ValueError("invalid methods:\n  - " + "\n  - ".join(problems))
    lottery = next((a["name"] for a in arms if a["kind"] == "lottery"), None)
    methods = []
    for arm in arms:
        method = _with_defaults(arm)
        if method.copies_source and method.source is None:
            method = dataclasses.replace(method, source=lottery)
        methods.append(method)
    return methods
