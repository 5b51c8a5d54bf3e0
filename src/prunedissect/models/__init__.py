"""Architectures by name: ``get_model(name, *, num_classes, **kwargs)`` and ``list_models()``.

Each family module registers its builders where it defines them; importing this package imports
every family, so the registry is complete once ``prunedissect.models`` is imported.
"""

from __future__ import annotations

from prunedissect.models import cifar_resnet, torchvision_models  # registration
from prunedissect.models.reduced import kwargs_for_state_dict, reduced_kwargs
from prunedissect.models.registry import get_model, list_models, register_model

__all__ = ["get_model", "kwargs_for_state_dict", "list_models", "reduced_kwargs", "register_model"]
