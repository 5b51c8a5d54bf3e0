"""Writing a Broden-format probe directory: images, label PNGs and the CSV tables."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from prunedissect.data.broden.format import (
    CATEGORY_COLUMNS,
    CATEGORY_FILE_COLUMNS,
    CODE_COLUMNS,
    INDEX_COLUMNS,
    LABEL_FILE_COLUMNS,
    encode_label_png,
)


@dataclass(frozen=True)
class LabelSpec:
    """A label to be written: its global number (>= 1), unique name and category."""

    number: int
    name: str
    category: str


@dataclass
class _Tally:
    frequency: int = 0
    coverage: float = 0.0


@dataclass(frozen=True)
class WrittenImage:
    """What :func:`write_image_files` wrote: the ``index.csv`` row and per-label coverages.

    ``coverage`` maps ``(category, number)`` to the labelled pixels of every layer divided by
    the pixels of one layer (1.0 for an image-level label), as NetDissect's ``joinseg.py``
    counts them.
    """

    row: dict[str, str]
    coverage: dict[tuple[str, int], float]


def write_image_files(
    root: str | os.PathLike,
    name: str,
    *,
    image: np.ndarray,
    pixel: Mapping[str, Sequence[np.ndarray]],
    image_level: Mapping[str, Sequence[int]] | None = None,
    split: str = "train",
) -> WrittenImage:
    """Write ``images/<name>.png`` and its label PNGs ``images/<name>_<category>[_<k>].png``.

    ``pixel`` maps a category to its label layers (dominant first, each ``(sh, sw)``);
    ``image_level`` maps a category to image-level label numbers. Touches only its own files,
    so worker processes may call it in parallel; :class:`BrodenWriter` collects the results.
    """
    images = Path(root) / "images"
    image_name = f"{name}.png"
    Image.fromarray(np.ascontiguousarray(image, dtype=np.uint8), mode="RGB").save(
        images / image_name
    )
    seg_shape = next((layers[0].shape for layers in pixel.values() if len(layers)), image.shape[:2])
    row = {
        "image": image_name,
        "split": split,
        "ih": str(image.shape[0]),
        "iw": str(image.shape[1]),
        "sh": str(seg_shape[0]),
        "sw": str(seg_shape[1]),
    }
    coverage: dict[tuple[str, int], float] = {}
    area = seg_shape[0] * seg_shape[1]
    for category in CATEGORY_COLUMNS:
        layers = pixel.get(category, ())
        entries = []
        for k, layer in enumerate(layers):
            if layer.shape != seg_shape:
                raise ValueError(
                    f"{category} layer {k} has shape {layer.shape}, expected {seg_shape}"
                )
            suffix = f"_{category}" if len(layers) == 1 else f"_{category}_{k + 1}"
            entries.append(f"{name}{suffix}.png")
            encode_label_png(layer).save(images / entries[-1])
            numbers, pixels = np.unique(layer[layer > 0], return_counts=True)
            for number, count in zip(numbers.tolist(), pixels.tolist(), strict=True):
                key = (category, number)
                coverage[key] = coverage.get(key, 0.0) + count / area
        numbers = [int(number) for number in (image_level or {}).get(category, ())]
        for number in numbers:
            coverage[(category, number)] = 1.0
        row[category] = ";".join(entries + [str(number) for number in numbers])
    return WrittenImage(row, coverage)


@dataclass
class BrodenWriter:
    """Writes a Broden directory one image at a time, then its label tables on :meth:`close`.

    Frequencies and coverages are computed from what was written, the way NetDissect's
    ``joinseg.py`` does: ``frequency`` counts the images holding a label in a category,
    ``coverage`` sums the per-image coverages of :class:`WrittenImage`. Files are written
    deterministically (no timestamps). Images go to ``images/<folder>/``.
    """

    root: Path
    labels: Sequence[LabelSpec]
    folder: str = "images"
    _rows: list[dict[str, str]] = field(default_factory=list, init=False)
    _tally: dict[tuple[int, str], _Tally] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        numbers = [label.number for label in self.labels]
        if min(numbers) < 1 or len(set(numbers)) != len(numbers):
            raise ValueError("label numbers must be unique and >= 1 (0 means unlabelled)")
        names = [label.name for label in self.labels]
        if len(set(names)) != len(names):
            raise ValueError("label names must be unique")
        unknown = {label.category for label in self.labels} - set(CATEGORY_COLUMNS)
        if unknown:
            raise ValueError(f"categories {sorted(unknown)} are not Broden's {CATEGORY_COLUMNS}")
        self._category_of = {label.number: label.category for label in self.labels}
        (self.root / "images" / self.folder).mkdir(parents=True, exist_ok=True)

    def add(
        self,
        stem: str,
        *,
        image: np.ndarray,
        pixel: Mapping[str, Sequence[np.ndarray]],
        image_level: Mapping[str, Sequence[int]] | None = None,
        split: str = "train",
    ) -> None:
        """Write image ``<folder>/<stem>.png`` with its label PNGs and record it (see
        :func:`write_image_files`)."""
        self.record(
            write_image_files(
                self.root,
                f"{self.folder}/{stem}",
                image=image,
                pixel=pixel,
                image_level=image_level,
                split=split,
            )
        )

    def record(self, written: WrittenImage) -> None:
        """Add an image written by :func:`write_image_files` to the index and the statistics."""
        for (category, number), coverage in written.coverage.items():
            if self._category_of.get(number) != category:
                raise ValueError(f"label {number} is not a declared label of category {category!r}")
            tally = self._tally.setdefault((number, category), _Tally())
            tally.frequency += 1
            tally.coverage += coverage
        self._rows.append(written.row)

    def close(self) -> None:
        """Write ``index.csv``, ``label.csv``, ``category.csv`` and ``c_<category>.csv``."""
        _write_csv(self.root / "index.csv", INDEX_COLUMNS, self._rows)
        label_rows = []
        for label in sorted(self.labels, key=lambda label: label.number):
            tally = self._tally.get((label.number, label.category), _Tally())
            label_rows.append(
                {
                    "number": str(label.number),
                    "name": label.name,
                    "category": f"{label.category}({tally.frequency})",
                    "frequency": str(tally.frequency),
                    "coverage": f"{tally.coverage:f}",
                    "syns": "",
                }
            )
        _write_csv(
            self.root / "label.csv",
            LABEL_FILE_COLUMNS,
            label_rows,
        )
        self._write_categories()

    def _write_categories(self) -> None:
        categories = [c for c in CATEGORY_COLUMNS if any(lab.category == c for lab in self.labels)]
        categories.sort(key=lambda c: min(lab.number for lab in self.labels if lab.category == c))
        category_rows = []
        for category in categories:
            members = [label for label in self.labels if label.category == category]
            tallies = {
                lab.number: self._tally.get((lab.number, category), _Tally()) for lab in members
            }
            numbers = [lab.number for lab in members]
            category_rows.append(
                {
                    "name": category,
                    "first": str(min(numbers)),
                    "last": str(max(numbers)),
                    "count": str(len(members)),
                    "frequency": str(sum(t.frequency for t in tallies.values())),
                }
            )
            # dense codes: most frequent first, as joinseg.py orders them
            ordered = sorted(
                members,
                key=lambda lab: (
                    -tallies[lab.number].frequency,
                    -tallies[lab.number].coverage,
                    lab.number,
                ),
            )
            code_rows = [
                {
                    "code": str(code),
                    "number": str(label.number),
                    "name": label.name,
                    "frequency": str(tallies[label.number].frequency),
                    "coverage": f"{tallies[label.number].coverage:f}",
                }
                for code, label in enumerate(ordered, start=1)
            ]
            _write_csv(
                self.root / f"c_{category}.csv",
                CODE_COLUMNS,
                code_rows,
            )
        _write_csv(
            self.root / "category.csv",
            CATEGORY_FILE_COLUMNS,
            category_rows,
        )


def _write_csv(path: Path, columns: Iterable[str], rows: Iterable[Mapping[str, str]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
