"""Checking a whole results tree: ``prunedissect verify RESULTS_DIR``.

Every checksummed file (``model.pt``, ``mask.npz``, ``rewind.pt``, ``resume.pt``,
``resume.prev.pt``, ``activations.npy``: see :mod:`prunedissect.checkpoints`) is hashed and
compared with its ``.sha256`` sidecar, every Parquet table and ``metrics.json`` is read, and
each broken file is listed with what to type to rebuild it. The target of the rebuild command is
the file's path relative to the directory holding ``RESULTS_DIR`` (the workflow's working
directory), which is how Snakemake names it. Standard library only (pyarrow when tables exist).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from prunedissect.checkpoints import SUFFIX, CorruptFileError, verify

CHECKSUMMED = ("model.pt", "mask.npz", "rewind.pt", "activations.npy", "model.pt2")
"""Workflow outputs that always carry a ``.sha256`` sidecar."""
RESUME_POINTS = ("resume.pt", "resume.prev.pt")
"""Epoch checkpoints of an unfinished level: a broken one is moved aside when the level reruns."""


def rebuild_command(target: str | os.PathLike) -> str:
    """The command that reruns only the job writing ``target`` (a path Snakemake knows)."""
    return f"snakemake --cores all --force {target}"


def rebuild_hint(target: str | os.PathLike) -> str:
    """What to type after finding ``target`` broken (used by the workflow and by verify)."""
    return (
        f"Rebuild it with: {rebuild_command(target)}\n"
        "(add your run's --configfile/--directory options; this reruns only the job that writes "
        "it, nothing finished is deleted; `prunedissect verify results` lists every broken file)"
    )


@dataclass(frozen=True)
class Problem:
    """One broken file: its path as Snakemake names it, what is wrong and what to type."""

    path: str
    reason: str
    action: str


def _check_table(path: Path) -> str | None:
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.read_table(path)
        else:
            json.loads(path.read_text())
    except Exception as error:  # any reader failure means the file is unusable
        return f"unreadable ({type(error).__name__}: {str(error).splitlines()[0][:200]})"
    return None


def verify_results(results_dir: str | os.PathLike) -> tuple[int, list[Problem]]:
    """Check every file under ``results_dir``; return (files checked, problems)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise FileNotFoundError(f"{results_dir} is not a directory")
    workdir = results_dir.resolve().parent
    checked, problems = 0, []
    for path in sorted(p for p in results_dir.rglob("*") if p.is_file()):
        name = str(path.resolve().relative_to(workdir))
        if path.name.endswith(SUFFIX):
            if not path.with_name(path.name.removesuffix(SUFFIX)).exists():
                target = name.removesuffix(SUFFIX)
                problems.append(Problem(name, "checksum of a missing file",
                                        rebuild_command(target)))  # fmt: skip
            continue
        if path.name in CHECKSUMMED or path.name in RESUME_POINTS:
            checked += 1
            try:
                verify(path)
            except CorruptFileError as error:
                if path.name in RESUME_POINTS:
                    action = "none: the level's next run moves it aside and resumes or restarts"
                else:
                    action = rebuild_command(name)
                problems.append(Problem(name, error.reason, action))
        elif path.suffix == ".parquet" or path.name == "metrics.json":
            checked += 1
            reason = _check_table(path)
            if reason:
                problems.append(Problem(name, reason, rebuild_command(name)))
    return checked, problems


def format_report(checked: int, problems: list[Problem]) -> str:
    """The text ``prunedissect verify`` prints."""
    lines = [f"BROKEN {p.path}: {p.reason}\n  rerun: {p.action}" for p in problems]
    lines.append(
        f"{checked} files checked, {len(problems)} broken"
        + ("" if not problems else " (add your run's --configfile/--directory options)")
    )
    return "\n".join(lines)
