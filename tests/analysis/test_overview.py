"""The Markdown overview: every cell checked against hand-computed means and trial ranges."""

from __future__ import annotations

import pandas as pd

from prunedissect import tables
from prunedissect.overview import overview_markdown


def _frames():
    accuracy = pd.DataFrame(
        dict(trial=t, level=lv, density=d, params_remaining=100, top1=a, top5=1.0, loss=0.1)
        for t, lv, d, a in [
            (0, 0, 1.0, 0.9), (1, 0, 1.0, 0.9), (0, 1, 0.25, 0.8), (1, 1, 0.25, 0.6)
        ]
    )
    units = []
    # trial 0: level 0 has units 0 (red), 1 (striped); level 1 keeps unit 0 only, as red
    # trial 1: level 0 has unit 0 (red); level 1 has units 0 (blue) and 1 (striped)
    labels = {
        (0, 0): [("red", "color"), ("striped", "texture")],
        (0, 1): [("red", "color"), ("striped", "texture", False)],
        (1, 0): [("red", "color"), ("striped", "texture", False)],
        (1, 1): [("blue", "color"), ("striped", "texture")],
    }
    for (trial, level), rows in labels.items():
        for unit, (concept, category, *flag) in enumerate(rows):
            units.append(
                dict(trial=trial, level=level, layer="layer3", unit=unit, threshold=1.0,
                     concept=concept, category=category, iou=0.1,
                     interpretable=flag[0] if flag else True)
            )  # fmt: skip
    units = tables.units_table(pd.DataFrame(units), tables.accuracy_table(accuracy))
    return (
        tables.accuracy_table(accuracy),
        tables.summary_table(units),
        tables.consistency_table(units),
    )


def test_overview_cells_are_trial_means_with_ranges():
    text = overview_markdown(*_frames())
    rows = {
        line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:]
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("|---")
    }
    assert rows["% weights remaining"] == ["100", "25 |"]
    assert rows["top-1 accuracy"] == ["0.900", "0.700 [0.600, 0.800] |"]
    # interpretable units: level 0 -> 2 and 1; level 1 -> 1 and 2
    assert rows["interpretable units"] == ["1.5 [1.0, 2.0]", "1.5 [1.0, 2.0] |"]
    # categories with an interpretable unit: level 0 -> 2 and 1; level 1 -> 1 and 2
    assert rows["categories detected"] == ["1.5 [1.0, 2.0]", "1.5 [1.0, 2.0] |"]
    # still interpretable vs level 0: trial 0 1/2, trial 1 1/1 -> 50% and 100%
    assert rows["% of level-0 detectors still interpretable"] == ["100", "75 [50, 100] |"]
    # same concept among kept: trial 0 red=red (100%), trial 1 red->blue (0%)
    assert rows["% of those with the same concept"] == ["100", "50 [0, 100] |"]
    assert text.startswith("# What the study shows") and "## layer3" in text
