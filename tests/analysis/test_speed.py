"""Inference timing (prunedissect.speed): what is timed and how the table is built; no test
asserts a speed (timings belong in benchmarks/bench_speed.py)."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from prunedissect import speed, tables
from prunedissect.models import get_model


class _Counting(nn.Module):
    """Counts its forward passes and remembers the batch sizes it saw."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=False)
        self.batches: list[int] = []

    def forward(self, x):
        self.batches.append(x.shape[0])
        return self.conv(x).mean(dim=(2, 3))


def test_time_network_runs_warmup_plus_repeats_passes_without_autograd():
    model = _Counting().eval()
    seconds = speed.time_network(model, torch.zeros(2, 3, 8, 8), warmup=3, repeats=5)
    assert len(seconds) == 5 and all(s > 0 for s in seconds)
    assert model.batches == [2] * 8
    with pytest.raises(ValueError, match="repeats >= 1"):
        speed.time_network(model, torch.zeros(1, 3, 8, 8), warmup=0, repeats=0)


def test_count_macs_counts_convolution_arithmetic_by_hand():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(4 * 8 * 8, 2)
    )
    macs, params = speed.count_macs(model, 8)
    conv = 4 * 3 * 3 * 3 * 8 * 8  # out x in x kernel x positions
    linear = 4 * 8 * 8 * 2
    assert params == 4 * 3 * 3 * 3 + 4 * 8 * 8 * 2 + 2
    assert macs in (conv + linear, conv + linear + 2)  # with or without the bias additions


def test_measure_rows_restore_threads_and_count_zeros_as_stored():
    model = get_model("resnet20", num_classes=10, width=4).eval()
    nonzero = sum(int(torch.count_nonzero(p)) for p in model.parameters())  # BN shifts are 0
    assert int(torch.count_nonzero(model.conv1.weight)) == model.conv1.weight.numel()
    with torch.no_grad():
        model.conv1.weight.zero_()
    before = torch.get_num_threads()
    rows = speed.measure(model, image_size=16, batch_sizes=(1, 3), threads=1, warmup=1, repeats=2)
    assert torch.get_num_threads() == before
    assert [(r["device"], r["batch"]) for r in rows] == [("cpu", 1), ("cpu", 3)]
    stored = sum(p.numel() for p in model.parameters())
    for row in rows:
        assert row["params"] == stored
        assert row["nonzero_params"] == nonzero - model.conv1.weight.numel()
        assert math.isclose(row["throughput_img_s"], row["batch"] / (row["latency_ms"] / 1000))
        assert row["device_name"].startswith("cpu-") and row["threads"] == 1


def test_speed_table_joins_top1_and_writes_documented_columns(tmp_path):
    base = {
        "device": "cpu", "device_name": "cpu-avx2", "threads": 2, "repeats": 3,
        "latency_ms": 1.0, "throughput_img_s": 1000.0, "params": 10, "nonzero_params": 5,
        "macs": 100, "trial": 0,
    }  # fmt: skip
    rows = [
        {**base, "variant": "masked", "method": "lottery", "level": 2, "density": 0.25, "batch": 1},
        {**base, "variant": "dense", "method": "dense", "level": 0, "density": 1.0, "batch": 1},
        {**base, "variant": "masked", "method": "lottery", "level": 1, "density": 0.5, "batch": 1},
    ]
    accuracy = pd.DataFrame(  # level 0 is stored under every method, never under "dense"
        {
            "method": ["lottery", "lottery"],
            "trial": [0, 0],
            "level": [0, 1],
            "density": [1.0, 0.5],
            "top1": [0.9, 0.8],
        }
    )
    table = speed.speed_table(rows, accuracy)
    assert list(table["level"]) == [0, 1, 2]
    assert list(table["top1"].iloc[:2]) == [0.9, 0.8] and math.isnan(table["top1"].iloc[2])
    assert list(table["density"]) == [1.0, 0.5, 0.25]
    path = tmp_path / "speed.parquet"
    tables.write_table(table, path, table="speed")
    assert list(tables.read_table(path, table="speed").columns) == list(tables.COLUMNS["speed"])
    with pytest.raises(ValueError, match="unknown variants"):
        speed.speed_table([{**rows[0], "variant": "sparse"}])


def test_speed_is_not_a_golden_digest_table():
    from prunedissect.digests import TABLES

    assert "speed" in tables.COLUMNS and "speed" not in TABLES
