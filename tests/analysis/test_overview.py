"""The Markdown overview: every cell checked against hand-computed means and trial ranges."""

from __future__ import annotations

import pandas as pd
import pytest

from prunedissect import tables
from prunedissect.overview import overview_markdown

# (method, trial, level) -> top-1 and each unit's (concept, category[, interpretable])
# lottery, trial 0: level 0 has units 0 (red), 1 (striped); level 1 keeps unit 0 only, as red
# lottery, trial 1: level 0 has unit 0 (red); level 1 has units 0 (blue) and 1 (striped)
# oneshot shares level 0; trial 0 keeps both units; trial 1 loses red and gains striped
LEVEL0 = {
    0: [("red", "color"), ("striped", "texture")],
    1: [("red", "color"), ("striped", "texture", False)],
}
CHECKPOINTS = {
    ("lottery", 0, 0): (0.9, LEVEL0[0]),
    ("lottery", 1, 0): (0.9, LEVEL0[1]),
    ("lottery", 0, 1): (0.8, [("red", "color"), ("striped", "texture", False)]),
    ("lottery", 1, 1): (0.6, [("blue", "color"), ("striped", "texture")]),
    ("oneshot", 0, 0): (0.9, LEVEL0[0]),
    ("oneshot", 1, 0): (0.9, LEVEL0[1]),
    ("oneshot", 0, 1): (0.7, [("red", "color"), ("striped", "texture")]),
    ("oneshot", 1, 1): (0.5, [("red", "color", False), ("striped", "texture")]),
}
DENSITY = {0: 1.0, 1: 0.25}


def _frames(methods=("lottery", "oneshot")):
    metrics, units = [], []
    for (method, trial, level), (top1, labels) in CHECKPOINTS.items():
        if method not in methods:
            continue
        metrics.append(
            dict(method=method, trial=trial, level=level, density=DENSITY[level],
                 params_remaining=100, top1=top1, top5=1.0, loss=0.1)
        )  # fmt: skip
        for unit, (concept, category, *flag) in enumerate(labels):
            units.append(
                dict(method=method, trial=trial, level=level, layer="layer3", unit=unit,
                     threshold=1.0, concept=concept, category=category, iou=0.1,
                     interpretable=flag[0] if flag else True,
                     interpretable_fraction=1.0, same_concept_fraction=1.0, alive=True)
            )  # fmt: skip
    accuracy = tables.accuracy_table(pd.DataFrame(metrics))
    units = tables.units_table(pd.DataFrame(units), accuracy)
    return accuracy, tables.summary_table(units), tables.consistency_table(units)


def _rows(text: str) -> dict[str, list[str]]:
    return {
        line.split(" | ")[0].lstrip("| "): line.split(" | ")[1:]
        for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("|---")
    }


def test_overview_cells_are_trial_means_with_ranges():
    text = overview_markdown(*_frames(methods=("lottery",)))
    rows = _rows(text)
    assert rows["% weights remaining"] == ["100", "25 |"]
    assert rows["top-1 accuracy, lottery"] == ["0.900", "0.700 [0.600, 0.800] |"]
    # interpretable units: level 0 -> 2 and 1; level 1 -> 1 and 2
    assert rows["interpretable units, lottery"] == ["1.5 [1.0, 2.0]", "1.5 [1.0, 2.0] |"]
    # categories with an interpretable unit: level 0 -> 2 and 1; level 1 -> 1 and 2
    assert rows["categories detected, lottery"] == ["1.5 [1.0, 2.0]", "1.5 [1.0, 2.0] |"]
    # still interpretable vs level 0: trial 0 1/2, trial 1 1/1 -> 50% and 100%
    assert rows["% of level-0 detectors still interpretable, lottery"] == ["100", "75 [50, 100] |"]
    # same concept among kept: trial 0 red=red (100%), trial 1 red->blue (0%)
    assert rows["% of those with the same concept, lottery"] == ["100", "50 [0, 100] |"]
    assert len(rows) == 1 + 6  # the header and six quantities, one method
    assert text.startswith("# What the study shows") and "## layer3" in text
    assert "Method: lottery." in text


def test_overview_has_a_row_per_quantity_and_method_sharing_level_zero():
    text = overview_markdown(*_frames())
    rows = _rows(text)
    assert rows["% weights remaining"] == ["100", "25 |"]
    assert rows["top-1 accuracy, lottery"] == ["0.900", "0.700 [0.600, 0.800] |"]
    assert rows["top-1 accuracy, oneshot"] == ["0.900", "0.600 [0.500, 0.700] |"]
    # oneshot level 1: trial 0 red + striped (2 units, 2 concepts, 2 categories), trial 1
    # striped alone (1, 1, 1)
    for quantity in ("interpretable units", "distinct concepts", "categories detected"):
        assert rows[f"{quantity}, oneshot"] == ["1.5 [1.0, 2.0]", "1.5 [1.0, 2.0] |"]
    # still interpretable: trial 0 2/2, trial 1 0/1 (red lost) -> 100% and 0%
    assert rows["% of level-0 detectors still interpretable, oneshot"] == ["100", "50 [0, 100] |"]
    # same concept: trial 0 both kept as they were (100%); trial 1 kept none (undefined)
    assert rows["% of those with the same concept, oneshot"] == ["100", "100 |"]
    for name in rows:  # level 0 is one network: one value down a quantity's rows
        if name.endswith(", lottery"):
            assert rows[name][0] == rows[name.replace("lottery", "oneshot")][0]
    names = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| top-1")]
    assert names == ["| top-1 accuracy, lottery", "| top-1 accuracy, oneshot"]
    assert "Methods: lottery, oneshot; level 0 is the dense network they share." in text


def test_overview_orders_methods_as_configured():
    text = overview_markdown(*_frames(), methods=["random", "oneshot", "lottery"])
    names = [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| top-1")]
    assert names == ["| top-1 accuracy, oneshot", "| top-1 accuracy, lottery"]
    with pytest.raises(tables.TableError, match=r"\['oneshot'\] of the table are not in"):
        overview_markdown(*_frames(), methods=["lottery"])


def test_overview_says_when_the_methods_densities_differ():
    accuracy, summary, consistency = _frames()
    assert "densities differ" not in overview_markdown(accuracy, summary, consistency)
    accuracy.loc[(accuracy.method == "oneshot") & (accuracy.level == 1), "density"] = 0.15
    text = overview_markdown(accuracy, summary, consistency)
    assert _rows(text)["% weights remaining"] == ["100", "20 |"]  # the mean of 25% and 15%
    assert "The methods' densities differ at some level" in text
