"""Recovery through real `snakemake` runs (issue 13): a corrupt finished checkpoint deletes
nothing, a garbage resume point never wedges a level, a broken probe stops the study before any
training, and the README's recovery commands work after a kill and against a concurrent run."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import REPO, SNAKEMAKE, run_snakemake

pytestmark = pytest.mark.slow


def snakemake_in(work: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    return run_snakemake(
        "--snakefile", str(REPO / "Snakefile"), "--directory", str(work), *args, check=check
    )


def copy_study(study: Path, dest: Path) -> Path:
    """A finished study's copy, mtimes and Snakemake's metadata included."""
    shutil.copytree(study, dest, symlinks=True)
    shutil.rmtree(dest / ".snakemake" / "locks", ignore_errors=True)
    return dest


def tree(root: Path) -> dict[str, str]:
    """SHA-256 of every file under root/results."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted((root / "results").rglob("*"))
        if p.is_file()
    }


def test_a_corrupt_checkpoint_is_named_and_nothing_finished_is_deleted(test_study, tmp_path):
    work = copy_study(test_study, tmp_path / "corrupt")
    corrupt = "results/train/lottery/trial0/level1/model.pt"
    with open(work / corrupt, "r+b") as handle:
        handle.truncate(1000)
    before = tree(work)

    proc = snakemake_in(work, "--cores", "2")
    output = proc.stdout + proc.stderr
    assert f"{corrupt}: SHA-256" in output and "truncated or modified" in output, output
    assert f"snakemake --cores all --force {corrupt}" in output
    after = tree(work)
    assert before == after, "the rerun removed or changed finished files: " + str(
        sorted(set(before.items()) ^ set(after.items()))
    )

    verify = subprocess.run(
        [sys.executable, "-m", "prunedissect.cli", "verify", str(work / "results")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert verify.returncode == 1
    assert f"BROKEN {corrupt}: SHA-256" in verify.stdout
    assert f"rerun: snakemake --cores all --force {corrupt}" in verify.stdout

    # the printed command, with this run's --directory: rebuilds only that level
    snakemake_in(work, "--cores", "2", "--force", corrupt, check=True)
    assert (work / corrupt).read_bytes() == (test_study / corrupt).read_bytes()
    snakemake_in(work, "--cores", "2", check=True)
    verify = subprocess.run(
        [sys.executable, "-m", "prunedissect.cli", "verify", str(work / "results")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout
    for table in ("accuracy", "units", "summary", "consistency"):
        path = f"results/tables/{table}.parquet"
        assert (work / path).read_bytes() == (test_study / path).read_bytes(), table


def test_a_garbage_resume_point_is_moved_aside_and_the_log_keeps_the_killed_attempt(
    test_study, tmp_path
):
    work = copy_study(test_study, tmp_path / "resume")
    level = work / "results/train/lottery/trial0/level2"
    (level / "resume.pt").write_bytes(b"\x80\x02garbage, not a torch checkpoint")
    # what a killed attempt leaves beside its resume point (Snakemake deletes the job's log)
    (level / "attempt.log").write_text("2026-01-01 00:00:00 INFO train_level: epoch 1/2 killed\n")

    snakemake_in(work, "--cores", "2", "--force", "results/train/lottery/trial0/level2/model.pt",
                 check=True)  # fmt: skip
    log = (work / "logs/train_pruned/lottery_trial0_level2.log").read_text()
    assert log.startswith(
        "---- resumed after an interrupted attempt (previous lines from that attempt) ----\n"
        "2026-01-01 00:00:00 INFO train_level: epoch 1/2 killed\n---- this attempt ----\n"
    )
    assert "resume point unusable: results/train/lottery/trial0/level2/resume.pt:" in log
    assert "from its start" in log
    assert len(list(level.glob("resume.pt.corrupt-*Z"))) == 1
    assert not (level / "resume.pt").exists() and not (level / "attempt.log").exists()
    name = "results/train/lottery/trial0/level2/model.pt"
    assert (work / name).read_bytes() == (test_study / name).read_bytes()


def broken_probe(test_study: Path, dest: Path) -> Path:
    shutil.copytree(test_study / "resources/concepts/probe", dest)
    images = dest / "images/concepts"
    for name, keep in (("000003_object.png", 0.5), ("000005.png", 0.1)):
        data = (images / name).read_bytes()
        (images / name).write_bytes(data[: int(len(data) * keep)])
    from prunedissect.data.broden import decode_label_png, encode_label_png

    labels = decode_label_png(images / "000007_part.png")
    labels[:3, :4] = 999
    encode_label_png(labels).save(images / "000007_part.png")
    return dest


def study_with_probe(work: Path, probe: Path) -> Path:
    (work / "config").mkdir(parents=True)
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    config["probe"] = {"kind": "broden", "path": str(probe)}
    (work / "config/config.yaml").write_text(yaml.safe_dump(config))
    return work


def test_a_broken_probe_stops_the_study_before_any_training(test_study, tmp_path):
    probe = broken_probe(test_study, tmp_path / "probe")
    work = study_with_probe(tmp_path / "study", probe)
    proc = snakemake_in(work, "--cores", "2")
    assert proc.returncode != 0
    log = (work / "logs/check_probe/probe_check.log").read_text()
    assert "has 3 broken file(s)" in log
    assert f"{probe}/images/concepts/000003_object.png: unreadable object label PNG" in log
    assert f"{probe}/images/concepts/000005.png: unreadable image" in log
    assert "000007_part.png: part label number(s) 999 (12 pixels) not in label.csv" in log
    assert not (work / "results/train").exists(), "a training job ran on a broken probe"


def test_a_missing_category_column_fails_the_dry_run(test_study, tmp_path):
    probe = tmp_path / "probe"
    shutil.copytree(test_study / "resources/concepts/probe", probe)
    index = (probe / "index.csv").read_text().splitlines()
    (probe / "index.csv").write_text(
        "\n".join(",".join(row.split(",")[:-1]) for row in index) + "\n"
    )  # drop the texture column
    work = study_with_probe(tmp_path / "study", probe)
    proc = snakemake_in(work, "-n", "--cores", "1")
    assert proc.returncode != 0
    expected = "config key probe.path: category.csv lists category 'texture'"
    assert expected in proc.stderr + proc.stdout


def test_after_a_kill_a_plain_rerun_finishes_and_a_second_run_gets_the_lock_message(
    test_study, tmp_path
):
    work = copy_study(test_study, tmp_path / "killed")
    # the analysis phase: extraction, thresholds, tallies, tables, figures all rerun
    first = subprocess.Popen(
        [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
         "--cores", "1", "--forcerun", "extract_activations"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    incomplete = work / ".snakemake/incomplete"
    deadline = time.monotonic() + 300
    try:
        while not (incomplete.is_dir() and any(incomplete.iterdir())):
            assert first.poll() is None and time.monotonic() < deadline, "no job started"
            time.sleep(0.1)
        time.sleep(1.0)  # well into the job (before this change its output existed by then)
        second = snakemake_in(work, "--cores", "1")
        output = second.stdout + second.stderr
        assert second.returncode != 0
        assert "Directory cannot be locked" in output, output
        assert "IncompleteFilesException" not in output
        while not any(incomplete.iterdir()):  # kill while a job runs, not between two
            assert first.poll() is None and time.monotonic() < deadline, "the run ended"
            time.sleep(0.01)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert any(incomplete.iterdir()), "the kill must leave an incomplete job behind"
    # the README's recovery: release the dead run's lock, rerun the same command
    snakemake_in(work, "--unlock", check=True)
    snakemake_in(work, "--cores", "2", check=True)
    for table in ("units", "summary", "consistency"):
        path = f"results/tables/{table}.parquet"
        assert (work / path).read_bytes() == (test_study / path).read_bytes(), table
