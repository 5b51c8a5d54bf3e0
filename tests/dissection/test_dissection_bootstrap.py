"""The probe-image bootstrap: exact replicate counts (by hand and against an explicitly resampled
probe set) and the coverage of its intervals on synthetic tallies."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import FakeProbe, random_probe
from prunedissect.data.broden import CategoryLabels
from prunedissect.dissection import encode_probe_labels, tally_iou, unit_thresholds
from prunedissect.dissection.bootstrap import (
    BootstrapAccumulator,
    image_weights,
    replicate_table,
    unit_stability,
)
from prunedissect.uncertainty import interval


def accumulator(weights, labels, n_units):
    return BootstrapAccumulator(
        np.asarray(weights),
        n_units=n_units,
        concept_category=labels.concept_category,
        n_categories=len(labels.categories),
    )


def test_weights_are_draws_with_replacement_and_reproducible():
    weights = image_weights(50, replicates=30, seed=4)
    assert weights.shape == (30, 50) and weights.dtype == np.int32
    assert (weights.sum(axis=1) == 50).all() and (weights >= 0).all()
    # some images are drawn twice, some never: a resample, not a permutation
    assert (weights == 0).any(axis=1).all() and (weights >= 2).any(axis=1).all()
    np.testing.assert_array_equal(weights, image_weights(50, replicates=30, seed=4))
    assert not np.array_equal(weights, image_weights(50, replicates=30, seed=5))
    with pytest.raises(ValueError, match="replicates >= 1"):
        image_weights(50, replicates=0, seed=0)


def hand_probe():
    """Two 2x2 images. Image 0: red (1) on the left column, blue (2) on the right, scene 9.
    Image 1: no colour labels (the category is unlabelled there), scene 9."""
    color = np.array([[[1, 2], [1, 2]]], dtype=np.int32)
    no_pixels = np.zeros((0, 2, 2), np.int32)
    segs = [
        {
            "color": CategoryLabels(pixel=color, image=()),
            "scene": CategoryLabels(pixel=no_pixels, image=(9,)),
        },
        {"scene": CategoryLabels(pixel=no_pixels, image=(9,))},
    ]
    return FakeProbe(["color", "scene"], {1: "red", 2: "blue", 9: "beach"}, segs, (2, 2))


def test_hand_computed_replicate_counts():
    labels = encode_probe_labels(hand_probe())
    assert labels.concepts["concept"].tolist() == ["red", "blue", "beach"]
    acts = np.zeros((2, 1, 2, 2), dtype=np.float16)
    acts[0, 0, :, 0] = 1  # image 0: the red column
    acts[1, 0, 0, :] = 1  # image 1: the top row (no colour labels there)
    # replicate 0 draws image 0 twice and image 1 once; replicate 1 draws image 1 three times
    boot = accumulator([[2, 1], [0, 3]], labels, n_units=1)
    tally_iou(acts, np.array([0.5]), labels, category_restricted=True, batch_size=2, bootstrap=boot)

    inter, union = boot.counts(0, category_restricted=True)
    # red: 2 x 2 px shared; union 2 x 2 active (colour labelled in image 0 only) + 2 x 2 red - 4
    # blue: nothing shared; union 4 active + 4 blue; beach (every pixel of images 0 and 1):
    # intersection 2 x 2 + 1 x 2 = 6, union 6 active + (2 x 4 + 4) labelled - 6 = 12
    np.testing.assert_array_equal(inter, [[4, 0, 6]])
    np.testing.assert_array_equal(union, [[4, 8, 12]])
    inter, union = boot.counts(1, category_restricted=True)
    # image 1 three times: no colour anywhere; beach 3 x 2 of 3 x 4
    np.testing.assert_array_equal(inter, [[0, 0, 6]])
    np.testing.assert_array_equal(union, [[0, 0, 12]])
    inter, union = boot.counts(0, category_restricted=False)
    np.testing.assert_array_equal(union, [[6 + 4 - 4, 6 + 4, 12]])

    concept, iou, interpretable = boot.labels(category_restricted=True, iou_threshold=0.6)
    np.testing.assert_array_equal(concept, [[0], [2]])  # red (1.0), then beach (0.5)
    np.testing.assert_allclose(iou, [[1.0], [0.5]])
    np.testing.assert_array_equal(interpretable, [[True], [False]])
    table = replicate_table(concept, iou, interpretable, labels.concepts)
    assert table.to_dict("list") == {
        "replicate": [0],
        "unit": [0],
        "concept": ["red"],
        "category": ["color"],
        "iou": [1.0],
    }
    stability = unit_stability(concept, interpretable, np.array([0]))
    assert stability["interpretable_fraction"].tolist() == [0.5]
    assert stability["same_concept_fraction"].tolist() == [0.5]


def resampled(probe: FakeProbe, acts: np.ndarray, weights: np.ndarray):
    """The probe set and activations in which image i occurs weights[i] times."""
    order = np.repeat(np.arange(len(weights)), weights)
    segs = [probe.segs[i] for i in order]
    return FakeProbe(probe.categories, probe.names, segs, probe.shape), acts[order]


@pytest.mark.parametrize("restricted", [True, False])
def test_each_replicate_is_the_tally_of_its_resampled_probe(restricted):
    rng = np.random.default_rng(11)
    probe = random_probe(rng, n_images=13, shape=(6, 5))
    labels = encode_probe_labels(probe)
    acts = rng.standard_normal((13, 4, 3, 2)).astype(np.float16)
    acts[:, 3] = np.where(rng.random(acts[:, 3].shape) < 0.8, 0, np.abs(acts[:, 3]))
    thresholds = unit_thresholds(acts, quantile=0.2)
    weights = image_weights(13, replicates=6, seed=3)
    boot = accumulator(weights, labels, n_units=4)
    tally_iou(
        acts, thresholds, labels, category_restricted=restricted, batch_size=4, bootstrap=boot
    )
    keys = list(zip(labels.concepts["concept"], labels.concepts["category"], strict=True))
    for b in range(len(weights)):
        probe_b, acts_b = resampled(probe, acts, weights[b])
        labels_b = encode_probe_labels(probe_b)
        full = tally_iou(acts_b, thresholds, labels_b, category_restricted=restricted)
        keys_b = zip(labels_b.concepts["concept"], labels_b.concepts["category"], strict=True)
        where = {key: j for j, key in enumerate(keys_b)}
        inter, union = boot.counts(b, category_restricted=restricted)
        for j, key in enumerate(keys):
            if key in where:
                np.testing.assert_array_equal(inter[:, j], full.intersection[:, where[key]])
                np.testing.assert_array_equal(union[:, j], full.union[:, where[key]])
            else:  # a concept no drawn image shows: nothing shared, no labelled pixels
                assert (inter[:, j] == 0).all()
        assert inter.sum() > 0


def test_ratio_intervals_cover_the_true_iou_at_the_nominal_rate():
    """A unit x concept pair with known per-image distributions: intersection ~ Binomial(a, p)
    of the unit's a ~ Poisson(20) active pixels, label pixels l ~ Poisson(30) + intersection,
    so the population IoU is E[I] / E[A + L - I] = 20p / (20 + 30 + 20p - 20p)."""
    p, n_images, sets, confidence = 0.3, 150, 400, 0.9
    truth = 20 * p / 50
    rng = np.random.default_rng(0)
    weights = image_weights(n_images, replicates=300, seed=1).astype(np.float64)
    covered = 0
    for _ in range(sets):
        active = rng.poisson(20, n_images)
        inter = rng.binomial(active, p)
        label = rng.poisson(30, n_images) + inter
        union = active + label - inter
        iou = (weights @ inter) / (weights @ union)
        low, high = interval(iou, confidence)
        covered += low <= truth <= high
    # simulation error of the coverage: sqrt(0.9 x 0.1 / 400) = 0.015; allow 3.5 of it
    assert abs(covered / sets - confidence) < 3.5 * np.sqrt(confidence * (1 - confidence) / sets)
