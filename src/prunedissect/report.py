"""A per-unit visual report: what each unit detects, at level 0 and at pruned levels.

For each shown unit and column, in the manner of NetDissect's HTML report: the unit's label
(concept of highest IoU), its category and IoU, and the probe images on which the unit fires
most (largest maximum activation over the image), each dimmed outside the unit's thresholded
activation mask and outlined along its edge. A column is one checkpoint, a (method, level) pair:
level 0 first (the dense network every pruning method starts from), then the chosen pruned
checkpoints, so two methods can stand side by side at one level. Each unit is one row, so a
reader sees a concept kept, changed or lost against level 0. Units are sorted by their level-0
IoU, highest first.

The result is one self-contained HTML string (images embedded as base64), so it can be copied,
mailed or embedded in ``snakemake --report`` without companion files. Nothing in it depends on
the time or the machine: equal inputs give equal bytes.

Masks are drawn by upsampling the unit's raw activation map bilinearly to the tile shown and
comparing it with the unit's threshold, as dissection does at the segmentation resolution.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from skimage.segmentation import find_boundaries

from prunedissect.dissection.upsample import upsample
from prunedissect.tables import UNIT_FILE_COLUMNS

FATES = {
    "kept": "interpretable at both levels, same concept",
    "changed": "interpretable at both levels, different concept",
    "lost": "interpretable at level 0 only",
    "gained": "interpretable at this level only",
    "none": "interpretable at neither level",
}
"""Each unit's fate at a pruned checkpoint, compared with level 0 (the badges of the report)."""

_FATE_COLORS = {
    "kept": "#1b7837",
    "changed": "#b35806",
    "lost": "#b2182b",
    "gained": "#2166ac",
    "none": "#777777",
}


class ReportError(ValueError):
    """The report's inputs do not fit together (missing level 0, unit counts, shapes)."""


@dataclass(frozen=True)
class LevelData:
    """One dissected layer of one checkpoint: its per-unit labels and its activations.

    ``method`` and ``level`` name the checkpoint (level 0, shared by every method, may carry any
    name, e.g. "dense"). ``units`` has the columns of a dissection ``units.parquet``
    (:data:`UNIT_FILE_COLUMNS`); ``activations`` is the N x K x h x w array of
    ``activations.npy`` (a memmap is fine: it is read in chunks).
    """

    method: str
    level: int
    units: pd.DataFrame
    activations: np.ndarray

    @property
    def name(self) -> str:
        """How the report names this checkpoint: "level 0 (dense)" or "<method>, level <n>"."""
        return "level 0 (dense)" if self.level == 0 else f"{self.method}, level {self.level}"


def load_level(
    *, method: str, level: int, units_path: str | Path, activations_path: str | Path
) -> LevelData:
    """Read one dissected layer from its ``units.parquet`` and (memory-mapped) activations."""
    units = pd.read_parquet(units_path)
    missing = [c for c in UNIT_FILE_COLUMNS if c not in units.columns]
    if missing:
        raise ReportError(
            f"{units_path}: lacks columns {missing}; expected {list(UNIT_FILE_COLUMNS)}"
        )
    activations = np.load(activations_path, mmap_mode="r")
    return LevelData(method=method, level=level, units=units, activations=activations)


def top_images(
    activations: np.ndarray, units: Sequence[int], *, k: int, chunk: int = 256
) -> np.ndarray:
    """Indices of the ``k`` images with the largest maximum activation, per unit.

    Returns an int64 array of shape ``(len(units), k)``, best first; ties go to the lower image
    index. Reads ``activations`` (N x K x h x w) ``chunk`` images at a time.
    """
    if activations.ndim != 4:
        raise ReportError(f"activations must be N x K x h x w, got shape {activations.shape}")
    units = np.asarray(units, dtype=np.int64)
    n_images = activations.shape[0]
    maxima = np.empty((len(units), n_images), dtype=np.float32)
    for start in range(0, n_images, chunk):
        block = np.asarray(activations[start : start + chunk, units], dtype=np.float32)
        maxima[:, start : start + len(block)] = block.max(axis=(2, 3)).T
    order = np.argsort(-maxima, axis=1, kind="stable")
    return order[:, : min(k, n_images)]


