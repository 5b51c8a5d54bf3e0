"""Writing files and directories atomically, and file digests (standard library only).

- :func:`write_bytes_atomic`: a file written through a hidden temporary sibling and an atomic
  rename, so a reader never sees half a file.
- :func:`staged_directory`: a directory tree built in a hidden temporary directory beside its
  target and renamed into place only when complete (downloads, CIFAR-10, resized probe sets).
- :func:`file_digest`: the hexadecimal digest of a file (:func:`hashlib.file_digest`), SHA-256
  for checksums, MD5 for the published archive sums.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def file_digest(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """Hexadecimal ``algorithm`` digest of a file's bytes (MD5 only as a checksum)."""
    with open(path, "rb") as handle:
        if algorithm == "md5":
            digest = hashlib.file_digest(handle, lambda: hashlib.md5(usedforsecurity=False))
        else:
            digest = hashlib.file_digest(handle, algorithm)
    return digest.hexdigest()


def temporary_sibling(path: str | os.PathLike) -> Path:
    """A hidden file name beside ``path`` for writing it before an atomic rename."""
    path = Path(path)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write_bytes_atomic(path: str | os.PathLike, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary sibling file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    with open(tmp, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@dataclass
class Staging:
    """A directory being built: write into ``path``; ``root`` (default ``path``, or a directory
    inside it) is what becomes the target."""

    path: Path
    root: Path


@contextlib.contextmanager
def staged_directory(target: str | os.PathLike, *, purpose: str = "writing") -> Iterator[Staging]:
    """Build a directory beside ``target`` and rename it onto ``target`` when the block ends.

    On an exception nothing appears at ``target`` and the staging directory is removed, so a
    failure (a corrupt archive, a full disk, a kill between files) leaves no half-written tree.
    ``target`` must not exist yet.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".{target.name}.{purpose}-", dir=target.parent))
    try:
        staging = Staging(path=path, root=path)
        yield staging
        os.rename(staging.root, target)
    finally:
        shutil.rmtree(path, ignore_errors=True)
