"""Getting the Broden probe sets onto disk: where each is published, then fetch, verify, unpack.

:func:`download_broden` combines :func:`~prunedissect.data.fetch.fetch` and
:func:`~prunedissect.data.archives.safe_extract` and validates the result with
:func:`prunedissect.data.broden.check_broden_dir`. Standard library and tqdm only, so the
workflow can use it while building the DAG without paying for a torch import.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from prunedissect.data.archives import archive_suffix, safe_extract
from prunedissect.data.broden import check_broden_dir
from prunedissect.data.fetch import MD5_PATTERN, fetch

log = logging.getLogger(__name__)



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
    if not MD5_PATTERN.match(resolved_md5.lower()):
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