def to_rgb(image: Any, size: int) -> np.ndarray:
    """A PIL image or array (H x W, H x W x 3/4; uint8 or floats in [0, 1]) as size x size RGB."""
    if not isinstance(image, Image.Image):
        array = np.asarray(image)
        if array.dtype != np.uint8:
            array = np.clip(np.rint(array.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
        image = Image.fromarray(array)
    image = image.convert("RGB")
    if image.size != (size, size):
        image = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def overlay(
    image: np.ndarray, mask: np.ndarray, *, dim: float = 0.3, edge=(255, 210, 0)
) -> np.ndarray:
    """Dim ``image`` outside ``mask`` to ``dim`` of its brightness and outline the mask's edge.

    The outline is the mask's inner boundary (scikit-image's ``find_boundaries``, mode
    ``inner``): mask pixels with a 4-neighbour outside the mask.
    """
    out = image.astype(np.float32) * np.where(mask, 1.0, dim)[..., None]
    out[find_boundaries(mask, mode="inner")] = edge
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def unit_strip(
    data: LevelData,
    *,
    unit: int,
    image_ids: Sequence[int],
    load_image: Callable[[int], Any],
    tile: int,
    gap: int = 4,
) -> np.ndarray:
    """Side-by-side tiles of ``image_ids`` with ``unit``'s thresholded mask overlaid."""
    threshold = float(data.units.loc[data.units["unit"] == unit, "threshold"].iloc[0])
    maps = np.stack([np.asarray(data.activations[i, unit], dtype=np.float32) for i in image_ids])
    masks = upsample(torch.from_numpy(maps)[:, None], (tile, tile))[:, 0].numpy() > threshold
    width = len(image_ids) * tile + (len(image_ids) - 1) * gap
    strip = np.full((tile, max(width, 1), 3), 255, dtype=np.uint8)
    for slot, (index, mask) in enumerate(zip(image_ids, masks)):
        x = slot * (tile + gap)
        strip[:, x : x + tile] = overlay(to_rgb(load_image(int(index)), tile), mask)
    return strip


def concept_fate(base: Mapping[str, Any], other: Mapping[str, Any]) -> str:
    """Classify a unit at a pruned checkpoint against level 0 (a key of :data:`FATES`)."""
    was, now = bool(base["interpretable"]), bool(other["interpretable"])
    if was and now:
        return "kept" if base["concept"] == other["concept"] else "changed"
    if was:
        return "lost"
    return "gained" if now else "none"


def _encode(strip: np.ndarray, image_format: str) -> str:
    buffer = io.BytesIO()
    if image_format == "jpeg":
        Image.fromarray(strip).save(buffer, format="JPEG", quality=90)
    elif image_format == "png":
        Image.fromarray(strip).save(buffer, format="PNG", optimize=False)
    else:
        raise ReportError(f"image_format must be 'jpeg' or 'png', got {image_format!r}")
    payload = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f"data:image/{image_format};base64,{payload}"


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-bottom:2em}
td,th{border-top:1px solid #ddd;padding:.4em .6em;vertical-align:top;text-align:left}
.label{font-weight:600}.muted{color:#777}.cat{color:#555;font-size:90%}
.badge{display:inline-block;color:#fff;border-radius:3px;padding:0 .4em;font-size:85%}
img{display:block;margin-top:.3em;image-rendering:auto}
"""


def _check_levels(layer: str, datas: Sequence[LevelData]) -> None:
    columns = [(d.method, d.level) for d in datas]
    if not datas or datas[0].level != 0:
        raise ReportError(
            f"layer {layer}: the first checkpoint given must be level 0 (got {columns}); "
            "dissect level 0 to compare pruned levels with it"
        )
    repeated = [c for i, c in enumerate(columns) if c in columns[:i]]
    if repeated:
        raise ReportError(
            f"layer {layer}: {repeated[0]} is given twice; each (method, level) is one column"
        )
    units0 = sorted(datas[0].units["unit"])
    for data in datas:
        where = f"layer {layer} {data.method} level {data.level}"
        missing = [c for c in UNIT_FILE_COLUMNS if c not in data.units.columns]
        if missing:
            raise ReportError(f"{where}: units lack columns {missing}")
        if sorted(data.units["unit"]) != units0:
            raise ReportError(
                f"{where}: dissected units differ from level 0's; every level must dissect the "
                "same units"
            )
        if data.activations.ndim != 4 or data.activations.shape[1] <= max(units0):
            raise ReportError(
                f"{where}: activations of shape {data.activations.shape} do not hold units "
                f"0..{max(units0)} (need N x K x h x w)"
            )


def _cell(row: Mapping[str, Any], src: str, ids: Sequence[int], fate: str | None) -> str:
    concept = "" if pd.isna(row["concept"]) else str(row["concept"])
    category = "" if pd.isna(row["category"]) else str(row["category"])
    label_class = "label" if row["interpretable"] else "label muted"
    badge = ""
    if fate is not None:
        badge = (
            f' <span class="badge" style="background:{_FATE_COLORS[fate]}" '
            f'title="{html.escape(FATES[fate])}">{fate}</span>'
        )
    alt = "top images " + ", ".join(str(i) for i in ids)
    return (
        f'<td><span class="{label_class}">{html.escape(concept)}</span> '
        f'<span class="cat">{html.escape(category)}</span> IoU {float(row["iou"]):.3f}{badge}'
        f'<img src="{src}" alt="{html.escape(alt)}" title="{html.escape(alt)}"></td>'
    )


def fate_counts(base: pd.DataFrame, other: pd.DataFrame) -> dict[str, int]:
    """Count the :data:`FATES` of every unit of ``other`` against ``base`` (both units tables)."""
    left = base.set_index("unit")
    right = other.set_index("unit").reindex(left.index)
    was = left["interpretable"].to_numpy(dtype=bool)
    now = right["interpretable"].to_numpy(dtype=bool)
    same = (left["concept"] == right["concept"]).fillna(False).to_numpy(dtype=bool)
    fates = np.select(
        [was & now & same, was & now, was, now], ["kept", "changed", "lost", "gained"], "none"
    )
    return {fate: int((fates == fate).sum()) for fate in FATES}


def _fate_summary(datas: Sequence[LevelData]) -> str:
    rows = []
    for data in datas[1:]:
        counts = fate_counts(datas[0].units, data.units)
        rows.append(
            f"<tr><td>{html.escape(data.name)}</td>"
            + "".join(f"<td>{counts[f]}</td>" for f in FATES)
            + "</tr>"
        )
    header = "<tr><th>all units</th>" + "".join(
        f'<th title="{html.escape(d)}">{f}</th>' for f, d in FATES.items()
    )
    return f"<table>{header}</tr>{''.join(rows)}</table>"


def _layer_section(
    layer: str,
    datas: Sequence[LevelData],
    *,
    densities: Mapping[tuple[str, int], float] | None,
    load_image: Callable[[int], Any],
    n_units: int,
    k: int,
    tile: int,
    image_format: str,
) -> str:
    _check_levels(layer, datas)
    base = datas[0].units.sort_values(["iou", "unit"], ascending=[False, True], kind="stable")
    shown = [int(u) for u in base["unit"].head(n_units)]
    # one entry per column, by position: two methods may share a level number
    tops = [top_images(d.activations, shown, k=k) for d in datas]
    indexed = [d.units.set_index("unit") for d in datas]
    rows = []
    for position, unit in enumerate(shown):
        cells = [f"<td>unit {unit}</td>"]
        for column, data in enumerate(datas):
            row = indexed[column].loc[unit]
            ids = [int(i) for i in tops[column][position]]
            strip = unit_strip(data, unit=unit, image_ids=ids, load_image=load_image, tile=tile)
            fate = None if column == 0 else concept_fate(indexed[0].loc[unit], row)
            cells.append(_cell(row, _encode(strip, image_format), ids, fate))
        rows.append(f'<tr id="{html.escape(layer)}-unit{unit}">{"".join(cells)}</tr>')
    titles = "".join(f"<th>{html.escape(_column_title(d, densities))}</th>" for d in datas)
    header = f"<tr><th>unit</th>{titles}</tr>"
    return (
        f"<h2>{html.escape(layer)}</h2>"
        f"<p>Fate of every unit of {html.escape(layer)} against level 0:</p>"
        f"{_fate_summary(datas)}"
        f"<p>The {len(shown)} units of highest level-0 IoU, each with its top {k} images:</p>"
        f"<table>{header}{''.join(rows)}</table>"
    )


def _column_title(data: LevelData, densities: Mapping[tuple[str, int], float] | None) -> str:
    """The checkpoint's name, with its % of weights remaining when ``densities`` holds it
    (level 0 is titled "dense" instead)."""
    density = (densities or {}).get((data.method, data.level))
    if density is None or data.level == 0:
        return data.name
    return f"{data.name} ({density * 100:.3g}% of weights)"


def build_unit_report(
    *,
    trial: int,
    layers: Mapping[str, Sequence[LevelData]],
    load_image: Callable[[int], Any],
    n_units: int,
    top_k: int,
    densities: Mapping[tuple[str, int], float] | None = None,
    tile: int = 112,
    image_format: str = "jpeg",
) -> str:
    """Return the HTML report of one trial.

    ``layers`` maps each layer to its columns: level 0 first, then the pruned checkpoints to
    show beside it, each a :class:`LevelData` of one (method, level); two methods at one level
    stand side by side, and every column is compared with level 0. ``load_image(i)`` returns
    probe image ``i`` (the row order of the activations), e.g. ``Broden(root).load_image``.
    ``n_units`` units of highest level-0 IoU are shown, each with its ``top_k`` images per
    column, drawn ``tile`` pixels square. ``densities`` ((method, level) -> fraction of weights
    remaining) adds each pruned column's density to its title when given.
    """
    if n_units < 1 or top_k < 1 or tile < 8:
        raise ReportError("n_units and top_k must be >= 1 and tile >= 8")
    cache: dict[int, Any] = {}

    def cached(index: int) -> Any:
        if index not in cache:
            cache[index] = load_image(index)
        return cache[index]

    columns = dict.fromkeys(_column_title(d, densities) for ds in layers.values() for d in ds)
    sections = [
        _layer_section(
            layer,
            datas,
            densities=densities,
            load_image=cached,
            n_units=n_units,
            k=top_k,
            tile=tile,
            image_format=image_format,
        )
        for layer, datas in layers.items()
    ]
    legend = "".join(
        f'<li><span class="badge" style="background:{_FATE_COLORS[f]}">{f}</span> {d}</li>'
        for f, d in FATES.items()
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Units of trial {trial}</title><style>{_CSS}</style></head><body>"
        f"<h1>Dissected units, trial {trial}</h1>"
        f"<p>Columns: {html.escape('; '.join(columns))}. Each image is dimmed outside "
        "the region where the unit's activation exceeds its threshold; the label is the concept "
        "of highest IoU (grey when the unit is not interpretable).</p>"
        f"<ul>{legend}</ul>{''.join(sections)}</body></html>\n"
    )
