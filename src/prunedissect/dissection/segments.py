"""The probe set's segmentations, encoded once into compact concept codes for the IoU tally.

A *concept* is a pair (label number, category): the pixels of one Broden label as labelled
under one category. Nearly every Broden label belongs to a single category, but ``label.csv``
allows several (``object(3);part(1)``); keeping the pairs apart means a concept's category is
always the category its pixels were labelled under, its mask in an image is exactly what that
category's cell says, and the category-restricted union (see :mod:`.iou`) knows which images
count. Concepts are numbered ``0..J-1`` ordered by label number, then by the probe's category
order, so "lowest label number" is "lowest concept index".

Per image the encoding keeps:

- ``segments[i]``: one int32 *combination id* per segmentation pixel. A combination is the set
  of concepts present at a pixel across every pixel-level layer of every category (duplicates
  removed); ``combos[c]`` lists its concept codes (``j + 1``, 0-padded). Combination 0 is the
  empty set. Many pixels share few combinations, so this is far smaller than one label map per
  layer, and the tally looks up the concepts of an activated pixel with one gather.
- ``image_concepts[i]``: the image-level concepts (codes ``j + 1``, 0-padded). An image-level
  label covers the whole image, so its pixel-level copies in the same image are dropped.
- ``present[i, g]``: whether category ``g`` is labelled in image ``i`` (its ``index.csv`` cell is
  not empty), which is what NetDissect's category-restricted counting conditions on.

:func:`encode_probe_labels` reads the probe once; :func:`save_probe_labels` /
:func:`load_probe_labels` keep the result in a directory of ``.npy`` files that are memory-mapped
on load, so memory stays bounded by a batch even for the 63k images of ``broden1_224``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

FORMAT_VERSION = 1
_FILES = ("segments.npy", "combos.npy", "image_concepts.npy", "present.npy")


class LabelsLike(Protocol):
    """What :func:`encode_probe_labels` needs of one category's labels in one image."""

    pixel: np.ndarray
    image: tuple[int, ...]


class SegmentationSource(Protocol):
    """The part of :class:`prunedissect.data.broden.Broden` the encoder uses."""

    categories: list[str]
    labels: pd.DataFrame
    index: pd.DataFrame

    def __len__(self) -> int: ...

    def segmentation(self, i: int) -> Mapping[str, LabelsLike]: ...


@dataclass(frozen=True)
class ProbeLabels:
    """The encoded segmentations of a probe set (see the module docstring).

    ``concepts`` has one row per concept ``j`` (row order = concept index) with columns
    ``label`` (Broden label number), ``concept`` (label name), ``category``, ``pixels`` (labelled
    segmentation pixels over the probe set; an image-level label counts the whole image) and
    ``images`` (images in which the concept occurs).
    """

    categories: tuple[str, ...]
    concepts: pd.DataFrame
    segments: np.ndarray  # (N, sh, sw) int32 combination ids
    combos: np.ndarray  # (n_combos, width) int32 concept codes j + 1, 0-padded
    image_concepts: np.ndarray  # (N, width) int32 concept codes j + 1, 0-padded
    present: np.ndarray  # (N, n_categories) bool

    def __len__(self) -> int:
        return int(self.segments.shape[0])

    @property
    def shape(self) -> tuple[int, int]:
        """Segmentation size ``(sh, sw)`` shared by every image."""
        return int(self.segments.shape[1]), int(self.segments.shape[2])

    @property
    def concept_category(self) -> np.ndarray:
        """Index into ``categories`` of each concept's category, shape ``(J,)``."""
        lookup = {name: g for g, name in enumerate(self.categories)}
        return np.array([lookup[c] for c in self.concepts["category"]], dtype=np.int64)

    def concept_masks(self, i: int) -> np.ndarray:
        """Boolean masks ``(J, sh, sw)`` of every concept in image ``i`` (for tests and reports)."""
        n_concepts = len(self.concepts)
        masks = np.zeros((n_concepts + 1, *self.shape), dtype=bool)
        codes = self.combos[np.asarray(self.segments[i])]  # (sh, sw, width)
        for layer in np.moveaxis(codes, -1, 0):
            np.put_along_axis(masks, layer[None], True, axis=0)
        for code in self.image_concepts[i]:
            masks[code] = True
        return masks[1:]


