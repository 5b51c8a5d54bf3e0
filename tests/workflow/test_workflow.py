"""The workflow end to end on the .test study: outputs, determinism, partial reruns, kills."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import REPO, SNAKEMAKE, job_counts, run_snakemake, run_test_study
from prunedissect import digests, tables

pytestmark = pytest.mark.slow

TABLES = ["accuracy", "units", "summary", "consistency"]
METHODS = [  # .test: every kind, sorted
    "connection", "finetune", "lottery", "oneshot", "random", "reduced", "reinit", "structured",
]  # fmt: skip


def dry_run_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Jobs a dry-run would execute in ``workdir``, as {rule: count}."""
    # targets and list-valued options first: --quiet takes a list and would swallow them
    proc = run_snakemake(
        *args, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "-n", "--cores", "2", "--quiet", "rules",
    )
    return job_counts(proc.stdout)


def digest(paths) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def relative_digest(workdir: Path) -> dict[str, str]:
    """Hashes of every table (results/tables and per-checkpoint dissection tables), but the
    inference timings (speed.parquet), which differ between any two runs."""
    tables = [p for p in (workdir / "results/tables").glob("*.parquet")]
    tables = [p for p in tables if p.name != "speed.parquet"]
    paths = sorted(tables) + sorted(
        (workdir / "results/dissect").glob("*/trial*/level*/*/*.parquet")
    )
    assert paths
    return {str(p.relative_to(workdir)): h for p, h in zip(paths, digest(paths).values())}


def test_tables_hold_documented_columns_and_sane_values(test_study):
    frames = {
        name: pd.read_parquet(test_study / f"results/tables/{name}.parquet") for name in TABLES
    }
    assert tables.check_tables(frames) == []
    for name, frame in frames.items():
        assert list(frame.columns) == list(tables.COLUMNS[name]), name
    accuracy = frames["accuracy"]
    for frame in frames.values():
        assert sorted(frame.method.unique()) == METHODS
    assert sorted(accuracy.trial.unique()) == [0, 1]
    assert sorted(accuracy.level.unique()) == [0, 1, 2]
    for (method, _), chain in accuracy.groupby(["method", "trial"]):
        chain = chain.sort_values("level")
        assert chain.density.is_monotonic_decreasing
        # fraction 0.5 in .test: densities 1, 1/2, 1/4 up to rounding of whole weights, for
        # every arm (one-shot, copied and random masks keep the scheduled density); whole
        # channels (structured) and whole-channel widths (reduced) land within 1% of it
        tolerance = 0.01 if method in ("structured", "reduced") else 1e-3
        assert chain.density.tolist() == pytest.approx([1.0, 0.5, 0.25], abs=tolerance)
    # every arm's level 0 is the one shared dense network
    level0 = accuracy[accuracy.level == 0].drop(columns="method").drop_duplicates()
    assert len(level0) == 2
    # the arms differ where they should: reinit and random train other networks than lottery
    pruned = accuracy[accuracy.level > 0].set_index(["method", "trial", "level"]).loss
    for arm in METHODS:
        if arm == "lottery":
            continue
        assert (pruned[arm] != pruned["lottery"]).any(), arm
    # ... and coincide where they must: one-shot pruning to level 1's density is one round of
    # iterative pruning of the same dense network, rewound and trained the same way
    assert pruned.xs(("oneshot", 1), level=[0, 2]).equals(pruned.xs(("lottery", 1), level=[0, 2]))
    units = frames["units"]
    assert units.unit.min() == 0
    # width 4: layer3 = 16 units, except in the reduced arm's narrower networks (11 and 8)
    counts = units.groupby(["method", "trial", "level", "layer"]).unit.nunique()
    reduced = counts.xs("reduced", level="method")
    assert counts.drop("reduced", level="method").eq(4 * 4).all()
    assert reduced.groupby("level").max().tolist() == [16, 11, 8]
    # structured levels have dead units, the other arms none
    alive = units.groupby(["method", "level"]).alive.mean()
    assert alive[("structured", 2)] < alive[("structured", 1)] < 1.0
    consistency = frames["consistency"]
    level0 = consistency[consistency.level == 0]
    assert (level0.still_interpretable.dropna() == 1.0).all()


