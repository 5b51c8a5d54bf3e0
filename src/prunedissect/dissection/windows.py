"""Upsampling only the parts of activation maps that can exceed a threshold, exactly.

The IoU tally needs, for every map ``a`` (one unit in one image) and its unit's threshold ``T``,
the pixels where ``upsample(a) > T`` (:mod:`.upsample`, bilinear, ``align_corners=False``).
A bilinear value is a convex combination of its 2x2 source neighbours, so an output pixel can
exceed ``T`` only where one of them does. The output grid splits into *tiles*: tile ``(ty,
tx)`` holds the pixels whose source rows are ``{ty - 1, ty}`` and columns ``{tx - 1, tx}``
(clipped to the map: ``(h + 1) x (w + 1)`` tiles, those on the rim half as wide), and a tile
whose four source values are all at most ``T`` has no active pixel. A source cell above ``T``
(a *hot* cell) is a corner of 2 x 2 tiles, its *window* of ``2 fy x 2 fx`` output pixels
(``f`` the scale factor). For ResNet-50 layer4 at the top-0.5% threshold a candidate map has
1.8 hot cells on average, so about 1,800 of its 12,544 pixels are computed instead of all.

Exactness. A window's values are computed by two small matrix products,
``W_rows[y] @ crop @ W_cols[x].T`` over the 3 x 3 source cells around the hot cell, with the
bilinear weights of ``align_corners=False``. When each scale factor is an integer power of two
those weights are exact (``(2j + 1) / 2f``), so these values differ from ``F.interpolate``'s
only by the rounding of a few float32 operations (their order, fused multiply-adds): each is
within ``2**-21 * max|map|`` of the true value, far below ``margin = 2**-16 * max|map|``.
Pixels within ``margin`` of ``T`` are *ambiguous*: the windows holding one are recomputed
with :func:`.upsample` of the whole map, the very function the reference uses. So every
pixel is compared with ``T`` on ``upsample``'s own value or on a value provably on the same
side, and the counts equal whole-map upsampling bit for bit whatever the kernel's arithmetic.
Other factors (or maps smaller than 3 x 3) get ``None`` from :func:`window_geometry` and the
caller upsamples whole maps.

A tile around several hot cells is owned by the first of them in row-major order
(:func:`hot_cell_windows`), so every output pixel is counted once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .upsample import upsample

#: Relative distance from the threshold below which a window is recomputed by ``upsample``.
AMBIGUITY = 2.0**-16


@dataclass(frozen=True)
class WindowGeometry:
    """The windows of ``(h, w)`` maps upsampled to ``(sh, sw)``, per hot-cell row and column.

    For hot-cell row ``y``: ``crop_rows[y]`` is the first of its 3 source rows,
    ``window_rows[y]`` the first output row of its window, ``row_weights[y]`` the ``(2 fy, 3)``
    bilinear weights of the window's rows on the crop's rows. Likewise for columns.
    ``masks[y, x, p]`` marks the window pixels in the tiles of set ``p`` (bit ``2 dy + dx``: tile
    ``(y + dy, x + dx)``).
    """

    source: tuple[int, int]
    size: tuple[int, int]
    crop_rows: torch.Tensor  # (h,) int64
    crop_cols: torch.Tensor  # (w,) int64
    window_rows: torch.Tensor  # (h,) int64
    window_cols: torch.Tensor  # (w,) int64
    row_weights: torch.Tensor  # (h, 2 fy, 3) float32
    col_weights: torch.Tensor  # (w, 2 fx, 3) float32
    masks: torch.Tensor  # (h, w, 16, 2 fy, 2 fx) bool

    @property
    def window(self) -> tuple[int, int]:
        """Output pixels of one window, ``(2 fy, 2 fx)``."""
        return int(self.row_weights.shape[1]), int(self.col_weights.shape[1])


def window_geometry(
    source: tuple[int, int], size: tuple[int, int], device: torch.device | str = "cpu"
) -> WindowGeometry | None:
    """The window geometry, or ``None`` where windows do not apply (a scale factor that is not
    an integer power of two >= 2, or maps smaller than 3 x 3)."""
    (h, w), (sh, sw) = (int(v) for v in source), (int(v) for v in size)
    if h < 3 or w < 3 or sh % h or sw % w:
        return None
    fy, fx = sh // h, sw // w
    if fy < 2 or fx < 2 or fy & (fy - 1) or fx & (fx - 1):
        return None
    rows, cols = _axis(h, fy), _axis(w, fx)
    return WindowGeometry(
        source=(h, w),
        size=(sh, sw),
        crop_rows=rows[0].to(device),
        crop_cols=cols[0].to(device),
        window_rows=rows[1].to(device),
        window_cols=cols[1].to(device),
        row_weights=rows[2].to(device),
        col_weights=cols[2].to(device),
        masks=_masks(rows[3], cols[3]).to(device),
    )


def hot_cell_windows(
    maps: torch.Tensor, floor: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The windows to compute for maps ``(n, h, w)`` with per-map ``floor`` ``(n,)`` (the
    threshold less a rounding margin): ``(map, y, x, owned)``, one per hot source cell
    ``(y, x)`` (value above the floor), ``owned`` ``(m, 4)`` saying which of its tiles
    ``(y + dy, x + dx)`` it owns (index ``2 dy + dx``). A tile belongs to the first of its hot
    corners in row-major order, so every hot tile is counted once."""
    hot = maps > floor[:, None, None]
    padded = torch.nn.functional.pad(hot, (1, 1, 1, 1))  # padded[y + 1 + oy, x + 1 + ox]
    h, w = hot.shape[1:]

    def at(oy: int, ox: int) -> torch.Tensor:  # hot[y + oy, x + ox], False off the map
        return padded[:, 1 + oy : 1 + oy + h, 1 + ox : 1 + ox + w]

    # a tile's corners before (y, x) in row-major order: tile (0, 0) has (-1, -1), (-1, 0) and
    # (0, -1); tile (0, 1) has (-1, 0) and (-1, 1); tile (1, 0) has (0, -1); tile (1, 1) none
    owned = torch.stack(
        [
            ~(at(-1, -1) | at(-1, 0) | at(0, -1)),
            ~(at(-1, 0) | at(-1, 1)),
            ~at(0, -1),
            torch.ones_like(hot),
        ],
        dim=-1,
    )
    cell_map, y, x = hot.nonzero(as_tuple=True)
    return cell_map, y, x, owned[cell_map, y, x]


