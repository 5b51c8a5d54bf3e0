"""Reading and writing probe sets in the Broden on-disk format (Bau et al., CVPR 2017).

One reader serves the generated concept world and the real ``broden1_224``/``broden1_227``.
The format, as written by NetDissect's ``joinseg.py`` and read by NetDissect-Lite's
``loader/data_loader.py``:

- ``index.csv``: ``image,split,ih,iw,sh,sw`` then one column per category (``color, object,
  part, material, scene, texture``). A category cell holds ``;``-separated entries, dominant
  first: a file name (relative to ``images/``) is a pixel-level label PNG, an integer is an
  image-level label; an empty cell means the category is not labelled in that image.
- Label PNGs hold the global label number of every pixel as ``R + 256 * G``.
- ``label.csv``: ``number,name,category,frequency,coverage,syns``, one row per label number
  >= 1 (0 means unlabelled and has no row); ``category`` reads like ``material(36);object(3)``
  (images per category, most frequent first); ``coverage`` is in units of whole images.
- ``category.csv``: ``name,first,last,count,frequency``.
- ``c_<category>.csv``: ``code,number,name,frequency,coverage``, a dense per-category coding.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torch.utils.data import Dataset

#: The columns of ``index.csv`` in Broden's order: image metadata, then categories.
META_COLUMNS = ("image", "split", "ih", "iw", "sh", "sw")
CATEGORY_COLUMNS = ("color", "object", "part", "material", "scene", "texture")
INDEX_COLUMNS = META_COLUMNS + CATEGORY_COLUMNS

_CATEGORY_ENTRY = re.compile(r"^([^()]+)\((\d+)\)$")


class BrodenFormatError(ValueError):
    """A Broden directory is missing a file or holds a malformed one."""


@dataclass(frozen=True)
class CategoryLabels:
    """The labels of one category in one image.

    ``pixel`` stacks the label PNGs as global label numbers, shape ``(n_layers, sh, sw)``,
    0 where a pixel is unlabelled (zero layers when the category is only image-level);
    ``image`` holds the image-level label numbers (each covers the whole image).
    """

    pixel: np.ndarray
    image: tuple[int, ...]


class Broden:
    """A Broden-format probe directory: label tables, the image index and lazy label loading.

    Attributes: ``root``; ``categories`` (``category.csv`` order); ``index`` (``index.csv`` as
    read: strings, with ``ih, iw, sh, sw`` as integers and empty cells as ``""``); ``labels``
    (columns ``number, name, category, frequency, coverage``, one row per label number >= 1,
    sorted by number); ``codes`` (category -> its ``c_<category>.csv``).

    A label's ``category`` is its primary category: the one in which it covers the most pixels
    (NetDissect-Lite's rule), ties going to the category listed first in ``label.csv``.
    Construction reads only the CSV files; images and label PNGs are read on demand.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise BrodenFormatError(
                f"Broden directory {self.root} does not exist; point probe.path at a directory "
                "holding index.csv, label.csv, category.csv and images/"
            )
        for name in ("index.csv", "label.csv", "category.csv"):
            if not (self.root / name).is_file():
                raise BrodenFormatError(
                    f"{self.root} is not a Broden directory: {name} is missing "
                    "(expected index.csv, label.csv, category.csv, c_<category>.csv, images/)"
                )
        if not (self.root / "images").is_dir():
            raise BrodenFormatError(
                f"{self.root / 'images'} is missing (the images and label PNGs)"
            )
        category_table = _read_csv(self.root / "category.csv", ("name",))
        self.categories: list[str] = list(category_table["name"])
        self.index: pd.DataFrame = _read_index(self.root / "index.csv", self.categories)
        self.codes: dict[str, pd.DataFrame] = {
            category: _read_codes(self.root, category) for category in self.categories
        }
        self.labels: pd.DataFrame = _read_labels(self.root / "label.csv", self.codes)

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return (
            f"Broden({str(self.root)!r}: {len(self)} images, {len(self.labels)} labels, "
            f"categories {self.categories})"
        )

    def image_path(self, i: int) -> Path:
        """Path of image ``i`` (``images/<index.image>``)."""
        return self.root / "images" / self.index.at[i, "image"]

    def load_image(self, i: int) -> Image.Image:
        """Image ``i`` as an RGB PIL image."""
        path = self.image_path(i)
        if not path.is_file():
            raise BrodenFormatError(f"index.csv row {i} names {path}, which does not exist")
        try:
            with Image.open(path) as image:
                return image.convert("RGB")
        except OSError as error:  # truncated or not an image: name the file
            raise BrodenFormatError(
                f"{path} (index.csv row {i}): unreadable image ({error})"
            ) from None

    def segmentation(self, i: int) -> dict[str, CategoryLabels]:
        """The labels of image ``i`` for every category labelled in it (empty cells left out)."""
        row = self.index.iloc[i]
        shape = (int(row["sh"]), int(row["sw"]))
        result: dict[str, CategoryLabels] = {}
        for category in self.categories:
            entries = [entry for entry in row[category].split(";") if entry]
            if not entries:
                continue
            numbers = tuple(int(entry) for entry in entries if entry.isdigit())
            files = [entry for entry in entries if not entry.isdigit()]
            layers = [self._load_label_png(name, shape, row=i) for name in files]
            pixel = np.stack(layers) if layers else np.zeros((0, *shape), dtype=np.int32)
            result[category] = CategoryLabels(pixel=pixel, image=numbers)
        return result

    def _load_label_png(self, name: str, shape: tuple[int, int], *, row: int) -> np.ndarray:
        path = self.root / "images" / name
        if not path.is_file():
            raise BrodenFormatError(
                f"index.csv row {row} names label file {path}, which does not exist"
            )
        try:
            labels = decode_label_png(path)
        except OSError as error:
            raise BrodenFormatError(
                f"{path} (index.csv row {row}): unreadable label PNG ({error})"
            ) from None
        if labels.shape != shape:
            raise BrodenFormatError(
                f"label file {path} is {labels.shape[0]}x{labels.shape[1]} but index.csv row {row} "
                f"says sh x sw = {shape[0]}x{shape[1]}"
            )
        return labels


class BrodenImages(Dataset):
    """The probe images of a :class:`Broden` in index order, as ``(transform(image), index)``."""

    def __init__(self, broden: Broden, transform) -> None:
        self.broden = broden
        self.transform = transform

    def __len__(self) -> int:
        return len(self.broden)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.broden.load_image(i)), i


