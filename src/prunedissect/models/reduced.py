"""Reduced networks (Crowley et al. 2018): the same architecture, thinner, of a given size.

:func:`reduced_kwargs` chooses the builder keyword arguments of a narrower ResNet-20 whose
prunable weights (conv and linear weights, as :func:`prunedissect.pruning.prunable_parameters`
counts them) come closest to a target: every stage's width is scaled by one factor (Crowley et
al. scale every layer alike), rounded to whole channels, and the integer widths around that
scaling are searched for the count nearest the target (counted by :func:`resnet20_shapes`'s
arithmetic; a test checks it against the built network). :func:`kwargs_for_state_dict` recovers
the keyword arguments of any ResNet-20 checkpoint from its tensor shapes, so extraction,
dissection and benchmarks rebuild a reduced network without a side file.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from typing import Any

import torch

from prunedissect.models.registry import get_model
from prunedissect.pruning import prunable_parameters

_STAGES = ("layer1", "layer2", "layer3")


def prunable_count(
    arch: str, *, num_classes: int, model_kwargs: Mapping[str, Any], exclude: Iterable[str] = ()
) -> int:
    """Number of prunable weights of ``arch`` built with ``model_kwargs`` (no memory used)."""
    with torch.device("meta"):
        model = get_model(arch, num_classes=num_classes, **dict(model_kwargs))
    params = dict(model.named_parameters())
    return sum(params[n].numel() for n in prunable_parameters(model, exclude=exclude))


def _base_widths(arch: str, model_kwargs: Mapping[str, Any]) -> tuple[int, int, int]:
    if arch != "resnet20":
        raise ValueError(
            f"reduced networks are defined for resnet20 only (per-stage widths), not {arch!r}"
        )
    if model_kwargs.get("widths") is not None:
        return tuple(int(w) for w in model_kwargs["widths"])  # type: ignore[return-value]
    width = int(model_kwargs.get("width", 16))
    return (width, 2 * width, 4 * width)


TOLERANCE = 0.02
"""Relative size error within which :func:`reduced_kwargs` prefers the most uniform scaling."""


def reduced_kwargs(
    arch: str,
    *,
    model_kwargs: Mapping[str, Any],
    num_classes: int,
    target: int,
    exclude: Iterable[str] = (),
) -> dict[str, Any]:
    """Builder kwargs (``{"widths": [w1, w2, w3]}``) of the narrower ``arch`` whose prunable
    weights come closest to ``target``.

    Candidates: for scale factors ``s`` on a grid of 1/1000 over (0, 1], the per-stage widths
    ``floor`` and ``ceil`` of ``s`` times the base widths (at least 1 channel, at most the base).
    Among the candidates within :data:`TOLERANCE` of ``target`` the winner has the smallest
    spread of its stages' scale factors (the most uniform scaling), then the smallest error;
    when none is that close, the smallest error wins. Ties: the larger widths. Deterministic.
    """
    exclude = list(exclude)
    base = _base_widths(arch, model_kwargs)
    candidates: set[tuple[int, int, int]] = set()
    for step in range(1, 1001):
        options = [
            {min(b, max(1, (step * b) // 1000)), min(b, max(1, -(-step * b // 1000)))}
            for b in base
        ]
        candidates.update(itertools.product(*options))
    counts = {w: _resnet20_count(w, num_classes, exclude) for w in candidates}

    def rank(widths: tuple[int, int, int]) -> tuple[bool, float, int, tuple[int, ...]]:
        ratios = [w / b for w, b in zip(widths, base, strict=True)]
        error = abs(counts[widths] - target)
        close = error <= TOLERANCE * target
        spread = max(ratios) - min(ratios) if close else 0.0
        return (not close, spread, error, tuple(-w for w in widths))

    best = min(sorted(candidates), key=rank)
    return {"widths": list(best)}


def resnet20_shapes(widths: tuple[int, int, int], num_classes: int) -> dict[str, int]:
    """Size of every conv and linear weight of a resnet20 with stage ``widths``, by name (the
    arithmetic of :class:`~prunedissect.models.cifar_resnet.CifarResNet`)."""
    sizes = {"conv1.weight": 3 * widths[0] * 9}
    channels = widths[0]
    for stage, width in enumerate(widths):
        for block in range(3):
            name = f"{_STAGES[stage]}.{block}"
            sizes[f"{name}.conv1.weight"] = channels * width * 9
            sizes[f"{name}.conv2.weight"] = width * width * 9
            if channels != width or (stage > 0 and block == 0):
                sizes[f"{name}.shortcut.0.weight"] = channels * width
            channels = width
    sizes["fc.weight"] = channels * num_classes
    return sizes


def _resnet20_count(widths: tuple[int, int, int], num_classes: int, exclude: list[str]) -> int:
    def excluded(name: str) -> bool:
        module = name.removesuffix(".weight")
        return any(module == e or module.startswith(e + ".") for e in exclude)

    sizes = resnet20_shapes(widths, num_classes)
    return sum(size for name, size in sizes.items() if not excluded(name))


def kwargs_for_state_dict(
    arch: str, state_dict: Mapping[str, torch.Tensor], model_kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The builder kwargs that load ``state_dict``: ``model_kwargs`` unchanged, except for a
    resnet20 whose stage widths (read from its tensor shapes) differ from them, which gets
    ``{"widths": [...]}`` (a reduced network)."""
    kwargs = dict(model_kwargs)
    if arch != "resnet20" or any(f"{s}.0.conv1.weight" not in state_dict for s in _STAGES):
        return kwargs
    found = tuple(int(state_dict[f"{s}.0.conv1.weight"].shape[0]) for s in _STAGES)
    if found != _base_widths(arch, kwargs):
        kwargs.pop("width", None)
        kwargs["widths"] = list(found)
    return kwargs
