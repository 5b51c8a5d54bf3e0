"""Writing the concept world: the ImageFolder training set and the Broden-format probe set, each
image from its own seeded generator, in parallel worker processes."""

from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from prunedissect.data.broden import BrodenWriter, WrittenImage, write_image_files
from prunedissect.data.concepts.layout import (
    sample_probe_spec,
    sample_swatch_spec,
    sample_training_spec,
)
from prunedissect.data.concepts.rendering import render
from prunedissect.data.concepts.specs import RenderedImage, SceneSpec, SwatchSpec
from prunedissect.data.concepts.vocabulary import (
    _STREAM,
    MIN_IMAGE_SIZE,
    PROBE_FOLDER,
    SWATCH_EVERY,
    class_names,
    concept_labels,
)

logger = logging.getLogger(__name__)

def _image_rng(seed: int, stream: str, class_index: int, index: int) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence([seed, _STREAM[stream], class_index, index])
    )


def training_spec(
    *, seed: int, split: str, class_index: int, index: int, image_size: int
) -> SceneSpec:
    """What image ``index`` of class ``class_index`` in ``split`` ("train" or "val") holds."""
    rng = _image_rng(seed, split, class_index, index)
    return sample_training_spec(rng, class_index, image_size=image_size)


def training_image(
    *, seed: int, split: str, class_index: int, index: int, image_size: int
) -> RenderedImage:
    """Image ``index`` of class ``class_index`` in ``split``, rendered."""
    spec = training_spec(
        seed=seed, split=split, class_index=class_index, index=index, image_size=image_size
    )
    return render(spec, image_size)


def is_swatch(index: int) -> bool:
    """Whether probe image ``index`` is a texture swatch (every ``SWATCH_EVERY``-th image)."""
    return index % SWATCH_EVERY == SWATCH_EVERY // 2


def probe_spec(*, seed: int, index: int, image_size: int) -> SceneSpec | SwatchSpec:
    """What probe image ``index`` holds: a scene, or a texture swatch (:func:`is_swatch`)."""
    if is_swatch(index):
        return sample_swatch_spec(_image_rng(seed, "probe", 1, index))
    return sample_probe_spec(_image_rng(seed, "probe", 0, index), image_size=image_size)


def probe_image(*, seed: int, index: int, image_size: int) -> RenderedImage:
    """Probe image ``index``, rendered with its labels."""
    return render(probe_spec(seed=seed, index=index, image_size=image_size), image_size)


def _prepare_empty(directory: Path) -> None:
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(
            f"{directory} already holds files; remove it first (generation never overwrites)"
        )
    directory.mkdir(parents=True, exist_ok=True)


def generate_concept_dataset(
    *,
    probe_dir: str | os.PathLike,
    images_dir: str | os.PathLike,
    seed: int,
    image_size: int,
    train_per_class: int,
    val_per_class: int,
    probe_images: int,
    workers: int = 1,
) -> None:
    """Write the ImageFolder training set and the Broden-format probe set of the concept world.

    ``images_dir`` receives ``train/<class>/<n>.png`` and ``val/<class>/<n>.png``;
    ``probe_dir`` receives a Broden directory (index.csv, label.csv, category.csv,
    c_<category>.csv, images/concepts/...). Both must be absent or empty. The same arguments
    give byte-identical files whatever ``workers`` (processes rendering in parallel) is.
    """
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be at least {MIN_IMAGE_SIZE} px, got {image_size}")
    counts = {
        "train_per_class": train_per_class,
        "val_per_class": val_per_class,
        "probe_images": probe_images,
    }
    for name, value in counts.items():
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    probe_dir, images_dir = Path(probe_dir), Path(images_dir)
    _prepare_empty(probe_dir)
    _prepare_empty(images_dir)
    try:
        with _executor(workers) as pool:
            _write_training_set(
                images_dir,
                seed=seed,
                image_size=image_size,
                counts={"train": train_per_class, "val": val_per_class},
                pool=pool,
            )
            _write_probe_set(
                probe_dir, seed=seed, image_size=image_size, count=probe_images, pool=pool
            )
    except BaseException:
        shutil.rmtree(probe_dir, ignore_errors=True)
        shutil.rmtree(images_dir, ignore_errors=True)
        raise


class _Serial:
    """The executor interface, run in this process (workers=1)."""

    def map(self, fn, jobs, chunksize: int = 1):
        return map(fn, jobs)

    def __enter__(self) -> "_Serial":
        return self

    def __exit__(self, *exc) -> None:
        return None


def _executor(workers: int):
    if workers == 1:
        return _Serial()
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def _save_training_image(job: tuple[Path, int, str, int, int, int]) -> None:
    folder, seed, split, class_index, index, image_size = job
    rendered = training_image(
        seed=seed, split=split, class_index=class_index, index=index, image_size=image_size
    )
    Image.fromarray(rendered.image, mode="RGB").save(folder / f"{index:05d}.png")


def _write_training_set(
    root: Path, *, seed: int, image_size: int, counts: dict[str, int], pool
) -> None:
    names = class_names()
    jobs = []
    for split, count in counts.items():
        for class_index, name in enumerate(names):
            folder = root / split / name
            folder.mkdir(parents=True)
            jobs += [
                (folder, seed, split, class_index, index, image_size) for index in range(count)
            ]
    for _ in pool.map(_save_training_image, jobs, chunksize=64):
        pass
    for split, count in counts.items():
        logger.info(
            "wrote %d %s images (%d classes x %d)", count * len(names), split, len(names), count
        )


def _save_probe_image(job: tuple[Path, int, int, int]) -> WrittenImage:
    root, seed, index, image_size = job
    rendered = probe_image(seed=seed, index=index, image_size=image_size)
    return write_image_files(
        root,
        f"{PROBE_FOLDER}/{index:06d}",
        image=rendered.image,
        pixel={name: list(layers) for name, layers in rendered.pixel.items()},
        image_level={name: [number] for name, number in rendered.image_level.items()},
    )


def _write_probe_set(root: Path, *, seed: int, image_size: int, count: int, pool) -> None:
    writer = BrodenWriter(root, labels=concept_labels(), folder=PROBE_FOLDER)
    jobs = [(root, seed, index, image_size) for index in range(count)]
    for written in pool.map(_save_probe_image, jobs, chunksize=32):
        writer.record(written)
    writer.close()
    logger.info("wrote %d probe images with labels to %s", count, root)
