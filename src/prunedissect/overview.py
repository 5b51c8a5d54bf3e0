"""The study's answer at a glance: a Markdown table rendered from the result tables.

:func:`overview_markdown` turns ``accuracy``, ``summary`` and ``consistency`` (the tidy tables of
:mod:`prunedissect.tables`) into one table per dissected layer, a column per pruning level
(ordered by density, dense first), every number the mean over trials with the trial range beside
it where trials differ. The README quotes this file from a run whose golden digests match, so
its numbers come from the run, never by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from prunedissect.tables import ALL_CATEGORIES


def _percent(density: float) -> str:
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


def overview_markdown(
    accuracy: pd.DataFrame, summary: pd.DataFrame, consistency: pd.DataFrame
) -> str:
    """Markdown: per layer, top-1, interpretable units, distinct concepts, categories with at
    least one interpretable unit, and consistency with level 0, per pruning level."""
    trials = sorted(int(t) for t in accuracy["trial"].unique())
    levels = (
        accuracy.groupby("level")["density"].mean().sort_values(ascending=False).index.tolist()
    )
    density = accuracy.groupby("level")["density"].mean()
    header = "| % weights remaining | " + " | ".join(_percent(density[lv]) for lv in levels)
    rule = "|---|" + "---|" * len(levels)
    totals = summary[summary["category"] == ALL_CATEGORIES]
    per_category = summary[summary["category"] != ALL_CATEGORIES]
    lines = [
        "# What the study shows",
        "",
        f"Mean over {len(trials)} trial(s) {trials}; [min, max] over trials where they differ. "
        "Rendered from results/tables by the workflow.",
        "",
    ]
    for layer in sorted(summary["layer"].unique()):
        layer_totals = totals[totals["layer"] == layer]
        spread = (
            per_category[
                (per_category["layer"] == layer) & (per_category["interpretable_units"] > 0)
            ]
            .groupby(["trial", "level"])
            .size()
            .rename("categories")
            .reset_index()
        )
        spread = layer_totals[["trial", "level"]].merge(spread, how="left").fillna(0)
        layer_consistency = consistency[consistency["layer"] == layer].assign(
            still_interpretable=lambda f: f["still_interpretable"] * 100,
            same_concept=lambda f: f["same_concept"] * 100,
        )
        lines += [
            f"## {layer}",
            "",
            header + " |",
            rule,
            _row("top-1 accuracy", accuracy, "top1", "{:.3f}", levels),
            _row("interpretable units", layer_totals, "interpretable_units", "{:.1f}", levels),
            _row("distinct concepts", layer_totals, "unique_concepts", "{:.1f}", levels),
            _row("categories detected", spread, "categories", "{:.1f}", levels),
            _row(
                "% of level-0 detectors still interpretable",
                layer_consistency, "still_interpretable", "{:.0f}", levels,
            ),  # fmt: skip
            _row("% of those with the same concept", layer_consistency, "same_concept", "{:.0f}",
                 levels),  # fmt: skip
            "",
        ]
    return "\n".join(lines)
