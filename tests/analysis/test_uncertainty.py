"""Bootstrap counts, their intervals, and the verdict on constructed curves with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from prunedissect import tables
from prunedissect.uncertainty import (
    INIT_LEVEL,
    bootstrap_table,
    intervals_table,
    verdict_table,
)

CATEGORIES = ["color", "object", "scene"]


def test_bootstrap_counts_per_layer_and_over_layers_with_zero_rows():
    # one checkpoint, two layers, two replicates; replicate 1 finds nothing in layer2
    rows = [
        (0, "layer2", 0, "red", "color"),
        (0, "layer2", 1, "red", "color"),
        (0, "layer3", 0, "red", "color"),  # same concept in another layer: distinct once
        (0, "layer3", 1, "dog", "object"),
        (1, "layer3", 3, "sky", "scene"),
    ]
    replicates = pd.DataFrame(rows, columns=["replicate", "layer", "unit", "concept", "category"])
    replicates = replicates.assign(method="lottery", trial=0, level=1)
    checkpoints = pd.DataFrame(
        {"method": ["lottery"], "trial": [0], "level": [1], "density": [0.8]}
    )
    table = bootstrap_table(
        replicates, checkpoints, layers=["layer2", "layer3"], categories=CATEGORIES, n_replicates=2
    )
    tables.write_table(table, "/dev/null", table="bootstrap")  # the documented schema
    counts = table.set_index(["layer", "category", "replicate"])
    assert counts.loc[("layer2", "all", 0), "interpretable_units"] == 2
    assert counts.loc[("layer2", "all", 0), "unique_concepts"] == 1
    assert counts.loc[("layer2", "all", 1), "interpretable_units"] == 0  # filled with zeros
    assert counts.loc[("all", "all", 0)].tolist()[-2:] == [4, 2]  # red twice over layers: 2
    assert counts.loc[("all", "color", 0), "unique_concepts"] == 1
    assert counts.loc[("all", "scene", 1), "interpretable_units"] == 1
    assert len(table) == 3 * 4 * 2  # layers + all, categories + all, replicates
    assert (table["density"] == 0.8).all()


def test_intervals_are_percentiles_of_the_replicates_next_to_the_full_sample():
    n = 101
    boot = pd.DataFrame(
        {
            "method": "lottery",
            "trial": 0,
            "level": 0,
            "density": 1.0,
            "layer": "layer3",
            "category": "all",
            "replicate": np.arange(n),
            "interpretable_units": np.arange(n),  # 0..100: the 2.5% quantile is 2.5
            "unique_concepts": 7,
        }
    )
    units = pd.DataFrame(
        {
            "method": "lottery",
            "trial": 0,
            "level": 0,
            "layer": "layer3",
            "unit": [0, 1, 2],
            "concept": ["red", "dog", "red"],
            "category": ["color", "object", "color"],
            "interpretable": [True, True, False],
        }
    )
    out = intervals_table(units, boot, layers=["layer3"], categories=CATEGORIES, confidence=0.95)
    row = out[(out["layer"] == "layer3") & (out["category"] == "all")].iloc[0]
    assert (row["interpretable_units"], row["unique_concepts"]) == (2, 2)
    assert row["interpretable_units_low"] == pytest.approx(2.5)
    assert row["interpretable_units_high"] == pytest.approx(97.5)
    assert (row["unique_concepts_low"], row["unique_concepts_high"]) == (7.0, 7.0)


DENSITY = {INIT_LEVEL: 1.0, 0: 1.0, 1: 0.8, 2: 0.64, 3: 0.51, 4: 0.41}


def frames(curves, top1, *, spread=0.5, replicates=200, seed=0):
    """Accuracy, bootstrap and intervals of one method and layer: ``curves[trial]`` holds the
    full-sample count per level 0.. (the same for both quantities), ``top1`` the accuracy per
    level. Replicate b of every level shares a per-(trial, replicate) offset (the paired images)
    plus independent noise of sd ``spread``."""
    rng = np.random.default_rng(seed)
    acc, boot, points = [], [], []
    for trial, curve in curves.items():
        shared = rng.normal(0, 3, replicates)
        for level, value in enumerate([1.0, *curve]):
            level -= 1  # the first entry is the untrained floor
            if level >= 0:
                acc.append(dict(method="m", trial=trial, level=level, density=DENSITY[level],
                                top1=top1[level]))  # fmt: skip
            values = value + shared + rng.normal(0, spread, replicates)
            boot.append(
                pd.DataFrame(
                    dict(method="m", trial=trial, level=level, density=DENSITY[level],
                         layer="layer3", category="all", replicate=np.arange(replicates),
                         interpretable_units=values, unique_concepts=values)
                )
            )  # fmt: skip
            points.append(dict(method="m", trial=trial, level=level, density=DENSITY[level],
                               layer="layer3", category="all", interpretable_units=value,
                               unique_concepts=value))  # fmt: skip
    return pd.DataFrame(acc), pd.concat(boot, ignore_index=True), pd.DataFrame(points)


def judge(curves, top1, **kwargs):
    accuracy, boot, points = frames(curves, top1, **kwargs)
    out = verdict_table(accuracy, boot, points, confidence=0.95, accuracy_drop=0.01)
    tables.write_table(out, "/dev/null", table="verdict")
    assert set(out["quantity"]) == {"interpretable_units", "unique_concepts"}
    assert out["verdict"].nunique() == 1  # both quantities follow the same curves here
    return out.iloc[0]


FLAT_TOP1 = [0.90, 0.905, 0.90, 0.85, 0.80]  # accuracy drops at level 3 (density 0.51)


def test_a_fall_before_accuracy_drops_in_every_trial_is_c():
    row = judge({t: [20, 19.8, 14, 9, 5] for t in range(3)}, FLAT_TOP1)
    assert row["verdict"] == "C" and row["judged_levels"] == 2
    assert row["accuracy_drop_density"] == 0.51 and row["first_below_density"] == 0.64
    assert np.isnan(row["first_above_density"]) and row["decisive_density"] == 0.64
    assert row["change"] == pytest.approx(-6.0) and row["change_high"] < 0
    assert row["trials_agreeing"] == 3 and row["level0_value"] == 20 and row["floor_value"] == 1


def test_a_rise_in_every_trial_is_b():
    row = judge({t: [20, 26, 27, 9, 5] for t in range(3)}, FLAT_TOP1)
    assert row["verdict"] == "B" and row["first_above_density"] == 0.8
    assert row["change"] == pytest.approx(6.0) and row["change_low"] > 0


def test_no_change_until_accuracy_drops_is_a():
    # large falls once accuracy has dropped do not count against A
    row = judge({t: [20, 20, 20.2, 5, 1] for t in range(3)}, FLAT_TOP1)
    assert row["verdict"] == "A" and row["decisive_density"] == 0.64
    assert row["change_low"] < 0 < row["change_high"] and row["trials_agreeing"] == 3


def test_trials_that_disagree_leave_it_undecided():
    curves = {0: [20, 20, 12, 5, 1], 1: [20, 20, 20, 5, 1], 2: [20, 20, 20.3, 5, 1]}
    row = judge(curves, FLAT_TOP1)
    assert row["verdict"] == "undecided" and "disagree" in row["reason"]
    assert np.isnan(row["first_below_density"])


def test_rise_then_fall_is_undecided_and_so_is_an_immediate_accuracy_drop():
    row = judge({t: [20, 26, 14, 5, 1] for t in range(3)}, FLAT_TOP1)
    assert row["verdict"] == "undecided" and "rises" in row["reason"]
    row = judge({t: [20, 10, 8, 5, 1] for t in range(3)}, [0.9, 0.7, 0.6, 0.5, 0.4])
    assert row["verdict"] == "undecided" and row["judged_levels"] == 0
    assert row["accuracy_drop_density"] == 0.8 and row["trials_agreeing"] == 0


def test_noise_as_large_as_the_change_is_not_evidence():
    # the same fall as the C case, but the probe set is too small to tell it from noise
    row = judge({t: [20, 19.8, 14, 9, 5] for t in range(3)}, FLAT_TOP1, spread=8)
    assert row["verdict"] in ("A", "undecided")