def window_values(
    maps: torch.Tensor, y: torch.Tensor, x: torch.Tensor, geometry: WindowGeometry
) -> torch.Tensor:
    """Bilinear values ``(m, 2 fy, 2 fx)`` of the windows of hot cells ``(y, x)`` of maps
    ``(m, h, w)`` (within float32 rounding of :func:`.upsample`; see the module docstring)."""
    m = len(y)
    rows = geometry.crop_rows[y][:, None] + torch.arange(3, device=maps.device)
    cols = geometry.crop_cols[x][:, None] + torch.arange(3, device=maps.device)
    crops = maps[
        torch.arange(m, device=maps.device)[:, None, None], rows[:, :, None], cols[:, None]
    ]
    return geometry.row_weights[y] @ crops @ geometry.col_weights[x].transpose(1, 2)


def window_mask(
    y: torch.Tensor, x: torch.Tensor, owned: torch.Tensor, geometry: WindowGeometry
) -> torch.Tensor:
    """``(m, 2 fy, 2 fx)`` bool: the pixels of each window in tiles its hot cell owns
    (``owned`` ``(m, 4)`` as from :func:`hot_cell_windows`)."""
    pattern = (owned.to(torch.int64) * torch.tensor([1, 2, 4, 8], device=y.device)).sum(dim=1)
    return geometry.masks[y, x, pattern]


