"""Files that prove themselves: atomic writes and a SHA-256 sidecar checked before every use.

Every checkpoint-like file the workflow writes (trained weights ``model.pt``, masks
``mask.npz``, the rewind point ``rewind.pt``, resume points ``resume.pt`` and activation files
``activations.npy``) is written through a temporary sibling and an atomic rename, then gets a
sidecar ``<file>.sha256`` (also written atomically, after the file) holding one line in
``sha256sum`` format, ``<hex digest>  <file name>``, so ``sha256sum -c model.pt.sha256`` checks it
by hand. The file itself keeps its usual format (``model.pt`` stays a plain ``state_dict``).

:func:`verify` is what a consumer calls before reading: it raises :class:`CorruptFileError`
naming the file and what is wrong (missing, no sidecar, digest mismatch). :func:`quick_check`
is the cheap variant the workflow runs over existing files while it builds its job graph: full
digests for files up to ``full_limit`` bytes, and for larger ``.npy`` files only the header
against the file size (catches truncation without reading gigabytes).

This module imports only the standard library (and numpy lazily), so the workflow can call it
while parsing without importing torch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, MutableMapping
from pathlib import Path

from prunedissect.files import file_digest, write_bytes_atomic

SUFFIX = ".sha256"
FULL_DIGEST_LIMIT = 1 << 30
"""quick_check hashes files up to this size (1 GiB); larger .npy files get a header check."""


class CorruptFileError(ValueError):
    """A checkpoint-like file is missing, truncated or does not match its checksum."""

    def __init__(self, path: str | os.PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def sidecar(path: str | os.PathLike) -> Path:
    """The checksum file of ``path``: ``<path>.sha256``."""
    path = Path(path)
    return path.with_name(path.name + SUFFIX)


def sha256_file(path: str | os.PathLike) -> str:
    """Hexadecimal SHA-256 of a file's bytes."""
    return file_digest(path, "sha256")


def write_checksum(path: str | os.PathLike) -> str:
    """Write ``<path>.sha256`` for the file as it is now; return the digest."""
    path = Path(path)
    digest = sha256_file(path)
    write_bytes_atomic(sidecar(path), f"{digest}  {path.name}\n".encode())
    return digest


def write_verified(path: str | os.PathLike, payload: bytes) -> None:
    """Write ``payload`` atomically, then its checksum sidecar."""
    write_bytes_atomic(path, payload)
    write_checksum(path)


def recorded_digest(path: str | os.PathLike) -> str:
    """The digest stored in ``path``'s sidecar; CorruptFileError when it is absent or garbled."""
    path = Path(path)
    try:
        text = sidecar(path).read_text()
    except FileNotFoundError:
        raise CorruptFileError(
            path, f"its checksum file {sidecar(path).name} is missing, so it cannot be trusted"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise CorruptFileError(path, f"its checksum file is unreadable ({error})") from None
    digest = text.split(" ", 1)[0].strip()
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise CorruptFileError(path, f"its checksum file {sidecar(path).name} is garbled")
    return digest


def verify(path: str | os.PathLike) -> None:
    """Raise :class:`CorruptFileError` unless ``path`` exists and matches its sidecar."""
    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(path, "the file is missing")
    expected = recorded_digest(path)
    actual = sha256_file(path)
    if actual != expected:
        raise CorruptFileError(
            path,
            f"SHA-256 {actual[:12]}... does not match its checksum {expected[:12]}... "
            f"({path.stat().st_size} bytes): truncated or modified after it was written",
        )


def verify_all(paths: Iterable[str | os.PathLike]) -> None:
    """:func:`verify` each path in turn."""
    for path in paths:
        verify(path)


def quick_check(
    path: str | os.PathLike,
    *,
    full_limit: int = FULL_DIGEST_LIMIT,
    passed: MutableMapping[str, list] | None = None,
) -> None:
    """Like :func:`verify`, but large ``.npy`` files only have their header checked.

    A file over ``full_limit`` bytes that is a ``.npy`` must hold exactly the bytes its header
    announces (a truncated or padded file fails); other large files are hashed anyway.
    ``passed`` (see :func:`load_passed`) remembers files that passed, by size, modification
    time and recorded digest: such a file is not read again until one of them changes (the
    jobs that read it still verify it in full).
    """
    path = Path(path)
    if not path.is_file():
        raise CorruptFileError(path, "the file is missing")
    expected = recorded_digest(path)
    stat = path.stat()
    stamp = [stat.st_size, stat.st_mtime_ns, expected]
    if passed is not None and passed.get(str(path)) == stamp:
        return
    if path.suffix == ".npy" and stat.st_size > full_limit:
        check_npy_size(path)
    else:
        verify(path)
    if passed is not None:
        passed[str(path)] = stamp


def load_passed(path: str | os.PathLike) -> dict[str, list]:
    """The record of files that passed :func:`quick_check` (empty when absent or unreadable)."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def save_passed(path: str | os.PathLike, passed: dict[str, list]) -> None:
    """Write the record of :func:`quick_check` passes atomically."""
    write_bytes_atomic(path, json.dumps(passed, sort_keys=True).encode())


def check_npy_size(path: str | os.PathLike) -> None:
    """Raise CorruptFileError unless the ``.npy`` file's size is what its header announces."""
    import numpy as np

    path = Path(path)
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read_header = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            shape, _, dtype = read_header(handle)
            offset = handle.tell()
    except (ValueError, OSError, EOFError) as error:
        raise CorruptFileError(path, f"not a readable .npy file ({error})") from None
    expected = offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = path.stat().st_size
    if actual != expected:
        raise CorruptFileError(
            path, f"{actual} bytes, but its header announces {expected}: truncated"
        )
