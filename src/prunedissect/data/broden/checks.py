"""Checking a Broden-format directory's structure from its CSV files (headers and names only,
cheap enough for the workflow to run while it parses; :mod:`prunedissect.data.probe_check`
decodes every file)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from prunedissect.data.broden.format import CODE_COLUMNS, LABEL_COLUMNS, META_COLUMNS


def _header(path: Path) -> list[str]:
    with open(path, newline="") as handle:
        return next(csv.reader(handle), [])


def structure_errors(root: str | os.PathLike) -> list[str]:
    """Problems with the CSV structure of the Broden directory ``root`` (headers only)."""
    root = Path(root)
    problems = []
    for name, columns in (("label.csv", LABEL_COLUMNS), ("category.csv", ("name",))):
        if not (root / name).is_file():
            problems.append(f"{root / name} is missing")
            continue
        missing = [c for c in columns if c not in _header(root / name)]
        if missing:
            problems.append(f"{root / name} lacks column(s) {missing}")
    if problems or not (root / "index.csv").is_file():
        return problems
    with open(root / "category.csv", newline="") as handle:
        categories = [row["name"] for row in csv.DictReader(handle)]
    index_columns = _header(root / "index.csv")
    for category in categories:
        if category not in index_columns:
            problems.append(
                f"category.csv lists category {category!r} but {root / 'index.csv'} has no "
                f"{category!r} column (its columns: {', '.join(index_columns)})"
            )
        codes = root / f"c_{category}.csv"
        if not codes.is_file():
            problems.append(f"category.csv lists category {category!r} but {codes} is missing")
        elif missing := [c for c in CODE_COLUMNS if c not in _header(codes)]:
            problems.append(f"{codes} lacks column(s) {missing}")
    return problems


def check_broden_dir(path: str | os.PathLike[str]) -> Path:
    """Validate a Broden-format directory by reading its index.csv; return it as a Path.

    Checks that index.csv exists, has the Broden columns and at least one row, that label.csv
    exists, that the first row's image file is present, and the CSV structure
    (:func:`structure_errors`: every category of category.csv has
    an index.csv column and a c_<category>.csv). Raises ValueError naming what is missing.
    """
    root = Path(path)
    if not root.is_dir():
        raise ValueError(
            f"Broden directory {root} does not exist; set probe.path to a directory holding "
            "index.csv, or leave it null to download the probe."
        )
    index = root / "index.csv"
    if not index.is_file():
        raise ValueError(
            f"{root} is not a Broden directory: index.csv is missing (did the archive unpack "
            "into a sub-directory? point probe.path at the folder holding index.csv)."
        )
    with open(index, newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        first = next(reader, None)
    missing = [column for column in META_COLUMNS if column not in header]
    if missing:
        raise ValueError(f"{index} lacks the Broden columns {missing}; found {header}.")
    if first is None:
        raise ValueError(f"{index} lists no images.")
    if not (root / "label.csv").is_file():
        raise ValueError(f"{root} is not a complete Broden directory: label.csv is missing.")
    image = root / "images" / first[header.index("image")]
    if not image.is_file():
        raise ValueError(
            f"{root} is incomplete: the first image in index.csv, {image}, does not exist."
        )
    problems = structure_errors(root)
    if problems:
        raise ValueError("; ".join(problems) + ".")
    return root
