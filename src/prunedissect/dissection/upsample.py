"""Bilinear upsampling of activation maps to the segmentation size.

One function, used by the thresholds (option ``threshold_on: upsampled``) and by the IoU tally,
so both see identical values. It is ``torch.nn.functional.interpolate(mode="bilinear",
align_corners=False)``: output pixel centres are mapped back onto the input grid, which is how
NetDissect aligns a feature map with the segmentation of the whole image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize float maps ``(B, K, h, w)`` to ``(B, K, *size)`` bilinearly (align_corners=False).

    Maps already of the target size are returned unchanged.
    """
    if maps.ndim != 4:
        raise ValueError(f"maps must be (B, K, h, w), got shape {tuple(maps.shape)}")
    size = (int(size[0]), int(size[1]))
    if tuple(maps.shape[2:]) == size:
        return maps
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
