"""CIFAR-10: genuine python-pickle archive -> ImageFolder PNGs, download rule and preset.

The archive is generated in the real format: a tar.gz of cifar-10-batches-py/ whose batches
are protocol-2 pickles written the way Python 2's cPickle wrote them (every string a byte
string, numpy arrays reconstructed through numpy.core.multiarray).
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
import pickle
import struct
import tarfile
import threading
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from helpers import run_download_rule
from prunedissect.data.archives import ArchiveError
from prunedissect.data.cifar import (
    CIFAR10_CLASSES,
    cifar10_to_imagefolder,
    load_cifar_batch,
    prepare_cifar10,
)
from prunedissect.data.fetch import ChecksumError
from prunedissect.data.imagefolder import check_imagefolder

REPO = Path(__file__).resolve().parents[2]


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Protocol-2 pickler writing str and bytes as Python 2 str (SHORT_BINSTRING/BINSTRING)."""

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def save_py2_str(self, obj: str | bytes) -> None:
        data = obj.encode("latin-1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def _py2_pickle(obj: object) -> bytes:
    buffer = io.BytesIO()
    _Py2Pickler(buffer, protocol=2).dump(obj)
    # numpy 2 names its module numpy._core; the archive was written by numpy 1 (numpy.core).
    return buffer.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")


@dataclass
class Cifar:
    archive: Path
    train_images: np.ndarray  # N x 32 x 32 x 3
    train_labels: np.ndarray
    val_images: np.ndarray
    val_labels: np.ndarray


def _batch(
    rng: np.random.Generator, count: int, label: str
) -> tuple[bytes, np.ndarray, np.ndarray]:
    data = rng.integers(0, 256, (count, 3072), dtype=np.uint8)
    labels = rng.permutation(np.arange(count) % 10).tolist()  # every class present
    pickled = _py2_pickle(
        {
            "batch_label": label,
            "labels": labels,
            "data": data,
            "filenames": [f"img_{label[:5]}_{i}.png" for i in range(count)],
        }
    )
    return pickled, data.reshape(count, 3, 32, 32).transpose(0, 2, 3, 1), np.array(labels)


def _make_archive(
    path: Path, *, per_batch: int = 12, test: int = 13, skip: str | None = None, seed: int = 0
) -> Cifar:
    rng = np.random.default_rng(seed)
    members: dict[str, bytes] = {
        "batches.meta": _py2_pickle(
            {
                "num_cases_per_batch": per_batch,
                "label_names": list(CIFAR10_CLASSES),
                "num_vis": 3072,
            }
        ),
        "readme.html": b"<html>CIFAR-10</html>",
    }
    train_images, train_labels = [], []
    for number in range(1, 6):
        pickled, images, labels = _batch(rng, per_batch, f"training batch {number} of 5")
        members[f"data_batch_{number}"] = pickled
        train_images.append(images)
        train_labels.append(labels)
    members["test_batch"], val_images, val_labels = _batch(rng, test, "testing batch 1 of 1")
    if skip:
        del members[skip]
    with tarfile.open(path, "w:gz") as handle:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(data)
            handle.addfile(info, io.BytesIO(data))
    return Cifar(
        path, np.concatenate(train_images), np.concatenate(train_labels), val_images, val_labels
    )


@pytest.fixture
def cifar(tmp_path) -> Cifar:
    return _make_archive(tmp_path / "cifar-10-python.tar.gz")


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_load_cifar_batch_reads_the_python2_format():
    data = np.zeros((2, 3072), dtype=np.uint8)
    # Image 1, row 2, column 5: red at plane offset 0, green at 1024, blue at 2048.
    data[1, 0 * 1024 + 2 * 32 + 5] = 11
    data[1, 1 * 1024 + 2 * 32 + 5] = 22
    data[1, 2 * 1024 + 2 * 32 + 5] = 33
    images, labels = load_cifar_batch(_py2_pickle({"data": data, "labels": [3, 9]}))
    assert images.shape == (2, 32, 32, 3) and images.dtype == np.uint8
    assert images[1, 2, 5].tolist() == [11, 22, 33]
    assert int(images.sum()) == 66
    assert labels.tolist() == [3, 9]


class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_load_cifar_batch_refuses_to_run_code(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"data": _Exploit(marker), "labels": []}, protocol=2)
    with pytest.raises(ArchiveError, match="refusing to load"):
        load_cifar_batch(payload)
    assert not marker.exists()


def test_load_cifar_batch_rejects_wrong_shapes():
    with pytest.raises(ArchiveError, match="expected N x 3072"):
        load_cifar_batch(_py2_pickle({"data": np.zeros((2, 100), np.uint8), "labels": [0, 1]}))


