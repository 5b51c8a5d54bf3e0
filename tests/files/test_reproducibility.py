"""Pinned CPU kernels and golden digests: the same config, seed and lockfile give the same bytes
on any x86-64 host, whatever the caller's environment asks for."""

from __future__ import annotations

import hashlib
import shutil

import pandas as pd
import pytest

from conftest import REPO, run_snakemake
from prunedissect import digests
from prunedissect.reproducibility import THREADS_VARIABLE, cpu_environment, job_threads


def test_pinned_environment_names_every_kernel_family_and_the_thread_count():
    env = cpu_environment(pin_kernels=True, threads=3)
    assert env["ATEN_CPU_CAPABILITY"] == "avx2"
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert env["MKL_CBWR"].startswith("AVX2")
    assert "X86_V4" in env["NPY_DISABLE_CPU_FEATURES"]
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == env[THREADS_VARIABLE] == "3"
    assert cpu_environment(pin_kernels=False, threads=3) == {}
    with pytest.raises(ValueError, match="cpu.threads must be >= 1"):
        cpu_environment(pin_kernels=True, threads=0)


def test_job_threads_prefer_the_pinned_count(monkeypatch):
    monkeypatch.delenv(THREADS_VARIABLE, raising=False)
    assert job_threads(4) == 4
    monkeypatch.setenv(THREADS_VARIABLE, "1")
    assert job_threads(4) == 1


def _write_tables(directory, values):
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in zip(digests.TABLES, values, strict=True):
        pd.DataFrame({"x": [value]}).to_parquet(directory / f"{name}.parquet")


def test_digests_round_trip_and_name_each_table_that_differs(tmp_path, capsys):
    _write_tables(tmp_path / "a", [1, 2, 3, 4, 5, 6, 7])
    golden = tmp_path / "golden.sha256"
    written = digests.write_digests(tmp_path / "a", golden)
    # sha256sum format, checked against hashlib directly
    for line in golden.read_text().splitlines():
        hexdigest, name = line.split("  ")
        assert hexdigest == hashlib.sha256((tmp_path / "a" / name).read_bytes()).hexdigest()
        assert written[name] == hexdigest
    assert digests.compare_digests(tmp_path / "a", golden) == []
    assert digests.main(["check", str(tmp_path / "a"), str(golden)]) == 0

    _write_tables(tmp_path / "b", [1, 2, 30, 4, 5, 6, 7])
    (tmp_path / "b" / "consistency.parquet").unlink()
    problems = digests.compare_digests(tmp_path / "b", golden)
    assert [p.split(":")[0] for p in problems] == ["summary.parquet", "consistency.parquet"]
    assert "missing" in problems[1]
    assert digests.main(["check", str(tmp_path / "b"), str(golden)]) == 1
    assert "summary.parquet" in capsys.readouterr().err


def test_a_malformed_digest_file_is_named_with_its_line(tmp_path):
    bad = tmp_path / "bad.sha256"
    bad.write_text("# comment\nnot-a-digest accuracy.parquet\n")
    with pytest.raises(ValueError, match=r"bad.sha256:2: expected"):
        digests.read_digests(bad)


def _train_level0(workdir, *, pin: bool = True, env=None) -> str:
    """Train .test level 0 of trial 0 in ``workdir`` through snakemake; sha256 of model.pt."""
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO / ".test" / "config", workdir / "config")
    if not pin:
        with open(workdir / "config" / "config.yaml", "a") as handle:
            handle.write("\ncpu:\n  pin_kernels: false\n")
    target = "results/train/dense/trial0/level0/model.pt"
    run_snakemake(
        "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "1",
        target, env=env,
    )  # fmt: skip
    return hashlib.sha256((workdir / target).read_bytes()).hexdigest()


@pytest.mark.slow
def test_the_pin_cannot_be_undone_from_the_callers_environment(tmp_path):
    hostile = {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "SSE41"}
    pinned = _train_level0(tmp_path / "plain")
    assert _train_level0(tmp_path / "hostile", env=hostile) == pinned
    # the control: without the pin the same hostile environment changes the trained bytes,
    # so the equality above is the pin's doing
    unpinned = _train_level0(tmp_path / "unpinned", pin=False, env=hostile)
    assert unpinned != pinned
