"""Shared fixtures: the repository root and helpers to run the workflow as a real subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


def run_snakemake(
    *args: str, cwd: Path = REPO, check: bool = True, timeout: float = 1200, env=None
) -> subprocess.CompletedProcess:
    """Run ``python -m snakemake ARGS`` in ``cwd`` and return the finished process."""
    full_env = {**os.environ, "PYTHONHASHSEED": "0", **(env or {})}
    proc = subprocess.run(
        [*SNAKEMAKE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n"
            f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
        )
    return proc


def job_counts(output: str) -> dict[str, int]:
    """{rule: jobs} from the "Job stats" table a dry run prints ({} when nothing would run)."""
    lines = output.splitlines()
    if "Job stats:" not in lines:
        return {}
    counts: dict[str, int] = {}
    for line in lines[lines.index("Job stats:") + 3 :]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def make_imagefolder(root):
    """A minimal valid ImageFolder: two classes with one image each in train/ and val/."""
    from PIL import Image

    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (root / split / cls).mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(root / split / cls / "0.png")
    return root


def run_test_study(workdir: Path, *extra: str, timeout: float = 1800) -> Path:
    """Run the .test study into ``workdir`` (a scratch copy of .test/config) with 2 cores."""
    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / "config").exists():
        shutil.copytree(REPO / ".test" / "config", workdir / "config")
    run_snakemake(
        "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--cores", "2", *extra, timeout=timeout,
    )
    return workdir


@pytest.fixture(scope="session")
def test_study(tmp_path_factory) -> Path:
    """The .test study, run once per test session by a real `snakemake` subprocess."""
    return run_test_study(tmp_path_factory.mktemp("study"))
