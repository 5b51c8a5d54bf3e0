"""The paper's figures, drawn from the tidy result tables in seaborn's style and palette.

Every figure plots against "% of weights remaining" on a log axis that decreases from left to
right, as in Frankle & Bau (2019). Figures are built as bare :class:`matplotlib.figure.Figure`
objects (no pyplot state, no display needed) inside seaborn's style contexts, so importing or
calling this module changes no global setting. :func:`save_figure` writes PNG and PDF files
without timestamps or version stamps, so equal tables give byte-identical figures.

Every table holds one curve per pruning method (column ``method``) and trial. Figures 1, 2, 4
and 5 draw one colour per method: the mean over trials as a line with markers and the range over
trials (min to max) as a shaded band (no band with a single trial). ``methods`` gives the
methods' order (the config's), which fixes each method's colour in every figure; by default the
methods of the table, sorted by name. Every figure has one legend, outside the panels.

- :func:`plot_accuracy` (fig. 1): top-1 accuracy.
- :func:`plot_interpretability` (fig. 2): interpretable units and distinct concepts per layer.
- :func:`plot_categories` (fig. 3): distinct concepts per category for one trial, one row of
  panels per method and one column per layer.
- :func:`plot_consistency` (fig. 4): units still interpretable, and with the same concept, per
  layer.
- :func:`plot_overview` (fig. 5): the whole network: accuracy, and interpretability summed or
  pooled over the dissected layers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import (
    FixedLocator,
    FuncFormatter,
    LogLocator,
    NullLocator,
    PercentFormatter,
)

from prunedissect.tables import ALL_CATEGORIES, TableError, method_order
from prunedissect.uncertainty import ALL_LAYERS

X_LABEL = "% of weights remaining"
_STYLE = "whitegrid"
_CONTEXT = "paper"
_PANEL = (4.2, 3.2)  # inches per panel
_DPI = 200
_MAX_TICKS = 9

# Savefig metadata that drops the software version and the creation date (PNG has no date).
_METADATA = {
    "png": {"Software": None},
    "pdf": {"Creator": None, "Producer": None, "CreationDate": None},
}


#: One colour per Broden category in every figure (seaborn's colourblind palette, chosen so that
#: no two categories share a hue family); categories outside Broden get the remaining colours.
CATEGORY_COLOURS = dict(
    zip(
        ("color", "object", "part", "material", "scene", "texture"),
        [sns.color_palette("colorblind")[k] for k in (0, 2, 3, 4, 5, 8)],
        strict=True,
    )
)


def _category_palette(categories: Sequence[str]) -> list:
    spare = iter(sns.color_palette("colorblind")[k] for k in (1, 6, 7, 9))
    return [CATEGORY_COLOURS.get(c) or next(spare, (0.5, 0.5, 0.5)) for c in categories]


class PlotError(ValueError):
    """A table cannot be plotted as asked (wrong columns, unknown trial, nothing to draw)."""


def _require(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise PlotError(f"{what}: the table lacks columns {missing}")
    if frame.empty:
        raise PlotError(f"{what}: the table is empty; nothing to plot")


def _method_colours(frame: pd.DataFrame, methods: Sequence[str] | None, what: str) -> dict:
    """Method -> colour for the methods in ``frame``, in the order of ``methods``.

    A method's colour is the palette colour of its position in ``methods`` (or, by default, in
    the table's sorted method names), so it does not depend on which methods a table holds.
    """
    try:
        order = method_order(frame["method"], methods)
    except TableError as error:
        raise PlotError(f"{what}: {error}") from error
    palette = sns.color_palette("colorblind", len(order))
    present = set(frame["method"])
    return {m: colour for m, colour in zip(order, palette) if m in present}


_TICK_GAP = 1.15  # density ticks closer than this ratio merge into one


def _density_axis(ax: Axes, percents: Iterable[float]) -> None:
    """Log-scaled x axis, decreasing left to right, ticked at the levels' densities.

    Densities within 15% of each other (a structured or reduced arm's level beside the exact
    schedule) share one tick, the one with the shortest label (the schedule's round value),
    then the most frequent, so labels never overlap.
    """
    values, counts = np.unique(np.round(np.asarray(list(percents), dtype=float), 6),
                               return_counts=True)  # fmt: skip
    clusters: list[list[int]] = []
    for index in range(len(values) - 1, -1, -1):  # largest first
        if clusters and values[index] * _TICK_GAP > values[clusters[-1][0]]:
            clusters[-1].append(index)
        else:
            clusters.append([index])
    ticks = np.array(
        [values[min(c, key=lambda i: (len(f"{values[i]:.3g}"), -counts[i], i))] for c in clusters]
    )
    step = int(np.ceil(len(ticks) / _MAX_TICKS))
    ax.set_xscale("log")
    ax.set_xlim(values.max() * 1.12, values.min() / 1.12)
    ax.xaxis.set_major_locator(FixedLocator(ticks[::step]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.3g}"))
    ax.set_xlabel(X_LABEL)


def _figure(rows: int, cols: int, *, sharey: str | bool = False) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(_PANEL[0] * cols, _PANEL[1] * rows), dpi=_DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False, sharey=sharey)
    return fig, axes


def _band(ax: Axes, frame: pd.DataFrame, y: str, *, label: str, color) -> None:
    """Mean over trials per level as a line with markers, min-max over trials as a shaded band
    (left out when ``frame`` holds one trial)."""
    stats = frame.groupby("level", sort=True).agg(
        percent=("density", "mean"), mean=(y, "mean"), low=(y, "min"), high=(y, "max")
    )
    stats["percent"] *= 100.0
    ax.plot(
        stats["percent"], stats["mean"], marker="o", markersize=4, color=color, label=label,
        clip_on=False,  # a marker at zero sits on the axis, whole
    )  # fmt: skip
    if frame["trial"].nunique() > 1:
        ax.fill_between(
            stats["percent"], stats["low"], stats["high"], color=color, alpha=0.2, linewidth=0
        )


def _method_bands(ax: Axes, data: pd.DataFrame, y: str, colours: dict) -> None:
    """One :func:`_band` per method of ``colours`` (its colour), on a shared density axis."""
    for method, colour in colours.items():
        _band(ax, data[data["method"] == method], y, label=method, color=colour)
    _density_axis(ax, data["density"] * 100.0)


def _y_axis(ax: Axes, label: str, *, percent: bool) -> None:
    """Label the y axis; ``percent`` fixes it to 0-105 with % ticks, else it starts at zero."""
    ax.set_ylabel(label)
    if percent:
        ax.set_ylim(0, 105)
        ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
    else:
        ax.set_ylim(bottom=0)


def _method_legend(
    fig: Figure, colours: dict, trials: int, *, bootstrap: float | None = None
) -> None:
    """The figure's one legend (a line per method, right of the panels) and a title saying
    what the lines and bands are; ``bootstrap``: the confidence of the interval bars, which
    come with the untrained floor."""
    handles = [
        Line2D([], [], color=colour, marker="o", markersize=4, label=method)
        for method, colour in colours.items()
    ]
    note = f"Mean of {trials} trials; band: min to max" if trials > 1 else "1 trial"
    if bootstrap is not None:
        handles.append(Line2D([], [], **_FLOOR, label="untrained"))
        note += f"; bars: {bootstrap:.0%} probe-image bootstrap interval"
        note += " (mean over trials)" if trials > 1 else ""
    fig.legend(handles=handles, title="method", loc="outside right upper", frameon=False)
    fig.suptitle(note, fontsize="medium")


_FLOOR = {"color": "0.45", "linestyle": "--", "linewidth": 1.2}


def _interval_bars(ax: Axes, intervals: pd.DataFrame, y: str, colours: dict) -> None:
    """Per method and pruned level the bootstrap interval of ``y`` (ends averaged over trials)
    as a vertical bar at the level's density, methods spread a little along x; level 0's (one
    network, shared by every method) once, in dark grey; the untrained network (level -1, also
    shared) as a dashed grey line across the panel."""

    def bars(frame: pd.DataFrame, colour, shift: float, gid: str) -> None:
        stats = frame.groupby("level", sort=True).agg(
            percent=("density", "mean"), low=(f"{y}_low", "mean"), high=(f"{y}_high", "mean")
        )
        if stats.empty:
            return
        # from end to end: a percentile interval need not contain the full-sample count
        lines = ax.vlines(
            stats["percent"] * 100.0 * shift, stats["low"], stats["high"],
            colors=[colour], linewidth=1.6, alpha=0.8,
        )  # fmt: skip
        lines.set_gid(gid)

    level0 = intervals[(intervals["level"] == 0) & (intervals["method"] == next(iter(colours)))]
    bars(level0, "0.25", 1.0, "bootstrap level 0")
    pruned = intervals[intervals["level"] > 0]
    for i, (method, colour) in enumerate(colours.items()):
        shift = 1.0 + 0.03 * (i - (len(colours) - 1) / 2)
        bars(pruned[pruned["method"] == method], colour, shift, f"bootstrap {method}")
    floor = intervals.loc[intervals["level"] < 0, y]
    if len(floor):
        ax.axhline(floor.groupby(intervals["trial"]).first().mean(), **_FLOOR, zorder=0)


def plot_accuracy(accuracy: pd.DataFrame, methods: Sequence[str] | None = None) -> Figure:
    """Figure 1: top-1 validation accuracy against % of weights remaining, one colour per
    method (mean over trials, min-max band)."""
    _require(accuracy, ["method", "trial", "level", "density", "top1"], "accuracy figure")
    colours = _method_colours(accuracy, methods, "accuracy figure")
    data = accuracy.assign(top1=accuracy["top1"] * 100.0)
    with sns.axes_style(_STYLE), sns.plotting_context(_CONTEXT):
        fig, axes = _figure(1, 1)
        ax = axes[0, 0]
        _method_bands(ax, data, "top1", colours)
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title("Accuracy")
        _method_legend(fig, colours, data["trial"].nunique())
    return fig


def _layers(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame.sort_values("layer", kind="stable")["layer"]))


def _layer_title(title: str, layer: str, many: bool) -> str:
    return f"{title} ({layer})" if many else title


def plot_interpretability(
    summary: pd.DataFrame,
    methods: Sequence[str] | None = None,
    *,
    intervals: pd.DataFrame | None = None,
    confidence: float | None = None,
) -> Figure:
    """Figure 2: interpretable units (left), distinct concepts (middle) and interpretable units
    as a % of the alive ones (right: a structured arm's pruned units are dead), one colour per
    method.

    Uses the ``category == "all"`` rows of the summary table; one row of panels per layer. With
    the ``intervals`` table (and its ``confidence``), each point of the two count panels gets its
    bootstrap interval and each count panel the untrained network's count as a dashed floor.
    """
    columns = ["interpretable_units", "unique_concepts", "interpretable_alive_fraction"]
    _require(
        summary,
        ["method", "trial", "level", "density", "layer", "category", *columns],
        "interpretability figure",
    )
    panels = [
        ("interpretable_units", "interpretable units", "Interpretable units"),
        ("unique_concepts", "distinct concepts", "Distinct concepts"),
        ("alive_percent", "% of alive units", "Interpretable of alive"),
    ]
    data = summary[summary["category"] == ALL_CATEGORIES]
    data = data.assign(alive_percent=data["interpretable_alive_fraction"] * 100.0)
    colours = _method_colours(data, methods, "interpretability figure")
    if intervals is not None:
        counts = columns[:2]
        _require(intervals, [*counts, *(f"{c}_{e}" for c in counts for e in ("low", "high"))],
                 "interpretability figure")  # fmt: skip
        intervals = intervals[intervals["category"] == ALL_CATEGORIES]
    return _layer_panels(
        data,
        panels,
        colours,
        percent={"alive_percent"},
        intervals=intervals,
        confidence=confidence,
    )


def plot_consistency(consistency: pd.DataFrame, methods: Sequence[str] | None = None) -> Figure:
    """Figure 4: against level 0 (the dense network of the same trial), % of its interpretable
    units still interpretable (left) and, of units interpretable at both, % with the same
    concept (right); one colour per method, one row of panels per layer.
    """
    columns = ["still_interpretable", "same_concept"]
    _require(
        consistency,
        ["method", "trial", "level", "density", "layer", *columns],
        "consistency figure",
    )
    panels = [
        ("still_interpretable", "% of level-0 interpretable units", "Still interpretable"),
        ("same_concept", "% of units interpretable at both", "Same concept"),
    ]
    data = consistency.assign(**{c: consistency[c] * 100.0 for c in columns})
    colours = _method_colours(data, methods, "consistency figure")
    return _layer_panels(data, panels, colours, percent=True)


def _layer_panels(
    data: pd.DataFrame,
    panels: list[tuple[str, str, str]],
    colours: dict,
    *,
    percent: bool | Collection[str],
    intervals: pd.DataFrame | None = None,
    confidence: float | None = None,
) -> Figure:
    """One row of panels per layer, one panel per (column, y label, title), a band per method.

    ``percent`` (True, or the columns it applies to) fixes the y axis to 0-105 with % ticks;
    otherwise it starts at zero. Rows of ``intervals`` (bootstrap) add interval bars and the
    untrained floor (:func:`_interval_bars`) to the panels of the columns they hold.
    """
    layers = _layers(data)
    with sns.axes_style(_STYLE), sns.plotting_context(_CONTEXT):
        fig, axes = _figure(len(layers), len(panels))
        for row, layer in enumerate(layers):
            subset = data[data["layer"] == layer]
            for col, (y, label, title) in enumerate(panels):
                ax = axes[row, col]
                _method_bands(ax, subset, y, colours)
                if intervals is not None and f"{y}_low" in intervals:
                    _interval_bars(ax, intervals[intervals["layer"] == layer], y, colours)
                _y_axis(ax, label, percent=percent is True or bool(percent and y in percent))
                ax.set_title(_layer_title(title, layer, len(layers) > 1))
        bootstrap = confidence if intervals is not None else None
        _method_legend(fig, colours, data["trial"].nunique(), bootstrap=bootstrap)
    return fig


def _stacked_categories(ax: Axes, data: pd.DataFrame, categories: list[str], palette: list) -> None:
    """Stacked areas of distinct concepts per category against density (one band each)."""
    counts = (
        data.pivot_table(
            index="percent", columns="category", values="unique_concepts", aggfunc="sum"
        )
        .reindex(columns=categories, fill_value=0)
        .fillna(0)
        .sort_index(ascending=False)
    )
    ax.stackplot(
        counts.index.to_numpy(),
        counts.to_numpy().T,
        labels=categories,
        colors=palette,
        alpha=0.9,
        linewidth=0.4,
        edgecolor="white",
    )
    _density_axis(ax, counts.index)
    ax.set_ylim(bottom=0)


def plot_categories(
    summary: pd.DataFrame, *, trial: int, methods: Sequence[str] | None = None
) -> Figure:
    """Figure 3: distinct concepts per Broden category against density, for one trial.

    One row of panels per method (in the order of ``methods``), one column per layer; with one
    layer, the methods side by side in one row. The panels of a layer share their y axis, so
    methods compare by eye. Stacked areas: each band's thickness is one category's count and the
    top edge the total, so a category at zero is a missing band, never a line hidden under
    another one. Every category of the trial keeps its colour and legend entry in every panel.
    """
    _require(
        summary,
        ["method", "trial", "density", "layer", "category", "unique_concepts"],
        "categories figure",
    )
    trials = sorted(int(t) for t in summary["trial"].unique())
    if trial not in trials:
        raise PlotError(f"categories figure: trial {trial} is not in the table (has {trials})")
    data = summary[(summary["trial"] == trial) & (summary["category"] != ALL_CATEGORIES)]
    data = data.assign(percent=data["density"] * 100.0)
    categories = sorted(data["category"].unique())
    if not categories:
        raise PlotError("categories figure: the summary holds no per-category rows")
    palette = _category_palette(categories)
    order = list(_method_colours(data, methods, "categories figure"))
    layers = _layers(data)
    # one layer: the methods side by side in one row; else a row per method, a column per layer
    grid = {
        (method, layer): (0, i) if len(layers) == 1 else (i, j)
        for i, method in enumerate(order)
        for j, layer in enumerate(layers)
    }
    shape = (1, len(order)) if len(layers) == 1 else (len(order), len(layers))
    with sns.axes_style(_STYLE), sns.plotting_context(_CONTEXT):
        fig, axes = _figure(*shape, sharey="all" if len(layers) == 1 else "col")
        for (method, layer), (row, col) in grid.items():
            ax = axes[row, col]
            panel = data[(data["method"] == method) & (data["layer"] == layer)]
            _stacked_categories(ax, panel, categories, palette)
            ax.set_title(_layer_title(method, layer, len(layers) > 1))
            ax.set_ylabel("distinct concepts (stacked)" if col == 0 else "")
        # shared limits from the data: the tallest stack of each layer (all, with one layer)
        tallest = data.groupby(["layer", "method", "percent"])["unique_concepts"].sum()
        for layer in layers:
            top = max(float(tallest.loc[layer].max()), 1.0)
            row, col = grid[(order[0], layer)]
            axes[row, col].set_ylim(0, top * 1.05)
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(
            handles, labels, title="category", loc="outside lower center",
            ncols=len(categories), frameon=False,
        )  # fmt: skip
        fig.suptitle(f"Distinct concepts per category, trial {trial}")
    return fig


def _whole_network(
    accuracy: pd.DataFrame, summary: pd.DataFrame, consistency: pd.DataFrame
) -> pd.DataFrame:
    """Per (method, trial, level): top-1 (%), interpretable units and distinct concepts summed
    over layers, and % of level-0 interpretable units still interpretable, pooled over layers.
    """
    keys = ["method", "trial", "level"]
    totals = summary[summary["category"] == ALL_CATEGORIES]
    counts = totals.groupby(keys)[["interpretable_units", "unique_concepts"]].sum()
    pooled = consistency.groupby(keys)[["kept_units", "level0_units"]].sum()
    level0 = pooled["level0_units"].where(pooled["level0_units"] > 0)  # NaN: none at level 0
    still = 100.0 * pooled["kept_units"] / level0
    out = accuracy.set_index(keys)[["density", "top1"]].assign(top1=lambda f: f["top1"] * 100)
    out = out.join(counts, how="left").join(still.rename("still_interpretable"), how="left")
    return out.reset_index()


def plot_overview(
    accuracy: pd.DataFrame,
    summary: pd.DataFrame,
    consistency: pd.DataFrame,
    methods: Sequence[str] | None = None,
    *,
    intervals: pd.DataFrame | None = None,
    confidence: float | None = None,
) -> Figure:
    """The whole network in 2 x 2 panels, one colour per method (mean over trials, min-max
    band): top-1 accuracy; interpretable units summed over the dissected layers; distinct
    concepts summed over layers (a concept found in two layers counts twice); and % of level-0
    interpretable units still interpretable, pooled over layers (sum of kept units over sum of
    level-0 units). With the ``intervals`` table, the interpretable-units panel gets the
    bootstrap intervals of the whole network (``layer == "all"``) and the untrained floor.
    """
    key = ["method", "trial", "level"]
    _require(accuracy, [*key, "density", "top1"], "overview figure")
    _require(
        summary,
        [*key, "layer", "category", "interpretable_units", "unique_concepts"],
        "overview figure",
    )
    _require(consistency, [*key, "layer", "level0_units", "kept_units"], "overview figure")
    data = _whole_network(accuracy, summary, consistency)
    colours = _method_colours(data, methods, "overview figure")
    panels = [
        ("top1", "top-1 accuracy (%)", "Accuracy", None),
        ("interpretable_units", "interpretable units", "Interpretable units, summed over layers",
         False),
        ("unique_concepts", "distinct concepts", "Distinct concepts, summed over layers", False),
        ("still_interpretable", "% of level-0 interpretable units",
         "Still interpretable, pooled over layers", True),
    ]  # fmt: skip
    with sns.axes_style(_STYLE), sns.plotting_context(_CONTEXT):
        fig, axes = _figure(2, 2)
        for ax, (y, label, title, percent) in zip(axes.flat, panels):
            _method_bands(ax, data, y, colours)
            if intervals is not None and y == "interpretable_units":
                whole = intervals["layer"] == ALL_LAYERS
                whole &= intervals["category"] == ALL_CATEGORIES
                _interval_bars(ax, intervals[whole], y, colours)
            if percent is None:
                ax.set_ylabel(label)
            else:
                _y_axis(ax, label, percent=percent is True or bool(percent and y in percent))
            ax.set_title(title)
        bootstrap = confidence if intervals is not None else None
        _method_legend(fig, colours, data["trial"].nunique(), bootstrap=bootstrap)
    return fig


def save_figure(fig: Figure, paths: Iterable[str | Path]) -> None:
    """Save ``fig`` to each path; the suffix (.png or .pdf) picks the format.

    Version and date stamps are left out, so the same figure gives the same bytes.
    """
    for path in paths:
        path = Path(path)
        fmt = path.suffix.lstrip(".").lower()
        if fmt not in _METADATA:
            raise PlotError(f"{path}: unsupported figure format {fmt!r}; use .png or .pdf")
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format=fmt, dpi=_DPI, metadata=_METADATA[fmt])


#: Variants of the speed table in drawing order, with their markers (prunedissect.speed).
SPEED_MARKERS = {"dense": "*", "masked": "o", "slimmed": "s", "reduced": "D"}


def plot_speed(speed: pd.DataFrame) -> Figure:
    """Accuracy against inference speed (Crowley et al. 2018's comparison), from the ``speed``
    table: one row of panels per device; left, top-1 against the latency at the smallest timed
    batch, right, against the throughput at the largest; one colour and marker per variant
    (dense, masked, slimmed, reduced), a line through each arm's levels, every point labelled
    with its % of weights remaining. Speed axes are logarithmic."""
    columns = ["variant", "method", "level", "density", "device", "threads", "batch"]
    _require(speed, [*columns, "latency_ms", "throughput_img_s", "top1"], "speed figure")
    data = speed.dropna(subset=["top1"])
    if data.empty:
        raise PlotError("speed figure: no timed network has a top-1 accuracy")
    unknown = sorted(set(data["variant"]) - set(SPEED_MARKERS))
    if unknown:
        raise PlotError(f"speed figure: unknown variants {unknown}; known: {list(SPEED_MARKERS)}")
    palette = sns.color_palette("colorblind", len(SPEED_MARKERS))
    colours = dict(zip(SPEED_MARKERS, palette, strict=True))
    devices = sorted(data["device"].unique(), key=lambda d: (d != "cpu", d))
    small, large = int(data["batch"].min()), int(data["batch"].max())
    panels = [
        (small, "latency_ms", f"latency at batch {small} (ms)"),
        (large, "throughput_img_s", f"throughput at batch {large} (images/s)"),
    ]
    series = data[["variant", "method"]].drop_duplicates()
    series = series.sort_values(
        "variant", key=lambda v: v.map(list(SPEED_MARKERS).index), kind="stable"
    )
    with sns.axes_style(_STYLE), sns.plotting_context(_CONTEXT):
        fig, axes = _figure(len(devices), len(panels))
        for row, device in enumerate(devices):
            on_device = data[data["device"] == device]
            where = (
                f"CPU, {int(on_device['threads'].iloc[0])} thread(s)"
                if device == "cpu"
                else str(on_device["device_name"].iloc[0])
                if "device_name" in on_device
                else device
            )
            for col, (batch, x, label) in enumerate(panels):
                ax = axes[row, col]
                timed = on_device[on_device["batch"] == batch]
                for variant, method in series.itertuples(index=False):
                    points = timed[
                        (timed["variant"] == variant) & (timed["method"] == method)
                    ].sort_values("level")
                    if points.empty:
                        continue
                    ax.plot(
                        points[x], points["top1"] * 100.0, marker=SPEED_MARKERS[variant],
                        markersize=9 if variant == "dense" else 5, color=colours[variant],
                        linewidth=1,
                    )  # fmt: skip
                    for point in points.itertuples(index=False):
                        ax.annotate(
                            f"{100.0 * point.density:.3g}%", (getattr(point, x), point.top1 * 100),
                            textcoords="offset points", xytext=(4, 3), fontsize="x-small",
                            color=colours[variant],
                        )  # fmt: skip
                ax.set_xscale("log")
                ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
                ax.xaxis.set_minor_locator(NullLocator())
                ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
                ax.set_xlabel(label)
                ax.set_ylabel("top-1 accuracy (%)")
                ax.set_title(f"{where}: {'latency' if col == 0 else 'throughput'}")
        handles = [
            Line2D(
                [], [], color=colours[variant], marker=SPEED_MARKERS[variant], linewidth=1,
                label="dense" if variant == "dense" else f"{variant} ({method})",
            )  # fmt: skip
            for variant, method in series.itertuples(index=False)
        ]
        fig.legend(handles=handles, title="network", loc="outside right upper", frameon=False)
        fig.suptitle(
            "Accuracy against speed; labels: % of weights remaining (median of "
            f"{int(data['repeats'].iloc[0]) if 'repeats' in data else '?'} timed passes)",
            fontsize="medium",
        )
    return fig
