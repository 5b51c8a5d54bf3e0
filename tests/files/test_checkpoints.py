"""Checksummed files, resume points that cannot wedge, and `prunedissect verify` (issue 13)."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch

from prunedissect import cli
from prunedissect.checkpoints import (
    CorruptFileError,
    quick_check,
    sidecar,
    verify,
    write_verified,
)
from prunedissect.torchfiles import ResumePoints, read_torch, save_torch
from prunedissect.verify import verify_results


def test_verify_accepts_the_written_file_and_names_a_truncated_one(tmp_path):
    path = tmp_path / "model.pt"
    save_torch({"w": torch.arange(1000.0)}, path)
    verify(path)
    assert sidecar(path).read_text().endswith("  model.pt\n")  # sha256sum -c format
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(1000.0))
    with open(path, "r+b") as handle:
        handle.truncate(200)
    with pytest.raises(CorruptFileError, match=rf"^{path}: SHA-256 .* truncated or modified"):
        verify(path)
    sidecar(path).unlink()
    with pytest.raises(CorruptFileError, match="model.pt.sha256 is missing"):
        verify(path)


def test_quick_check_reads_only_the_header_of_a_large_npy(tmp_path):
    path = tmp_path / "activations.npy"
    array = np.zeros((4, 3, 2, 2), dtype=np.float16)
    buffer = path.with_suffix(".tmp.npy")
    np.save(buffer, array)
    write_verified(path, buffer.read_bytes())
    quick_check(path, full_limit=0)
    with open(path, "r+b") as handle:
        handle.truncate(path.stat().st_size - 2)
    with pytest.raises(CorruptFileError, match="header announces .*: truncated"):
        quick_check(path, full_limit=0)


def test_read_torch_names_an_unreadable_file_in_one_line(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"PK\x03\x04 truncated zip")
    with pytest.raises(ValueError, match=rf"^{path}: not a readable torch checkpoint") as info:
        read_torch(path)
    assert "\n" not in str(info.value) and "file an issue" not in str(info.value)


def test_a_corrupt_newest_resume_point_falls_back_to_the_previous_one(tmp_path, caplog):
    points = ResumePoints(tmp_path / "resume.pt")
    points.save({"epoch": 1})
    points.save({"epoch": 2})
    assert points.previous.name == "resume.prev.pt"
    assert read_torch(points.previous) == {"epoch": 1}
    points.path.write_bytes(b"garbage")  # a kill during a disk hiccup, a bad copy...
    with caplog.at_level(logging.WARNING):
        assert points.load(logging.getLogger("resume")) == {"epoch": 1}
    assert "resume.pt" in caplog.text and "trying resume.prev.pt" in caplog.text
    assert len(list(tmp_path.glob("resume.pt.corrupt-*Z"))) == 1
    points.previous.write_bytes(b"garbage too")
    assert points.load(logging.getLogger("resume")) is None
    assert "from its start" in caplog.text
    points.clear()
    assert sorted(p.name for p in tmp_path.iterdir() if "corrupt" not in p.name) == []


def test_verify_lists_every_broken_file_with_its_rerun_command(tmp_path, capsys):
    results = tmp_path / "results"
    level = results / "train/lottery/trial0/level1"
    for name in ("model.pt", "mask.npz"):
        write_verified(level / name, b"x" * 100)
    layer = results / "dissect/lottery/trial0/level1/layer3"
    write_verified(layer / "activations.npy", b"y" * 50)
    pd.DataFrame({"unit": [0]}).to_parquet(layer / "units.parquet")
    assert cli.main(["verify", str(results)]) == 0
    assert "4 files checked, 0 broken" in capsys.readouterr().out

    (level / "model.pt").write_bytes(b"x" * 10)
    (layer / "units.parquet").write_bytes(b"PAR1 broken")
    checked, problems = verify_results(results)
    assert [p.path for p in problems] == [
        "results/dissect/lottery/trial0/level1/layer3/units.parquet",
        "results/train/lottery/trial0/level1/model.pt",
    ]
    rebuild = "snakemake --cores all --force results/train/lottery/trial0/level1/model.pt"
    assert problems[1].action == rebuild
    assert cli.main(["verify", str(results)]) == 1
    out = capsys.readouterr().out
    assert "BROKEN results/train/lottery/trial0/level1/model.pt: SHA-256" in out
    assert "4 files checked, 2 broken" in out


def test_quick_check_remembers_passed_files_until_they_change(tmp_path, monkeypatch):
    from prunedissect import checkpoints

    path = tmp_path / "model.pt"
    write_verified(path, b"weights" * 100)
    record = tmp_path / "passed.json"
    passed = checkpoints.load_passed(record)
    assert passed == {}
    quick_check(path, passed=passed)
    checkpoints.save_passed(record, passed)
    passed = checkpoints.load_passed(record)
    assert list(passed) == [str(path)]
    reads = []
    monkeypatch.setattr(checkpoints, "verify", lambda p: reads.append(p))
    quick_check(path, passed=passed)
    assert reads == [], "an unchanged file that passed is not read again"
    monkeypatch.undo()
    with open(path, "ab") as handle:
        handle.write(b"appended")
    with pytest.raises(CorruptFileError):
        quick_check(path, passed=passed)
