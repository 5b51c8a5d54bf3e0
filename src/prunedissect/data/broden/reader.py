"""Reading a Broden-format probe directory: label tables, the image index, lazy label loading."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from prunedissect.data.broden.format import (
    CODE_COLUMNS,
    LABEL_COLUMNS,
    META_COLUMNS,
    BrodenFormatError,
    decode_label_png,
)

_CATEGORY_ENTRY = re.compile(r"^([^()]+)\((\d+)\)$")


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
    codes = _read_csv(path, CODE_COLUMNS)
    codes = codes.astype({"code": np.int64, "number": np.int64, "frequency": np.int64})
    codes["coverage"] = pd.to_numeric(codes["coverage"]).astype(float)
    # Some copies list the unlabelled code 0 ('-'); it is not a label.
    return codes[codes["number"] > 0].reset_index(drop=True)


def _read_labels(path: Path, codes: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    table = _read_csv(path, LABEL_COLUMNS)
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
