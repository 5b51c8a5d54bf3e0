"""Checking a Broden-format probe before anything expensive runs.

- :func:`check_probe_files` decodes every image and label PNG (rule ``check_probe``, the first
  job of a study) and lists every broken file with the reason: unreadable or truncated images,
  label PNGs whose size disagrees with ``index.csv``, label numbers absent from ``label.csv``
  (with their pixel count). It first checks the CSV structure
  (:func:`prunedissect.data.broden.checks.structure_errors`).

Standard library, numpy and PIL only (the reader :class:`~prunedissect.data.broden.Broden` is
imported when files are decoded).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from prunedissect.data.broden.checks import structure_errors


def _decode_image(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as image:
        image.load()


def _row_problems(broden, i: int, known: np.ndarray) -> Iterator[tuple[Path, str]]:
    from prunedissect.data.broden import decode_label_png

    path = broden.image_path(i)
    try:
        _decode_image(path)
    except (OSError, ValueError) as error:
        yield path, f"unreadable image ({error})"
    row = broden.index.iloc[i]
    shape = (int(row["sh"]), int(row["sw"]))
    for category in broden.categories:
        for entry in (e for e in row[category].split(";") if e):
            if entry.isdigit():
                if not np.isin(int(entry), known):
                    yield broden.root / "index.csv", (
                        f"row {i} ({row['image']}): image-level {category} label {entry} is not "
                        "in label.csv"
                    )
                continue
            label_path = broden.root / "images" / entry
            try:
                labels = decode_label_png(label_path)
            except (OSError, ValueError) as error:
                yield label_path, f"unreadable {category} label PNG ({error})"
                continue
            if labels.shape != shape:
                yield label_path, (
                    f"{labels.shape[0]}x{labels.shape[1]} but index.csv row {i} says "
                    f"sh x sw = {shape[0]}x{shape[1]}"
                )
            numbers, counts = np.unique(labels[labels > 0], return_counts=True)
            unknown = ~np.isin(numbers, known)
            if unknown.any():
                listed = ", ".join(
                    f"{n} ({c} pixels)" for n, c in zip(numbers[unknown], counts[unknown])
                )
                yield label_path, f"{category} label number(s) {listed} not in label.csv"


class ProbeCheckError(ValueError):
    """Files of a probe set are broken; the message lists them."""


def check_probe_files(
    root: str | os.PathLike, *, limit: int = 50, workers: int = 4
) -> dict[str, int]:
    """Decode every image and label PNG of the probe ``root``; return counts when all are fine.

    Raises :class:`ProbeCheckError` listing up to ``limit`` broken files (path and reason) and
    how many there are in all; a structure problem raises the reader's BrodenFormatError.
    """
    from prunedissect.data.broden import Broden, BrodenFormatError

    problems = structure_errors(root)
    if problems:
        raise BrodenFormatError("; ".join(problems))
    broden = Broden(root)
    known = np.sort(broden.labels["number"].to_numpy())
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        found = list(pool.map(lambda i: list(_row_problems(broden, i, known)), range(len(broden))))
    broken = [problem for row in found for problem in row]
    if broken:
        lines = [f"  {path}: {reason}" for path, reason in broken[:limit]]
        more = f"\n  ... and {len(broken) - limit} more" if len(broken) > limit else ""
        raise ProbeCheckError(
            f"the probe set {broden.root} has {len(broken)} broken file(s); fix or remove them "
            "(and their index.csv rows) before dissecting:\n" + "\n".join(lines) + more
        )
    label_files = sum(
        1
        for category in broden.categories
        for cell in broden.index[category]
        for entry in cell.split(";")
        if entry and not entry.isdigit()
    )
    return {"images": len(broden), "label_files": label_files, "labels": len(known)}
