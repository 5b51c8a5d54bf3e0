"""The unit x concept IoU tally: hand-computed cases and a slow, obviously correct reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from helpers import FakeProbe, concept_mask, random_probe
from prunedissect.data.broden import CategoryLabels
from prunedissect.dissection import (
    encode_probe_labels,
    label_units,
    tally_iou,
    tally_table,
    unit_thresholds,
)


def reference_tally(acts, thresholds, probe, concepts, *, restricted):
    """Loops over units, concepts and images; upsampling one map at a time."""
    n_images, n_units = acts.shape[:2]
    shape = probe.shape
    inter = np.zeros((n_units, len(concepts)), dtype=np.int64)
    union = np.zeros_like(inter)
    for k in range(n_units):
        for j, (number, category) in enumerate(concepts):
            i_sum = a_sum = l_sum = 0
            for i in range(n_images):
                raw = torch.from_numpy(acts[i : i + 1, k : k + 1].astype(np.float32))
                up = F.interpolate(raw, size=shape, mode="bilinear", align_corners=False)[
                    0, 0
                ].numpy()
                active = up > np.float32(thresholds[k])
                seg = probe.segmentation(i)
                label = concept_mask(seg, number, category, shape)
                i_sum += int((active & label).sum())
                l_sum += int(label.sum())
                if not restricted or category in seg:
                    a_sum += int(active.sum())
            inter[k, j] = i_sum
            union[k, j] = a_sum + l_sum - i_sum
    return inter, union


def concept_pairs(labels):
    return list(zip(labels.concepts["label"], labels.concepts["category"], strict=True))


@pytest.mark.parametrize("restricted", [True, False])
@pytest.mark.parametrize(("raw", "seg"), [((3, 4), (7, 9)), ((5, 5), (5, 5)), ((2, 3), (8, 12))])
def test_random_tally_matches_reference(restricted, raw, seg):
    rng = np.random.default_rng(sum(raw) + sum(seg))
    probe = random_probe(rng, n_images=11, shape=seg)
    labels = encode_probe_labels(probe)
    acts = rng.standard_normal((11, 5, *raw)).astype(np.float16)
    acts[:, 3] = np.maximum(acts[:, 3], 0)
    acts[:, 4] = np.where(rng.random(acts[:, 4].shape) < 0.9, 0, np.abs(acts[:, 4]))
    thresholds = unit_thresholds(acts, quantile=0.2)
    assert thresholds[4] == 0  # a sparse ReLU unit: every positive value counts
    # a small step size exercises the batching
    tally = tally_iou(acts, thresholds, labels, category_restricted=restricted, batch_size=3)
    inter, union = reference_tally(
        acts, thresholds, probe, concept_pairs(labels), restricted=restricted
    )
    np.testing.assert_array_equal(tally.intersection, inter)
    np.testing.assert_array_equal(tally.union, union)
    np.testing.assert_allclose(tally.iou, inter / union, rtol=0, atol=0)
    assert tally.intersection.sum() > 0


def test_step_size_and_memory_budget_do_not_change_counts():
    rng = np.random.default_rng(7)
    probe = random_probe(rng, n_images=9, shape=(6, 6))
    labels = encode_probe_labels(probe)
    acts = rng.standard_normal((9, 3, 3, 3)).astype(np.float16)
    thresholds = unit_thresholds(acts, quantile=0.1)
    base = tally_iou(acts, thresholds, labels)
    for kwargs in ({"batch_size": 1}, {"max_elements": 1}, {"batch_size": 4, "max_elements": 300}):
        other = tally_iou(acts, thresholds, labels, **kwargs)
        np.testing.assert_array_equal(other.intersection, base.intersection)
        np.testing.assert_array_equal(other.union, base.union)


def hand_probe():
    """Two 4x4 images. Image 0: red (1) in the top-left 2x2, blue (2) elsewhere, scene 9.
    Image 1: no colour labels at all (category unlabelled), scene 9."""
    color = np.full((4, 4), 2, dtype=np.int32)
    color[:2, :2] = 1
    no_pixels = np.zeros((0, 4, 4), np.int32)
    segs = [
        {
            "color": CategoryLabels(pixel=color[None], image=()),
            "scene": CategoryLabels(pixel=no_pixels, image=(9,)),
        },
        {"scene": CategoryLabels(pixel=no_pixels, image=(9,))},
    ]
    return FakeProbe(["color", "scene"], {1: "red", 2: "blue", 9: "beach"}, segs, (4, 4))


def hand_activations():
    acts = np.zeros((2, 3, 4, 4), dtype=np.float16)
    acts[0, 0, :2, :2] = 1  # unit 0: exactly the red pixels
    acts[0, 1, :2, :] = 1  # unit 1: the top half of image 0 (4 red and 4 blue pixels)
    acts[1, 1, 3, :] = 1  # ... and one row of image 1, where colour is unlabelled
    # unit 2 never fires (dead unit)
    return acts


def test_hand_built_iou():
    labels = encode_probe_labels(hand_probe())
    assert labels.concepts["concept"].tolist() == ["red", "blue", "beach"]
    thresholds = np.array([0.5, 0.5, 0.5])
    acts = hand_activations()
    tally = tally_iou(acts, thresholds, labels, category_restricted=True)
    # unit 0: red pixels exactly -> IoU(red) = 4 / 4 = 1; blue: 0 / (4 + 12);
    # beach: 4 / (4 + 32 - 4)
    np.testing.assert_array_equal(tally.intersection[0], [4, 0, 4])
    np.testing.assert_array_equal(tally.union[0], [4, 16, 32])
    # unit 1 fires on 8 px of image 0 (4 red, 4 blue) and 4 px of image 1 (colour unlabelled):
    # restricted colour union counts image 0 only: red 8 + 4 - 4 = 8, blue 8 + 12 - 4 = 16;
    # scene is labelled in both images: beach 12 + 32 - 12 = 32
    np.testing.assert_array_equal(tally.intersection[1], [4, 4, 12])
    np.testing.assert_array_equal(tally.union[1], [8, 16, 32])
    np.testing.assert_array_equal(tally.intersection[2], [0, 0, 0])
    np.testing.assert_array_equal(tally.union[2], [4, 12, 32])

    free = tally_iou(acts, thresholds, labels, category_restricted=False)
    # unrestricted: unit 1's 4 pixels in image 1 join the colour unions too
    np.testing.assert_array_equal(free.union[1], [12, 20, 32])
    np.testing.assert_array_equal(free.union[0], [4, 16, 32])

    units = label_units(tally, thresholds, iou_threshold=0.5)
    assert units.columns.tolist() == [
        "unit",
        "threshold",
        "concept",
        "category",
        "iou",
        "interpretable",
    ]
    assert units.loc[0, "concept"] == "red" and units.loc[0, "category"] == "color"
    assert units.loc[0, "iou"] == 1.0 and bool(units.loc[0, "interpretable"])
    # unit 1: red 4/8 = beach 12/32? no: red 0.5 > beach 0.375 > blue 0.25; 0.5 is not > 0.5
    assert units.loc[1, "concept"] == "red" and units.loc[1, "iou"] == 0.5
    assert not units.loc[1, "interpretable"]
    # the dead unit gets no concept
    assert pd.isna(units.loc[2, "concept"]) and pd.isna(units.loc[2, "category"])
    assert units.loc[2, "iou"] == 0.0 and not units.loc[2, "interpretable"]


def test_ties_go_to_the_lowest_label_number():
    # equal-sized 2x2 red and blue blocks, half of each active: both IoU 2 / (4 + 4 - 2)
    color = np.zeros((4, 4), dtype=np.int32)
    color[:2, :2] = 2  # blue (label 2) listed first in the image ...
    color[2:, 2:] = 1  # ... red (label 1) second
    probe = FakeProbe(
        ["color"],
        {1: "red", 2: "blue"},
        [{"color": CategoryLabels(pixel=color[None], image=())}],
        (4, 4),
    )
    labels = encode_probe_labels(probe)
    acts = np.zeros((1, 1, 4, 4), dtype=np.float16)
    acts[0, 0, 0, :2] = 1
    acts[0, 0, 2, 2:] = 1
    tally = tally_iou(acts, np.array([0.5]), labels)
    np.testing.assert_array_equal(tally.iou, [[2 / 6, 2 / 6]])
    assert label_units(tally, np.array([0.5]), iou_threshold=0.05).loc[0, "concept"] == "red"


def test_upsampled_unit_matches_concept_exactly():
    # a 2x2 map upsampled to 4x4: a unit firing on its top-left cell covers exactly the 2x2
    # top-left block at threshold 0.5 (bilinear values there are 1, 0.75 and 0.5625; next 0.25)
    labels = encode_probe_labels(hand_probe())
    acts = np.zeros((2, 1, 2, 2), dtype=np.float16)
    acts[0, 0, 0, 0] = 1
    tally = tally_iou(acts, np.array([0.5]), labels)
    assert tally.intersection[0, 0] == 4 and tally.union[0, 0] == 4
    units = label_units(tally, np.array([0.5]), iou_threshold=0.05)
    assert units.loc[0, "concept"] == "red" and units.loc[0, "iou"] == 1.0


def test_tally_table_is_long_and_complete():
    labels = encode_probe_labels(hand_probe())
    tally = tally_iou(hand_activations(), np.array([0.5, 0.5, 0.5]), labels)
    table = tally_table(tally)
    assert table.columns.tolist() == ["unit", "concept", "category", "intersection", "union", "iou"]
    assert len(table) == 3 * 3 and (table["union"] > 0).all()
    assert table["unit"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    row = table[(table["unit"] == 1) & (table["concept"] == "beach")].iloc[0]
    assert (row["category"], row["intersection"], row["union"], row["iou"]) == (
        "scene",
        12,
        32,
        0.375,
    )
    assert str(table["concept"].dtype) == "string" and table["iou"].dtype == np.float64


def test_mismatched_inputs_are_rejected():
    labels = encode_probe_labels(hand_probe())
    with pytest.raises(ValueError, match="same probe directory"):
        tally_iou(np.zeros((3, 1, 2, 2), np.float16), np.zeros(1), labels)
    with pytest.raises(ValueError, match="another layer"):
        tally_iou(np.zeros((2, 2, 2, 2), np.float16), np.zeros(3), labels)
    with pytest.raises(ValueError, match="iou_threshold"):
        label_units(
            tally_iou(np.zeros((2, 1, 2, 2), np.float16), np.zeros(1), labels),
            np.zeros(1),
            iou_threshold=0,
        )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_tally_equals_cpu_tally():
    rng = np.random.default_rng(11)
    probe = random_probe(rng, n_images=20, shape=(8, 8))
    labels = encode_probe_labels(probe)
    acts = rng.standard_normal((20, 6, 4, 4)).astype(np.float16)
    thresholds = unit_thresholds(acts, quantile=0.1)
    np.testing.assert_array_equal(unit_thresholds(acts, quantile=0.1, device="cuda"), thresholds)
    cpu = tally_iou(acts, thresholds, labels)
    gpu = tally_iou(acts, thresholds, labels, device="cuda")
    np.testing.assert_array_equal(gpu.intersection, cpu.intersection)
    np.testing.assert_array_equal(gpu.union, cpu.union)
