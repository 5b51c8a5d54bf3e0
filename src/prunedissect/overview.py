"""The study's answer at a glance: a Markdown table rendered from the result tables.

:func:`overview_markdown` turns ``accuracy``, ``summary`` and ``consistency`` (the tidy tables of
:mod:`prunedissect.tables`) into one table per dissected layer: a column per pruning level
(ordered by density, dense first; the header gives each level's mean density over methods and
trials), a row per quantity and pruning method, every number the mean over trials with the trial
range beside it where trials differ. Level 0 is the dense network every method shares, so its
column repeats one value down a quantity's rows. The README quotes this file from a run whose
golden digests match, so its numbers come from the run, never by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pandas as pd

from prunedissect.tables import ALL_CATEGORIES, method_order

# (row name, frame of _layer_frames, column, number format), in row order
_QUANTITIES = [
    ("top-1 accuracy", "accuracy", "top1", "{:.3f}"),
    ("interpretable units", "totals", "interpretable_units", "{:.1f}"),
    ("distinct concepts", "totals", "unique_concepts", "{:.1f}"),
    ("categories detected", "categories", "categories", "{:.1f}"),
    ("% of level-0 detectors still interpretable", "consistency", "still_interpretable", "{:.0f}"),
    ("% of those with the same concept", "consistency", "same_concept", "{:.0f}"),
]


def percent_label(density: float) -> str:
    """A density as the percentage of weights remaining, e.g. ``20``, ``4`` or ``0.8``."""
    value = density * 100.0
    return f"{value:.3g}" if value < 10 else f"{value:.0f}"


def _cell(values: pd.Series, fmt: str) -> str:
    """Mean over trials, with [min, max] when the trials differ (NaN-only: an en dash)."""
    values = values.dropna()
    if values.empty:
        return "–"
    mean = fmt.format(values.mean())
    if values.min() == values.max():
        return mean
    return f"{mean} [{fmt.format(values.min())}, {fmt.format(values.max())}]"


def _row(name: str, frame: pd.DataFrame, column: str, fmt: str, levels: Sequence[int]) -> str:
    cells = [_cell(frame.loc[frame["level"] == level, column], fmt) for level in levels]
    return f"| {name} | " + " | ".join(cells) + " |"


def _layer_frames(
    layer: str, accuracy: pd.DataFrame, summary: pd.DataFrame, consistency: pd.DataFrame
) -> dict[str, pd.DataFrame]:
    """The rows of one layer that each quantity of :data:`_QUANTITIES` reads, per frame name.

    ``categories`` counts, per (method, trial, level), the categories with at least one
    interpretable unit; consistency fractions become percentages.
    """
    keys = ["method", "trial", "level"]
    rows = summary[summary["layer"] == layer]
    totals = rows[rows["category"] == ALL_CATEGORIES]
    detected = rows[(rows["category"] != ALL_CATEGORIES) & (rows["interpretable_units"] > 0)]
    counts = detected.groupby(keys).size().rename("categories").reset_index()
    categories = totals[keys].merge(counts, how="left").fillna({"categories": 0})
    layer_consistency = consistency[consistency["layer"] == layer].assign(
        still_interpretable=lambda f: f["still_interpretable"] * 100,
        same_concept=lambda f: f["same_concept"] * 100,
    )
    return {
        "accuracy": accuracy,
        "totals": totals,
        "categories": categories,
        "consistency": layer_consistency,
    }


def _layer_table(
    frames: dict[str, pd.DataFrame], methods: Sequence[str], levels: Sequence[int], header: str
) -> list[str]:
    """Markdown lines of one layer's table: each quantity once per method, methods adjacent."""
    lines = [header, "|---|" + "---|" * len(levels)]
    for name, frame_name, column, fmt in _QUANTITIES:
        frame = frames[frame_name]
        for method in methods:
            own = frame[frame["method"] == method]
            lines.append(_row(f"{name}, {method}", own, column, fmt, levels))
    return lines


def _preamble(accuracy: pd.DataFrame, methods: Sequence[str], density: pd.Series) -> list[str]:
    trials = sorted(int(t) for t in accuracy["trial"].unique())
    named = (
        f"Methods: {', '.join(methods)}; level 0 is the dense network they share."
        if len(methods) > 1
        else f"Method: {methods[0]}."
    )
    lines = [
        f"Mean over {len(trials)} trial(s) {trials}; [min, max] over trials where they differ. "
        f"{named} Rendered from results/tables by the workflow."
    ]
    shown = accuracy["level"].map(density.map(percent_label))
    if (accuracy["density"].map(percent_label) != shown).any():
        lines.append(
            "The methods' densities differ at some level; the header gives the mean over "
            "methods and trials."
        )
    return lines


def overview_markdown(
    accuracy: pd.DataFrame,
    summary: pd.DataFrame,
    consistency: pd.DataFrame,
    methods: Iterable[str] | None = None,
) -> str:
    """Markdown: per layer, top-1, interpretable units, distinct concepts, categories with at
    least one interpretable unit, and consistency with level 0, per pruning level and method.

    ``methods`` orders the rows of each quantity (the config's order; by default the sorted
    method names of ``accuracy``); a method of the tables that it lacks is an error, a method
    the tables lack is left out.
    """
    present = set(accuracy["method"])
    order = [m for m in method_order(accuracy["method"], methods) if m in present]
    density = accuracy.groupby("level")["density"].mean()
    levels = density.sort_values(ascending=False).index.tolist()
    header = "| % weights remaining | " + " | ".join(percent_label(density[lv]) for lv in levels)
    lines = ["# What the study shows", "", *_preamble(accuracy, order, density), ""]
    for layer in sorted(summary["layer"].unique()):
        frames = _layer_frames(layer, accuracy, summary, consistency)
        lines += [f"## {layer}", "", *_layer_table(frames, order, levels, header + " |"), ""]
    return "\n".join(lines)