def decode_label_png(path: str | os.PathLike) -> np.ndarray:
    """Global label numbers ``R + 256 * G`` of a Broden label PNG, as int32 ``(h, w)``."""
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    return rgb[..., 0].astype(np.int32) + 256 * rgb[..., 1].astype(np.int32)


def encode_label_png(labels: np.ndarray) -> Image.Image:
    """An RGB PIL image holding ``labels`` (non-negative ints < 65536) as ``R + 256 * G``."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"a label map must be 2-D (h, w), got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= 65536):
        raise ValueError("label numbers must lie in 0..65535 to fit R + 256 * G")
    rgb = np.zeros((*labels.shape, 3), dtype=np.uint8)
    rgb[..., 0] = labels % 256
    rgb[..., 1] = labels // 256
    return Image.fromarray(rgb, mode="RGB")


def _read_csv(path: Path, required: Sequence[str]) -> pd.DataFrame:
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [column for column in required if column not in table.columns]
    if missing:
        raise BrodenFormatError(f"{path} lacks column(s) {missing}; it has {list(table.columns)}")
    return table


def _read_index(path: Path, categories: Sequence[str]) -> pd.DataFrame:
    index = _read_csv(path, META_COLUMNS)
    missing = [category for category in categories if category not in index.columns]
    if missing:
        raise BrodenFormatError(
            f"category.csv lists {missing} but {path} has no such column(s); its columns are "
            f"{list(index.columns)}"
        )
    for column in ("ih", "iw", "sh", "sw"):
        if not index[column].str.fullmatch(r"\d+").all():
            bad = index.index[~index[column].str.fullmatch(r"\d+")][0]
            raise BrodenFormatError(
                f"{path} row {bad}: column {column} must be a positive integer, "
                f"got {index.at[bad, column]!r}"
            )
        index[column] = index[column].astype(np.int64)
    return index


def _read_codes(root: Path, category: str) -> pd.DataFrame:
    path = root / f"c_{category}.csv"
    if not path.is_file():
        raise BrodenFormatError(f"category.csv lists {category!r} but {path} is missing")
    codes = _read_csv(path, ("code", "number", "name", "frequency", "coverage"))
    codes = codes.astype({"code": np.int64, "number": np.int64, "frequency": np.int64})
    codes["coverage"] = pd.to_numeric(codes["coverage"]).astype(float)
    # Some copies list the unlabelled code 0 ('-'); it is not a label.
    return codes[codes["number"] > 0].reset_index(drop=True)


def _read_labels(path: Path, codes: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    table = _read_csv(path, ("number", "name", "category", "frequency", "coverage"))
    table = table[table["number"] != "0"]
    coverage_in = {
        (category, int(number)): float(cover)
        for category, frame in codes.items()
        for number, cover in zip(frame["number"], frame["coverage"], strict=True)
    }
    primary = []
    for number, listed in zip(table["number"].astype(int), table["category"], strict=True):
        names = [_parse_category_entry(entry, path) for entry in listed.split(";") if entry]
        if not names:
            raise BrodenFormatError(f"{path}: label {number} has no category")
        # max() keeps the first of equal coverages, i.e. the category listed first
        primary.append(max(names, key=lambda name: coverage_in.get((name, number), 0.0)))
    labels = pd.DataFrame(
        {
            "number": table["number"].astype(np.int64).to_numpy(),
            "name": table["name"].to_numpy(),
            "category": primary,
            "frequency": table["frequency"].astype(np.int64).to_numpy(),
            "coverage": pd.to_numeric(table["coverage"]).astype(float).to_numpy(),
        }
    )
    duplicated = labels["number"][labels["number"].duplicated()]
    if len(duplicated):
        raise BrodenFormatError(f"{path}: label number {duplicated.iloc[0]} appears twice")
    known = set(labels["number"])
    for category, frame in codes.items():
        unknown = sorted(set(frame["number"]) - known)
        if unknown:
            raise BrodenFormatError(
                f"c_{category}.csv refers to label number(s) {unknown[:5]} absent from label.csv"
            )
    return labels.sort_values("number", ignore_index=True)


def _parse_category_entry(entry: str, path: Path) -> str:
    match = _CATEGORY_ENTRY.match(entry)
    if match is None:
        raise BrodenFormatError(f"{path}: category entry {entry!r} should read like 'object(12)'")
    return match.group(1)


# ----------------------------------------------------------------------------------------------
# Writing


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
            ("number", "name", "category", "frequency", "coverage", "syns"),
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
                ("code", "number", "name", "frequency", "coverage"),
                code_rows,
            )
        _write_csv(
            self.root / "category.csv",
            ("name", "first", "last", "count", "frequency"),
            category_rows,
        )


def _write_csv(path: Path, columns: Iterable[str], rows: Iterable[Mapping[str, str]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
