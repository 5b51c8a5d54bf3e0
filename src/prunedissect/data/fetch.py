"""Downloading one file over HTTP(S) with the standard library.

:func:`fetch` resumes a partial ``<dest>.part`` with an HTTP ``Range`` request, shows a tqdm
progress bar, verifies the MD5 before anything else touches the file and renames it into place
only when it is complete.
"""

from __future__ import annotations

import http.client
import logging
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from prunedissect.files import file_digest

log = logging.getLogger(__name__)

MD5_PATTERN = re.compile(r"^[0-9a-f]{32}$")
"""A hexadecimal MD5 digest, lower case."""

# Exceptions that mean "the connection broke": worth resuming, unlike an HTTP error status.
_NETWORK_ERRORS = (http.client.HTTPException, ConnectionError, TimeoutError, urllib.error.URLError)


class DownloadError(RuntimeError):
    """A download failed: HTTP error status, unreachable server or a truncated transfer."""


class ChecksumError(DownloadError):
    """A downloaded file's MD5 differs from the expected one."""



class _Interrupted(Exception):
    """Internal: a transfer stopped early; the partial file is kept for the next attempt."""



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
    if not MD5_PATTERN.match(md5):
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
