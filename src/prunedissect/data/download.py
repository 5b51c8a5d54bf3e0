"""Getting datasets onto disk safely, and checking copies the user already has.

- :func:`fetch` downloads one file over HTTP(S) with the standard library: it resumes a partial
  ``<dest>.part`` with an HTTP ``Range`` request, shows a tqdm progress bar, verifies the MD5
  before anything else touches the file and renames it into place only when it is complete.
- :func:`safe_extract` unpacks a zip or tar archive into a temporary directory beside the target
  and renames it into place when complete, after rejecting members that would escape the
  target (absolute paths, ``..``, links pointing outside, device files).
- :func:`download_broden` combines both for the Broden probe sets and validates the result
  with :func:`prunedissect.data.broden.check_broden_dir`.
- :func:`check_imagefolder` validates a user-provided ImageFolder training set (ImageNet), whose
  download needs a licence and is therefore never automated.

This module imports only the standard library and tqdm, so the workflow can call its checks
while building the DAG without paying for a torch import.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import shutil
import stat
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from prunedissect.data.broden.checks import check_broden_dir
from prunedissect.files import file_digest, staged_directory

log = logging.getLogger(__name__)

_MD5_PATTERN = re.compile(r"^[0-9a-f]{32}$")

# Exceptions that mean "the connection broke": worth resuming, unlike an HTTP error status.
_NETWORK_ERRORS = (http.client.HTTPException, ConnectionError, TimeoutError, urllib.error.URLError)

#: File name endings torchvision's ImageFolder accepts (compared case-insensitively).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


class DownloadError(RuntimeError):
    """A download failed: HTTP error status, unreachable server or a truncated transfer."""


class ChecksumError(DownloadError):
    """A downloaded file's MD5 differs from the expected one."""


class ArchiveError(RuntimeError):
    """An archive cannot be read: not an archive, truncated or corrupt."""


class UnsafeArchiveError(ArchiveError):
    """An archive member would be written outside the extraction target."""


@dataclass(frozen=True)
class BrodenSource:
    """Where a Broden variant is published: archive URL and MD5 (None where none is published)."""

    url: str
    md5: str | None


#: The Broden variants the workflow knows. broden1_227 has no MD5 published by its authors
#: (NetDissect's script/dlbroden_227.sh downloads it unchecked), so the user must supply one.
BRODEN_SOURCES: dict[str, BrodenSource] = {
    "broden1_224": BrodenSource(
        url="http://netdissect.csail.mit.edu/data/broden1_224.zip",
        md5="be13c292eaef3300da03f8d0e48eab1c",
    ),
    "broden1_227": BrodenSource(
        url="http://netdissect.csail.mit.edu/data/broden1_227.zip",
        md5=None,
    ),
}


class _Interrupted(Exception):
    """Internal: a transfer stopped early; the partial file is kept for the next attempt."""


# --------------------------------------------------------------------------------------------
# Download


def _with_hint(message: str, hint: str | None) -> str:
    return f"{message} {hint}" if hint else message


def _http_error_message(url: str, code: int, reason: str) -> str:
    if code == 404:
        advice = "the file is not at this address (moved or mistyped): use a mirror URL."
    elif code in (401, 403):
        advice = "the server refuses access: use a mirror URL or download the file by hand."
    elif code >= 500:
        advice = "the server failed: try again later or use a mirror URL."
    else:
        advice = "use a mirror URL or download the file by hand."
    return f"Download of {url} failed with HTTP {code} {reason}: {advice}"


