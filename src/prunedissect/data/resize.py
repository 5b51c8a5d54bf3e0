"""Resizing a Broden-format probe set, e.g. to 32 px for networks trained on CIFAR-10.

Dissecting a small-input network on 224 px probe images would measure it on inputs far from
its training distribution, so the probe is shrunk to the network's input side instead:

- images are resized bilinearly (PIL, with its antialiasing when shrinking) to ``size`` x
  ``size`` and saved in their original format (JPEG at ``jpeg_quality``);
- pixel-label PNGs are decoded to label numbers (R + 256 G), resized by nearest neighbour
  (never blending two labels into a third) and encoded again; the blue channel is carried along;
- image-level labels, label.csv, category.csv, c_*.csv and other visible top-level files are
  copied;
- index.csv is rewritten with the new ih, iw, sh, sw and every other cell untouched.

By default segmentations keep each image's segmentation-to-image ratio (broden1_224: 112/224,
so 32 px images get 16 px segmentations), the NetDissect convention; ``seg_size`` overrides it.
The result is written to a temporary directory beside the target and renamed into place when
complete; it is byte-identical for any number of workers.
"""

from __future__ import annotations

import csv
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from prunedissect.data.broden import META_COLUMNS, check_broden_dir, decode_labels, encode_labels
from prunedissect.files import staged_directory

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Job:
    """Resize one file: ``kind`` is "image" or "label"; paths relative to images/."""

    kind: str
    name: str
    height: int
    width: int


def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each of ``n_out`` output pixels under nearest-neighbour resizing.

    Output pixel ``i`` covers the source interval centred at ``(i + 0.5) * n_in / n_out``; the
    source pixel containing that centre is ``floor((2 i + 1) n_in / (2 n_out))`` (exact integer
    arithmetic, no rounding drift).
    """
    if n_in < 1 or n_out < 1:
        raise ValueError(f"sizes must be positive, got {n_in} -> {n_out}")
    return (2 * np.arange(n_out, dtype=np.int64) + 1) * n_in // (2 * n_out)


def _resize_label(source: Path, target: Path, height: int, width: int) -> None:
    with Image.open(source) as image:
        rgb = np.asarray(image.convert("RGB"))
    rows = nearest_indices(rgb.shape[0], height)
    cols = nearest_indices(rgb.shape[1], width)
    labels = decode_labels(rgb)[np.ix_(rows, cols)]
    blue = rgb[..., 2][np.ix_(rows, cols)]
    Image.fromarray(encode_labels(labels, blue)).save(target, format="PNG")


def _resize_image(source: Path, target: Path, height: int, width: int, quality: int) -> None:
    with Image.open(source) as image:
        resized = image.convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
    if target.suffix.lower() in (".jpg", ".jpeg"):
        resized.save(target, format="JPEG", quality=quality)
    else:
        resized.save(target)


def _run_job(job: _Job, source: Path, target: Path, quality: int) -> None:
    src, dst = source / "images" / job.name, target / "images" / job.name
    dst.parent.mkdir(parents=True, exist_ok=True)
    if job.kind == "image":
        _resize_image(src, dst, job.height, job.width, quality)
    else:
        _resize_label(src, dst, job.height, job.width)


def _run_chunk(jobs: list[_Job], source: Path, target: Path, quality: int) -> int:
    for job in jobs:
        _run_job(job, source, target, quality)
    return len(jobs)


def _is_image_level(cell: str) -> bool:
    return cell.strip().isdigit()


def _plan(
    rows: list[dict[str, str]], categories: list[str], size: int, seg_size: int | None
) -> list[_Job]:
    """Rewrite each row's sizes in place and list the files to resize (each label file once)."""
    jobs: list[_Job] = []
    label_sizes: dict[str, tuple[int, int]] = {}
    for row in rows:
        ih, iw, sh, sw = (int(row[key]) for key in ("ih", "iw", "sh", "sw"))
        if seg_size is None:
            new_sh, new_sw = max(1, round(size * sh / ih)), max(1, round(size * sw / iw))
        else:
            new_sh = new_sw = seg_size
        row.update(ih=str(size), iw=str(size), sh=str(new_sh), sw=str(new_sw))
        jobs.append(_Job("image", row["image"], size, size))
        for category in categories:
            for name in filter(None, row[category].split(";")):
                if _is_image_level(name):
                    continue
                previous = label_sizes.setdefault(name, (new_sh, new_sw))
                if previous != (new_sh, new_sw):
                    raise ValueError(f"label file {name} is used at two segmentation sizes")
    jobs.extend(_Job("label", name, h, w) for name, (h, w) in label_sizes.items())
    return jobs


def _chunks(jobs: list[_Job], count: int) -> list[list[_Job]]:
    return [jobs[start : start + count] for start in range(0, len(jobs), count)]


def resize_probe(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    *,
    size: int,
    seg_size: int | None = None,
    workers: int = 1,
    jpeg_quality: int = 95,
) -> Path:
    """Write a copy of the Broden directory ``source`` resized to ``size`` px into ``target``.

    See the module docstring for what happens to each file. ``workers`` > 1 resizes in that many
    threads (Pillow releases the GIL while decoding, resizing and encoding; threads, unlike
    spawned processes, do not re-run a Snakemake script). ``target`` must not exist; it appears
    only once complete.
    """
    if size < 1 or (seg_size is not None and seg_size < 1):
        raise ValueError(f"size and seg_size must be positive, got {size} and {seg_size}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    source, target = check_broden_dir(source), Path(target)
    if target.exists():
        raise FileExistsError(f"{target} already exists; delete it to resize again")
    with open(source / "index.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        rows = list(reader)
    categories = [column for column in header if column not in META_COLUMNS]
    jobs = _plan(rows, categories, size, seg_size)
    with staged_directory(target) as staging:
        _resize_all(jobs, source, staging.path, workers=workers, quality=jpeg_quality)
        with open(staging.path / "index.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=header, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        for entry in sorted(source.iterdir()):
            # Hidden files (Snakemake's .snakemake_timestamp in directory outputs) stay behind.
            if entry.is_file() and entry.name != "index.csv" and not entry.name.startswith("."):
                shutil.copyfile(entry, staging.path / entry.name)
    log.info("Resized %d images and label files of %s into %s", len(jobs), source, target)
    return target


def _resize_all(
    jobs: list[_Job], source: Path, target: Path, *, workers: int, quality: int
) -> None:
    """Run every job, in ``workers`` threads when > 1, logging progress every ~10 %."""
    chunks = _chunks(jobs, 256)
    step = max(1, len(chunks) // 10)

    def report(number: int, done: int) -> None:
        if (number + 1) % step == 0 or number + 1 == len(chunks):
            log.info("Resized %d of %d files", done, len(jobs))

    done = 0
    if workers == 1:
        for number, chunk in enumerate(chunks):
            done += _run_chunk(chunk, source, target, quality)
            report(number, done)
        return
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [pool.submit(_run_chunk, chunk, source, target, quality) for chunk in chunks]
        for number, future in enumerate(futures):
            done += future.result()
            report(number, done)
