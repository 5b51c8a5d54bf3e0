"""Figures: drawn from synthetic tables, checked as data on the axes and as valid files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from prunedissect import plots, tables

TRIALS = (0, 1)
LEVELS = range(5)
CATEGORIES = ("color", "object", "scene")


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    metrics = pd.DataFrame(
        [
            dict(
                trial=t,
                level=lv,
                density=0.8**lv,
                params_remaining=int(1e4 * 0.8**lv),
                top1=0.9 - 0.03 * lv - 0.01 * t,
                top5=0.99,
                loss=0.3,
            )
            for t in TRIALS
            for lv in LEVELS
        ]
    )
    rows = []
    for t in TRIALS:
        for lv in LEVELS:
            for unit in range(12):
                concept = f"{CATEGORIES[unit % 3]}{unit // 3 + (lv > 2) * unit}"
                iou = 0.02 + 0.01 * ((unit * 7 + lv + t) % 9)
                rows.append(
                    dict(
                        trial=t,
                        level=lv,
                        layer="layer3",
                        unit=unit,
                        threshold=1.0,
                        concept=concept,
                        category=CATEGORIES[unit % 3],
                        iou=iou,
                        interpretable=iou > 0.05,
                    )
                )
    accuracy = tables.accuracy_table(metrics)
    units = tables.units_table(pd.DataFrame(rows).sample(frac=1, random_state=1), accuracy)
    return {
        "accuracy": accuracy,
        "summary": tables.summary_table(units),
        "consistency": tables.consistency_table(units),
    }


def _figures(frames):
    return {
        "fig1_accuracy": plots.plot_accuracy(frames["accuracy"]),
        "fig2_interpretability": plots.plot_interpretability(frames["summary"]),
        "fig3_categories": plots.plot_categories(frames["summary"], trial=1),
        "fig4_consistency": plots.plot_consistency(frames["consistency"]),
        "fig5_overview": plots.plot_overview(
            frames["accuracy"], frames["summary"], frames["consistency"]
        ),
    }


def _lines(ax):
    """The lines that carry data (seaborn also adds empty proxy lines for its legend)."""
    return [line for line in ax.lines if len(line.get_xdata())]


def _assert_density_axis(ax):
    assert ax.get_xscale() == "log"
    left, right = ax.get_xlim()
    assert left > right  # decreasing from left to right
    assert ax.get_xlabel() == plots.X_LABEL


def test_accuracy_figure_draws_one_line_per_trial(frames):
    fig = plots.plot_accuracy(frames["accuracy"])
    (ax,) = fig.axes
    _assert_density_axis(ax)
    assert len(_lines(ax)) == len(TRIALS)
    for line, trial in zip(_lines(ax), TRIALS):
        x, y = line.get_xydata().T
        expected = frames["accuracy"].query("trial == @trial").sort_values("density")
        assert x.tolist() == pytest.approx((expected["density"] * 100).tolist())
        assert y.tolist() == pytest.approx((expected["top1"] * 100).tolist())
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["trial 0", "trial 1"]
    ticks = sorted(ax.get_xticks())
    assert ticks == pytest.approx(sorted(100 * 0.8**lv for lv in LEVELS))


def test_interpretability_and_consistency_panels(frames):
    fig2 = plots.plot_interpretability(frames["summary"])
    left, right = fig2.axes
    totals = frames["summary"].query("category == 'all' and trial == 0").sort_values("density")
    assert _lines(left)[0].get_ydata().tolist() == totals["interpretable_units"].tolist()
    assert _lines(right)[0].get_ydata().tolist() == totals["unique_concepts"].tolist()
    fig4 = plots.plot_consistency(frames["consistency"])
    still, same = fig4.axes
    for ax in (left, right, still, same):
        _assert_density_axis(ax)
    level0 = [line.get_ydata()[-1] for line in _lines(still)]  # density 100% sorts last
    assert level0 == [100.0, 100.0]
    expected = frames["consistency"].query("trial == 1").sort_values("density")
    np.testing.assert_allclose(_lines(same)[1].get_ydata(), expected["same_concept"] * 100)


def test_categories_figure_stacks_every_category(frames):
    fig = plots.plot_categories(frames["summary"], trial=1)
    (ax,) = fig.axes
    bands = ax.collections
    assert len(bands) == len(CATEGORIES)  # one band per category, none hidden under another
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(CATEGORIES)[::-1]
    assert "trial 1" in ax.get_title()
    # the top edge of the last band is the total of distinct concepts over the categories
    per_level = (
        frames["summary"]
        .query("trial == 1 and category != 'all'")
        .groupby("density")["unique_concepts"]
        .sum()
    )
    top = bands[-1].get_paths()[0].vertices
    for density, total in per_level.items():
        at = top[np.isclose(top[:, 0], density * 100)]
        assert at[:, 1].max() == pytest.approx(total)
    with pytest.raises(plots.PlotError, match=r"trial 7 is not in the table \(has \[0, 1\]\)"):
        plots.plot_categories(frames["summary"], trial=7)


def test_overview_band_spans_the_trials(frames):
    fig = plots.plot_overview(frames["accuracy"], frames["summary"], frames["consistency"])
    ax = fig.axes[0]
    mean = _lines(ax)[0].get_ydata()
    per_level = frames["accuracy"].groupby("level")["top1"]
    np.testing.assert_allclose(mean, per_level.mean() * 100)
    band = ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == pytest.approx(per_level.min().min() * 100)
    assert band.max() == pytest.approx(per_level.max().max() * 100)


def test_several_layers_get_one_row_each(frames):
    summary = frames["summary"]
    two = pd.concat([summary, summary.assign(layer="layer4")], ignore_index=True)
    fig = plots.plot_interpretability(two)
    assert len(fig.axes) == 4
    assert fig.axes[2].get_title() == "Interpretable units (layer4)"


def test_saved_figures_are_valid_and_byte_identical(frames, tmp_path):
    for run in ("a", "b"):
        for name, fig in _figures(frames).items():
            plots.save_figure(fig, [tmp_path / run / f"{name}.png", tmp_path / run / f"{name}.pdf"])
    for name in _figures(frames):
        png, pdf = tmp_path / "a" / f"{name}.png", tmp_path / "a" / f"{name}.pdf"
        with Image.open(png) as image:
            image.verify()
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width > 400 and image.height > 300
            assert "Software" not in image.info
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
        assert b"CreationDate" not in data and b"Matplotlib" not in data
        assert png.read_bytes() == (tmp_path / "b" / f"{name}.png").read_bytes(), name
        assert data == (tmp_path / "b" / f"{name}.pdf").read_bytes(), name


def test_errors_name_the_problem(frames, tmp_path):
    with pytest.raises(plots.PlotError, match=r"lacks columns \['top1'\]"):
        plots.plot_accuracy(frames["accuracy"].drop(columns=["top1"]))
    with pytest.raises(plots.PlotError, match="empty"):
        plots.plot_consistency(frames["consistency"].iloc[:0])
    fig = plots.plot_accuracy(frames["accuracy"])
    with pytest.raises(plots.PlotError, match="unsupported figure format 'svg'"):
        plots.save_figure(fig, [tmp_path / "fig.svg"])