def test_uncertainty_tables_verdict_and_its_page(test_study):
    tables_dir = test_study / "results/tables"
    frames = {
        name: tables.read_table(tables_dir / f"{name}.parquet", table=name)
        for name in ("bootstrap", "intervals", "verdict")
    }
    boot, intervals, verdict = frames["bootstrap"], frames["intervals"], frames["verdict"]
    config = yaml.safe_load((REPO / ".test/config/config.yaml").read_text())
    replicates = config.get("bootstrap", {}).get("replicates", 200)
    assert sorted(boot["replicate"].unique()) == list(range(replicates))
    # every checkpoint of every method, the untrained floor (level -1) included, per layer
    assert sorted(intervals["level"].unique()) == [-1, 0, 1, 2]
    assert set(intervals["layer"]) == {"layer3", "all"}
    floor = intervals[intervals["level"] == -1]
    assert (floor["density"] == 1.0).all()
    # the untrained network is one network per trial, whatever the method
    assert floor.drop(columns="method").drop_duplicates().shape[0] * len(METHODS) == len(floor)
    totals = intervals[intervals["category"] == "all"]
    for q in ("interpretable_units", "unique_concepts"):
        assert (totals[f"{q}_low"] <= totals[f"{q}_high"]).all()
    # the full-sample counts are those of the summary table
    summary = tables.read_table(tables_dir / "summary.parquet", table="summary")
    keys = ["method", "trial", "level", "layer", "category"]
    both = summary.merge(intervals, on=keys, suffixes=("", "_b"))
    assert len(both) == len(summary)
    assert (both["interpretable_units"] == both["interpretable_units_b"]).all()
    assert sorted(verdict["method"].unique()) == METHODS
    assert len(verdict) == len(METHODS) * 2 * 2  # layers (layer3, all) x quantities
    assert set(verdict["verdict"]) <= {"A", "B", "C", "undecided"}
    page = (test_study / "results/report/verdict.md").read_text()
    assert page.startswith("# What pruning does to interpretability: the verdict")
    for method in METHODS:
        assert f"**{method}**" in page
    assert "(../figures/fig2_interpretability.png)" in page
    html = (test_study / "results/report/verdict.html").read_text()
    assert '<a href="../figures/fig2_interpretability.png">' in html and "<table>" in html


def test_tables_match_the_committed_golden_digests(test_study):
    """Pinned kernels: these bytes are the same on any x86-64 host (README: Reproducibility).
    After a deliberate change of results: python -m prunedissect.digests write ..."""
    problems = digests.compare_digests(
        test_study / "results/tables", REPO / ".test" / "digests.sha256"
    )
    assert problems == []


def test_figures_and_report_are_valid_files(test_study):
    figures = sorted((test_study / "results/figures").iterdir())
    names = {p.name for p in figures}
    for stem in ("fig1_accuracy", "fig2_interpretability", "fig3_categories", "fig4_consistency"):
        assert {f"{stem}.png", f"{stem}.pdf"} <= names
    for path in figures:
        if path.suffix == ".png":
            with Image.open(path) as image:
                image.verify()
        else:
            assert path.read_bytes()[:5] == b"%PDF-"
    html = (test_study / "results/report/units_trial0.html").read_text()
    assert html.count("data:image/") >= 4


def test_every_rule_wrote_its_log(test_study):
    logs = list((test_study / "logs").rglob("*.log"))
    empty = [p for p in logs if not p.stat().st_size]
    assert logs and not empty, empty


def test_every_job_wrote_a_benchmark_and_the_study_benchmark_reads_them(test_study):
    # one Snakemake benchmark record per job: its log's twin under results/benchmarks
    logs, records = test_study / "logs", test_study / "results/benchmarks"
    assert sorted(p.relative_to(records) for p in records.rglob("*.tsv")) == sorted(
        p.relative_to(logs).with_suffix(".tsv") for p in logs.rglob("*.log")
    )
    script = REPO / "benchmarks/bench_study.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--summarise", str(test_study), "--cores", "2"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = proc.stdout.splitlines()
    # per-rule table rows: rule, jobs, ...
    jobs = {row[0]: row[1] for row in map(str.split, lines) if len(row) > 1}
    # .test: 2 trials x (a dense level 0 + 8 arms x 2 pruned levels + the untrained network),
    # layer3 dissected at every level -> 36 of each analysis job
    assert jobs["train_dense"] == "2" and jobs["train_pruned"] == str(2 * len(METHODS) * 2)
    assert jobs["init_network"] == "2"
    assert jobs["extract_activations"] == jobs["tally_iou"] == str(2 + 2 * len(METHODS) * 2 + 2)
    assert "compute_thresholds" not in jobs  # thresholds are part of tally_iou
    arms = {
        line.split(":")[0].strip(): line.split(":")[1].split(",")[0].strip()
        for line in lines
        if line.startswith("  trial ")
    }
    assert arms == {
        **{f"trial {t} dense": "1 levels" for t in (0, 1)},
        **{f"trial {t} {m}": "2 levels" for t in (0, 1) for m in METHODS},
    }


