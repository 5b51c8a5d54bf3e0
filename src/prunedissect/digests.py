"""Golden digests: the sha256 of a study's tables, committed and checked on other hosts.

The files are in ``sha256sum`` format (``<hex>  <name>``), so ``sha256sum -c`` reads them too.
``config/digests/default.sha256`` holds the default study's, ``.test/digests.sha256`` the .test
study's; both come from runs with pinned CPU kernels (:mod:`prunedissect.reproducibility`), so
a pinned run on any x86-64 host with the committed lockfile must match them.

Command line::

    python -m prunedissect.digests check results/tables config/digests/default.sha256
    python -m prunedissect.digests write results/tables config/digests/default.sha256

``check`` names every table that differs or is missing and exits 1 if any does.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from prunedissect.checkpoints import sha256_file

#: The study tables whose bytes are the study's answer (results/tables/<name>.parquet).
#: ``speed.parquet`` (inference timings, :mod:`prunedissect.speed`) is left out on purpose: its
#: numbers depend on the machine and its load, so no two runs give the same bytes.
TABLES = ("accuracy", "units", "summary", "consistency", "bootstrap", "intervals", "verdict")


def table_digests(tables_dir: str | os.PathLike) -> dict[str, str]:
    """{file name: sha256} of the study tables present in ``tables_dir``."""
    tables_dir = Path(tables_dir)
    files = (tables_dir / f"{name}.parquet" for name in TABLES)
    return {path.name: sha256_file(path) for path in files if path.exists()}


def read_digests(path: str | os.PathLike) -> dict[str, str]:
    """Parse a ``sha256sum``-format file into {file name: sha256}."""
    digests = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 2 or len(parts[0]) != 64:
            raise ValueError(f"{path}:{number}: expected '<sha256>  <file>', got {line!r}")
        digests[parts[1].lstrip("*")] = parts[0]
    return digests


def write_digests(tables_dir: str | os.PathLike, path: str | os.PathLike) -> dict[str, str]:
    """Write the digests of every study table in ``tables_dir`` to ``path``; return them."""
    digests = table_digests(tables_dir)
    missing = sorted({f"{name}.parquet" for name in TABLES} - set(digests))
    if missing:
        raise FileNotFoundError(f"{tables_dir} lacks {', '.join(missing)}; finish the study first")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("".join(f"{digest}  {name}\n" for name, digest in digests.items()))
    return digests


def compare_digests(tables_dir: str | os.PathLike, golden: str | os.PathLike) -> list[str]:
    """One line per table of ``golden`` that is missing from or differs in ``tables_dir``."""
    expected = read_digests(golden)
    actual = table_digests(tables_dir)
    problems = []
    for name, digest in expected.items():
        if name not in actual:
            problems.append(f"{name}: missing from {tables_dir}")
        elif actual[name] != digest:
            problems.append(f"{name}: sha256 {actual[name]}, golden {digest}")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m prunedissect.digests", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("action", choices=["check", "write"])
    parser.add_argument("tables", help="the study's results/tables directory")
    parser.add_argument("golden", help="the digest file, e.g. config/digests/default.sha256")
    args = parser.parse_args(argv)
    if args.action == "write":
        for name, digest in write_digests(args.tables, args.golden).items():
            print(f"{digest}  {name}")
        return 0
    problems = compare_digests(args.tables, args.golden)
    if problems:
        print(f"{len(problems)} table(s) differ from {args.golden}:", file=sys.stderr)
        for line in problems:
            print(f"  {line}", file=sys.stderr)
        print(
            "Same config, seed and lockfile with pinned CPU kernels should give these bytes; "
            "see README.md, 'Reproducibility'.",
            file=sys.stderr,
        )
        return 1
    print(f"all {len(read_digests(args.golden))} tables match {args.golden}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
