"""Downloads, safe extraction, Broden and ImageFolder checks, against a local HTTP server.

The server runs on 127.0.0.1 in a thread, honours Range requests and has switchable failure
modes; nothing here touches the internet. Every loop in the code under test is bounded by
``retries`` and every socket by ``timeout``.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import socket
import tarfile
import threading
import zipfile
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from helpers import run_download_rule
from prunedissect.data.archives import (
    ArchiveError,
    UnsafeArchiveError,
    archive_suffix,
    safe_extract,
)
from prunedissect.data.broden import check_broden_dir
from prunedissect.data.download import BRODEN_SOURCES, broden_source, download_broden
from prunedissect.data.fetch import ChecksumError, DownloadError, fetch
from prunedissect.data.imagefolder import check_imagefolder
from prunedissect.files import file_digest

REPO = Path(__file__).resolve().parents[2]
FAST = {"timeout": 5.0, "retry_wait": 0.0, "progress": False}


# ------------------------------------------------------------------------------------------
# Local HTTP server


@dataclass
class ServerState:
    """What the server serves and how it misbehaves; requests are recorded for assertions."""

    files: dict[str, bytes] = field(default_factory=dict)
    status: int | None = None  # answer every request with this error status
    ignore_range: bool = False  # answer Range requests with the whole file (200)
    drop_first_at: int | None = None  # first response stops at this byte offset
    never_beyond: int | None = None  # no response ever sends bytes past this offset
    requests: list[tuple[str, str | None]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output quiet
        pass

    def do_GET(self) -> None:
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        range_header = self.headers.get("Range")
        state.requests.append((self.path, range_header))
        if state.status is not None:
            self.send_error(state.status)
            return
        body = state.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", range_header or "")
        if match and not state.ignore_range:
            start = int(match.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        stop = len(body)
        if state.drop_first_at is not None and len(state.requests) == 1:
            stop = state.drop_first_at
        if state.never_beyond is not None:
            stop = min(stop, state.never_beyond)
        self.wfile.write(body[start:stop])
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def server():
    """Yield (base_url, state) of a threaded HTTP server on 127.0.0.1."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.state = ServerState()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", httpd.state  # type: ignore
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _payload(size: int = 300_000) -> bytes:
    return np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _leftovers(directory: Path) -> list[str]:
    """Every path below ``directory``, relative, sorted."""
    return sorted(str(path.relative_to(directory)) for path in directory.rglob("*"))


# ------------------------------------------------------------------------------------------
# Archives


def _broden_files() -> dict[str, bytes]:
    """A minimal Broden-format directory's files (one 8 px JPEG with one pixel label)."""
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(jpeg, format="JPEG")
    label = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 0, 0)).save(label, format="PNG")
    return {
        "index.csv": b"image,split,ih,iw,sh,sw,color,object,part,material,scene,texture\n"
        b"set/a.jpg,train,8,8,4,4,set/a_color.png,,,,,\n",
        "label.csv": b"number,name,category,frequency,coverage,syns\n1,red-c,color(1),1,1.0,\n",
        "category.csv": b"name,first,last,count,frequency\ncolor,1,1,1,1\n",
        "c_color.csv": b"code,number,name,frequency,coverage\n1,1,red-c,1,1.0\n",
        "images/set/a.jpg": jpeg.getvalue(),
        "images/set/a_color.png": label.getvalue(),
    }


