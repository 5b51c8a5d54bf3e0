"""The dissection rules (workflow/rules/dissect.smk) run by real Snakemake on a tiny study.

A throw-away Snakefile includes the repository's common.smk and dissect.smk only, with a
random-init checkpoint standing in for the training rules' output, so the rules are tested on
their own: outputs, logs, and which jobs a config change reruns.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, run_snakemake
from helpers import write_probe
from prunedissect.models import get_model
from prunedissect.torchfiles import save_torch

pytestmark = pytest.mark.slow

SNAKEFILE = f"""\
configfile: "config.yaml"


include: "{REPO}/workflow/rules/common.smk"
include: "{REPO}/workflow/rules/dissect.smk"


rule all:
    input:
        "results/dissect/dense/trial0/level0/layer3/units.parquet",
"""


def write_config(path, device="cpu", **dissection):
    config = {
        "trials": 1,
        "device": device,
        "dataset": {"image_size": 16},
        "model": {"arch": "resnet20", "width": 4},
        "dissection": {"layers": ["layer3"], "batch_size": 4, **dissection},
    }
    path.write_text(yaml.safe_dump(config))


def jobs_of(dry_run_output: str) -> set[str]:
    return {
        line.split()[1].rstrip(":")
        for line in dry_run_output.splitlines()
        if line.startswith("rule ")
    }


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    (root / "Snakefile").write_text(SNAKEFILE)
    write_config(root / "config.yaml")
    write_probe(root / "resources/concepts/probe", n_images=8, size=16)
    (root / "results/train/dense/trial0/level0").mkdir(parents=True)
    torch.manual_seed(0)
    model = get_model("resnet20", num_classes=10, width=4)
    # with its .sha256 sidecar, as the training rules write it
    save_torch(model.state_dict(), root / "results/train/dense/trial0/level0/model.pt")
    run_snakemake("--cores", "1", cwd=root)
    return root


def test_rules_write_every_output_and_log(study):
    out = study / "results/dissect/dense/trial0/level0/layer3"
    assert np.load(out / "activations.npy").shape == (8, 16, 4, 4)
    units = pd.read_parquet(out / "units.parquet")
    assert len(units) == 16 and units["unit"].tolist() == list(range(16))
    thresholds = pd.read_parquet(out / "thresholds.parquet")
    np.testing.assert_array_equal(units["threshold"], thresholds["threshold"])
    assert len(pd.read_parquet(out / "tally.parquet")) == 16 * 5
    extract = (study / "logs/extract_activations/dense_trial0_level0.log").read_text()
    assert "wrote results/dissect/dense/trial0/level0/layer3/activations.npy" in extract
    tally = (study / "logs/tally_iou/dense_trial0_level0_layer3.log").read_text()
    assert "16 units, quantile" in tally and "units interpretable" in tally
    assert (
        "encoded 8 probe images"
        in (study / "logs/encode_probe_labels/probe_labels.log").read_text()
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"iou_threshold": 0.04, "category_restricted": False}, {"tally_iou", "all"}),
        (
            {"quantile": 0.01, "threshold_on": "upsampled"},
            {"tally_iou", "all"},
        ),
    ],
)
def test_a_config_change_reruns_only_the_steps_it_affects(study, change, expected, tmp_path):
    write_config(tmp_path / "changed.yaml", **change)
    proc = run_snakemake("-n", "--configfile", str(tmp_path / "changed.yaml"), cwd=study)
    assert jobs_of(proc.stdout + proc.stderr) == expected


@pytest.mark.parametrize("change", [{"device": "auto"}, {"batch_size": 2}])
def test_device_and_batch_size_are_no_params_of_the_exact_steps(study, change, tmp_path):
    """The IoU tally is exact on any device and in any batch size, so neither is a param of it
    (extraction's floats depend on both: they are its params). Snakemake's --list-changes
    params also names some unchanged files, so only what a change adds to its list counts."""

    def params_changed(*args):
        proc = run_snakemake("--list-changes", "params", *args, cwd=study)
        return {Path(line.strip()).name for line in proc.stdout.splitlines() if line.strip()}

    write_config(tmp_path / "changed.yaml", **change)
    added = params_changed("--configfile", str(tmp_path / "changed.yaml")) - params_changed()
    assert added == {"activations.npy"}, added


def test_unchanged_config_has_nothing_to_do(study):
    proc = run_snakemake("-n", cwd=study)
    assert jobs_of(proc.stdout + proc.stderr) == set()
