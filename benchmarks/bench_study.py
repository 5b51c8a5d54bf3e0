"""Time a whole study and say where its wall time goes.

    python benchmarks/bench_study.py                           # the default study, in a scratch dir
    python benchmarks/bench_study.py --configfile .test/config/config.yaml --cores 2
    python benchmarks/bench_study.py --summarise .             # an existing run, no new jobs

Running mode copies the config's folder into a fresh working directory (the chosen file becomes
its config/config.yaml, as the workflow expects), runs ``snakemake --cores N`` there with the
repository's Snakefile, times it, then summarises. Summarise mode reads
the per-job ``results/benchmarks/<rule>/*.tsv`` files that every rule's ``benchmark:`` writes
(Snakemake's columns: ``s`` wall seconds, ``max_rss`` MB, ``cpu_time`` seconds), so it also works
on a cluster run's working directory.

Prints: wall time, job-seconds and CPU-seconds per rule, each trial's training per method (the
critical path: the dense level, then a chained arm's levels one after another), and how busy the
cores were.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
TRAIN_RULES = ("train_dense", "train_pruned")


def read_benchmarks(workdir: Path) -> pd.DataFrame:
    """One row per finished job: rule, job (file stem), method (training jobs: dense for level
    0, else the arm; other jobs: empty), trial (or -1), s, cpu_time, max_rss, end."""
    rows = []
    for path in sorted((workdir / "results" / "benchmarks").glob("*/*.tsv")):
        record = pd.read_csv(path, sep="\t", na_values=["NA", "-"]).iloc[-1]
        trial = re.search(r"trial(\d+)", path.stem)
        method = ""
        if path.parent.name == "train_dense":
            method = "dense"
        elif path.parent.name == "train_pruned":  # {method}_trial{t}_level{l}
            method = path.stem.rsplit("_trial", 1)[0]
        rows.append(
            {
                "rule": path.parent.name,
                "job": path.stem,
                "method": method,
                "trial": int(trial.group(1)) if trial else -1,
                "s": float(record["s"]),
                "cpu_time": float(record.get("cpu_time", float("nan"))),
                "max_rss": float(record.get("max_rss", float("nan"))),
                "end": path.stat().st_mtime,
            }
        )
    if not rows:
        raise SystemExit(
            f"no benchmark files under {workdir / 'results/benchmarks'}: "
            "run the study first (or point --summarise at its working directory)"
        )
    return pd.DataFrame(rows)


def summarise(jobs: pd.DataFrame, wall: float | None, cores: int) -> str:
    """The report as text: per rule, per training chain, and core utilisation."""
    if wall is None:  # an existing run: span of the job files (first start to last end)
        wall = float(jobs.end.max() - (jobs.end - jobs.s).min())
        wall_note = "span of job files"
    else:
        wall_note = "measured"
    lines = [
        f"wall {wall:8.1f} s ({wall / 60:.1f} min, {wall_note}); {len(jobs)} jobs; {cores} cores"
    ]
    per_rule = (
        jobs.groupby("rule")
        .agg(jobs=("s", "size"), job_s=("s", "sum"), mean_s=("s", "mean"),
             cpu_s=("cpu_time", "sum"), max_rss_mb=("max_rss", "max"))
        .sort_values("job_s", ascending=False)
    )
    per_rule["share"] = per_rule.job_s / per_rule.job_s.sum()
    lines += ["", per_rule.to_string(float_format=lambda x: f"{x:.1f}")]
    training = jobs[jobs.rule.isin(TRAIN_RULES)]
    if not training.empty:
        arms = training.groupby(["trial", "method"]).s.agg(["size", "sum"])
        lines += ["", "training per trial and method (dense: the shared level 0):"]
        lines += [
            f"  trial {trial} {method}: {int(arm['size'])} levels, {arm['sum']:.1f} s"
            for (trial, method), arm in arms.iterrows()
        ]
        # the critical path of a trial: its dense level, then its slowest arm's levels (a
        # chained arm's levels run one after another; other arms' levels may overlap)
        per_trial = arms["sum"].unstack("method")
        dense = per_trial.pop("dense") if "dense" in per_trial else 0.0
        longest = float((dense + per_trial.max(axis=1).fillna(0.0)).max())
        lines.append(
            f"  longest trial (dense + slowest arm) {longest:.1f} s = {longest / wall:.0%} of "
            f"wall; the remaining {wall - longest:.1f} s are data, other arms, analysis and "
            "scheduling"
        )
    busy = jobs.s.sum() / (wall * cores)
    lines += ["", f"job-seconds {jobs.s.sum():.1f}; CPU-seconds {jobs.cpu_time.sum():.1f}; "
              f"cores busy {busy:.0%} of wall x cores"]
    return "\n".join(lines)


def run_study(workdir: Path, configfile: Path, cores: int) -> float:
    """Run the study into ``workdir`` and return its wall seconds (stops on failure)."""
    if (workdir / "results").exists():
        # Snakemake would skip the finished jobs and the timing would mean nothing
        raise SystemExit(
            f"{workdir} already holds results/: give a fresh --workdir, or --summarise {workdir}"
        )
    shutil.copytree(configfile.parent, workdir / "config", dirs_exist_ok=True)
    shutil.copyfile(configfile, workdir / "config" / "config.yaml")
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir), "--cores", str(cores),
    ]
    print("running:", " ".join(command), flush=True)
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"the study failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configfile", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--cores", type=int, default=os.cpu_count())
    parser.add_argument(
        "--workdir", type=Path, help="a fresh directory to run in (default: a scratch dir, removed)"
    )
    parser.add_argument("--summarise", type=Path, metavar="WORKDIR",
                        help="only summarise the benchmark files of an existing run")
    args = parser.parse_args()
    if args.summarise:
        print(summarise(read_benchmarks(args.summarise), None, args.cores))
        return
    with tempfile.TemporaryDirectory(prefix="bench_study_") as scratch:
        workdir = args.workdir or Path(scratch)
        wall = run_study(workdir, args.configfile.resolve(), args.cores)
        print(summarise(read_benchmarks(workdir), wall, args.cores))


if __name__ == "__main__":
    main()
