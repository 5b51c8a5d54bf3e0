"""Per-unit activation thresholds: the top-``quantile`` cut of each unit, computed exactly.

Convention. For unit ``k`` let ``v_0 <= ... <= v_{n-1}`` be its ``n`` activation values: every
spatial location of every probe image (raw maps by default, or the maps upsampled to the
segmentation size). With ``p = 1 - quantile`` the threshold is numpy's default ("linear",
Hyndman & Fan type 7) quantile, exactly what NetDissect computes with
``np.percentile(features, 100 * (1 - quantile))``::

    pos = (n - 1) * p,  lo = floor(pos),  hi = min(lo + 1, n - 1),  gamma = pos - lo
    T_k = lerp(v_lo, v_hi, gamma)          (numpy's two-sided lerp, in float64)

so ``T_k == np.quantile(values_k.astype(np.float64), 1 - quantile)`` bit for bit, and a unit is
"on" where ``a > T_k``: about ``quantile * n`` of its values, fewer where values tie at ``T_k``.

Algorithm. Only the ``m = n - lo`` largest values of a unit matter. Units are processed in
chunks; for a chunk, batches of images are streamed from the activation file
(:class:`.rowfiles.RowReader`: ``os.pread`` into one buffer, so no page of the file stays
resident) and the running top-``m`` of each unit is kept with ``torch.topk`` (on the GPU when
asked). The result is exact; memory is ``chunk * (m + buffer)`` values plus one batch of rows
of every unit, bounded by ``max_elements`` whatever ``N`` (a single unit needs ``m + one
image`` values). ``m = quantile * N * h * w`` grows with ``N``, so large probes use smaller
unit chunks and read the file more than once (ResNet-50 layer4 on 63,305 images: 2 passes);
on smaller probes a chunk usually holds every unit, so the activation file is read once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from .rowfiles import RowReader
from .upsample import upsample

DEFAULT_MAX_ELEMENTS = 1 << 25  # ~128 MiB of float32 per working buffer


@dataclass(frozen=True)
class QuantilePosition:
    """Where the ``1 - quantile`` quantile of ``n`` sorted values lies (0-based ascending ranks)."""

    n: int
    lo: int
    hi: int
    gamma: float

    @property
    def top(self) -> int:
        """How many of the largest values are needed: ranks ``lo..n-1``."""
        return self.n - self.lo


def quantile_position(n: int, quantile: float) -> QuantilePosition:
    """Ranks and weight of numpy's linear quantile ``1 - quantile`` among ``n`` values."""
    if n < 1:
        raise ValueError("a quantile needs at least one value")
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must lie strictly between 0 and 1, got {quantile}")
    pos = (n - 1) * (1.0 - quantile)
    lo = math.floor(pos)
    hi = min(lo + 1, n - 1)
    return QuantilePosition(n=n, lo=lo, hi=hi, gamma=pos - lo)


def lerp(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    """numpy's quantile interpolation: ``a + (b - a) * g``, or ``b - (b - a) * (1 - g)`` for
    g >= 0.5."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    diff = b - a
    if gamma >= 0.5:
        return b - diff * (1.0 - gamma)
    return a + diff * gamma


def unit_thresholds(
    activations: np.ndarray,
    *,
    quantile: float = 0.005,
    upsample_to: tuple[int, int] | None = None,
    device: torch.device | str = "cpu",
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> np.ndarray:
    """Threshold ``T_k`` of every unit of ``activations`` ``(N, K, h, w)``, as float64 ``(K,)``.

    ``upsample_to=(sh, sw)`` takes the quantile over the maps upsampled bilinearly to the
    segmentation size (the same upsampling the IoU tally applies) instead of the raw maps.
    ``activations`` may be a read-only memory map; it is read in batches of images.
    """
    if activations.ndim != 4:
        raise ValueError(f"activations must be (N, K, h, w), got shape {activations.shape}")
    n_images, n_units, h, w = activations.shape
    size = (h, w) if upsample_to is None else tuple(int(s) for s in upsample_to)
    per_image = size[0] * size[1]
    position = quantile_position(n_images * per_image, quantile)
    # A chunk of c units holds c * (top + buffer) values; the buffer is at least one image.
    chunk = max(1, min(n_units, max_elements // (2 * (position.top + per_image))))
    thresholds = np.empty(n_units, dtype=np.float64)
    for k0 in range(0, n_units, chunk):
        k1 = min(n_units, k0 + chunk)
        top = _chunk_top_values(
            activations,
            k0,
            k1,
            top=position.top,
            upsample_to=upsample_to,
            device=device,
            buffer_elements=max(per_image * (k1 - k0), max_elements // 2),
        )
        v_lo = top[:, position.top - 1]
        v_hi = top[:, position.n - 1 - position.hi]
        thresholds[k0:k1] = lerp(v_lo, v_hi, position.gamma)
    return thresholds


def thresholds_table(thresholds: np.ndarray) -> pd.DataFrame:
    """The tidy ``(unit, threshold)`` table, one row per unit, 0-based units."""
    thresholds = np.asarray(thresholds, dtype=np.float64)
    return pd.DataFrame(
        {"unit": np.arange(len(thresholds), dtype=np.int64), "threshold": thresholds}
    )


def _chunk_top_values(
    activations: np.ndarray,
    k0: int,
    k1: int,
    *,
    top: int,
    upsample_to: tuple[int, int] | None,
    device: torch.device | str,
    buffer_elements: int,
) -> np.ndarray:
    """The ``top`` largest values of units ``k0..k1-1``, descending, as float64 ``(c, top)``."""
    n_images = activations.shape[0]
    c = k1 - k0
    per_image = activations.shape[2] * activations.shape[3]
    if upsample_to is not None:
        per_image = upsample_to[0] * upsample_to[1]
    batch = max(1, buffer_elements // (c * per_image))
    kept: torch.Tensor | None = None
    pending: list[torch.Tensor] = []
    pending_size = 0
    rows = RowReader(activations)
    for b0 in range(0, n_images, batch):
        block = rows.read(b0, b0 + batch)[:, k0:k1]
        maps = torch.from_numpy(block).to(device).float()  # faster than numpy's conversion
        if upsample_to is not None:
            maps = upsample(maps, upsample_to)
        pending.append(maps.transpose(0, 1).reshape(c, -1))
        pending_size += pending[-1].shape[1]
        if pending_size >= buffer_elements // c:
            kept = _keep_top([kept, *pending], top)
            pending, pending_size = [], 0
    kept = _keep_top([kept, *pending], top)
    return kept.to(torch.float64).cpu().numpy()


def _keep_top(parts: list[torch.Tensor | None], top: int) -> torch.Tensor:
    values = torch.cat([p for p in parts if p is not None], dim=1)
    k = min(top, values.shape[1])
    return torch.topk(values, k, dim=1, largest=True, sorted=True).values
