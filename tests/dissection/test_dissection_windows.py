"""Windows of hot source cells (dissection.windows): the pixels above a threshold are exactly
those of whole-map upsampling, each counted once; and the tally built on them equals the
brute-force reference at ResNet-50 layer4's shapes (7x7 -> 112x112)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_dissection_iou import concept_pairs, reference_tally

from helpers import random_probe
from prunedissect.dissection import encode_probe_labels, tally_iou, unit_thresholds
from prunedissect.dissection.bootstrap import BootstrapAccumulator
from prunedissect.dissection.windows import (
    active_in_windows,
    hot_cell_windows,
    window_geometry,
    window_mask,
)


def full_active(maps: torch.Tensor, threshold: torch.Tensor, size) -> torch.Tensor:
    up = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return up > threshold[:, None, None]


def windowed_active(maps, threshold, geometry):
    """The windows' active pixels pasted into whole maps, and how often each pixel is owned."""
    n = maps.shape[0]
    floor = threshold - threshold.abs() * 2.0**-16
    which, y, x, owned = hot_cell_windows(maps, floor)
    active = active_in_windows(maps[which], y, x, owned, threshold[which], geometry)
    own = window_mask(y, x, owned, geometry)
    fy2, fx2 = geometry.window
    rows = geometry.window_rows[y][:, None] + torch.arange(fy2)
    cols = geometry.window_cols[x][:, None] + torch.arange(fx2)
    index = (which[:, None, None], rows[:, :, None], cols[:, None, :])
    pasted = torch.zeros((n, *geometry.size), dtype=torch.int64)
    pasted.index_put_(index, active.to(torch.int64), accumulate=True)
    times = torch.zeros((n, *geometry.size), dtype=torch.int64)
    times.index_put_(index, own.to(torch.int64), accumulate=True)
    return pasted, times


@pytest.mark.parametrize(
    ("source", "size"),
    [((7, 7), (112, 112)), ((7, 9), (112, 144)), ((14, 14), (112, 112)), ((3, 4), (6, 32))],
)
@pytest.mark.parametrize("quantile", [0.3, 0.05, 0.005])
def test_windows_find_exactly_the_pixels_of_whole_maps(source, size, quantile):
    rng = np.random.default_rng(sum(source) + sum(size))
    geometry = window_geometry(source, size)
    assert geometry is not None
    maps = torch.from_numpy(rng.standard_normal((120, *source)).astype(np.float16)).float()
    maps[::3] = maps[::3].clamp(min=0)  # ReLU maps: ties at 0, threshold 0 for some
    up = F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)
    threshold = torch.full((120,), float(torch.quantile(up.flatten()[: 2**20], 1 - quantile)))
    threshold[::3] = 0.0
    # thresholds equal to an upsampled value (the hardest case: a tie decided by rounding)
    threshold[1::5] = up[1::5, 0, size[0] // 3, size[1] // 2]
    pasted, times = windowed_active(maps, threshold, geometry)
    expected = full_active(maps, threshold, size)
    assert torch.equal(pasted, expected.to(torch.int64))
    assert times.max() <= 1  # no pixel owned twice
    assert expected.sum() > 0


def test_every_cell_hot_covers_every_pixel_once():
    geometry = window_geometry((7, 7), (112, 112))
    maps = torch.rand((5, 7, 7)) + 1
    _, times = windowed_active(maps, torch.zeros(5), geometry)
    assert torch.equal(times, torch.ones_like(times))


def test_geometries_without_exact_windows():
    assert window_geometry((7, 7), (113, 113)) is None  # not an integer factor
    assert window_geometry((7, 7), (21, 21)) is None  # factor 3, not a power of two
    assert window_geometry((2, 7), (32, 112)) is None  # too few rows for a 3 x 3 crop
    assert window_geometry((7, 7), (7, 7)) is None  # nothing to upsample


@pytest.mark.parametrize("restricted", [True, False])
def test_tally_at_layer4_shapes_matches_reference(restricted):
    rng = np.random.default_rng(17)
    probe = random_probe(rng, n_images=5, shape=(112, 112))
    labels = encode_probe_labels(probe)
    acts = rng.standard_normal((5, 4, 7, 7)).astype(np.float16)
    acts[:, 2] = np.maximum(acts[:, 2], 0)
    acts[:, 3] = np.where(rng.random(acts[:, 3].shape) < 0.9, 0, np.abs(acts[:, 3]))
    thresholds = unit_thresholds(acts, quantile=0.05)
    thresholds[1] = float(  # a threshold equal to an upsampled pixel value
        F.interpolate(
            torch.from_numpy(acts[2:3, 1:2].astype(np.float32)),
            size=(112, 112),
            mode="bilinear",
            align_corners=False,
        )[0, 0, 50, 61]
    )
    tally = tally_iou(acts, thresholds, labels, category_restricted=restricted, batch_size=2)
    inter, union = reference_tally(
        acts, thresholds, probe, concept_pairs(labels), restricted=restricted
    )
    np.testing.assert_array_equal(tally.intersection, inter)
    np.testing.assert_array_equal(tally.union, union)
    assert tally.intersection.sum() > 0


def test_bootstrap_counts_weight_each_image():
    """Replicate weights (2, 0, 1, 1, 3): the replicate's intersections are those of the probe
    in which image 0 occurs twice, image 1 never, image 4 three times."""
    rng = np.random.default_rng(5)
    probe = random_probe(rng, n_images=5, shape=(112, 112))
    labels = encode_probe_labels(probe)
    acts = rng.standard_normal((5, 3, 7, 7)).astype(np.float16)
    thresholds = unit_thresholds(acts, quantile=0.02)
    weights = np.array([[2, 0, 1, 1, 3], [1, 1, 1, 1, 1]], dtype=np.int32)
    bootstrap = BootstrapAccumulator(
        weights,
        n_units=3,
        concept_category=labels.concept_category,
        n_categories=len(labels.categories),
    )
    full = tally_iou(acts, thresholds, labels, bootstrap=bootstrap, batch_size=2)
    order = np.repeat(np.arange(5), weights[0])
    probe.segs = [probe.segs[i] for i in order]
    resampled = tally_iou(acts[order], thresholds, encode_probe_labels(probe))
    inter, _ = bootstrap.counts(0, category_restricted=True)
    np.testing.assert_array_equal(inter, _in_concept_order(resampled, full))
    assert inter.sum() > 0
    np.testing.assert_array_equal(
        bootstrap.counts(1, category_restricted=True)[0], full.intersection
    )


def _in_concept_order(sub, full) -> np.ndarray:
    """``sub``'s intersections in ``full``'s concept columns (0 for concepts ``sub`` lacks)."""
    key = list(zip(sub.concepts["label"], sub.concepts["category"], strict=True))
    position = {k: j for j, k in enumerate(key)}
    out = np.zeros_like(full.intersection)
    for j, k in enumerate(zip(full.concepts["label"], full.concepts["category"], strict=True)):
        if k in position:
            out[:, j] = sub.intersection[:, position[k]]
    return out
