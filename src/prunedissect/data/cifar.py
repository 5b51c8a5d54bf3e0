"""CIFAR-10 from its official python-pickle archive to an ImageFolder tree of PNG files.

The archive (``cifar-10-python.tar.gz``) holds ``cifar-10-batches-py/`` with five training
batches ``data_batch_1..5``, ``test_batch`` and ``batches.meta``; each batch is a Python 2
pickle of a dict with byte-string keys: ``data`` (uint8, N x 3072, the red, green and blue
32 x 32 planes of each image) and ``labels`` (N ints). The batches are read straight from the
tar (nothing but the PNGs is written) with an unpickler that can only build plain containers
and numpy arrays, so a tampered archive cannot run code. The result,
``<out>/{train,val}/<class>/<index>.png`` with ``index`` the image's position in its split, is
byte-identical on every run; ``val`` is the official test batch.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from prunedissect.data.archives import ArchiveError
from prunedissect.data.fetch import fetch
from prunedissect.files import staged_directory

log = logging.getLogger(__name__)

#: Class names in label order, as listed in the archive's batches.meta.
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
TRAIN_BATCHES = tuple(f"data_batch_{number}" for number in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
SIDE = 32

# The only globals a CIFAR pickle needs: numpy array reconstruction (written by numpy 1.x as
# numpy.core.*, by numpy 2 as numpy._core.*) and the codec Python 3 uses for bytes in protocol 2.
_ALLOWED_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler limited to containers, strings, numbers and numpy arrays."""

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a CIFAR batch holds only numpy arrays, "
                "lists and strings (is the archive genuine?)"
            )
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def _unpickle(data: bytes, what: str) -> dict:
    try:
        loaded = _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
        raise ArchiveError(f"{what} is not a readable CIFAR pickle: {error}") from error
    if not isinstance(loaded, dict):
        raise ArchiveError(f"{what} holds a {type(loaded).__name__}, expected a dict")
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in loaded.items()}


def load_cifar_batch(data: bytes, *, what: str = "CIFAR batch") -> tuple[np.ndarray, np.ndarray]:
    """Decode one pickled batch into images (N x 32 x 32 x 3, uint8, HWC) and labels (N, int64)."""
    batch = _unpickle(data, what)
    if "data" not in batch or "labels" not in batch:
        raise ArchiveError(f"{what} lacks 'data' or 'labels' (keys: {sorted(batch)})")
    pixels = np.asarray(batch["data"], dtype=np.uint8)
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if pixels.ndim != 2 or pixels.shape[1] != 3 * SIDE * SIDE or len(labels) != len(pixels):
        raise ArchiveError(
            f"{what} has data of shape {pixels.shape} and {len(labels)} labels; expected "
            f"N x {3 * SIDE * SIDE} and N labels"
        )
    images = pixels.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _class_names(data: bytes) -> tuple[str, ...]:
    meta = _unpickle(data, META)
    names = tuple(
        name.decode() if isinstance(name, bytes) else str(name)
        for name in meta.get("label_names", [])
    )
    if len(names) != len(CIFAR10_CLASSES):
        raise ArchiveError(f"{META} lists {len(names)} classes, expected 10: {names}")
    return names


def _read_members(archive: Path) -> dict[str, bytes]:
    """Read the batch files (matched by base name) from the tar without writing anything."""
    wanted = {*TRAIN_BATCHES, TEST_BATCH, META}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(archive, "r:*") as handle:
            for member in handle:
                name = PurePosixPath(member.name).name
                if member.isfile() and name in wanted:
                    found[name] = handle.extractfile(member).read()  # type: ignore[union-attr]
    except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
        raise ArchiveError(
            f"{archive} is truncated or corrupt ({type(error).__name__}: {error}); delete it "
            "and download it again."
        ) from error
    missing = sorted(wanted - found.keys())
    if missing:
        raise ArchiveError(
            f"{archive} is not the CIFAR-10 python archive: {', '.join(missing)} missing "
            "(expected cifar-10-batches-py/ with data_batch_1..5, test_batch, batches.meta)."
        )
    return found


def _write_split(directory: Path, classes: tuple[str, ...], batches: list[tuple]) -> int:
    for name in classes:
        (directory / name).mkdir(parents=True)
    index = 0
    for images, labels in batches:
        for image, label in zip(images, labels, strict=True):
            if not 0 <= label < len(classes):
                raise ArchiveError(f"label {label} is outside 0..{len(classes) - 1}")
            path = directory / classes[label] / f"{index:05d}.png"
            Image.fromarray(image).save(path, format="PNG", compress_level=6)
            index += 1
    return index


def cifar10_to_imagefolder(
    archive: str | os.PathLike[str], out_dir: str | os.PathLike[str]
) -> Path:
    """Convert the CIFAR-10 python archive into ``out_dir/{train,val}/<class>/<index>.png``.

    ``index`` (5 digits) is the image's position in its split: training batches 1 to 5 in order,
    then the test batch for ``val``. The tree is written to a temporary directory beside
    ``out_dir`` and renamed into place when complete; ``out_dir`` must not exist.
    """
    archive, out_dir = Path(archive), Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists; delete it to convert again")
    members = _read_members(archive)
    classes = _class_names(members[META])
    train = [load_cifar_batch(members[name], what=name) for name in TRAIN_BATCHES]
    val = [load_cifar_batch(members[TEST_BATCH], what=TEST_BATCH)]
    with staged_directory(out_dir) as staging:
        counts = {
            split: _write_split(staging.path / split, classes, batches)
            for split, batches in (("train", train), ("val", val))
        }
    log.info(
        "Wrote %d training and %d validation PNGs to %s", counts["train"], counts["val"], out_dir
    )
    return out_dir


def prepare_cifar10(
    out_dir: str | os.PathLike[str],
    *,
    url: str,
    md5: str,
    archive: str | os.PathLike[str] | None = None,
    progress: bool = True,
    timeout: float = 60.0,
    retries: int = 5,
    retry_wait: float = 5.0,
) -> Path:
    """Download the CIFAR-10 archive (verified by ``md5``) and convert it into ``out_dir``.

    ``archive`` is where the download is kept (default: ``cifar-10-python.tar.gz`` beside
    ``out_dir``), so that a rerun converts again without downloading.
    """
    out_dir = Path(out_dir)
    archive = Path(archive) if archive else out_dir.with_name("cifar-10-python.tar.gz")
    fetch(
        url,
        archive,
        md5=md5,
        progress=progress,
        timeout=timeout,
        retries=retries,
        retry_wait=retry_wait,
        hint="(Config: dataset.url sets a mirror, dataset.md5 the checksum.)",
    )
    return cifar10_to_imagefolder(archive, out_dir)
