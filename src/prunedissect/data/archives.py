"""Unpacking zip and tar archives safely.

:func:`safe_extract` unpacks into a temporary directory beside the target and renames it into
place when complete, after rejecting members that would escape the target (absolute paths,
``..``, links pointing outside, device files).
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tarfile
import urllib.parse
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from prunedissect.files import staged_directory

log = logging.getLogger(__name__)


class ArchiveError(RuntimeError):
    """An archive cannot be read: not an archive, truncated or corrupt."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would be written outside the extraction target."""



def _unsafe(archive: Path, member: str, why: str) -> UnsafeArchiveError:
    return UnsafeArchiveError(
        f"Refusing to extract {archive}: member {member!r} {why}. The archive is malformed or "
        "malicious; nothing was extracted. Get the archive from a trusted source."
    )


def _inside(path: str) -> bool:
    """Whether a relative POSIX path stays inside the directory it is relative to."""
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return False
    normal = os.path.normpath(path.replace("\\", "/"))
    return normal != ".." and not normal.startswith("../") and not normal.startswith("/")


def _check_name(archive: Path, name: str) -> None:
    cleaned = name.replace("\\", "/")
    if cleaned.startswith("/") or re.match(r"^[A-Za-z]:", cleaned):
        raise _unsafe(archive, name, "has an absolute path")
    if ".." in PurePosixPath(cleaned).parts or not _inside(cleaned):
        raise _unsafe(archive, name, "points outside the target with '..'")


def _check_link(archive: Path, name: str, link: str, *, relative_to_member: bool) -> None:
    if link.startswith("/") or re.match(r"^[A-Za-z]:", link):
        raise _unsafe(archive, name, f"links to the absolute path {link!r}")
    base = str(PurePosixPath(name).parent) if relative_to_member else "."
    if not _inside(os.path.join(base, link)):
        raise _unsafe(archive, name, f"links outside the target ({link!r})")


def _check_zip(archive: Path, handle: zipfile.ZipFile) -> None:
    for info in handle.infolist():
        _check_name(archive, info.filename)
        if stat.S_ISLNK(info.external_attr >> 16):
            target = handle.read(info).decode("utf-8", errors="replace")
            _check_link(archive, info.filename, target, relative_to_member=True)


def _check_tar(archive: Path, members: Iterable[tarfile.TarInfo]) -> None:
    for member in members:
        _check_name(archive, member.name)
        if member.issym():
            _check_link(archive, member.name, member.linkname, relative_to_member=True)
        elif member.islnk():
            _check_link(archive, member.name, member.linkname, relative_to_member=False)
        elif not (member.isfile() or member.isdir()):
            raise _unsafe(archive, member.name, "is a device, FIFO or other special file")


def _extract_into(archive: Path, directory: Path) -> None:
    """Validate every member of ``archive``, then extract all of them into ``directory``."""
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as handle:
                _check_zip(archive, handle)
                handle.extractall(directory)  # raises BadZipFile on a CRC mismatch
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive, "r:*") as handle:
                members = handle.getmembers()
                _check_tar(archive, members)
                handle.extractall(directory, members=members, filter="data")
        else:
            raise ArchiveError(
                f"{archive} is neither a zip nor a tar archive (truncated or not an archive at "
                "all?); delete it and download it again."
            )
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error) as error:
        if isinstance(error, tarfile.FilterError):
            raise _unsafe(archive, str(error.tarinfo.name), str(error)) from error
        raise ArchiveError(
            f"{archive} is truncated or corrupt ({type(error).__name__}: {error}); delete it "
            "and download it again."
        ) from error


def safe_extract(
    archive: str | os.PathLike[str], target: str | os.PathLike[str], *, unwrap: bool = True
) -> Path:
    """Extract a zip or tar(.gz/.bz2/.xz) ``archive`` into the new directory ``target``.

    Every member is checked before anything is written: absolute paths, ``..`` components,
    symbolic or hard links pointing outside and special files raise
    :class:`UnsafeArchiveError`. Extraction goes to a temporary directory beside ``target`` that
    is renamed to ``target`` only when complete, so a failure (corrupt or truncated archive:
    :class:`ArchiveError`, full disk) leaves no half-written directory behind. With ``unwrap``,
    an archive holding a single top-level directory (``broden1_224/...``) has that directory's
    content become ``target``. ``target`` must not exist yet (:class:`FileExistsError`).
    """
    archive, target = Path(archive), Path(target)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    if target.exists():
        raise FileExistsError(f"{target} already exists; delete it before extracting again")
    with staged_directory(target, purpose="extracting") as staging:
        _extract_into(archive, staging.path)
        entries = list(staging.path.iterdir())
        only = entries[0] if len(entries) == 1 else None
        if unwrap and only and only.is_dir() and not only.is_symlink():
            staging.root = only
    log.info("Extracted %s into %s", archive, target)
    return target


def archive_suffix(url: str, *, default: str = ".zip") -> str:
    """The archive ending of a URL's path (``.zip``, ``.tar.gz``, ``.tgz``, ...), else default."""
    name = PurePosixPath(urllib.parse.urlparse(url).path).name.lower()
    for suffix in (".tar.gz", ".tar.bz2", ".tar.xz", ".tgz", ".tar", ".zip"):
        if name.endswith(suffix):
            return suffix
    return default
