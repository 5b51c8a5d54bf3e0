"""Per-unit thresholds against numpy's exact np.quantile(values, 1 - q)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from prunedissect.dissection import quantile_position, thresholds_table, unit_thresholds, upsample


def numpy_thresholds(activations: np.ndarray, quantile: float) -> np.ndarray:
    """Reference: every value of a unit (all images, all locations), np.quantile in float64."""
    per_unit = (
        activations.astype(np.float64).transpose(1, 0, 2, 3).reshape(activations.shape[1], -1)
    )
    return np.quantile(per_unit, 1 - quantile, axis=1)


@pytest.mark.parametrize("quantile", [0.005, 0.05, 0.3, 0.5, 0.9, 0.999])
def test_raw_thresholds_equal_numpy_quantile(quantile):
    rng = np.random.default_rng(0)
    acts = rng.standard_normal((23, 6, 5, 3)).astype(np.float16)
    acts[:, 2] = np.maximum(acts[:, 2], 0)  # a ReLU-like unit: ties at 0
    acts[:, 4] = rng.integers(0, 3, size=acts[:, 4].shape)  # massive ties
    np.testing.assert_array_equal(
        unit_thresholds(acts, quantile=quantile), numpy_thresholds(acts, quantile)
    )


@pytest.mark.parametrize("max_elements", [1, 37, 500, 10**6])
def test_chunked_streaming_is_exact(max_elements):
    # Tiny budgets force one unit per chunk and a top-m merge after nearly every image.
    rng = np.random.default_rng(1)
    acts = (rng.gamma(1.0, size=(40, 5, 4, 4)) * rng.random((1, 5, 1, 1)) * 10).astype(np.float16)
    for quantile in (0.01, 0.2):
        got = unit_thresholds(acts, quantile=quantile, max_elements=max_elements)
        np.testing.assert_array_equal(got, numpy_thresholds(acts, quantile))


def test_memory_mapped_input(tmp_path):
    rng = np.random.default_rng(2)
    path = tmp_path / "acts.npy"
    np.save(path, rng.standard_normal((17, 4, 3, 3)).astype(np.float16))
    acts = np.load(path, mmap_mode="r")
    np.testing.assert_array_equal(
        unit_thresholds(acts, quantile=0.005), numpy_thresholds(np.asarray(acts), 0.005)
    )


def test_upsampled_thresholds_equal_numpy_quantile_of_upsampled_maps():
    rng = np.random.default_rng(3)
    acts = rng.standard_normal((9, 4, 3, 4)).astype(np.float16)
    size = (7, 10)
    full = upsample(torch.from_numpy(acts.astype(np.float32)), size).numpy()
    assert full.shape == (9, 4, 7, 10)
    for max_elements in (50, 10**6):
        got = unit_thresholds(acts, quantile=0.02, upsample_to=size, max_elements=max_elements)
        np.testing.assert_array_equal(got, numpy_thresholds(full, 0.02))


def test_fraction_above_threshold_is_the_quantile():
    # Distinct values: exactly floor(q * (n - 1)) + ... values lie strictly above T.
    rng = np.random.default_rng(4)
    acts = rng.permutation(np.arange(2000, dtype=np.float64)).reshape(20, 1, 10, 10) / 64
    acts = acts.astype(np.float16)
    t = unit_thresholds(acts, quantile=0.005)[0]
    assert (acts.astype(np.float64) > t).sum() == 10  # 0.5% of 2000


def test_quantile_position_by_hand():
    pos = quantile_position(201, 0.005)  # (200) * 0.995 = 199.0
    assert (pos.lo, pos.hi, pos.gamma, pos.top) == (199, 200, 0.0, 2)
    pos = quantile_position(1, 0.5)
    assert (pos.lo, pos.hi, pos.gamma, pos.top) == (0, 0, 0.0, 1)
    with pytest.raises(ValueError, match="strictly between"):
        quantile_position(10, 0.0)
    with pytest.raises(ValueError, match=r"\(N, K, h, w\)"):
        unit_thresholds(np.zeros((3, 4), np.float16))


def test_thresholds_table_is_tidy():
    table = thresholds_table(np.array([0.5, 1.5], dtype=np.float32))
    assert table.columns.tolist() == ["unit", "threshold"]
    assert table["unit"].tolist() == [0, 1] and table["threshold"].dtype == np.float64