def active_in_windows(
    maps: torch.Tensor,
    y: torch.Tensor,
    x: torch.Tensor,
    owned: torch.Tensor,
    threshold: torch.Tensor,
    geometry: WindowGeometry,
) -> torch.Tensor:
    """``(m, 2 fy, 2 fx)`` bool: owned window pixels where ``upsample(maps) > threshold``
    (``threshold`` per map), exactly: ambiguous windows are recomputed by :func:`.upsample`."""
    values = window_values(maps, y, x, geometry)
    values -= threshold[:, None, None]
    # every window pixel holds a true bilinear value of its map (the crop covers it), so an
    # ambiguous pixel anywhere in the window is reason enough to recompute it
    margin = maps.abs().amax(dim=(1, 2)) * AMBIGUITY
    ambiguous = (values.abs() <= margin[:, None, None]).flatten(1).any(dim=1)
    if bool(ambiguous.any()):
        which = ambiguous.nonzero()[:, 0]
        full = upsample(maps[which][:, None], geometry.size)[:, 0]
        wy, wx = geometry.window_rows[y[which]], geometry.window_cols[x[which]]
        fy2, fx2 = geometry.window
        r = wy[:, None] + torch.arange(fy2, device=maps.device)
        c = wx[:, None] + torch.arange(fx2, device=maps.device)
        index = torch.arange(len(which), device=maps.device)[:, None, None]
        exact = full[index, r[:, :, None], c[:, None, :]]
        return torch.cat([values > 0]).index_put_(
            (which,), exact > threshold[which][:, None, None]
        ) & window_mask(y, x, owned, geometry)
    return (values > 0) & window_mask(y, x, owned, geometry)


def _axis(n: int, f: int) -> tuple[torch.Tensor, ...]:
    """One axis of :class:`WindowGeometry`: crop starts, window starts, weights, tiles."""
    cell = torch.arange(n)
    crop = (cell - 1).clamp(0, n - 3)
    start = (f * cell - f // 2).clamp(0, n * f - 2 * f)
    out = start[:, None] + torch.arange(2 * f)  # (n, 2f) output positions
    # align_corners=False: source coordinate (o + 0.5) / f - 0.5, clamped at 0 (exact in
    # float64 for these sizes)
    s = ((out.to(torch.float64) + 0.5) / f - 0.5).clamp(min=0)
    low = torch.floor(s).to(torch.int64)
    high = (low + 1).clamp(max=n - 1)
    lam = s - low
    weights = torch.zeros((n, 2 * f, 3), dtype=torch.float64)
    for index, weight in ((low, 1 - lam), (high, lam)):
        local = index - crop[:, None]
        inside = (local >= 0) & (local < 3)  # outside only off the cell's tiles (masked)
        weights.scatter_add_(2, local.clamp(0, 2)[:, :, None], (weight * inside)[:, :, None])
    tiles = torch.floor((out.to(torch.float64) + 0.5) / f - 0.5).to(torch.int64) + 1
    return crop, start, weights.to(torch.float32), tiles.clamp(0, n) - cell[:, None]


def _masks(row_tiles: torch.Tensor, col_tiles: torch.Tensor) -> torch.Tensor:
    """``(h, w, 16, 2 fy, 2 fx)``: window pixels in the tiles of each set (see WindowGeometry)."""
    bits = torch.arange(16)
    masks = torch.zeros(
        (len(row_tiles), len(col_tiles), 16, row_tiles.shape[1], col_tiles.shape[1]),
        dtype=torch.bool,
    )
    for dy in (0, 1):
        for dx in (0, 1):
            chosen = (bits >> (2 * dy + dx)) & 1 == 1  # (16,)
            tile = (row_tiles == dy)[:, None, :, None] & (col_tiles == dx)[None, :, None, :]
            masks |= chosen[None, None, :, None, None] & tile[:, :, None]
    return masks
