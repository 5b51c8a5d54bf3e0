"""Output shapes of every module, measured: the source of the committed ``models/layers.json``.

:func:`output_shapes` runs one forward pass with hooks on every module; :func:`build_table`
does it for every registered architecture on torch's ``meta`` device (shapes only, no
arithmetic, no memory) at two input sizes, and derives each module's entry for
:mod:`prunedissect.layer_table` (rank, stride or global pooling). Regenerate the file with
``python -m prunedissect.models.layers``; ``tests/models/test_layers.py`` fails when it is stale.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from prunedissect.layer_table import TABLE_PATH, layer_errors
from prunedissect.models.registry import get_model, list_models

REFERENCE_SIZES = (224, 448)
"""Input sides the table is measured at: the stride from the first, globality from both."""


def output_shapes(model: nn.Module, image_size: int) -> dict[str, tuple[int, ...] | None]:
    """Output shape of every named module for one ``(1, 3, image_size, image_size)`` input.

    None for a module that returns something other than a tensor; modules the forward pass
    never calls are absent. The model runs in eval mode on its own device.
    """
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    shapes: dict[str, tuple[int, ...] | None] = {}
    handles = []

    def hook_for(name: str):
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            shapes[name] = tuple(output.shape) if isinstance(output, torch.Tensor) else None

        return hook

    for name, module in model.named_modules():
        if name:
            handles.append(module.register_forward_hook(hook_for(name)))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, image_size, image_size, device=device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return shapes


def _entry(small: tuple[int, ...] | None, large: tuple[int, ...] | None) -> dict[str, Any]:
    if small is None:
        return {"rank": None}
    if len(small) != 4:
        return {"rank": len(small)}
    if small[2:] == (1, 1) and large is not None and large[2:] == (1, 1):
        return {"rank": 4, "global": True}
    return {"rank": 4, "stride": REFERENCE_SIZES[0] // small[2]}


def describe(model: nn.Module) -> dict[str, dict[str, Any]]:
    """The layer-table entry of every module of ``model`` (see :mod:`prunedissect.layer_table`)."""
    small, large = (output_shapes(model, size) for size in REFERENCE_SIZES)
    return {
        name: _entry(small[name], large.get(name)) if name in small else {"called": False}
        for name, _ in model.named_modules()
        if name
    }


def build_table() -> dict[str, Any]:
    """The content of ``models/layers.json`` for every registered architecture."""
    architectures = {}
    for arch in list_models():
        with torch.device("meta"):
            model = get_model(arch, num_classes=10)
        architectures[arch] = describe(model)
    return {
        "_generated_by": (
            "python -m prunedissect.models.layers (tests/models/test_layers.py checks it)"
        ),
        "reference_sizes": list(REFERENCE_SIZES),
        "architectures": architectures,
    }


def table_text() -> str:
    """``build_table()`` as the committed file's text."""
    return json.dumps(build_table(), indent=1, sort_keys=False) + "\n"


def check_layers(model: nn.Module, layers: Sequence[str], *, arch: str, image_size: int) -> None:
    """Raise ValueError unless every name in ``layers`` is a module of ``model`` whose output is
    a spatial map with H*W > 1 at ``image_size`` (measured with one forward pass)."""
    shapes = output_shapes(model, image_size)
    entries: dict[str, dict[str, Any]] = {}
    for name, _ in model.named_modules():
        if not name:
            continue
        shape = shapes.get(name, ())
        if name not in shapes:
            entries[name] = {"called": False}
        elif shape is None or len(shape) != 4:
            entries[name] = {"rank": None if shape is None else len(shape)}
        else:
            entries[name] = {"rank": 4, "stride": image_size / shape[2]}
    problems = layer_errors(layers, arch=arch, image_size=image_size, entries=entries)
    if problems:
        raise ValueError("--layer: " + "; ".join(problems))


if __name__ == "__main__":
    TABLE_PATH.write_text(table_text())
    print(f"wrote {TABLE_PATH}")