def _request(url: str, offset: int) -> urllib.request.Request:
    request = urllib.request.Request(url, headers={"User-Agent": "prunedissect"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return request


def _range_start(content_range: str | None) -> int | None:
    """First byte of a ``Content-Range: bytes START-END/TOTAL`` header, None if unparsable."""
    match = re.match(r"bytes\s+(\d+)-", content_range or "")
    return int(match.group(1)) if match else None


def _range_total(content_range: str | None) -> int | None:
    """TOTAL of a ``Content-Range: bytes .../TOTAL`` header, None if absent or ``*``."""
    match = re.search(r"/(\d+)\s*$", content_range or "")
    return int(match.group(1)) if match else None


def _open(
    url: str, part: Path, *, timeout: float, hint: str | None
) -> tuple[http.client.HTTPResponse, int] | None:
    """Open the connection, resuming ``part`` if it exists; return (response, offset) or None.

    None means the server answered 416 because ``part`` already holds the whole file.
    """
    offset = part.stat().st_size if part.exists() else 0
    try:
        return urllib.request.urlopen(_request(url, offset), timeout=timeout), offset
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:
            total = _range_total(error.headers.get("Content-Range"))
            if total == offset:
                return None
            log.warning("Server rejected resuming at byte %d; restarting from scratch", offset)
            part.unlink()
            raise _Interrupted("range not satisfiable") from None
        raise DownloadError(
            _with_hint(_http_error_message(url, error.code, str(error.reason)), hint)
        ) from None
    except _NETWORK_ERRORS as error:
        raise _Interrupted(f"could not connect: {error}") from error


def _transfer_once(
    url: str, part: Path, *, timeout: float, chunk_size: int, progress: bool, hint: str | None
) -> None:
    """One HTTP request appending to (or restarting) ``part``; raise _Interrupted if cut short."""
    opened = _open(url, part, timeout=timeout, hint=hint)
    if opened is None:
        return
    response, offset = opened
    with response:
        mode = "wb"
        if offset and response.status == 206:
            if _range_start(response.headers.get("Content-Range")) != offset:
                raise DownloadError(
                    _with_hint(
                        f"Server answered the resume request for {url} with a different byte "
                        f"range ({response.headers.get('Content-Range')!r}); delete {part} "
                        "and try again.",
                        hint,
                    )
                )
            mode = "ab"
        elif offset:
            log.info("Server ignored the Range request; downloading %s from the start", url)
            offset = 0
        length = response.headers.get("Content-Length")
        expected = offset + int(length) if length is not None else None
        interactive = sys.stderr.isatty()
        with (
            open(part, mode) as handle,
            tqdm(
                total=expected,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
                mininterval=0.5 if interactive else 30.0,
                ascii=not interactive,
            ) as bar,
        ):
            try:
                while chunk := response.read(chunk_size):
                    handle.write(chunk)
                    bar.update(len(chunk))
            except _NETWORK_ERRORS as error:
                raise _Interrupted(f"connection lost: {error}") from error
    size = part.stat().st_size
    if expected is not None and size < expected:
        raise _Interrupted(f"connection closed after {size} of {expected} bytes")


def fetch(
    url: str,
    dest: str | os.PathLike[str],
    *,
    md5: str,
    progress: bool = True,
    timeout: float = 60.0,
    retries: int = 5,
    retry_wait: float = 5.0,
    chunk_size: int = 1 << 20,
    hint: str | None = None,
) -> Path:
    """Download ``url`` to ``dest``, resuming, verifying ``md5``, renaming into place atomically.

    Bytes accumulate in ``<dest>.part``; an interrupted transfer (dropped connection, timeout,
    unreachable server) is resumed with an HTTP Range request up to ``retries`` more times,
    ``retry_wait`` seconds apart, and a ``.part`` left by an earlier run is resumed too. Only a
    complete file whose MD5 matches is renamed to ``dest``; a mismatching one is deleted (resuming
    it cannot repair it). An existing ``dest`` with the right MD5 is returned without any request.
    ``hint`` is appended to every error message (e.g. which config keys set the URL and MD5).

    Raises :class:`DownloadError` for HTTP errors and transfers still incomplete after the
    retries, and :class:`ChecksumError` for a wrong MD5.
    """
    md5 = md5.lower()
    if not _MD5_PATTERN.match(md5):
        raise ValueError(f"md5 must be 32 hexadecimal digits, got {md5!r}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    if dest.exists():
        if file_digest(dest, "md5") == md5:
            log.info("%s is already present with the expected MD5; not downloading", dest)
            return dest
        log.warning("%s exists but its MD5 differs from %s; downloading again", dest, md5)
        dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("Downloading %s to %s", url, dest)
    for attempt in range(retries + 1):
        try:
            _transfer_once(
                url, part, timeout=timeout, chunk_size=chunk_size, progress=progress, hint=hint
            )
            break
        except _Interrupted as interruption:
            have = part.stat().st_size if part.exists() else 0
            if attempt == retries:
                what = "truncated" if have else "failed"
                raise DownloadError(
                    _with_hint(
                        f"Download of {url} {what} after {retries + 1} attempts "
                        f"({interruption}); {have} bytes are kept in {part} and the next run "
                        "resumes from there.",
                        hint,
                    )
                ) from None
            log.warning(
                "Attempt %d of %d for %s stopped (%s); resuming at byte %d in %.0f s",
                attempt + 1,
                retries + 1,
                url,
                interruption,
                have,
                retry_wait,
            )
            time.sleep(retry_wait)
    actual = file_digest(part, "md5")
    if actual != md5:
        part.unlink()
        raise ChecksumError(
            _with_hint(
                f"MD5 mismatch for {url}: expected {md5}, got {actual}. The file was deleted. "
                "The server sent a different or corrupted file: try again or use a mirror; if "
                f"you trust this file, set the expected MD5 to {actual}.",
                hint,
            )
        )
    os.replace(part, dest)
    log.info("Downloaded %s (MD5 %s verified)", dest, md5)
    return dest


# --------------------------------------------------------------------------------------------
# Extraction


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


# --------------------------------------------------------------------------------------------
# Broden


def broden_source(name: str, *, url: str | None = None, md5: str | None = None) -> BrodenSource:
    """Resolve the archive URL and MD5 of a Broden variant; None means the published value.

    Raises ValueError for an unknown name without a URL, or when no MD5 is published (broden1_227)
    and none is given.
    """
    known = BRODEN_SOURCES.get(name)
    if known is None and url is None:
        raise ValueError(
            f"Unknown Broden variant {name!r} (known: {', '.join(sorted(BRODEN_SOURCES))}); "
            "give probe.url and probe.md5 for another archive, or probe.path for a local copy."
        )
    resolved_url = url or known.url  # type: ignore[union-attr]
    resolved_md5 = md5 or (known.md5 if known else None)
    if resolved_md5 is None:
        raise ValueError(
            f"No MD5 is published for {name} ({resolved_url}), so the download cannot be "
            "verified. Set probe.md5 to the archive's MD5 (e.g. from `md5sum` of a copy you "
            "trust), or download and unpack it yourself and set probe.path to the directory."
        )
    if not _MD5_PATTERN.match(resolved_md5.lower()):
        raise ValueError(f"probe.md5 must be 32 hexadecimal digits, got {resolved_md5!r}")
    return BrodenSource(url=resolved_url, md5=resolved_md5.lower())


def download_broden(
    name: str,
    dest: str | os.PathLike[str],
    *,
    url: str | None = None,
    md5: str | None = None,
    keep_archive: bool = True,
    progress: bool = True,
    timeout: float = 60.0,
    retries: int = 5,
    retry_wait: float = 5.0,
) -> Path:
    """Download, verify and unpack a Broden variant into ``dest``; return ``dest``.

    The archive is downloaded beside ``dest`` (``<dest><suffix>``, resumable through
    :func:`fetch`), checked against its MD5, extracted with :func:`safe_extract` and the result
    validated with :func:`check_broden_dir`. ``keep_archive`` keeps the verified archive so that
    a rerun (e.g. after a code change) re-extracts without downloading again.
    """
    source = broden_source(name, url=url, md5=md5)
    dest = Path(dest)
    archive = dest.with_name(dest.name + archive_suffix(source.url))
    fetch(
        source.url,
        archive,
        md5=source.md5,  # type: ignore[arg-type]
        progress=progress,
        timeout=timeout,
        retries=retries,
        retry_wait=retry_wait,
        hint="(Config: probe.url sets a mirror, probe.md5 the checksum, probe.path a local copy.)",
    )
    safe_extract(archive, dest)
    try:
        check_broden_dir(dest)
    except ValueError:
        shutil.rmtree(dest)
        raise
    if not keep_archive:
        archive.unlink()
    return dest


# --------------------------------------------------------------------------------------------
# ImageFolder (ImageNet)


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
