"""The answer with its uncertainty: probe-image bootstrap counts, their intervals, and a verdict
on Frankle & Bau's hypotheses per method, layer and quantity.

Each dissected layer's ``replicates.parquet`` (:mod:`prunedissect.dissection.bootstrap`) lists
the units interpretable in each bootstrap replicate of the probe set. :func:`bootstrap_table`
counts them as the ``summary`` table counts the full sample (interpretable units and distinct
concepts per category and in total), per layer and over the whole network (``layer == "all"``:
units summed, concepts distinct over the layers), one row per replicate. Replicate ``b`` resamples
the same probe images for every checkpoint, so differences between levels are paired.
:func:`intervals_table` gives percentile intervals next to the full-sample counts.

:func:`verdict_table` reads the hypotheses (Frankle & Bau 2019, section 4) off these: A, no
relation between pruning and interpretability until accuracy drops; B, pruning raises
interpretability; C, pruning lowers it. Per method, layer and quantity (interpretable units,
distinct concepts):

1. Accuracy drops at the first pruned level whose top-1, averaged over trials, is more than
   ``accuracy_drop`` (one point) below level 0's; only levels before it are judged.
2. At each judged level and trial, the paired bootstrap interval of (level - level 0) says
   ``below`` (its upper end < 0), ``above`` (lower end > 0) or ``within``. A level counts as
   below (above) when every trial says so: "consistently across trials".
3. Some level consistently below and none above: C; above and none below: B; both: undecided
   (the quantity rises at one density and falls at another); none, with every trial within at
   every judged level: A; otherwise (trials disagree somewhere): undecided. No judged level
   (accuracy falls at the first pruned level) is also undecided.

The untrained network (level ``init``, stored with :data:`INIT_LEVEL`) is the floor of Bau et
al. (2017): counts a network has without learning anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from prunedissect.methods import INIT_LEVEL
from prunedissect.tables import (
    ALL_CATEGORIES,
    COLUMNS,
    TableError,
    category_order,
    label_counts,
    read_keyed_files,
)

ALL_LAYERS = "all"
"""The ``layer`` of the rows that count over every dissected layer together."""
QUANTITIES = ("interpretable_units", "unique_concepts")
"""The counts the intervals and the verdict are about (the ``summary`` table's columns)."""
REPLICATE_COLUMNS = ("replicate", "unit", "concept", "category", "iou")
"""Columns of a per-layer ``replicates.parquet``."""

_CHECKPOINT = ["method", "trial", "level", "density"]


def read_replicates(paths: Iterable, keys: Iterable[tuple[str, int, int, str]]) -> pd.DataFrame:
    """Concatenate per-layer ``replicates.parquet`` files, adding method, trial, level, layer
    from ``keys`` (one per path, in order; the workflow passes them, no path is parsed)."""
    columns = [c for c in REPLICATE_COLUMNS if c != "iou"]
    return read_keyed_files(paths, keys, columns, "replicates.parquet")


def checkpoint_densities(
    keys: Iterable[tuple[str, int, int, str]], accuracy: pd.DataFrame
) -> pd.DataFrame:
    """(method, trial, level, density) of every checkpoint named in ``keys`` (method, trial,
    level, layer): densities from the ``accuracy`` table, 1.0 for the untrained network."""
    found = pd.DataFrame(
        sorted({(m, int(t), int(lv)) for m, t, lv, _ in keys}),
        columns=["method", "trial", "level"],
    )
    known = accuracy.loc[:, _CHECKPOINT]
    out = found.merge(known, on=["method", "trial", "level"], how="left")
    out.loc[out["level"] == INIT_LEVEL, "density"] = 1.0
    missing = out[out["density"].isna()]
    if len(missing):
        first = missing.iloc[0]
        raise TableError(
            f"no accuracy row for {first['method']} trial {first['trial']} level "
            f"{first['level']} (and {len(missing) - 1} more); rebuild "
            "results/tables/accuracy.parquet"
        )
    return out


def count_labels(units: pd.DataFrame, by: Sequence[str], categories: Sequence[str]) -> pd.DataFrame:
    """Interpretable units and distinct concepts of ``units`` (rows of interpretable units with
    ``concept`` and ``category``) per ``by`` + ``layer`` and per ``by`` over all layers
    (``layer == "all"``), each per category and in total (``category == "all"``)."""
    keys = [*by, "layer"]
    whole = units.assign(layer=ALL_LAYERS)
    counts = pd.concat([label_counts(units, keys), label_counts(whole, keys)], ignore_index=True)
    unknown = sorted(set(counts["category"]) - {ALL_CATEGORIES, *categories})
    if unknown:
        raise TableError(f"units name categories {unknown} missing from {list(categories)}")
    return counts


def _complete(counts: pd.DataFrame, grid: pd.DataFrame, categories: Sequence[str]) -> pd.DataFrame:
    """``counts`` on ``grid`` x every category (zeros where nothing was found), sorted."""
    cats = category_order(categories)
    full = grid.merge(pd.DataFrame({"category": cats}), how="cross")
    keys = [c for c in full.columns if c != "density"]
    out = full.merge(counts.drop(columns="density", errors="ignore"), on=keys, how="left")
    out[list(QUANTITIES)] = out[list(QUANTITIES)].fillna(0).astype(np.int64)
    out["_category"] = out["category"].map({c: i for i, c in enumerate(cats)})
    out["_layer"] = out["layer"] == ALL_LAYERS
    order = [c for c in ("method", "trial", "level", "_layer", "layer", "_category") if c in out]
    order += ["replicate"] if "replicate" in out else []
    out = out.sort_values(order, kind="stable", ignore_index=True)
    return out.drop(columns=["_category", "_layer"])


def _layers_grid(checkpoints: pd.DataFrame, layers: Sequence[str]) -> pd.DataFrame:
    return checkpoints.merge(pd.DataFrame({"layer": [*layers, ALL_LAYERS]}), how="cross")


def bootstrap_table(
    replicates: pd.DataFrame,
    checkpoints: pd.DataFrame,
    *,
    layers: Sequence[str],
    categories: Sequence[str],
    n_replicates: int,
) -> pd.DataFrame:
    """Counts per replicate: one row per (method, trial, level, layer, category, replicate).

    ``checkpoints`` holds (method, trial, level, density) of every dissected checkpoint, so a
    replicate in which no unit is interpretable still gets its row of zeros."""
    if len(replicates) and replicates["replicate"].max() >= n_replicates:
        raise TableError(f"replicate ids exceed the {n_replicates} replicates of the config")
    counts = count_labels(replicates, ["method", "trial", "level", "replicate"], categories)
    grid = _layers_grid(checkpoints, layers).merge(
        pd.DataFrame({"replicate": np.arange(n_replicates)}), how="cross"
    )
    return _complete(counts, grid, categories)


def interval(values: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval over the last axis: the (1 - confidence) / 2 quantile and its
    mirror (linear interpolation between order statistics)."""
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail], axis=-1)
    return low, high


def intervals_table(
    units: pd.DataFrame,
    bootstrap: pd.DataFrame,
    *,
    layers: Sequence[str],
    categories: Sequence[str],
    confidence: float,
) -> pd.DataFrame:
    """Full-sample counts with their bootstrap percentile intervals, one row per (method, trial,
    level, layer, category); ``units`` are the full sample's units (every unit, with
    ``interpretable``) of the checkpoints in ``bootstrap``."""
    interpretable = units[units["interpretable"]]
    counts = count_labels(interpretable, ["method", "trial", "level"], categories)
    checkpoints = bootstrap.loc[:, _CHECKPOINT].drop_duplicates()
    out = _complete(counts, _layers_grid(checkpoints, layers), categories)
    keys = ["method", "trial", "level", "layer", "category"]
    spread = bootstrap.sort_values([*keys, "replicate"], kind="stable")
    n_rep = int(spread["replicate"].max()) + 1
    groups = spread.drop_duplicates(keys).loc[:, keys]
    if len(groups) * n_rep != len(spread):
        raise TableError("bootstrap table: every group must hold every replicate once")
    for quantity in QUANTITIES:
        low, high = interval(spread[quantity].to_numpy(float).reshape(-1, n_rep), confidence)
        groups[f"{quantity}_low"], groups[f"{quantity}_high"] = low, high
    return out.merge(groups, on=keys, how="left", validate="one_to_one")


def _accuracy_drop(accuracy: pd.DataFrame, drop: float) -> tuple[float, int | None, pd.Series]:
    """Per-level mean top-1 and density; the first pruned level more than ``drop`` below level
    0 (None: none)."""
    mean = accuracy.groupby("level").agg(top1=("top1", "mean"), density=("density", "first"))
    fallen = mean.index[(mean.index > 0) & (mean["top1"] < mean.loc[0, "top1"] - drop)]
    first = int(fallen.min()) if len(fallen) else None
    return mean.loc[0, "top1"], first, mean["density"]


def _judge(series: pd.DataFrame, full: pd.DataFrame, levels: list[int], confidence: float) -> dict:
    """Verdict fields for one method, layer and quantity ("value" columns; see module doc)."""
    trials = sorted(series["trial"].unique())
    values = {
        (t, lv): g.sort_values("replicate")["value"].to_numpy(float)
        for (t, lv), g in series.groupby(["trial", "level"])
    }
    point = full.set_index(["trial", "level"])["value"]
    status, change = {}, {}
    for lv in levels:
        calls = []
        for t in trials:
            low, high = interval(values[t, lv] - values[t, 0], confidence)
            calls.append("below" if high < 0 else "above" if low > 0 else "within")
        status[lv] = calls[0] if len(set(calls)) == 1 else "mixed"
        paired = np.mean([values[t, lv] - values[t, 0] for t in trials], axis=0)
        low, high = interval(paired, confidence)
        delta = float(np.mean([point[t, lv] - point[t, 0] for t in trials]))
        change[lv] = (delta, float(low), float(high), calls)
    below = [lv for lv in levels if status[lv] == "below"]
    above = [lv for lv in levels if status[lv] == "above"]
    mixed = [lv for lv in levels if status[lv] == "mixed"]
    if not levels:
        verdict, decisive, reason = "undecided", None, "accuracy drops at the first pruned level"
    elif below and above:
        verdict, decisive = "undecided", min(below + above)
        reason = "rises at one density and falls at another before accuracy drops"
    elif below:
        verdict, decisive, reason = "C", below[0], "falls below level 0 in every trial"
    elif above:
        verdict, decisive, reason = "B", above[0], "rises above level 0 in every trial"
    elif mixed:
        verdict, decisive = "undecided", mixed[0]
        reason = "trials disagree: a change beyond the interval in some trials only"
    else:
        verdict, decisive = "A", levels[-1]
        reason = "within the interval of level 0 in every trial until accuracy drops"
    row = {
        "verdict": verdict,
        "reason": reason,
        "decisive_level": decisive,
        **dict.fromkeys(("change", "change_low", "change_high"), np.nan),
        "trials_agreeing": 0,
    }
    if decisive is not None:
        delta, low, high, calls = change[decisive]
        agreeing = {"C": "below", "B": "above", "A": "within"}.get(verdict)
        row.update(
            change=delta,
            change_low=low,
            change_high=high,
            trials_agreeing=sum(c == agreeing for c in calls) if agreeing else 0,
        )
    row["level0_value"] = float(np.mean([point[t, 0] for t in trials]))
    floor = [point[t, INIT_LEVEL] for t in trials if (t, INIT_LEVEL) in point.index]
    row["floor_value"] = float(np.mean(floor)) if floor else np.nan
    row["first_below_level"] = below[0] if below else None
    row["first_above_level"] = above[0] if above else None
    return row


def verdict_table(
    accuracy: pd.DataFrame,
    bootstrap: pd.DataFrame,
    intervals: pd.DataFrame,
    *,
    confidence: float,
    accuracy_drop: float = 0.01,
) -> pd.DataFrame:
    """One verdict per (method, layer, quantity); see the module docstring for the rules."""
    rows = []
    totals = bootstrap[(bootstrap["category"] == ALL_CATEGORIES) & (bootstrap["level"] >= 0)]
    points = intervals[intervals["category"] == ALL_CATEGORIES]
    for method, acc in accuracy.groupby("method", sort=False):
        if 0 not in set(acc["level"]):
            raise TableError(f"verdict: {method} has no level 0 accuracy")
        _, drop_level, density = _accuracy_drop(acc, accuracy_drop)
        for layer, series in totals[totals["method"] == method].groupby("layer", sort=False):
            dissected = sorted(lv for lv in series["level"].unique() if lv > 0)
            judged = [lv for lv in dissected if drop_level is None or lv < drop_level]
            full = points[(points["method"] == method) & (points["layer"] == layer)]
            for quantity in QUANTITIES:
                row = _judge(
                    series.rename(columns={quantity: "value"}),
                    full.rename(columns={quantity: "value"}),
                    judged,
                    confidence,
                )
                densities = {
                    f"{name}_density": density.get(row.pop(f"{name}_level"), np.nan)
                    for name in ("decisive", "first_below", "first_above")
                }
                rows.append(
                    {
                        "method": method,
                        "layer": layer,
                        "quantity": quantity,
                        "trials": series["trial"].nunique(),
                        "accuracy_drop_density": density.get(drop_level, np.nan),
                        "judged_levels": len(judged),
                        **row,
                        **densities,
                    }
                )
    return pd.DataFrame(rows, columns=list(COLUMNS["verdict"]))
