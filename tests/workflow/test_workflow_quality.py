"""Quality gates: lint, formatting, and a DAG for every shipped config."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from conftest import REPO, job_counts, make_imagefolder, run_snakemake


def test_snakemake_lint_is_clean():
    proc = run_snakemake("--lint", "--cores", "1", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "Lints for" not in output, output


def test_snakefmt_finds_nothing_to_reformat():
    rules = (REPO / "workflow/rules").glob("*.smk")
    files = ["Snakefile", *sorted(str(p.relative_to(REPO)) for p in rules)]
    proc = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "--diff", *files],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ruff_finds_no_lint_or_import_order_problem():
    """ruff (pyflakes, pycodestyle, isort) over every Python file (src, workflow, tests,
    benchmarks, docs); per-file exceptions are in
    pyproject.toml ([tool.ruff.lint.per-file-ignores]), not in noqa comments."""
    proc = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "src", "workflow", "tests",
         "benchmarks", "docs"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    noqa = subprocess.run(
        ["grep", "-rn", "--include=*.py", "#[ ]noqa", "src", "workflow", "tests", "benchmarks"],
        cwd=REPO, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert noqa == "", noqa


def _dry_run(*args: str, cwd=REPO) -> str:
    # --forceall: the whole DAG, whatever a run in the checkout has already produced
    proc = run_snakemake("-n", "--forceall", "--quiet", "rules", "--cores", "2", *args, cwd=cwd)
    return proc.stdout + proc.stderr


def test_default_config_builds_dag():
    counts = job_counts(_dry_run())
    # config/config.yaml: 2 trials x (level 0 + 3 pruned levels), layers 1-3 dissected at all 8
    # and in each trial's untrained network (2 init_network jobs)
    assert counts["train_dense"] == 2 and counts["train_pruned"] == 6
    assert counts["init_network"] == 2
    # one extraction per checkpoint (all three layers in one forward pass), one tally per layer
    assert counts["extract_activations"] == 10 and counts["tally_iou"] == 30
    assert "compute_thresholds" not in counts


def test_test_config_builds_dag():
    output = _dry_run("--directory", ".test")
    assert "train_dense" in output


@pytest.mark.parametrize("preset", ["paper.yaml", "cifar.yaml"])
def test_presets_build_dag(preset, tmp_path):
    config = yaml.safe_load((REPO / "config" / preset).read_text())
    overrides = {}
    if config.get("dataset", {}).get("kind") == "imagefolder":
        # the user's ImageNet copy: any directory with train/ and val/ passes the check
        make_imagefolder(tmp_path / "imagenet")
        overrides["dataset"] = {"path": str(tmp_path / "imagenet")}
    override_file = tmp_path / "override.yaml"
    override_file.write_text(yaml.safe_dump(overrides))
    output = _dry_run("--configfile", str(REPO / "config" / preset), str(override_file))
    assert "train_pruned" in output
