"""Render docs/images/concepts_montage.png: the first probe images beside their label maps.

    .venv/bin/python docs/make_montage.py resources/concepts/probe docs/images/concepts_montage.png
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from prunedissect.data.broden import Broden
from prunedissect.data.concepts.rendering import _LAYERED
from prunedissect.data.concepts.vocabulary import COLOURS


def _label_colours(numbers: np.ndarray, names: dict[int, str]) -> np.ndarray:
    """A display colour per label number: the named colour for colour labels, else a hue."""
    table = np.zeros((max(numbers.max(initial=0), max(names, default=0)) + 1, 3), dtype=np.uint8)
    for number, name in names.items():
        if name in COLOURS:
            table[number] = COLOURS[name]
        else:
            hue = (number * 0.618033988749895) % 1.0
            table[number] = _hsv_to_rgb(hue, 0.75, 0.95)
    return table[numbers]


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    i = int(h * 6) % 6
    f = h * 6 - math.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return round(r * 255), round(g * 255), round(b * 255)


def make_montage(
    probe_dir: str | os.PathLike, out_png: str | os.PathLike, *, n: int = 8, tile: int = 96
) -> None:
    """Render the first ``n`` probe images beside their colourised label maps, one row each.

    Columns: image, then one label map per pixel-level category of the concept world (label 0
    black); image-level labels (the scene, a swatch's texture) are written under the image.
    Reads the probe set through :class:`Broden`.
    """
    broden = Broden(probe_dir)
    names = dict(zip(broden.labels["number"].tolist(), broden.labels["name"].tolist(), strict=True))
    pixel_categories = [c for c in broden.categories if c in _LAYERED]
    header, caption = 14, 12
    columns = 1 + len(pixel_categories)
    rows = min(n, len(broden))
    canvas = Image.new("RGB", (columns * tile, header + rows * (tile + caption)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(["image", *pixel_categories]):
        draw.text((c * tile + 3, 1), title, fill=(0, 0, 0))
    for r in range(rows):
        top = header + r * (tile + caption)
        canvas.paste(broden.load_image(r).resize((tile, tile), Image.Resampling.NEAREST), (0, top))
        segmentation = broden.segmentation(r)
        for c, category in enumerate(pixel_categories, start=1):
            labels = segmentation.get(category)
            if labels is None or labels.pixel.shape[0] == 0:
                continue
            picture = Image.fromarray(_label_colours(labels.pixel[0], names), mode="RGB")
            canvas.paste(picture.resize((tile, tile), Image.Resampling.NEAREST), (c * tile, top))
        text = ", ".join(
            f"{category}: {names[k]}"
            for category, labels in segmentation.items()
            for k in labels.image
        )
        draw.text((3, top + tile), text, fill=(0, 0, 0))
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out_png, optimize=True)


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        sys.exit(__doc__)
    make_montage(sys.argv[1], sys.argv[2])