def _zip(members: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as handle:
        for name, data in members.items():
            handle.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (0o120777 << 16) | 0
            handle.writestr(info, target)
    return buffer.getvalue()


def _tar(
    members: dict[str, bytes],
    *,
    symlinks: dict[str, str] | None = None,
    hardlinks: dict[str, str] | None = None,
) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as handle:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            handle.addfile(info, io.BytesIO(data))
        for kind, links in ((tarfile.SYMTYPE, symlinks), (tarfile.LNKTYPE, hardlinks)):
            for name, target in (links or {}).items():
                info = tarfile.TarInfo(name)
                info.type = kind
                info.linkname = target
                handle.addfile(info)
    return buffer.getvalue()


def _broden_zip(root: str = "broden1_224") -> bytes:
    return _zip({f"{root}/{name}": data for name, data in _broden_files().items()})


# ------------------------------------------------------------------------------------------
# fetch


def test_fetch_downloads_verifies_and_renames(server, tmp_path):
    url, state = server
    data = _payload()
    state.files["/data.bin"] = data
    dest = fetch(f"{url}/data.bin", tmp_path / "data.bin", md5=_md5(data), **FAST)
    assert dest == tmp_path / "data.bin"
    assert dest.read_bytes() == data
    assert _leftovers(tmp_path) == ["data.bin"]
    assert state.requests == [("/data.bin", None)]


def test_fetch_skips_a_verified_existing_file(server, tmp_path):
    url, state = server
    data = _payload(1000)
    (tmp_path / "data.bin").write_bytes(data)
    fetch(f"{url}/data.bin", tmp_path / "data.bin", md5=_md5(data), **FAST)
    assert state.requests == []


def test_fetch_replaces_an_existing_file_with_the_wrong_checksum(server, tmp_path):
    url, state = server
    data = _payload(1000)
    state.files["/data.bin"] = data
    (tmp_path / "data.bin").write_bytes(b"stale")
    fetch(f"{url}/data.bin", tmp_path / "data.bin", md5=_md5(data), **FAST)
    assert (tmp_path / "data.bin").read_bytes() == data


def test_fetch_resumes_after_the_server_drops_the_connection(server, tmp_path):
    url, state = server
    data = _payload()
    state.files["/data.bin"] = data
    state.drop_first_at = 123_456
    fetch(f"{url}/data.bin", tmp_path / "data.bin", md5=_md5(data), **FAST)
    assert (tmp_path / "data.bin").read_bytes() == data
    assert state.requests == [("/data.bin", None), ("/data.bin", "bytes=123456-")]
    assert _leftovers(tmp_path) == ["data.bin"]


def test_fetch_resumes_a_partial_file_left_by_an_earlier_run(server, tmp_path):
    url, state = server
    data = _payload()
    state.files["/data.bin"] = data
    (tmp_path / "data.bin.part").write_bytes(data[:1000])
    fetch(f"{url}/data.bin", tmp_path / "data.bin", md5=_md5(data), **FAST)
    assert (tmp_path / "data.bin").read_bytes() == data
    assert state.requests == [("/data.bin", "bytes=1000-")]


def test_fetch_restarts_when_the_server_ignores_range(server, tmp_path):
    url, state = server
    data = _payload()
    state.files["/data.bin"] = data
    state.ignore_range = True
    (tmp_path / "data.bin.part").write_bytes(b"x" * 5000)  # would corrupt the file if appended to
    fetch(f"{url}/data.bin", tmp_path / "data.bin", md5=_md5(data), **FAST)
    assert (tmp_path / "data.bin").read_bytes() == data


def test_fetch_accepts_a_complete_partial_file_answered_with_416(server, tmp_path):
    url, state = server
    data = _payload(2000)
    state.files["/data.bin"] = data
    (tmp_path / "data.bin.part").write_bytes(data)
    fetch(f"{url}/data.bin", tmp_path / "data.bin", md5=_md5(data), **FAST)
    assert (tmp_path / "data.bin").read_bytes() == data
    assert state.requests == [("/data.bin", "bytes=2000-")]


def test_fetch_rejects_a_wrong_checksum_and_keeps_nothing(server, tmp_path):
    url, state = server
    data = _payload(5000)
    state.files["/data.bin"] = data
    wrong = "0" * 32
    with pytest.raises(ChecksumError) as error:
        fetch(f"{url}/data.bin", tmp_path / "data.bin", md5=wrong, hint="(see probe.md5)", **FAST)
    message = str(error.value)
    assert wrong in message and _md5(data) in message
    assert "set the expected MD5" in message and message.endswith("(see probe.md5)")
    assert _leftovers(tmp_path) == []


def test_fetch_reports_a_download_that_stays_truncated(server, tmp_path):
    url, state = server
    data = _payload()
    state.files["/data.bin"] = data
    state.never_beyond = 70_000
    with pytest.raises(DownloadError) as error:
        fetch(f"{url}/data.bin", tmp_path / "data.bin", md5=_md5(data), retries=2, **FAST)
    message = str(error.value)
    assert "truncated after 3 attempts" in message
    assert f"70000 of {len(data)} bytes" in message
    assert len(state.requests) == 3
    # The partial download stays for resuming; nothing is at the destination.
    assert _leftovers(tmp_path) == ["data.bin.part"]
    assert (tmp_path / "data.bin.part").read_bytes() == data[:70_000]


@pytest.mark.parametrize(
    ("status", "words"), [(404, "not at this address"), (500, "server failed")]
)
def test_fetch_reports_http_errors_without_retrying(server, tmp_path, status, words):
    url, state = server
    state.status = status
    with pytest.raises(DownloadError) as error:
        fetch(f"{url}/data.bin", tmp_path / "data.bin", md5="0" * 32, **FAST)
    assert f"HTTP {status}" in str(error.value) and words in str(error.value)
    assert len(state.requests) == 1
    assert _leftovers(tmp_path) == []


def test_fetch_reports_an_unreachable_server(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(DownloadError) as error:
        fetch(f"http://127.0.0.1:{port}/x.zip", tmp_path / "x.zip", md5="0" * 32, retries=1, **FAST)
    assert "failed after 2 attempts" in str(error.value)
    assert "could not connect" in str(error.value)
    assert _leftovers(tmp_path) == []


def test_fetch_rejects_a_malformed_md5(tmp_path):
    with pytest.raises(ValueError, match="32 hexadecimal"):
        fetch("http://127.0.0.1:1/x", tmp_path / "x", md5="abc")


def test_md5sum_matches_hashlib(tmp_path):
    data = _payload(3_000_000)
    (tmp_path / "f").write_bytes(data)
    assert file_digest(tmp_path / "f", "md5") == _md5(data)


# ------------------------------------------------------------------------------------------
# safe_extract


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_safe_extract_unwraps_a_single_top_directory(tmp_path, kind):
    members = {"top/a.txt": b"a", "top/sub/b.txt": b"b"}
    archive = tmp_path / f"x.{kind}"
    archive.write_bytes(_zip(members) if kind == "zip" else _tar(members))
    target = safe_extract(archive, tmp_path / "out")
    assert (target / "a.txt").read_bytes() == b"a"
    assert (target / "sub" / "b.txt").read_bytes() == b"b"
    assert _leftovers(tmp_path) == ["out", "out/a.txt", "out/sub", "out/sub/b.txt", f"x.{kind}"]


def test_safe_extract_keeps_the_layout_without_unwrap(tmp_path):
    archive = tmp_path / "x.zip"
    archive.write_bytes(_zip({"top/a.txt": b"a"}))
    safe_extract(archive, tmp_path / "out", unwrap=False)
    assert (tmp_path / "out" / "top" / "a.txt").read_bytes() == b"a"


def test_safe_extract_keeps_inner_links(tmp_path):
    archive = tmp_path / "x.tar.gz"
    archive.write_bytes(_tar({"top/a.txt": b"a"}, symlinks={"top/link": "a.txt"}))
    target = safe_extract(archive, tmp_path / "out")
    assert (target / "link").is_symlink() and (target / "link").read_bytes() == b"a"


ESCAPES = {
    "zip dot-dot": lambda: _zip({"top/ok.txt": b"ok", "top/../../evil.txt": b"evil"}),
    "zip absolute": lambda: _zip({"top/ok.txt": b"ok", "/tmp/evil.txt": b"evil"}),
    "zip symlink out": lambda: _zip({"top/ok.txt": b"ok"}, symlinks={"top/l": "../../evil"}),
    "tar dot-dot": lambda: _tar({"top/ok.txt": b"ok", "../evil.txt": b"evil"}),
    "tar absolute": lambda: _tar({"top/ok.txt": b"ok", "/tmp/evil.txt": b"evil"}),
    "tar symlink absolute": lambda: _tar({"top/ok.txt": b"ok"}, symlinks={"top/l": "/etc"}),
    "tar symlink out": lambda: _tar({"top/ok.txt": b"ok"}, symlinks={"top/l": "../../evil"}),
    "tar hardlink out": lambda: _tar({"top/ok.txt": b"ok"}, hardlinks={"top/h": "../evil"}),
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_safe_extract_rejects_members_escaping_the_target(tmp_path, case):
    work = tmp_path / "work"
    work.mkdir()
    archive = work / "bad.archive"
    archive.write_bytes(ESCAPES[case]())
    with pytest.raises(UnsafeArchiveError) as error:
        safe_extract(archive, work / "out")
    assert "Refusing to extract" in str(error.value) and "nothing was extracted" in str(error.value)
    # Nothing written: no target, no staging directory, not even the harmless member.
    assert _leftovers(work) == ["bad.archive"]
    assert not any("evil" in name for name in _leftovers(tmp_path))


@pytest.mark.parametrize("kind", ["zip", "tar"])
def test_safe_extract_rejects_a_truncated_archive(tmp_path, kind):
    members = {f"top/{number}.bin": _payload(20_000) for number in range(4)}
    data = _zip(members) if kind == "zip" else _tar(members)
    archive = tmp_path / "cut.archive"
    archive.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ArchiveError) as error:
        safe_extract(archive, tmp_path / "out")
    assert "truncated" in str(error.value)
    assert _leftovers(tmp_path) == ["cut.archive"]


def test_safe_extract_removes_partial_output_when_a_member_is_corrupt(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as handle:
        handle.writestr("top/1.txt", b"first member, extracted before the failure")
        handle.writestr("top/2.txt", b"second member, extracted before the failure")
        handle.writestr("top/3.txt", b"third member: CORRUPTED")
    data = buffer.getvalue().replace(b"CORRUPTED", b"CORRUPTEX")  # CRC no longer matches
    archive = tmp_path / "bad.zip"
    archive.write_bytes(data)
    with pytest.raises(ArchiveError, match="Bad CRC-32"):
        safe_extract(archive, tmp_path / "out")
    assert _leftovers(tmp_path) == ["bad.zip"]


def test_safe_extract_refuses_an_existing_target(tmp_path):
    archive = tmp_path / "x.zip"
    archive.write_bytes(_zip({"a.txt": b"a"}))
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        safe_extract(archive, tmp_path / "out")


def test_archive_suffix_reads_the_url():
    assert archive_suffix("http://h/data/broden1_224.zip") == ".zip"
    assert archive_suffix("https://h/c/cifar-10-python.tar.gz?x=1") == ".tar.gz"
    assert archive_suffix("https://h/download/12345") == ".zip"


# ------------------------------------------------------------------------------------------
# Broden


def test_broden_source_defaults_and_overrides():
    assert broden_source("broden1_224") == BRODEN_SOURCES["broden1_224"]
    assert BRODEN_SOURCES["broden1_224"].md5 == "be13c292eaef3300da03f8d0e48eab1c"
    mirror = broden_source("broden1_224", url="http://mirror/b.zip", md5="A" * 32)
    assert (mirror.url, mirror.md5) == ("http://mirror/b.zip", "a" * 32)


def test_broden_227_requires_a_user_md5():
    with pytest.raises(ValueError, match="No MD5 is published for broden1_227.*probe.md5"):
        broden_source("broden1_227")
    assert broden_source("broden1_227", md5="1" * 32).url.endswith("broden1_227.zip")


def test_broden_source_rejects_unknown_names():
    with pytest.raises(ValueError, match="Unknown Broden variant"):
        broden_source("broden9")


def test_download_broden_end_to_end(server, tmp_path):
    url, state = server
    archive = _broden_zip()
    state.files["/broden1_224.zip"] = archive
    dest = tmp_path / "broden" / "broden1_224"
    download_broden("broden1_224", dest, url=f"{url}/broden1_224.zip", md5=_md5(archive), **FAST)
    assert check_broden_dir(dest) == dest
    for name, data in _broden_files().items():
        assert (dest / name).read_bytes() == data
    assert (tmp_path / "broden" / "broden1_224.zip").read_bytes() == archive
    assert sorted(os.listdir(tmp_path / "broden")) == ["broden1_224", "broden1_224.zip"]


def test_download_broden_checksum_failure_leaves_no_dataset(server, tmp_path):
    url, state = server
    state.files["/b.zip"] = _broden_zip()
    with pytest.raises(ChecksumError, match="probe.md5"):
        download_broden("broden1_224", tmp_path / "b", url=f"{url}/b.zip", md5="0" * 32, **FAST)
    assert _leftovers(tmp_path) == []


def test_download_broden_escaping_archive_leaves_no_dataset(server, tmp_path):
    url, state = server
    archive = _zip({**{f"b/{k}": v for k, v in _broden_files().items()}, "b/../../x": b"x"})
    state.files["/b.zip"] = archive
    with pytest.raises(UnsafeArchiveError):
        download_broden(
            "broden1_224", tmp_path / "b", url=f"{url}/b.zip", md5=_md5(archive), **FAST
        )
    assert _leftovers(tmp_path) == ["b.zip"]  # the verified archive, no dataset directory


def test_download_broden_rejects_an_archive_without_index(server, tmp_path):
    url, state = server
    archive = _zip({"b/readme.txt": b"not broden"})
    state.files["/b.zip"] = archive
    with pytest.raises(ValueError, match="index.csv is missing"):
        download_broden(
            "broden1_224", tmp_path / "b", url=f"{url}/b.zip", md5=_md5(archive), **FAST
        )
    assert _leftovers(tmp_path) == ["b.zip"]


def _write_files(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda root: (root / "index.csv").unlink(), "index.csv is missing"),
        (lambda root: (root / "label.csv").unlink(), "label.csv is missing"),
        (lambda root: (root / "images/set/a.jpg").unlink(), "a.jpg, does not exist"),
        (lambda root: (root / "index.csv").write_text("image,split\n"), "lacks the Broden columns"),
        (lambda root: (root / "index.csv").write_text("image,split,ih,iw,sh,sw\n"), "no images"),
    ],
)
def test_check_broden_dir_names_what_is_missing(tmp_path, change, words):
    root = _write_files(tmp_path / "probe", _broden_files())
    change(root)
    with pytest.raises(ValueError, match=re.escape(words)):
        check_broden_dir(root)


def test_check_broden_dir_rejects_a_missing_directory(tmp_path):
    with pytest.raises(ValueError, match="does not exist; set probe.path"):
        check_broden_dir(tmp_path / "nowhere")


# ------------------------------------------------------------------------------------------
# ImageFolder


def _imagefolder(root: Path, layout: dict[str, list[str]]) -> Path:
    """Create ``root/<split>/<class>/0.JPEG`` for each split -> classes entry."""
    for split, classes in layout.items():
        for name in classes:
            (root / split / name).mkdir(parents=True)
            (root / split / name / "0.JPEG").write_bytes(b"jpeg")
    return root


def test_check_imagefolder_accepts_a_valid_layout(tmp_path):
    root = _imagefolder(tmp_path / "in", {"train": ["n01", "n02"], "val": ["n01", "n02"]})
    assert check_imagefolder(root) is None
    assert check_imagefolder(str(root)) is None


def test_check_imagefolder_names_every_problem(tmp_path):
    root = _imagefolder(tmp_path / "in", {"train": ["a", "b", "c"], "val": ["a", "d"]})
    (root / "train" / "c" / "0.JPEG").unlink()
    (root / "train" / "c" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError) as error:
        check_imagefolder(root)
    message = str(error.value)
    assert "classes missing from val/: b, c" in message
    assert "classes missing from train/: d" in message
    assert "class directories without image files" in message and "train/c" in message


def test_check_imagefolder_reports_a_missing_split(tmp_path):
    root = _imagefolder(tmp_path / "in", {"train": ["a"]})
    with pytest.raises(ValueError, match=re.escape(f"{root / 'val'} is missing")):
        check_imagefolder(root)


def test_check_imagefolder_explains_a_flat_val_folder(tmp_path):
    root = _imagefolder(tmp_path / "in", {"train": ["a"]})
    (root / "val").mkdir()
    (root / "val" / "ILSVRC2012_val_00000001.JPEG").write_bytes(b"jpeg")
    with pytest.raises(ValueError, match="holds images directly.*valprep.sh"):
        check_imagefolder(root)


@pytest.mark.parametrize("path", [None, "does-not-exist"])
def test_check_imagefolder_needs_an_existing_path(tmp_path, path):
    with pytest.raises(ValueError, match="dataset.path"):
        check_imagefolder(None if path is None else tmp_path / path)


# ------------------------------------------------------------------------------------------
# The rule and the paper preset


@pytest.mark.slow
def test_download_broden_rule_runs_the_download(server, tmp_path):
    url, state = server
    archive = _broden_zip()
    state.files["/broden1_224.zip"] = archive
    result = run_download_rule(
        tmp_path,
        "resources/broden/broden1_224",
        config={
            "probe": {"url": f"{url}/broden1_224.zip", "md5": _md5(archive)},
            "dataset": {"url": "unused", "md5": "unused"},
        },
        unresized_probe="resources/broden/broden1_224",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    dest = tmp_path / "run" / "resources" / "broden" / "broden1_224"
    assert check_broden_dir(dest) == dest
    log = (tmp_path / "run" / "logs" / "download_broden" / "broden1_224.log").read_text()
    assert f"MD5 {_md5(archive)} verified" in log
    assert state.requests == [("/broden1_224.zip", None)]


def _validated(path: Path) -> dict:
    from snakemake.utils import validate

    config = yaml.safe_load(path.read_text())
    validate(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"), set_default=True)
    return config


def test_paper_preset_validates_and_matches_the_paper():
    config = _validated(REPO / "config" / "paper.yaml")
    assert config["model"]["arch"] == "resnet50"
    assert config["dataset"]["kind"] == "imagefolder" and config["dataset"]["image_size"] == 224
    assert config["trials"] == 3
    density = (1 - config["pruning"]["fraction"]) ** config["pruning"]["levels"]
    assert round(100 * density, 1) == 1.4
    assert config["pruning"]["rewind"] == {"unit": "epoch", "step": 6}
    assert config["dissection"]["layers"] == ["layer4"]
    assert (config["dissection"]["quantile"], config["dissection"]["iou_threshold"]) == (
        0.005,
        0.05,
    )
    assert config["probe"]["kind"] == "broden" and config["probe"]["name"] == "broden1_224"
    training = config["training"]
    # open_lth's lr 0.4 at batch 1024, linearly scaled to the one-GPU batch of 256
    assert training["batch_size"] == 256 and training["warmup_epochs"] == 5
    assert training["lr"] / training["batch_size"] == pytest.approx(0.4 / 1024)
    assert (training["epochs"], training["milestones"], training["gamma"]) == (
        90,
        [30, 60, 80],
        0.1,
    )
    assert (training["momentum"], training["weight_decay"]) == (0.9, 1e-4)
