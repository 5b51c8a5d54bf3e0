"""Checking a user-provided ImageFolder training set (ImageNet), whose download needs a licence
and is therefore never automated. Standard library only, so the workflow runs it while it parses.
"""

from __future__ import annotations

import os
from pathlib import Path

#: File name endings torchvision's ImageFolder accepts (compared case-insensitively).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


def _has_image(directory: Path) -> bool:
    with os.scandir(directory) as entries:
        return any(
            entry.name.lower().endswith(IMAGE_EXTENSIONS) and entry.is_file() for entry in entries
        )


def _class_dirs(split: Path) -> list[str]:
    with os.scandir(split) as entries:
        return sorted(entry.name for entry in entries if entry.is_dir())


def _preview(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return f"{shown}, ... ({len(names)} in all)" if len(names) > limit else shown


def check_imagefolder(path: str | os.PathLike[str] | None) -> None:
    """Check the ImageFolder layout ``path/{train,val}/<class>/<image>``; raise ValueError if not.

    Both splits must exist, hold the same class directories and have at least one image file in
    every class directory. The message names everything that is missing, including the common
    ImageNet pitfall of a flat val/ folder that was never sorted into class folders.
    """
    if path is None:
        raise ValueError(
            "dataset.path is not set: with dataset.kind imagefolder it must name a directory "
            "holding train/ and val/ with one sub-directory per class."
        )
    root = Path(path)
    if not root.is_dir():
        raise ValueError(
            f"dataset.path {root} does not exist or is not a directory; set it to the folder "
            "holding train/ and val/ (e.g. your ImageNet copy)."
        )
    problems: list[str] = []
    classes: dict[str, list[str]] = {}
    for split in ("train", "val"):
        directory = root / split
        if not directory.is_dir():
            problems.append(f"{directory} is missing")
            continue
        classes[split] = _class_dirs(directory)
        if not classes[split]:
            hint = ""
            if _has_image(directory):
                hint = (
                    " (it holds images directly: sort them into one folder per class, e.g. "
                    "with the valprep.sh script of the PyTorch ImageNet example)"
                )
            problems.append(f"{directory} has no class directories{hint}")
    if len(classes) == 2 and classes["train"] and classes["val"]:
        train, val = set(classes["train"]), set(classes["val"])
        if train - val:
            problems.append(f"classes missing from val/: {_preview(sorted(train - val))}")
        if val - train:
            problems.append(f"classes missing from train/: {_preview(sorted(val - train))}")
    empty = [
        f"{split}/{name}"
        for split, names in classes.items()
        for name in names
        if not _has_image(root / split / name)
    ]
    if empty:
        problems.append(
            f"class directories without image files ({', '.join(IMAGE_EXTENSIONS)}): "
            f"{_preview(empty)}"
        )
    if problems:
        raise ValueError(
            f"dataset.path {root} is not a usable ImageFolder training set "
            "(expected train/<class>/<image> and val/<class>/<image>): " + "; ".join(problems)
        )
