"""The paper's figures, drawn with seaborn from the tidy result tables.

Every figure plots against "% of weights remaining" on a log axis that decreases from left to
right, as in Frankle & Bau (2019). Figures are built as bare :class:`matplotlib.figure.Figure`
objects (no pyplot state, no display needed) inside seaborn's style contexts, so importing or
calling this module changes no global setting. :func:`save_figure` writes PNG and PDF files
without timestamps or version stamps, so equal tables give byte-identical figures.

- :func:`plot_accuracy` (fig. 1): top-1 accuracy, one line per trial.
- :func:`plot_interpretability` (fig. 2): interpretable units and distinct concepts per trial.
- :func:`plot_categories` (fig. 3): distinct concepts per category for one trial.
- :func:`plot_consistency` (fig. 4): units still interpretable, and with the same concept.
- :func:`plot_overview`: mean and range across trials of the four headline quantities.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator, PercentFormatter

from prunedissect.tables import ALL_CATEGORIES

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


def _with_percent(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["percent"] = out["density"] * 100.0
    out["trial"] = "trial " + out["trial"].astype(int).astype(str)
    return out


def _trial_order(frame: pd.DataFrame) -> list[str]:
    return sorted(frame["trial"].unique(), key=lambda s: int(s.split()[-1]))


def _density_axis(ax: Axes, percents: Sequence[float]) -> None:
    """Log-scaled x axis, decreasing left to right, ticked at the levels' densities."""
    ticks = np.unique(np.round(np.asarray(percents, dtype=float), 6))[::-1]
    step = int(np.ceil(len(ticks) / _MAX_TICKS))
    ax.set_xscale("log")
    ax.set_xlim(ticks.max() * 1.12, ticks.min() / 1.12)
    ax.xaxis.set_major_locator(FixedLocator(ticks[::step]))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:.3g}"))
    ax.set_xlabel(X_LABEL)


def _figure(rows: int, cols: int) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=(_PANEL[0] * cols, _PANEL[1] * rows), dpi=_DPI, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _lines(ax: Axes, data: pd.DataFrame, y: str, hue: str, order: list[str], palette) -> None:
    sns.lineplot(
        data=data,
        x="percent",
        y=y,
        hue=hue,
        hue_order=order,
        palette=palette,
        estimator=None,
        errorbar=None,
        sort=True,
        marker="o",
        markersize=4,
        ax=ax,
    )
    _density_axis(ax, data["percent"])


def _tidy_legend(ax: Axes, *, keep: bool, title: str | None = None) -> None:
    legend = ax.get_legend()
    if legend is None:
        return
    if keep:
        legend.set_title(title)
    else:
        legend.remove()


def plot_accuracy(accuracy: pd.DataFrame) -> Figure:
    """Figure 1: top-1 validation accuracy against % of weights remaining, one line per trial."""
    _require(accuracy, ["trial", "level", "density", "top1"], "accuracy figure")
    data = _with_percent(accuracy)
    data["top1"] = data["top1"] * 100.0
    order = _trial_order(data)
    with sns.axes_style(_STYLE), sns.plotting_context(_CONTEXT):
        fig, axes = _figure(1, 1)
        ax = axes[0, 0]
        _lines(ax, data, "top1", "trial", order, sns.color_palette("colorblind", len(order)))
        ax.set_ylabel("top-1 accuracy (%)")
        ax.set_title("Accuracy")
        _tidy_legend(ax, keep=True)
    return fig


def _layers(frame: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(frame.sort_values("layer", kind="stable")["layer"]))


def _layer_title(title: str, layer: str, many: bool) -> str:
    return f"{title} ({layer})" if many else title


def plot_interpretability(summary: pd.DataFrame) -> Figure:
    """Figure 2: interpretable units (left) and distinct concepts (right), one line per trial.

    Uses the ``category == "all"`` rows of the summary table; one row of panels per layer.
    """
    _require(
        summary,
        ["trial", "density", "layer", "category", "interpretable_units", "unique_concepts"],
        "interpretability figure",
    )
    data = _with_percent(summary[summary["category"] == ALL_CATEGORIES])
    panels = [
        ("interpretable_units", "interpretable units", "Interpretable units"),
        ("unique_concepts", "distinct concepts", "Distinct concepts"),
    ]
    return _trial_panels(data, panels, percent=False)


