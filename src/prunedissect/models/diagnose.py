"""A one-line guess at which architecture a state dict belongs to, from its tensor shapes.

Used when a checkpoint does not load into the architecture asked for: the user reads "it looks
like resnet20 with width=32" before torch's list of mismatched keys. Recognises the CIFAR-style
ResNets (depth from the blocks per stage, width from ``conv1.weight``), torchvision's ResNets
(basic or bottleneck blocks, blocks per stage) and GoogLeNet.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

TORCHVISION_RESNETS = {
    (False, (2, 2, 2, 2)): "resnet18",
    (False, (3, 4, 6, 3)): "resnet34",
    (True, (3, 4, 6, 3)): "resnet50",
    (True, (3, 4, 23, 3)): "resnet101",
    (True, (3, 8, 36, 3)): "resnet152",
}


def _blocks(keys: set[str], stage: int) -> int:
    pattern = re.compile(rf"^layer{stage}\.(\d+)\.")
    return len({m.group(1) for k in keys if (m := pattern.match(k))})


def guess_architecture(state_dict: Mapping[str, torch.Tensor]) -> str | None:
    """A phrase such as ``"resnet20 with width=32"``, or None when nothing matches."""
    keys = set(state_dict)
    if "inception3a.branch1.conv.weight" in keys:
        return "googlenet"
    conv1 = state_dict.get("conv1.weight")
    if conv1 is None or conv1.ndim != 4:
        return None
    classes = next(
        (int(v.shape[0]) for k, v in reversed(list(state_dict.items())) if v.ndim == 2), None
    )
    suffix = f" and {classes} classes" if classes else ""
    if tuple(conv1.shape[2:]) == (3, 3) and _blocks(keys, 4) == 0 and _blocks(keys, 3):
        depth = 6 * _blocks(keys, 1) + 2
        return f"resnet{depth} (CIFAR-style) with width={int(conv1.shape[0])}{suffix}"
    if tuple(conv1.shape[2:]) == (7, 7):
        bottleneck = "layer1.0.conv3.weight" in keys
        stages = tuple(_blocks(keys, s) for s in (1, 2, 3, 4))
        name = TORCHVISION_RESNETS.get((bottleneck, stages))
        if name:
            return f"torchvision {name}{suffix}"
        return f"a torchvision-style ResNet with {stages} blocks per stage{suffix}"
    return None
