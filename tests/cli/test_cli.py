"""The ``prunedissect`` console script, run as a real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import write_probe
from prunedissect.cli import main, parse_kwargs
from prunedissect.models import get_model

SCRIPT = Path(sys.executable).with_name("prunedissect")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, timeout=300, env=env
    )


@pytest.fixture(scope="module")
def checkpoint_and_probe(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    model = get_model("resnet20", num_classes=4, width=4)
    torch.save(model.state_dict(), root / "model.pt")
    write_probe(root / "probe", n_images=10, size=16)
    return root


def dissect_args(root: Path, out: Path) -> list[str]:
    return [
        "dissect",
        "--arch",
        "resnet20",
        "--model-kwarg",
        "width=4",
        "--checkpoint",
        str(root / "model.pt"),
        "--probe",
        str(root / "probe"),
        "--layer",
        "layer3",
        "--layer",
        "layer2",
        "--out",
        str(out),
        "--image-size",
        "16",
        "--mean",
        "0.5",
        "0.5",
        "0.5",
        "--std",
        "0.25",
        "0.25",
        "0.25",
        "--batch-size",
        "4",
        "--device",
        "cpu",
    ]


def test_cli_dissects_a_checkpoint_and_is_deterministic(checkpoint_and_probe):
    root = checkpoint_and_probe
    first = run_cli(*dissect_args(root, root / "out1"))
    assert first.returncode == 0, first.stderr
    # ResNet-20 of width 4: layer3 has 16 channels at 4x4 for 16 px inputs, layer2 8 at 8x8
    for layer, units, side in (("layer3", 16, 4), ("layer2", 8, 8)):
        out = root / "out1" / layer
        assert np.load(out / "activations.npy", mmap_mode="r").shape == (10, units, side, side)
        table = pd.read_parquet(out / "units.parquet")
        assert table.columns.tolist() == [
            "unit",
            "threshold",
            "concept",
            "category",
            "iou",
            "interpretable",
            "interpretable_fraction",
            "same_concept_fraction",
            "alive",
        ]
        replicates = pd.read_parquet(out / "replicates.parquet")
        assert set(replicates["replicate"]) <= set(range(200))
        assert table["unit"].tolist() == list(range(units))
        tally = pd.read_parquet(out / "tally.parquet")
        assert len(tally) == units * 5  # 5 concepts in the probe
        assert f"{layer}: " in first.stdout and f"of {units} units interpretable" in first.stdout
    assert (root / "out1" / "probe_labels" / "segments.npy").is_file()
    second = run_cli(*dissect_args(root, root / "out2"))
    assert second.returncode == 0, second.stderr
    for path in sorted((root / "out1").rglob("*")):
        if path.is_file():
            twin = root / "out2" / path.relative_to(root / "out1")
            assert path.read_bytes() == twin.read_bytes(), path


def test_cli_reports_bad_input_without_a_traceback(checkpoint_and_probe):
    root = checkpoint_and_probe
    args = dissect_args(root, root / "bad")
    args[args.index("layer3")] = "layer9"
    proc = run_cli(*args)
    assert proc.returncode == 2
    assert "--layer: got 'layer9', which is not a module of resnet20" in proc.stderr
    assert "closest valid names: layer3" in proc.stderr and "Traceback" not in proc.stderr
    assert not (root / "bad").exists(), "a wrong layer must not leave an empty directory"
    args[args.index("layer9")] = "fc"
    proc = run_cli(*args)
    assert proc.returncode == 2 and "not a spatial (N, C, H, W) map" in proc.stderr
    assert not (root / "bad").exists()
    args = dissect_args(root, root / "bad")
    args[args.index("--probe") + 1] = str(root / "nowhere")
    proc = run_cli(*args)
    assert proc.returncode == 2 and "nowhere does not exist" in proc.stderr


def test_cli_main_in_process(checkpoint_and_probe, capsys):
    root = checkpoint_and_probe
    args = dissect_args(root, root / "x")
    args.remove("--model-kwarg")
    args.remove("width=4")  # the default width 16 does not fit the checkpoint
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == 2 and "does not fit resnet20" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["dissect", "--help"])
    assert exit_info.value.code == 0 and "--threshold-on" in capsys.readouterr().out


def test_model_kwargs_are_parsed_as_yaml_values():
    assert parse_kwargs(["width=16", "aux_logits=false", "name=x"]) == {
        "width": 16,
        "aux_logits": False,
        "name": "x",
    }
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_kwargs(["width"])


def test_cli_names_a_truncated_checkpoint_in_one_line(checkpoint_and_probe, tmp_path):
    root = checkpoint_and_probe
    truncated = tmp_path / "model.pt"
    truncated.write_bytes((root / "model.pt").read_bytes()[:5000])
    args = dissect_args(root, tmp_path / "out")
    args[args.index("--checkpoint") + 1] = str(truncated)
    proc = run_cli(*args)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    [line] = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert f"error: {truncated}: not a readable torch checkpoint" in line


def test_a_checkpoint_of_another_width_gets_a_one_line_diagnosis_first(tmp_path, capsys):
    from helpers import write_probe

    torch.save(get_model("resnet20", num_classes=4, width=8).state_dict(), tmp_path / "m.pt")
    write_probe(tmp_path / "probe", n_images=2, size=16)
    with pytest.raises(SystemExit):
        main(["dissect", "--arch", "resnet20", "--checkpoint", str(tmp_path / "m.pt"),
              "--probe", str(tmp_path / "probe"), "--layer", "layer3", "--out",
              str(tmp_path / "out")])  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    first = next(line for line in err if "error:" in line)
    assert "does not fit resnet20" in first
    assert "it looks like resnet20 (CIFAR-style) with width=8 and 4 classes" in first
    assert "conv1.weight has shape (8, 3, 3, 3)" in first
    assert len(err) < 15, "the details are cut to a few lines"