def test_one_level_analysis_reruns_without_training(test_study):
    target = "results/dissect/lottery/trial0/level1/layer3/units.parquet"
    jobs = dry_run_jobs(test_study, target, "--forcerun", "extract_activations")
    assert jobs == {"extract_activations": 1, "tally_iou": 1}
    assert dry_run_jobs(test_study) == {}, "a finished study must have nothing left to do"


def test_one_methods_analysis_reruns_alone(test_study):
    """README, "Partial reruns": one arm's dissection rebuilt (its target rule dissect_<method>:
    2 trials x 2 pruned levels); no training, no other arm, not the shared level 0."""
    jobs = dry_run_jobs(test_study, "dissect_oneshot", "--forcerun", "extract_activations")
    assert jobs == {"extract_activations": 4, "tally_iou": 4, "dissect_oneshot": 1}


def test_config_changes_rerun_only_what_they_feed(test_study, tmp_path):
    override = tmp_path / "iou.yaml"
    override.write_text("dissection:\n  iou_threshold: 0.04\n")
    config = str(test_study / "config/config.yaml")
    jobs = dry_run_jobs(test_study, "--configfile", config, str(override))
    assert "train_dense" not in jobs and "train_pruned" not in jobs
    assert "extract_activations" not in jobs
    # every checkpoint's layer, the untrained ones too
    assert jobs["tally_iou"] == 2 + 2 * len(METHODS) * 2 + 2
    assert jobs["verdict"] == 1

    boot = tmp_path / "bootstrap.yaml"
    boot.write_text("bootstrap:\n  confidence: 0.9\n")
    jobs = dry_run_jobs(test_study, "--configfile", config, str(boot))
    # the interval level is read from the replicates: no tally reruns
    assert "tally_iou" not in jobs and jobs["gather_bootstrap"] == 1 and jobs["verdict"] == 1

    more = tmp_path / "levels.yaml"
    more.write_text("pruning:\n  levels: 3\n")
    config = str(test_study / "config/config.yaml")
    jobs = dry_run_jobs(test_study, "--configfile", config, str(more))
    assert jobs.get("train_dense", 0) == 0
    assert jobs["train_pruned"] == 2 * len(METHODS), "only level 3 of each arm and trial trains"
    assert jobs["extract_activations"] == 2 * len(METHODS)


def test_killed_run_keeps_finished_levels_and_resumes_to_identical_tables(test_study, tmp_path):
    """Kill a real run mid-way; the rerun must not redo finished levels and must end identical."""
    work = tmp_path / "killed"
    work.mkdir()
    (work / "config").mkdir()
    (work / "config/config.yaml").write_text((REPO / ".test/config/config.yaml").read_text())
    proc = subprocess.Popen(
        [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
         "--cores", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    # level 2's log appears once its job starts, i.e. after Snakemake recorded level 1 as done
    started = work / "logs/train_pruned/lottery_trial0_level2.log"
    deadline = time.monotonic() + 900
    try:
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert started.exists(), "trial 0 level 2 never started"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    jobs = dry_run_jobs(work, "--rerun-incomplete")
    # trial 0's level 0 and lottery level 1 are done: they are not planned again
    assert jobs.get("train_dense", 0) <= 1 and jobs.get("train_pruned", 0) <= 19
    trained = [
        work / "results/train/dense/trial0/level0/metrics.json",
        work / "results/train/lottery/trial0/level1/metrics.json",
    ]
    before = digest(trained)
    # what a user does after a kill: release the stale lock, rerun the same command
    run_snakemake("--snakefile", str(REPO / "Snakefile"), "--directory", str(work), "--unlock")
    run_test_study(work, "--rerun-incomplete")
    assert digest(trained) == before, "a finished level was retrained"
    assert relative_digest(work) == relative_digest(test_study), (
        "the same config and seed must give byte-identical tables"
    )
