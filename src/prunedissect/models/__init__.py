"""Architectures by name: ``get_model(name, *, num_classes, **kwargs)`` and ``list_models()``.

Each family module registers its builders where it defines them; importing this package imports
every family, so the registry is complete once ``prunedissect.models`` is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prunedissect.models import cifar_resnet, torchvision_models  # noqa: F401  (registration)
from prunedissect.models.registry import get_model, list_models, register_model


def model_kwargs(model_config: Mapping[str, Any]) -> dict[str, Any]:
    """Builder keyword arguments from the ``model`` config section.

    Only ``resnet20`` takes ``width``; the torchvision builders take nothing beyond
    ``num_classes``, so the key is dropped for them rather than passed to a builder that
    would reject it.
    """
    if model_config["arch"] == "resnet20":
        return {"width": int(model_config.get("width", 16))}
    return {}


__all__ = ["get_model", "list_models", "model_kwargs", "register_model"]
