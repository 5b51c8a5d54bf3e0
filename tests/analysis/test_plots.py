"""Figures: drawn from synthetic tables, checked as data on the axes and as valid files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import seaborn as sns
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgba
from PIL import Image

from prunedissect import plots, tables

METHODS = ("lottery", "oneshot")
TRIALS = (0, 1)
LEVELS = range(5)
CATEGORIES = ("color", "object", "scene")
PALETTE = sns.color_palette("colorblind")


def _study(methods=METHODS, trials=TRIALS) -> dict[str, pd.DataFrame]:
    """Every method pruned from one shared level 0 per trial; oneshot loses accuracy faster."""
    metrics, rows = [], []
    for m, method in enumerate(methods):
        for t in trials:
            for lv in LEVELS:
                metrics.append(
                    dict(
                        method=method,
                        trial=t,
                        level=lv,
                        density=0.8**lv,
                        params_remaining=int(1e4 * 0.8**lv),
                        top1=0.9 - 0.03 * (1 + m) * lv - 0.01 * t * (lv > 0),
                        top5=0.99,
                        loss=0.3,
                    )
                )
                shift = m * (lv > 0)  # level 0 is the same network under every method
                for unit in range(12):
                    concept = f"{CATEGORIES[unit % 3]}{unit // 3 + (lv > 2) * unit}"
                    iou = 0.02 + 0.01 * ((unit * 7 + lv + t + shift) % 9)
                    rows.append(
                        dict(
                            method=method,
                            trial=t,
                            level=lv,
                            layer="layer3",
                            unit=unit,
                            threshold=1.0,
                            concept=concept,
                            category=CATEGORIES[unit % 3],
                            iou=iou,
                            interpretable=iou > 0.05,
                            interpretable_fraction=float(iou > 0.05),
                            same_concept_fraction=1.0,
                            alive=True,
                        )
                    )
    accuracy = tables.accuracy_table(pd.DataFrame(metrics))
    units = tables.units_table(pd.DataFrame(rows).sample(frac=1, random_state=1), accuracy)
    frames = {
        "accuracy": accuracy,
        "units": units,
        "summary": tables.summary_table(units),
        "consistency": tables.consistency_table(units),
    }
    assert tables.check_tables(frames) == []
    return frames


@pytest.fixture(scope="module")
def frames() -> dict[str, pd.DataFrame]:
    return _study()


def _figures(frames, methods=None):
    return {
        "fig1_accuracy": plots.plot_accuracy(frames["accuracy"], methods),
        "fig2_interpretability": plots.plot_interpretability(frames["summary"], methods),
        "fig3_categories": plots.plot_categories(
            frames["summary"], trial=int(frames["summary"]["trial"].max()), methods=methods
        ),
        "fig4_consistency": plots.plot_consistency(frames["consistency"], methods),
        "fig5_overview": plots.plot_overview(
            frames["accuracy"], frames["summary"], frames["consistency"], methods
        ),
    }


def _assert_density_axis(ax):
    assert ax.get_xscale() == "log"
    left, right = ax.get_xlim()
    assert left > right  # decreasing from left to right
    assert ax.get_xlabel() == plots.X_LABEL


def _legend(fig):
    (legend,) = fig.legends  # one legend per figure, outside the panels
    assert not any(ax.get_legend() for ax in fig.axes)
    return legend.get_title().get_text(), [t.get_text() for t in legend.get_texts()]


def _bands(ax):
    return [c for c in ax.collections if isinstance(c, PolyCollection)]


def _band_range(band) -> tuple[float, float]:
    y = band.get_paths()[0].vertices[:, 1]
    return y.min(), y.max()


def _per_level(frame: pd.DataFrame, method: str, y: str) -> pd.DataFrame:
    """Mean, min and max over trials of ``y`` per level of one method (the figures' bands)."""
    return frame[frame["method"] == method].groupby("level")[y].agg(["mean", "min", "max"])


def test_accuracy_figure_draws_one_colour_per_method_with_a_trial_band(frames):
    fig = plots.plot_accuracy(frames["accuracy"])
    (ax,) = fig.axes
    _assert_density_axis(ax)
    assert _legend(fig) == ("method", list(METHODS))
    lines, bands = ax.get_lines(), _bands(ax)
    assert len(lines) == len(bands) == len(METHODS)  # one line and one band per method
    for method, line, band, colour in zip(METHODS, lines, bands, PALETTE):
        assert to_rgba(line.get_color()) == to_rgba(colour)
        assert to_rgba(band.get_facecolor()[0])[:3] == pytest.approx(to_rgba(colour)[:3])
        stats = _per_level(frames["accuracy"], method, "top1") * 100
        x, y = line.get_xydata().T
        assert x.tolist() == pytest.approx([100 * 0.8**lv for lv in LEVELS])
        np.testing.assert_allclose(y, stats["mean"])
        assert _band_range(band) == pytest.approx((stats["min"].min(), stats["max"].max()))
    assert "Mean of 2 trials" in fig.get_suptitle()
    ticks = sorted(ax.get_xticks())
    assert ticks == pytest.approx(sorted(100 * 0.8**lv for lv in LEVELS))


def test_methods_fix_the_order_and_the_colour_of_each_method(frames):
    fig = plots.plot_accuracy(frames["accuracy"], methods=["oneshot", "lottery"])
    assert _legend(fig)[1] == ["oneshot", "lottery"]
    assert [to_rgba(line.get_color()) for line in fig.axes[0].get_lines()] == [
        to_rgba(PALETTE[0]),
        to_rgba(PALETTE[1]),
    ]
    # a configured method that a table lacks keeps its colour slot: lottery keeps the second
    only_lottery = frames["summary"].query("method == 'lottery'")
    for figure in (
        plots.plot_interpretability(only_lottery, methods=["random", "lottery"]),
        plots.plot_interpretability(frames["summary"], methods=["random", "lottery", "oneshot"]),
    ):
        assert to_rgba(figure.axes[0].get_lines()[0].get_color()) == to_rgba(PALETTE[1])
    with pytest.raises(plots.PlotError, match=r"methods \['oneshot'\] of the table are not in"):
        plots.plot_consistency(frames["consistency"], methods=["lottery"])


def test_one_trial_draws_the_line_without_a_band():
    one = _study(trials=(0,))
    for fig in _figures(one).values():
        for ax in fig.axes:
            if ax.get_lines():  # figure 3 draws stacked areas, no lines
                assert not _bands(ax)
    assert plots.plot_accuracy(one["accuracy"]).get_suptitle() == "1 trial"


def test_interpretability_and_consistency_panels(frames):
    fig2 = plots.plot_interpretability(frames["summary"])
    left, right, alive = fig2.axes
    totals = frames["summary"].query("category == 'all'")
    for method, line in zip(METHODS, alive.get_lines()):
        stats = _per_level(totals, method, "interpretable_alive_fraction") * 100
        np.testing.assert_allclose(line.get_ydata(), stats["mean"])
    assert alive.get_ylim() == (0, 105)
    for method, line in zip(METHODS, left.get_lines()):
        stats = _per_level(totals, method, "interpretable_units")
        np.testing.assert_allclose(line.get_ydata(), stats["mean"])
    for method, band in zip(METHODS, _bands(right)):
        stats = _per_level(totals, method, "unique_concepts")
        assert _band_range(band) == (stats["min"].min(), stats["max"].max())
    fig4 = plots.plot_consistency(frames["consistency"])
    still, same = fig4.axes
    for ax in (left, right, alive, still, same):
        _assert_density_axis(ax)
        assert len(ax.get_lines()) == len(METHODS)
    assert [line.get_ydata()[0] for line in still.get_lines()] == [100.0, 100.0]  # level 0
    stats = _per_level(frames["consistency"], "oneshot", "same_concept") * 100
    np.testing.assert_allclose(same.get_lines()[1].get_ydata(), stats["mean"])
    assert _legend(fig2) == _legend(fig4) == ("method", list(METHODS))


def test_categories_figure_has_a_panel_row_per_method_stacking_every_category(frames):
    summary = pd.concat([frames["summary"], frames["summary"].assign(layer="layer4")])
    fig = plots.plot_categories(summary, trial=1, methods=["oneshot", "lottery"])
    axes = np.array(fig.axes).reshape(2, 2)  # rows: methods, columns: layers
    assert [[ax.get_title() for ax in row] for row in axes] == [
        ["oneshot (layer3)", "oneshot (layer4)"],
        ["lottery (layer3)", "lottery (layer4)"],
    ]
    assert "trial 1" in fig.get_suptitle()
    assert _legend(fig) == ("category", list(CATEGORIES))  # below the panels, in a row
    for column in axes.T:  # a layer's panels share their y axis
        assert column[0].get_shared_y_axes().joined(column[0], column[1])
    for ax, method in zip(axes[:, 0], ["oneshot", "lottery"]):
        bands = ax.collections
        assert len(bands) == len(CATEGORIES)  # one band per category, none hidden under another
        # the top edge of the last band is the method's total of distinct concepts
        per_level = (
            frames["summary"]
            .query("trial == 1 and category != 'all' and method == @method")
            .groupby("density")["unique_concepts"]
            .sum()
        )
        top = bands[-1].get_paths()[0].vertices
        for density, total in per_level.items():
            at = top[np.isclose(top[:, 0], density * 100)]
            assert at[:, 1].max() == pytest.approx(total)
    with pytest.raises(plots.PlotError, match=r"trial 7 is not in the table \(has \[0, 1\]\)"):
        plots.plot_categories(frames["summary"], trial=7)
    # one layer: the methods side by side in one row, one y axis tall enough for every stack
    row = plots.plot_categories(frames["summary"], trial=1, methods=["oneshot", "lottery"])
    assert [ax.get_title() for ax in row.axes] == ["oneshot", "lottery"]
    assert len({ax.get_position().y0 for ax in row.axes}) == 1
    tallest = (
        frames["summary"].query("trial == 1 and category != 'all'")
        .groupby(["method", "density"])["unique_concepts"].sum().max()
    )  # fmt: skip
    assert all(ax.get_ylim()[1] >= tallest for ax in row.axes)


def test_overview_sums_and_pools_the_layers_per_method(frames):
    layer4 = {name: frames[name].assign(layer="layer4") for name in ("summary", "consistency")}
    layer4["consistency"]["kept_units"] = layer4["consistency"]["level0_units"]  # all kept
    summary = pd.concat([frames["summary"], layer4["summary"]])
    consistency = pd.concat([frames["consistency"], layer4["consistency"]])
    fig = plots.plot_overview(frames["accuracy"], summary, consistency)
    accuracy, units, concepts, still = fig.axes
    assert _legend(fig) == ("method", list(METHODS))
    assert "summed over layers" in concepts.get_title()
    for method, a, u, s in zip(METHODS, *(ax.get_lines() for ax in (accuracy, units, still))):
        stats = _per_level(frames["accuracy"], method, "top1") * 100
        np.testing.assert_allclose(a.get_ydata(), stats["mean"])
        totals = frames["summary"].query("category == 'all'")
        np.testing.assert_allclose(
            u.get_ydata(), 2 * _per_level(totals, method, "interpretable_units")["mean"]
        )
        # pooled: (kept in layer3 + all level-0 units of layer4) / (twice the level-0 units)
        own = frames["consistency"][frames["consistency"]["method"] == method]
        pooled = 100 * (own["kept_units"] + own["level0_units"]) / (2 * own["level0_units"])
        np.testing.assert_allclose(s.get_ydata(), pooled.groupby(own["level"]).mean())
    for method, band in zip(METHODS, _bands(accuracy)):
        stats = _per_level(frames["accuracy"], method, "top1") * 100
        assert _band_range(band) == pytest.approx((stats["min"].min(), stats["max"].max()))


def test_several_layers_get_one_row_each(frames):
    summary = frames["summary"]
    two = pd.concat([summary, summary.assign(layer="layer4")], ignore_index=True)
    fig = plots.plot_interpretability(two)
    assert len(fig.axes) == 6
    assert fig.axes[3].get_title() == "Interpretable units (layer4)"


def test_saved_figures_are_valid_and_byte_identical(frames, tmp_path):
    for run in ("a", "b"):
        for name, fig in _figures(frames, METHODS).items():
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
    with pytest.raises(plots.PlotError, match=r"lacks columns \['method'\]"):
        plots.plot_interpretability(frames["summary"].drop(columns=["method"]))
    with pytest.raises(plots.PlotError, match="empty"):
        plots.plot_consistency(frames["consistency"].iloc[:0])
    fig = plots.plot_accuracy(frames["accuracy"])
    with pytest.raises(plots.PlotError, match="unsupported figure format 'svg'"):
        plots.save_figure(fig, [tmp_path / "fig.svg"])


def _interval_bars(ax) -> dict:
    """{method: its bootstrap bars (a LineCollection)} of one panel."""
    return {
        c.get_gid().removeprefix("bootstrap "): c
        for c in ax.collections
        if (c.get_gid() or "").startswith("bootstrap ")
    }


def _intervals(summary: pd.DataFrame) -> pd.DataFrame:
    """Intervals 1 below and 2 above every count; the untrained network at 3 (trial 0) and 5
    (trial 1) under every method, in every layer including 'all'."""
    rows = summary.copy()
    rows = pd.concat([rows, rows.assign(layer="all")], ignore_index=True)
    for quantity in ("interpretable_units", "unique_concepts"):
        rows[f"{quantity}_low"] = rows[quantity] - 1.0
        rows[f"{quantity}_high"] = rows[quantity] + 2.0
    floor = rows[rows["level"] == 0].assign(level=-1, density=1.0)
    for quantity in ("interpretable_units", "unique_concepts"):
        for column in (quantity, f"{quantity}_low", f"{quantity}_high"):
            floor[column] = np.where(floor["trial"] == 0, 3.0, 5.0)
    return pd.concat([rows, floor], ignore_index=True)


def test_bootstrap_bars_and_the_untrained_floor(frames):
    intervals = _intervals(frames["summary"])
    fig = plots.plot_interpretability(frames["summary"], intervals=intervals, confidence=0.95)
    left, middle, alive = fig.axes
    assert not _interval_bars(alive)  # a share of alive units: no count interval
    totals = frames["summary"].query("category == 'all'")
    for ax, y in ((left, "interpretable_units"), (middle, "unique_concepts")):
        bars = _interval_bars(ax)
        # level 0 once (one network), then the pruned levels of each method
        assert list(bars) == ["level 0", *METHODS]
        mean = _per_level(totals, METHODS[0], y)["mean"].to_numpy()
        (level0,) = bars.pop("level 0").get_segments()
        np.testing.assert_allclose(level0[:, 1], [mean[0] - 1, mean[0] + 2])
        for method, collection in bars.items():
            ends = np.array([s[:, 1] for s in collection.get_segments()])
            mean = _per_level(totals, method, y)["mean"].to_numpy()[1:]
            np.testing.assert_allclose(ends, np.c_[mean - 1, mean + 2])
        floors = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert [line.get_ydata()[0] for line in floors] == [4.0]  # mean of the trials' floors
    assert _legend(fig) == ("method", [*METHODS, "untrained"])
    assert "95% probe-image bootstrap interval" in fig.get_suptitle()
    overview = plots.plot_overview(
        frames["accuracy"],
        frames["summary"],
        frames["consistency"],
        intervals=intervals,
        confidence=0.95,
    )
    assert [bool(_interval_bars(ax)) for ax in overview.axes] == [False, True, False, False]
def _speed_frame() -> pd.DataFrame:
    rows = []
    for device in ("cpu", "cuda"):
        for batch in (1, 64):
            for variant, method, level, density, ms in (
                ("dense", "dense", 0, 1.0, 4.0),
                ("masked", "lottery", 1, 0.5, 4.0),
                ("masked", "lottery", 2, 0.25, 4.0),
                ("reduced", "thin", 1, 0.5, 2.0),
            ):
                rows.append({
                    "variant": variant, "method": method, "trial": 0, "level": level,
                    "density": density, "device": device, "device_name": f"{device}-x",
                    "threads": 2, "batch": batch, "repeats": 3, "latency_ms": ms * batch,
                    "throughput_img_s": 1000.0 / ms, "params": 10, "nonzero_params": 10,
                    "macs": 10, "top1": 0.9 - 0.1 * level,
                })  # fmt: skip
    return pd.DataFrame(rows)


def test_speed_figure_draws_a_row_per_device_and_a_line_per_timed_arm():
    fig = plots.plot_speed(_speed_frame())
    axes = fig.axes
    assert len(axes) == 4  # cpu and cuda, latency and throughput
    for ax in axes:
        assert len(ax.get_lines()) == 3  # dense, masked (lottery), reduced (thin)
        assert ax.get_xscale() == "log"
    latency = axes[0]
    masked = next(line for line in latency.get_lines() if line.get_marker() == "o")
    assert list(masked.get_xdata()) == [4.0, 4.0] and list(masked.get_ydata()) == [80.0, 70.0]
    labels = [text.get_text() for text in latency.texts]
    assert sorted(labels) == ["100%", "25%", "50%", "50%"]
    with pytest.raises(plots.PlotError, match="no timed network has a top-1"):
        plots.plot_speed(_speed_frame().assign(top1=float("nan")))
