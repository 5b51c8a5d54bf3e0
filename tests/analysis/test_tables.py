"""Result tables: hand-computed cases, dtypes, sort order, errors and byte-identical files."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from prunedissect import tables
from prunedissect.tables import TableError

# A 4-unit layer of one trial at three levels, as (concept, category, iou, interpretable).
# level 0: units 0, 1, 2 interpretable (dog, sky, red); unit 3 not (grass).
# level 1: 0 keeps dog, 1 changes sky -> tree, 2 is lost, 3 is gained (dog again).
# level 2: nothing interpretable.
FOUR_UNITS = {
    0: [
        ("dog", "object", 0.12, True),
        ("sky", "scene", 0.09, True),
        ("red", "color", 0.07, True),
        ("grass", "material", 0.02, False),
    ],
    1: [
        ("dog", "object", 0.10, True),
        ("tree", "object", 0.06, True),
        ("red", "color", 0.03, False),
        ("dog", "object", 0.08, True),
    ],
    2: [
        ("dog", "object", 0.01, False),
        ("tree", "object", 0.02, False),
        ("red", "color", 0.03, False),
        ("dog", "object", 0.04, False),
    ],
}
DENSITY = {0: 1.0, 1: 0.8, 2: 0.64}

# A second method pruning the same level-0 network (FOUR_UNITS[0]) differently.
# level 1: unit 0 changes dog -> cat, 1 keeps sky, 2 keeps red, 3 stays uninterpretable.
# level 2: only unit 2 (red) is still interpretable.
ONESHOT_UNITS = {
    0: FOUR_UNITS[0],
    1: [
        ("cat", "object", 0.08, True),
        ("sky", "scene", 0.07, True),
        ("red", "color", 0.06, True),
        ("grass", "material", 0.01, False),
    ],
    2: [
        ("cat", "object", 0.02, False),
        ("sky", "scene", 0.03, False),
        ("red", "color", 0.09, True),
        ("grass", "material", 0.01, False),
    ],
}


def _units_frame(trials=(0,), layer="layer3", method="lottery", labels=None) -> pd.DataFrame:
    rows = []
    for trial in trials:
        for level, units in (labels or FOUR_UNITS).items():
            for unit, (concept, category, iou, interpretable) in enumerate(units):
                rows.append(
                    dict(
                        method=method,
                        trial=trial,
                        level=level,
                        layer=layer,
                        unit=unit,
                        threshold=0.5 + unit,
                        concept=concept,
                        category=category,
                        iou=iou,
                        interpretable=interpretable,
                        interpretable_fraction=float(interpretable),
                        same_concept_fraction=1.0,
                        alive=True,
                    )
                )
    return pd.DataFrame(rows)


def _metrics_frame(trials=(0,), method="lottery") -> pd.DataFrame:
    return pd.DataFrame(
        [
            dict(
                method=method,
                trial=t,
                level=lv,
                density=DENSITY[lv],
                params_remaining=int(1000 * DENSITY[lv]),
                top1=0.9 - 0.1 * lv - 0.01 * t,
                top5=0.99,
                loss=0.3 + lv,
            )
            for t in trials
            for lv in DENSITY
        ]
    )


def _write_inputs(root, trials=(0, 1)):
    """Per-checkpoint files laid out as the training and dissection stages write them."""
    metrics, units = [], []
    for row in _metrics_frame(trials).drop(columns="method").to_dict("records"):
        path = root / f"results/train/trial{row['trial']}/level{row['level']}/metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({**row, "params_total": 1000, "epochs": 2, "seed": 0}))
        metrics.append(path)
    frame = _units_frame(trials)
    keys = ["method", "trial", "level", "layer"]
    for key, group in frame.groupby(keys):
        method, trial, level, layer = key
        path = root / f"results/dissect/trial{trial}/level{level}/{layer}/units.parquet"
        path.parent.mkdir(parents=True)
        group.drop(columns=keys).to_parquet(path)
        units.append((key, path))
    return metrics, units


def test_accuracy_table_reads_metrics_files_with_fixed_dtypes(tmp_path):
    metrics, _ = _write_inputs(tmp_path)
    accuracy = tables.accuracy_table(
        tables.read_metrics(reversed(metrics), ["lottery"] * len(metrics))
    )
    assert list(accuracy.columns) == list(tables.COLUMNS["accuracy"])
    assert set(accuracy["method"]) == {"lottery"}
    assert accuracy[["trial", "level"]].values.tolist() == [
        [0, 0],
        [0, 1],
        [0, 2],
        [1, 0],
        [1, 1],
        [1, 2],
    ]
    assert accuracy["params_remaining"].tolist() == [1000, 800, 640] * 2
    assert accuracy["top1"].tolist() == pytest.approx([0.9, 0.8, 0.7, 0.89, 0.79, 0.69])
    assert str(accuracy["trial"].dtype) == "int64"
    assert str(accuracy["params_remaining"].dtype) == "int64"
    assert str(accuracy["top1"].dtype) == "float64"


def test_read_metrics_names_the_file_lacking_a_key(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps({"trial": 0, "level": 0, "density": 1.0}))
    with pytest.raises(TableError, match=r"metrics.json lacks \['params_remaining'"):
        tables.read_metrics([path], ["lottery"])


def test_read_metrics_counts_a_shared_level_zero_under_each_method_it_is_listed_for(tmp_path):
    metrics, _ = _write_inputs(tmp_path, trials=(0,))
    level0, level1, _ = metrics
    frame = tables.read_metrics([level0, level1, level0], ["lottery", "lottery", "oneshot"])
    assert frame[["method", "level"]].values.tolist() == [
        ["lottery", 0],
        ["lottery", 1],
        ["oneshot", 0],
    ]
    with pytest.raises(ValueError):
        tables.read_metrics([level0, level1], ["lottery"])


def test_accuracy_rejects_percentages_and_duplicates():
    bad = _metrics_frame().assign(top1=[91.0, 80.0, 70.0])
    with pytest.raises(TableError, match="top1 must be a fraction"):
        tables.accuracy_table(bad)
    doubled = pd.concat([_metrics_frame(), _metrics_frame()])
    with pytest.raises(TableError, match="duplicate rows"):
        tables.accuracy_table(doubled)


def test_dissection_units_take_their_keys_from_the_caller_not_the_path(tmp_path):
    _, units = _write_inputs(tmp_path, trials=(0,))
    (key, path), *_ = units
    moved = tmp_path / "anywhere.parquet"
    moved.write_bytes(path.read_bytes())
    frame = tables.read_dissection_units([moved], [("reinit", 7, 12, "layer4.1")])
    assert frame[["method", "trial", "level", "layer"]].drop_duplicates().values.tolist() == [
        ["reinit", 7, 12, "layer4.1"]
    ]
    assert list(frame.columns[:4]) == ["method", "trial", "level", "layer"]
    assert len(frame) == 4
    with pytest.raises(ValueError):
        tables.read_dissection_units([moved, moved], [key])


def test_units_table_joins_density_and_sorts(tmp_path):
    metrics, units = _write_inputs(tmp_path)
    accuracy = tables.accuracy_table(tables.read_metrics(metrics, ["lottery"] * len(metrics)))
    units = units[::-1]
    dissected = tables.read_dissection_units([p for _, p in units], [k for k, _ in units])
    table = tables.units_table(dissected, accuracy)
    assert list(table.columns) == list(tables.COLUMNS["units"])
    assert len(table) == 2 * 3 * 4
    assert table[["trial", "level", "unit"]].head(5).values.tolist() == [
        [0, 0, 0],
        [0, 0, 1],
        [0, 0, 2],
        [0, 0, 3],
        [0, 1, 0],
    ]
    assert table.groupby("level")["density"].unique().map(list).to_dict() == {
        0: [1.0],
        1: [0.8],
        2: [0.64],
    }
    assert str(table["interpretable"].dtype) == "bool"
    assert str(table["unit"].dtype) == "int64"
    assert table["concept"].map(type).eq(str).all()


def test_units_table_demands_accuracy_for_every_checkpoint():
    accuracy = tables.accuracy_table(_metrics_frame().query("level < 2"))
    with pytest.raises(TableError, match="no accuracy row .* lottery trial 0 level 2"):
        tables.units_table(_units_frame(), accuracy)


def _units_table(trials=(0,)) -> pd.DataFrame:
    return tables.units_table(_units_frame(trials), tables.accuracy_table(_metrics_frame(trials)))


def test_summary_counts_alive_units_and_the_interpretable_fraction_of_them():
    units = _units_frame()
    # level 1: unit 3 is a dead (structurally pruned) unit; level 2: every unit dead
    units.loc[(units["level"] == 1) & (units["unit"] == 3), "alive"] = False
    units.loc[units["level"] == 2, "alive"] = False
    metrics = tables.accuracy_table(_metrics_frame())
    summary = tables.summary_table(tables.units_table(units, metrics))
    rows = summary[summary["category"] == "all"].set_index("level")
    assert rows["units"].tolist() == [4, 4, 4]
    assert rows["alive_units"].tolist() == [4, 3, 0]
    assert rows.loc[0, "interpretable_alive_fraction"] == 3 / 4
    assert rows.loc[1, "interpretable_alive_fraction"] == 3 / 3
    assert np.isnan(rows.loc[2, "interpretable_alive_fraction"])
    objects = summary[(summary["category"] == "object") & (summary["level"] == 1)]
    assert objects["interpretable_alive_fraction"].tolist() == [1.0]  # 3 object units of 3
    assert (summary.groupby("level")["alive_units"].nunique() == 1).all()  # per layer


def test_summary_counts_by_hand():
    summary = tables.summary_table(_units_table())
    assert list(summary.columns) == list(tables.COLUMNS["summary"])
    got = {
        (row.level, row.category): (row.interpretable_units, row.unique_concepts)
        for row in summary.itertuples()
    }
    assert got == {
        (0, "all"): (3, 3),
        (0, "color"): (1, 1),
        (0, "material"): (0, 0),
        (0, "object"): (1, 1),
        (0, "scene"): (1, 1),
        # dog, tree and dog again: three units, two concepts
        (1, "all"): (3, 2),
        (1, "color"): (0, 0),
        (1, "material"): (0, 0),
        (1, "object"): (3, 2),
        (1, "scene"): (0, 0),
        (2, "all"): (0, 0),
        (2, "color"): (0, 0),
        (2, "material"): (0, 0),
        (2, "object"): (0, 0),
        (2, "scene"): (0, 0),
    }
    # "all" first, then alphabetical, within each level
    assert summary["category"].head(5).tolist() == ["all", "color", "material", "object", "scene"]
    assert summary["density"].tolist() == [1.0] * 5 + [0.8] * 5 + [0.64] * 5


def test_summary_uses_given_categories_and_rejects_unknown_ones():
    summary = tables.summary_table(
        _units_table(), categories=["color", "material", "object", "part", "scene", "texture"]
    )
    assert summary.query("level == 0")["category"].tolist() == [
        "all",
        "color",
        "material",
        "object",
        "part",
        "scene",
        "texture",
    ]
    assert summary.query("category == 'texture'")["interpretable_units"].tolist() == [0, 0, 0]
    with pytest.raises(TableError, match=r"categories \['color'\] missing"):
        tables.summary_table(_units_table(), categories=["object", "scene"])


def test_consistency_by_hand():
    table = tables.consistency_table(_units_table())
    assert list(table.columns) == list(tables.COLUMNS["consistency"])
    level0, level1, level2 = (row._asdict() for row in table.itertuples(index=False))
    assert (level0["level0_units"], level0["kept_units"], level0["same_concept_units"]) == (3, 3, 3)
    assert level0["still_interpretable"] == 1.0 and level0["same_concept"] == 1.0
    # units 0 and 1 kept (2 of 3), of them only unit 0 keeps its concept (1 of 2)
    assert (level1["level0_units"], level1["kept_units"], level1["same_concept_units"]) == (3, 2, 1)
    assert level1["still_interpretable"] == pytest.approx(2 / 3)
    assert level1["same_concept"] == 0.5
    # nothing interpretable: 0 of 3 kept, and the same-concept fraction is undefined
    assert level2["still_interpretable"] == 0.0
    assert math.isnan(level2["same_concept"])
    assert table["density"].tolist() == [1.0, 0.8, 0.64]


def test_consistency_compares_within_trial_and_layer():
    frame = pd.concat([_units_frame((0,), "layer3"), _units_frame((0,), "layer4")])
    # in layer4 unit 1 keeps "sky" at level 1: a different answer from layer3's
    frame.loc[(frame.layer == "layer4") & (frame.level == 1) & (frame.unit == 1), "concept"] = "sky"
    table = tables.consistency_table(
        tables.units_table(frame, tables.accuracy_table(_metrics_frame()))
    )
    same = table.set_index(["layer", "level"])["same_concept"]
    assert same[("layer3", 1)] == 0.5 and same[("layer4", 1)] == 1.0
    assert table["layer"].tolist() == ["layer3", "layer4"] * 3


def test_consistency_needs_level_zero_and_the_same_units():
    units = _units_table()
    with pytest.raises(
        TableError, match="level 0 is not dissected for lottery trial 0 layer layer3"
    ):
        tables.consistency_table(units[units.level > 0])
    extra = units[units.level == 1].head(1).assign(unit=99)
    with pytest.raises(TableError, match="unit 99 .* has no level-0 counterpart"):
        tables.consistency_table(pd.concat([units, extra]))


def _two_methods(trials=(0,)) -> dict[str, pd.DataFrame]:
    """lottery (FOUR_UNITS) and oneshot (ONESHOT_UNITS), both pruned from one shared level 0."""
    units = pd.concat(
        [_units_frame(trials), _units_frame(trials, method="oneshot", labels=ONESHOT_UNITS)]
    ).sample(frac=1, random_state=0)
    metrics = pd.concat([_metrics_frame(trials, "oneshot"), _metrics_frame(trials)])
    accuracy = tables.accuracy_table(metrics)
    units = tables.units_table(units, accuracy)
    return {
        "accuracy": accuracy,
        "units": units,
        "summary": tables.summary_table(units),
        "consistency": tables.consistency_table(units),
    }


def test_two_methods_share_level_zero_and_each_get_a_whole_curve():
    frames = _two_methods()
    assert tables.check_tables(frames) == []
    for name, frame in frames.items():
        assert frame["method"].tolist() == sorted(frame["method"]), name  # sorted by method
        level0 = frame[frame["level"] == 0]
        lottery, oneshot = (
            level0[level0["method"] == m].drop(columns="method").reset_index(drop=True)
            for m in ("lottery", "oneshot")
        )
        pd.testing.assert_frame_equal(lottery, oneshot)
    summary = frames["summary"].query("method == 'oneshot'")
    got = {
        (row.level, row.category): (row.interpretable_units, row.unique_concepts)
        for row in summary.itertuples()
        if row.interpretable_units
    }
    assert got == {
        (0, "all"): (3, 3),
        (0, "color"): (1, 1),
        (0, "object"): (1, 1),
        (0, "scene"): (1, 1),
        # cat, sky and red
        (1, "all"): (3, 3),
        (1, "color"): (1, 1),
        (1, "object"): (1, 1),
        (1, "scene"): (1, 1),
        # red alone
        (2, "all"): (1, 1),
        (2, "color"): (1, 1),
    }
    lottery = frames["summary"].query("method == 'lottery' and category == 'all'")
    assert lottery["interpretable_units"].tolist() == [3, 3, 0]  # as with lottery alone
    assert lottery["unique_concepts"].tolist() == [3, 2, 0]


def test_consistency_of_each_method_against_the_shared_level_zero_by_hand():
    table = tables.consistency_table(_two_methods()["units"])
    counts = {
        (row.method, row.level): (row.level0_units, row.kept_units, row.same_concept_units)
        for row in table.itertuples()
    }
    assert counts == {
        ("lottery", 0): (3, 3, 3),
        ("lottery", 1): (3, 2, 1),  # dog kept, sky -> tree, red lost
        ("lottery", 2): (3, 0, 0),
        ("oneshot", 0): (3, 3, 3),
        ("oneshot", 1): (3, 3, 2),  # dog -> cat, sky and red kept
        ("oneshot", 2): (3, 1, 1),  # red alone
    }
    still = table.set_index(["method", "level"])["still_interpretable"]
    same = table.set_index(["method", "level"])["same_concept"]
    assert still[("oneshot", 1)] == 1.0 and same[("oneshot", 1)] == pytest.approx(2 / 3)
    assert still[("oneshot", 2)] == pytest.approx(1 / 3) and same[("oneshot", 2)] == 1.0
    assert still[("lottery", 1)] == pytest.approx(2 / 3) and same[("lottery", 1)] == 0.5


def test_check_tables_flags_level_zero_differing_between_methods_and_rising_densities():
    frames = _two_methods((0, 1))
    broken = dict(frames)
    accuracy = frames["accuracy"].copy()
    accuracy.loc[(accuracy.method == "oneshot") & (accuracy.level == 0), "top1"] = 0.5
    broken["accuracy"] = accuracy
    units = frames["units"].copy()
    units.loc[(units.method == "oneshot") & (units.level == 0) & (units.unit == 1), "iou"] = 0.5
    broken["units"] = units
    summary = frames["summary"].copy()
    rising = (summary.method == "oneshot") & (summary.trial == 1) & (summary.level == 2)
    summary.loc[rising, "density"] = 0.9
    broken["summary"] = summary
    shared = "level-0 rows differ between methods; every method shares one dense network per trial"
    assert tables.check_tables(broken) == [
        f"accuracy: {shared}",
        f"units: {shared}",
        "summary: oneshot trial 1: densities do not decrease with level",
    ]


def test_written_tables_are_byte_identical_and_self_describing(tmp_path):
    def build(seed, directory):
        shuffled_units = _units_frame((0, 1)).sample(frac=1, random_state=seed)
        shuffled_metrics = _metrics_frame((0, 1)).sample(frac=1, random_state=seed)
        accuracy = tables.accuracy_table(shuffled_metrics)
        units = tables.units_table(shuffled_units, accuracy)
        frames = {
            "accuracy": accuracy,
            "units": units,
            "summary": tables.summary_table(units),
            "consistency": tables.consistency_table(units),
        }
        for name, frame in frames.items():
            tables.write_table(frame, directory / f"{name}.parquet", table=name)
        return frames

    built = build(1, tmp_path / "a")
    build(2, tmp_path / "b")
    for name in built:  # the study tables (speed.parquet's timings are never reproducible)
        first = (tmp_path / "a" / f"{name}.parquet").read_bytes()
        assert first == (tmp_path / "b" / f"{name}.parquet").read_bytes(), name
        schema = pq.read_schema(tmp_path / "a" / f"{name}.parquet")
        assert schema.names == list(tables.COLUMNS[name])
        assert schema.metadata is None  # no pandas metadata (it records the pandas version)
        for field in schema:
            assert field.metadata[b"description"].decode() == tables.COLUMNS[name][field.name][1]
        read = tables.read_table(tmp_path / "a" / f"{name}.parquet", table=name)
        assert len(read) > 0


def test_read_categories_from_tally(tmp_path):
    tally = pd.DataFrame(
        dict(
            unit=[0, 0, 0, 1],
            concept=["dog", "sky", "wood", "dog"],
            category=["object", "scene", "material", "object"],
            intersection=[1, 2, 3, 4],
            union=[5, 6, 7, 8],
            iou=[0.2, 0.3, 0.4, 0.5],
        )
    )
    tally.to_parquet(tmp_path / "tally.parquet")
    assert tables.read_categories(tmp_path / "tally.parquet") == ["material", "object", "scene"]


def test_check_tables_accepts_good_tables_and_names_each_problem():
    units = _units_table((0, 1))
    frames = {
        "accuracy": tables.accuracy_table(_metrics_frame((0, 1))),
        "units": units,
        "summary": tables.summary_table(units),
        "consistency": tables.consistency_table(units),
    }
    assert tables.check_tables(frames) == []
    broken = dict(frames)
    broken["accuracy"] = frames["accuracy"].assign(density=[1.0, 0.8, 0.9, 1.0, 0.8, 0.64])
    broken["units"] = frames["units"].assign(iou=frames["units"]["iou"] + 1)
    consistency = frames["consistency"].copy()
    consistency.loc[consistency.level == 0, "same_concept"] = 0.5
    broken["consistency"] = consistency
    broken["summary"] = frames["summary"].drop(columns=["unique_concepts"])
    problems = tables.check_tables(broken)
    assert "accuracy: lottery trial 0: densities do not decrease with level" in problems
    assert "units.iou: values outside [0, 1]" in problems
    assert "consistency.same_concept: level 0 differs from 1.0" in problems
    assert any(p.startswith("summary: columns") for p in problems)
    assert len(problems) == 4


def test_method_order_follows_the_config_and_defaults_to_sorted_names():
    table = ["oneshot", "lottery", "oneshot"]
    assert tables.method_order(table) == ["lottery", "oneshot"]
    config = ["random", "oneshot", "lottery", "oneshot"]
    assert tables.method_order(table, config) == ["random", "oneshot", "lottery"]
    with pytest.raises(TableError, match=r"methods \['oneshot'\] of the table are not in"):
        tables.method_order(table, ["lottery"])


def test_markdown_columns_documents_every_column():
    text = tables.markdown_columns("consistency")
    for name in tables.COLUMNS["consistency"]:
        assert f"| `{name}` |" in text
    assert np.all([line.count("|") == 4 for line in text.splitlines()])