def test_cifar10_to_imagefolder_writes_every_image_in_its_class(cifar, tmp_path):
    out = cifar10_to_imagefolder(cifar.archive, tmp_path / "images")
    check_imagefolder(out)
    for split, images, labels in (
        ("train", cifar.train_images, cifar.train_labels),
        ("val", cifar.val_images, cifar.val_labels),
    ):
        assert sorted(os.listdir(out / split)) == sorted(CIFAR10_CLASSES)
        files = sorted((out / split).glob("*/*.png"))
        assert len(files) == len(images)
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            path = out / split / CIFAR10_CLASSES[label] / f"{index:05d}.png"
            with Image.open(path) as png:
                assert png.mode == "RGB"
                np.testing.assert_array_equal(np.asarray(png), image)
    assert sorted(os.listdir(tmp_path)) == ["cifar-10-python.tar.gz", "images"]


def test_cifar10_to_imagefolder_is_deterministic(cifar, tmp_path):
    first = _tree(cifar10_to_imagefolder(cifar.archive, tmp_path / "a"))
    second = _tree(cifar10_to_imagefolder(cifar.archive, tmp_path / "b"))
    assert first == second and len(first) == 5 * 12 + 13


def test_cifar10_to_imagefolder_names_a_missing_batch(tmp_path):
    archive = _make_archive(tmp_path / "c.tar.gz", skip="data_batch_3").archive
    with pytest.raises(ArchiveError, match="data_batch_3 missing"):
        cifar10_to_imagefolder(archive, tmp_path / "images")
    assert sorted(os.listdir(tmp_path)) == ["c.tar.gz"]


def test_cifar10_to_imagefolder_rejects_a_truncated_archive(cifar, tmp_path):
    data = cifar.archive.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError, match="truncated or corrupt"):
        cifar10_to_imagefolder(cut, tmp_path / "images")
    assert not (tmp_path / "images").exists()
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".images")]


def test_cifar10_to_imagefolder_refuses_an_existing_output(cifar, tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(FileExistsError):
        cifar10_to_imagefolder(cifar.archive, tmp_path / "images")


@pytest.fixture
def file_server(tmp_path):
    """Serve ``tmp_path/www`` on 127.0.0.1; yield (base_url, directory)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *args: None  # type: ignore[method-assign]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", www
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def test_prepare_cifar10_downloads_and_converts(file_server, tmp_path):
    url, www = file_server
    cifar = _make_archive(www / "cifar-10-python.tar.gz")
    out = tmp_path / "resources" / "cifar10" / "images"
    prepare_cifar10(
        out, url=f"{url}/cifar-10-python.tar.gz", md5=_md5(cifar.archive), progress=False
    )
    assert (out.parent / "cifar-10-python.tar.gz").read_bytes() == cifar.archive.read_bytes()
    assert len(list((out / "val").glob("*/*.png"))) == 13
    assert sorted(os.listdir(out.parent)) == ["cifar-10-python.tar.gz", "images"]


def test_prepare_cifar10_wrong_checksum_leaves_nothing(file_server, tmp_path):
    url, www = file_server
    _make_archive(www / "cifar-10-python.tar.gz")
    out = tmp_path / "resources" / "cifar10" / "images"
    with pytest.raises(ChecksumError, match="dataset.md5"):
        prepare_cifar10(out, url=f"{url}/cifar-10-python.tar.gz", md5="0" * 32, progress=False)
    assert os.listdir(out.parent) == []


@pytest.mark.slow
def test_prepare_cifar10_rule(file_server, tmp_path):
    url, www = file_server
    cifar = _make_archive(www / "c.tar.gz")
    result = run_download_rule(
        tmp_path,
        "resources/cifar10/images",
        config={
            "dataset": {"url": f"{url}/c.tar.gz", "md5": _md5(cifar.archive)},
            "probe": {"url": None, "md5": None},
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    images = tmp_path / "run" / "resources" / "cifar10" / "images"
    check_imagefolder(images)
    assert len(list((images / "train").glob("*/*.png"))) == 60
    log = (tmp_path / "run" / "logs" / "prepare_cifar10" / "cifar10.log").read_text()
    assert "Wrote 60 training and 13 validation PNGs" in log


def test_cifar_preset_validates_and_matches_open_lth():
    from snakemake.utils import validate

    config = yaml.safe_load((REPO / "config" / "cifar.yaml").read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"), set_default=True)
    assert config["model"] == {"arch": "resnet20", "width": 16}
    assert config["dataset"]["kind"] == "cifar10"
    assert config["dataset"]["md5"] == "c58f30108f718f92721af3b95e74349a"  # schema default
    training = config["training"]
    assert (training["lr"], training["momentum"], training["weight_decay"]) == (0.1, 0.9, 1e-4)
    assert (training["batch_size"], training["epochs"], training["milestones"]) == (
        128,
        160,
        [80, 120],
    )
    assert config["probe"]["kind"] == "broden" and config["probe"]["resize"] == 32
    assert config["dissection"]["layers"] == ["layer3"]
