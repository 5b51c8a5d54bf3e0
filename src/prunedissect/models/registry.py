"""The architecture registry: builders register where they are defined, looked up by name.

A builder is a function ``builder(*, num_classes: int, **kwargs) -> nn.Module``. Registering a
second builder under a taken name is an error (it would silently shadow the first one), and so is
asking for a name nobody registered (the message lists the known names).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

Builder = Callable[..., nn.Module]

_BUILDERS: dict[str, Builder] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator registering ``builder`` under ``name``; a duplicate name raises ValueError."""

    def decorate(builder: Builder) -> Builder:
        if name in _BUILDERS:
            raise ValueError(
                f"a model named {name!r} is already registered (by "
                f"{_BUILDERS[name].__module__}.{_BUILDERS[name].__qualname__}); pick another name"
            )
        _BUILDERS[name] = builder
        return builder

    return decorate


def list_models() -> list[str]:
    """Names of every registered architecture, sorted."""
    return sorted(_BUILDERS)


def get_model(
    name: str,
    *,
    num_classes: int,
    generator: torch.Generator | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build the registered architecture ``name`` with a ``num_classes``-way classifier.

    ``generator`` makes the random initialisation reproducible without touching the caller's
    global RNG: the builder runs inside :func:`torch.random.fork_rng`, seeded from one draw of
    ``generator`` (torchvision builders only know the global RNG). Without it the global RNG is
    used as usual. Extra ``kwargs`` go to the builder (e.g. ``width`` for ``resnet20``).
    """
    if name not in _BUILDERS:
        raise ValueError(
            f"unknown model {name!r}; registered models: {', '.join(list_models())} "
            "(config key model.arch)"
        )
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    builder = _BUILDERS[name]
    if generator is None:
        return builder(num_classes=num_classes, **kwargs)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator).item())
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)  # CPU only: init runs on the CPU
        return builder(num_classes=num_classes, **kwargs)