def encode_probe_labels(
    source: SegmentationSource,
    *,
    directory: str | os.PathLike | None = None,
    logger: logging.Logger | None = None,
) -> ProbeLabels:
    """Read every segmentation of ``source`` once and encode it as :class:`ProbeLabels`.

    With ``directory`` the per-pixel array is written straight into ``segments.npy`` there (a
    memory map, so memory stays bounded by one image) and the result is saved and re-opened
    from that directory; without it everything stays in memory.
    """
    logger = logger or logging.getLogger(__name__)
    n_images = len(source)
    if n_images == 0:
        raise ValueError("the probe set has no images; check index.csv")
    shape = _common_segmentation_shape(source)
    categories = tuple(source.categories)
    encoder = _Encoder(categories=categories, shape=shape, names=_label_names(source))
    if directory is None:
        segments = np.zeros((n_images, *shape), dtype=np.int32)
    else:
        Path(directory).mkdir(parents=True, exist_ok=True)
        segments = np.lib.format.open_memmap(
            Path(directory) / "segments.npy", mode="w+", dtype=np.int32, shape=(n_images, *shape)
        )
    for i in range(n_images):
        segments[i] = encoder.add(i, source.segmentation(i))
        if (i + 1) % 5000 == 0:
            logger.info("encoded the labels of %d / %d probe images", i + 1, n_images)
    labels = encoder.finish(segments)
    logger.info(
        "encoded %d probe images (%dx%d): %d concepts in %d categories, %d pixel combinations",
        n_images,
        *shape,
        len(labels.concepts),
        len(categories),
        len(labels.combos),
    )
    if directory is None:
        return labels
    if isinstance(segments, np.memmap):
        segments.flush()
    save_probe_labels(labels, directory)
    return load_probe_labels(directory)


