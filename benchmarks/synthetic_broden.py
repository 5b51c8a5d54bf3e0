"""A generated probe set with Broden's shape, for benchmarking dissection at the paper's scale.

Nothing is downloaded. The directory is a real Broden-format probe (``index.csv``,
``label.csv``, ``category.csv``, ``c_<category>.csv``, image PNGs at 224 px and label PNGs at
112 px, written by :class:`prunedissect.data.broden.BrodenWriter`) with Broden's vocabulary
size: 1,376 labels, namely 11 colours, 584 objects, 234 parts, 32 materials, 468 scenes and 47
textures (the counts of ``broden1_224``'s ``category.csv``).

What an image holds mimics Broden's sources, each image drawing one:

========================  ========  ==========================================================
source (Broden's origin)  share     categories labelled
========================  ========  ==========================================================
ADE20K-like               35 %      object + part (pixel), scene (image-level), colour
Pascal-like               30 %      object + part (pixel), colour
OpenSurfaces-like         27 %      material (pixel), colour
DTD-like                   8 %      texture (image-level), colour
========================  ========  ==========================================================

Regions are Voronoi cells (4-12 objects, 2-6 materials, parts subdividing an object) and the
label of each region is drawn from a Zipf-like law per category (``P(rank r) ~ (r + 1)^-1.1``),
so a few concepts are everywhere and most are rare, as in Broden. About 10 % of object regions
and 30 % of material regions stay unlabelled (label 0). The colour layer covers every pixel and
agrees with the image: each colour region is painted with its colour, with brightness set by the
object underneath and pixel noise.

Image ``i`` depends only on ``(seed, i)``, so the probe of ``n`` images is the first ``n``
images of any larger one (the benchmark reuses a larger set's activations for a smaller one).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from prunedissect.data.broden import BrodenWriter, LabelSpec

#: Labels per category in ``broden1_224`` (1,376 in all).
CATEGORY_SIZES = {
    "color": 11,
    "object": 584,
    "part": 234,
    "material": 32,
    "scene": 468,
    "texture": 47,
}
COLOURS = {
    "black": (20, 20, 20),
    "blue": (40, 60, 200),
    "brown": (120, 75, 30),
    "green": (50, 170, 60),
    "grey": (128, 128, 128),
    "orange": (240, 140, 20),
    "pink": (240, 150, 190),
    "purple": (130, 50, 160),
    "red": (210, 30, 30),
    "white": (240, 240, 240),
    "yellow": (235, 220, 40),
}
SOURCES = (("ade", 0.35), ("pascal", 0.30), ("opensurfaces", 0.27), ("dtd", 0.08))
ZIPF_EXPONENT = 1.1
PARTED_OBJECTS = 60  # the most frequent objects have parts, as in Pascal-Part / ADE


def broden_vocabulary() -> list[LabelSpec]:
    """The 1,376 labels, numbered from 1 in category order (colour names are real)."""
    specs: list[LabelSpec] = []
    for category, size in CATEGORY_SIZES.items():
        for r in range(size):
            name = list(COLOURS)[r] + "-c" if category == "color" else f"{category}-{r:03d}"
            specs.append(LabelSpec(number=len(specs) + 1, name=name, category=category))
    return specs


def generate_broden_probe(
    root: str | os.PathLike,
    n_images: int,
    *,
    seed: int = 0,
    image_size: int = 224,
    segmentation_size: int = 112,
) -> Path:
    """Write an ``n_images`` Broden-format probe into ``root`` (see the module docstring)."""
    root = Path(root)
    vocabulary = broden_vocabulary()
    first = {}
    for spec in vocabulary:
        first.setdefault(spec.category, spec.number)
    zipf = {c: _zipf(size) for c, size in CATEGORY_SIZES.items()}
    writer = BrodenWriter(root, vocabulary)
    for i in range(n_images):
        image, pixel, image_level = _one_image(
            np.random.default_rng([seed, i]), first, zipf, image_size, segmentation_size
        )
        writer.add(f"{i:06d}", image=image, pixel=pixel, image_level=image_level)
    writer.close()
    return root


def _zipf(size: int) -> np.ndarray:
    weights = (np.arange(size) + 1.0) ** -ZIPF_EXPONENT
    return np.cumsum(weights / weights.sum())


def _draw(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(n)), len(cdf) - 1)


def _voronoi(rng: np.random.Generator, n: int, size: int, mask: np.ndarray | None = None):
    """Region id (0..n-1) of every pixel of a ``size`` square, seeds inside ``mask`` if given."""
    if mask is not None:
        ys, xs = np.nonzero(mask)
        pick = rng.integers(0, len(ys), n)
        seeds = np.stack([ys[pick], xs[pick]], axis=1).astype(np.float32)
    else:
        seeds = rng.random((n, 2), dtype=np.float32) * size
    grid = np.arange(size, dtype=np.float32)
    stretch = rng.uniform(0.6, 1.6, (n, 1, 1)).astype(np.float32)  # uneven region sizes
    d = (grid[None, :, None] - seeds[:, 0, None, None]) ** 2 + (
        grid[None, None, :] - seeds[:, 1, None, None]
    ) ** 2
    return np.argmin(d * stretch, axis=0)


def _one_image(rng, first, zipf, image_size: int, seg: int):
    source = rng.choice(len(SOURCES), p=[p for _, p in SOURCES])
    kind = SOURCES[source][0]
    pixel: dict[str, list[np.ndarray]] = {}
    image_level: dict[str, list[int]] = {}
    brightness = np.ones((seg, seg), dtype=np.float32)

    if kind in ("ade", "pascal"):
        n = int(rng.integers(4, 13))
        region = _voronoi(rng, n, seg)
        ranks = _draw(rng, zipf["object"], n)
        numbers = np.where(rng.random(n) < 0.1, 0, first["object"] + ranks)
        objects = numbers[region].astype(np.int32)
        parts = np.zeros_like(objects)
        for r in np.flatnonzero((ranks < PARTED_OBJECTS) & (numbers > 0)):
            inside = region == r
            if inside.sum() < 64:
                continue
            k = int(rng.integers(2, 5))
            sub = _voronoi(rng, k, seg, mask=inside)
            labels = first["part"] + _draw(rng, zipf["part"], k)
            parts[inside] = labels[sub[inside]]
        pixel["object"] = [objects]
        if parts.any():
            pixel["part"] = [parts]
        brightness = rng.uniform(0.6, 1.2, n).astype(np.float32)[region]
        if kind == "ade":
            image_level["scene"] = [int(first["scene"] + _draw(rng, zipf["scene"], 1)[0])]
    elif kind == "opensurfaces":
        n = int(rng.integers(2, 7))
        region = _voronoi(rng, n, seg)
        numbers = first["material"] + _draw(rng, zipf["material"], n)
        numbers = np.where(rng.random(n) < 0.3, 0, numbers)
        pixel["material"] = [numbers[region].astype(np.int32)]
        brightness = rng.uniform(0.6, 1.2, n).astype(np.float32)[region]
    else:
        image_level["texture"] = [int(first["texture"] + _draw(rng, zipf["texture"], 1)[0])]

    n = int(rng.integers(3, 9))
    region = _voronoi(rng, n, seg)
    colour = _draw(rng, zipf["color"], n)
    pixel["color"] = [(first["color"] + colour[region]).astype(np.int32)]
    rgb = np.asarray(list(COLOURS.values()), dtype=np.float32)[colour[region]]
    rgb *= brightness[..., None]
    scale = image_size // seg
    rgb = np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)
    rgb += rng.normal(0, 12, rgb.shape).astype(np.float32)
    image = np.clip(rgb, 0, 255).astype(np.uint8)
    return image, pixel, image_level