def plot_categories(summary: pd.DataFrame, *, trial: int) -> Figure:
    """Figure 3: distinct concepts per Broden category against density, for one trial.

    Stacked areas, one panel per layer: each band's thickness is one category's count and the
    top edge the total, so a category at zero is a missing band, never a line hidden under
    another one. Every category of the table keeps its colour and legend entry.
    """
    _require(
        summary,
        ["trial", "density", "layer", "category", "unique_concepts"],
        "categories figure",
    )
    trials = sorted(int(t) for t in summary["trial"].unique())
    if trial not in trials:
        raise PlotError(f"categories figure: trial {trial} is not in the table (has {trials})")
    data = summary[(summary["trial"] == trial) & (summary["category"] != ALL_CATEGORIES)]
    data = _with_percent(data)
    categories = sorted(data["category"].unique())
    if not categories:
        raise PlotError("categories figure: the summary holds no per-category rows")
    palette = _category_palette(categories)
    layers = _layers(data)
    with sns.axes_style(_STYLE), sns.plotting_context(_CONTEXT):
        fig, axes = _figure(1, len(layers))
        for column, layer in enumerate(layers):
            ax = axes[0, column]
            counts = (
                data[data["layer"] == layer]
                .pivot_table(
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
            ax.set_ylabel("distinct concepts (stacked by category)")
            ax.set_ylim(bottom=0)
            ax.set_title(
                _layer_title(f"Concepts by category, trial {trial}", layer, len(layers) > 1)
            )
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(
            handles[::-1], labels[::-1], title="category", loc="outside right upper",
            frameon=False,
        )  # fmt: skip
    return fig


def plot_consistency(consistency: pd.DataFrame) -> Figure:
    """Figure 4: against level 0 of the same trial, % of its interpretable units still
    interpretable (left) and, of units interpretable at both, % with the same concept (right).
    """
    _require(
        consistency,
        ["trial", "density", "layer", "still_interpretable", "same_concept"],
        "consistency figure",
    )
    data = _with_percent(consistency)
    data["still_interpretable"] = data["still_interpretable"] * 100.0
    data["same_concept"] = data["same_concept"] * 100.0
    panels = [
        ("still_interpretable", "% of level-0 interpretable units", "Still interpretable"),
        ("same_concept", "% of units interpretable at both", "Same concept"),
    ]
    return _trial_panels(data, panels, percent=True)


def _trial_panels(
    data: pd.DataFrame, panels: list[tuple[str, str, str]], *, percent: bool
) -> Figure:
    """One row of panels per layer, one panel per (column, y label, title), a line per trial.

    ``percent`` fixes the y axis to 0-105 with % ticks; otherwise it starts at zero.
    """
    order = _trial_order(data)
    palette = sns.color_palette("colorblind", len(order))
    layers = _layers(data)
    with sns.axes_style(_STYLE), sns.plotting_context(_CONTEXT):
        fig, axes = _figure(len(layers), len(panels))
        for row, layer in enumerate(layers):
            subset = data[data["layer"] == layer]
            for col, (y, label, title) in enumerate(panels):
                ax = axes[row, col]
                _lines(ax, subset, y, "trial", order, palette)
                ax.set_ylabel(label)
                if percent:
                    ax.set_ylim(0, 105)
                    ax.yaxis.set_major_formatter(PercentFormatter(decimals=0))
                else:
                    ax.set_ylim(bottom=0)
                ax.set_title(_layer_title(title, layer, len(layers) > 1))
                _tidy_legend(ax, keep=(row == 0 and col == len(panels) - 1))
    return fig


def _band(ax: Axes, frame: pd.DataFrame, y: str, *, label: str | None, color) -> None:
    """Mean over trials per level as a line, min-max over trials as a shaded band."""
    stats = (
        frame.groupby("level", sort=True)
        .agg(percent=("density", "mean"), mean=(y, "mean"), low=(y, "min"), high=(y, "max"))
        .reset_index()
    )
    stats["percent"] *= 100.0
    ax.plot(stats["percent"], stats["mean"], marker="o", markersize=4, color=color, label=label)
    ax.fill_between(
        stats["percent"], stats["low"], stats["high"], color=color, alpha=0.25, linewidth=0
    )
    _density_axis(ax, stats["percent"])


def plot_overview(
    accuracy: pd.DataFrame, summary: pd.DataFrame, consistency: pd.DataFrame
) -> Figure:
    """All trials combined: mean (line) and range (band) of top-1 accuracy, interpretable
    units, distinct concepts and units still interpretable; one colour per layer.
    """
    _require(accuracy, ["level", "density", "top1"], "overview figure")
    _require(summary, ["level", "density", "layer", "category"], "overview figure")
    _require(consistency, ["level", "density", "layer", "still_interpretable"], "overview figure")
    totals = summary[summary["category"] == ALL_CATEGORIES]
    layers = _layers(totals)
    colors = sns.color_palette("colorblind", len(layers) + 1)
    n_trials = accuracy["trial"].nunique() if "trial" in accuracy else 1
    with sns.axes_style(_STYLE), sns.plotting_context(_CONTEXT):
        fig, axes = _figure(2, 2)
        top1 = accuracy.assign(top1=accuracy["top1"] * 100.0)
        _band(axes[0, 0], top1, "top1", label=None, color=colors[-1])
        axes[0, 0].set_ylabel("top-1 accuracy (%)")
        axes[0, 0].set_title("Accuracy")
        panels = [
            (
                axes[0, 1],
                totals,
                "interpretable_units",
                "interpretable units",
                "Interpretable units",
            ),
            (axes[1, 0], totals, "unique_concepts", "distinct concepts", "Distinct concepts"),
            (
                axes[1, 1],
                consistency.assign(still_interpretable=consistency["still_interpretable"] * 100.0),
                "still_interpretable",
                "% of level-0 interpretable units",
                "Still interpretable",
            ),
        ]
        for ax, frame, y, label, title in panels:
            for color, layer in zip(colors, layers):
                _band(ax, frame[frame["layer"] == layer], y, label=layer, color=color)
            ax.set_ylabel(label)
            ax.set_ylim(bottom=0)
            ax.set_title(title)
        axes[1, 1].set_ylim(0, 105)
        axes[0, 1].legend(title="layer", frameon=False)
        fig.suptitle(f"Mean over {n_trials} trial(s); band = min to max")
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