def save_probe_labels(labels: ProbeLabels, directory: str | os.PathLike) -> None:
    """Write ``labels`` into ``directory`` (``*.npy``, ``concepts.parquet``, ``meta.json``)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    segments_path = directory / "segments.npy"
    if not (isinstance(labels.segments, np.memmap) and _same_file(labels.segments, segments_path)):
        np.save(segments_path, np.ascontiguousarray(labels.segments))
    np.save(directory / "combos.npy", labels.combos)
    np.save(directory / "image_concepts.npy", labels.image_concepts)
    np.save(directory / "present.npy", labels.present)
    labels.concepts.to_parquet(directory / "concepts.parquet", index=False)
    meta = {"format_version": FORMAT_VERSION, "categories": list(labels.categories)}
    (directory / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def load_probe_labels(directory: str | os.PathLike) -> ProbeLabels:
    """Open a directory written by :func:`save_probe_labels` (``segments`` memory-mapped)."""
    directory = Path(directory)
    missing = [
        n for n in (*_FILES, "concepts.parquet", "meta.json") if not (directory / n).is_file()
    ]
    if missing:
        raise FileNotFoundError(
            f"{directory} is not an encoded probe-label directory: {missing} missing; "
            "create it with prunedissect.dissection.encode_probe_labels(Broden(...), directory=...)"
        )
    meta = json.loads((directory / "meta.json").read_text())
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{directory} holds probe labels of format {meta.get('format_version')}, this version "
            f"reads format {FORMAT_VERSION}; delete the directory and encode the probe again"
        )
    return ProbeLabels(
        categories=tuple(meta["categories"]),
        concepts=pd.read_parquet(directory / "concepts.parquet"),
        segments=np.load(directory / "segments.npy", mmap_mode="r"),
        combos=np.load(directory / "combos.npy"),
        image_concepts=np.load(directory / "image_concepts.npy"),
        present=np.load(directory / "present.npy"),
    )


# ----------------------------------------------------------------------------------------------


def _same_file(array: np.memmap, path: Path) -> bool:
    filename = getattr(array, "filename", None)
    return filename is not None and path.exists() and Path(filename).resolve() == path.resolve()


def _common_segmentation_shape(source: SegmentationSource) -> tuple[int, int]:
    sizes = source.index[["sh", "sw"]].drop_duplicates()
    if len(sizes) != 1:
        listed = ", ".join(f"{h}x{w}" for h, w in sizes.head(5).itertuples(index=False))
        raise ValueError(
            f"the probe's segmentations differ in size ({listed}, ...); dissection needs one "
            "segmentation size for all images: resize the probe (config probe.resize)"
        )
    sh, sw = (int(v) for v in sizes.iloc[0])
    return sh, sw


def _label_names(source: SegmentationSource) -> dict[int, str]:
    table = source.labels
    return dict(zip(table["number"].astype(int), table["name"].astype(str), strict=True))


class _Encoder:
    """Assigns concept codes and pixel combinations image by image (not part of the API)."""

    def __init__(
        self, *, categories: tuple[str, ...], shape: tuple[int, int], names: Mapping[int, str]
    ) -> None:
        self.categories = categories
        self.category_index = {name: g for g, name in enumerate(categories)}
        self.shape = shape
        self.names = names
        self.max_number = max(names, default=0)
        # lookup[g, number] = code of (number, category g), 0 until first seen
        self.lookup = np.zeros((len(categories), self.max_number + 1), dtype=np.int64)
        self.codes: dict[tuple[int, int], int] = {}  # (number, category index) -> code >= 1
        self.combo_ids: dict[tuple[int, ...], int] = {(): 0}
        self.pixels: list[int] = [0]  # indexed by code
        self.images: list[int] = [0]
        self.image_rows: list[list[int]] = []
        self.present_rows: list[np.ndarray] = []

    def _code(self, number: int, category: int, *, image: int) -> int:
        key = (number, category)
        if key not in self.codes:
            if number not in self.names:
                raise ValueError(
                    f"image {image}: label number {number} ({self.categories[category]}) is not "
                    "listed in label.csv"
                )
            self.codes[key] = len(self.codes) + 1
            self.lookup[category, number] = self.codes[key]
            self.pixels.append(0)
            self.images.append(0)
        return self.codes[key]

    def add(self, i: int, segmentation: Mapping[str, LabelsLike]) -> np.ndarray:
        present = np.zeros(len(self.categories), dtype=bool)
        layers: list[np.ndarray] = []
        image_codes: dict[int, None] = {}
        for category, labels in segmentation.items():
            if category not in self.category_index:
                raise ValueError(
                    f"image {i} has labels of category {category!r}, not in category.csv"
                )
            g = self.category_index[category]
            present[g] = True
            for number in labels.image:
                if number > 0:
                    image_codes[self._code(int(number), g, image=i)] = None
            pixel = np.asarray(labels.pixel)
            if pixel.shape[0] == 0:
                continue
            if pixel.shape[1:] != self.shape:
                raise ValueError(
                    f"image {i}: {category} labels are {pixel.shape[1:]} but the probe's "
                    f"segmentation size is {self.shape}"
                )
            layers.extend(self._pixel_codes(i, g, pixel))
        self.present_rows.append(present)
        self.image_rows.append(list(image_codes))
        for code in image_codes:
            self.pixels[code] += self.shape[0] * self.shape[1]
            self.images[code] += 1
        return self._combinations(layers, image_codes)

    def _pixel_codes(self, i: int, g: int, pixel: np.ndarray) -> np.ndarray:
        """Label numbers -> concept codes of category ``g`` (0 stays 0), via the lookup table."""
        low, high = int(pixel.min()), int(pixel.max())
        if low < 0 or high > self.max_number:
            bad = low if low < 0 else high
            raise ValueError(
                f"image {i}: label number {bad} ({self.categories[g]}) is not listed in label.csv"
            )
        codes = self.lookup[g][pixel]
        unseen = (codes == 0) & (pixel > 0)
        if unseen.any():
            for number in np.unique(pixel[unseen]):
                self._code(int(number), g, image=i)
            codes = self.lookup[g][pixel]
        return codes

    def _combinations(
        self, layers: list[np.ndarray], image_codes: Mapping[int, None]
    ) -> np.ndarray:
        if not layers:
            return np.zeros(self.shape, dtype=np.int32)
        stack = np.stack(layers).reshape(len(layers), -1)
        if image_codes:
            stack[np.isin(stack, list(image_codes))] = 0
        stack.sort(axis=0)
        stack[1:][stack[1:] == stack[:-1]] = 0  # one entry per concept and pixel
        rows, inverse, counts = _unique_columns(stack, bits=max(1, len(self.codes).bit_length()))
        ids = np.empty(len(rows), dtype=np.int32)
        seen: set[int] = set()
        for r, (row, count) in enumerate(zip(rows.tolist(), counts.tolist(), strict=True)):
            key = tuple(sorted(c for c in row if c))
            ids[r] = self.combo_ids.setdefault(key, len(self.combo_ids))
            for code in key:
                self.pixels[code] += count
            seen.update(key)
        for code in seen:
            self.images[code] += 1
        return ids[inverse].reshape(self.shape)

    def finish(self, segments: np.ndarray) -> ProbeLabels:
        # Renumber concepts by (label number, category order): code order = concept order.
        names = self.names
        keys = sorted(self.codes)
        renumber = np.zeros(len(self.codes) + 1, dtype=np.int32)
        for new, key in enumerate(keys, start=1):
            renumber[self.codes[key]] = new
        old = np.array([self.codes[key] for key in keys], dtype=np.int64)
        concepts = pd.DataFrame(
            {
                "label": np.array([number for number, _ in keys], dtype=np.int64),
                "concept": pd.array([names[number] for number, _ in keys], dtype="string"),
                "category": pd.array([self.categories[g] for _, g in keys], dtype="string"),
                "pixels": np.asarray(self.pixels, dtype=np.int64)[old],
                "images": np.asarray(self.images, dtype=np.int64)[old],
            }
        )
        combos = _pad([[int(renumber[c]) for c in key] for key in self.combo_ids])
        image_concepts = _pad([[int(renumber[c]) for c in row] for row in self.image_rows])
        return ProbeLabels(
            categories=self.categories,
            concepts=concepts,
            segments=segments,
            combos=combos,
            image_concepts=image_concepts,
            present=np.stack(self.present_rows),
        )


def _unique_columns(stack: np.ndarray, *, bits: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct columns of ``stack`` (L, P) as rows, the inverse index and the counts.

    Columns of small codes are packed into one int64 key each (a 1-D unique is far faster than
    ``np.unique(axis=0)``); wide columns fall back to the latter.
    """
    n_layers = stack.shape[0]
    if n_layers * bits > 63:
        rows, inverse, counts = np.unique(stack.T, axis=0, return_inverse=True, return_counts=True)
        return rows, inverse.reshape(-1), counts
    keys = np.zeros(stack.shape[1], dtype=np.int64)
    for layer in range(n_layers):
        keys |= stack[layer].astype(np.int64) << (bits * layer)
    _, first, inverse, counts = np.unique(
        keys, return_index=True, return_inverse=True, return_counts=True
    )
    return stack[:, first].T, inverse.reshape(-1), counts


def _pad(rows: Sequence[Sequence[int]]) -> np.ndarray:
    """Rows of codes as a 0-padded int32 matrix (at least one column), each row sorted."""
    width = max([len(r) for r in rows] + [1])
    out = np.zeros((len(rows), width), dtype=np.int32)
    for r, row in enumerate(rows):
        out[r, : len(row)] = sorted(row)
    return out
