"""Tidy result tables of a study: accuracy, every dissected unit, summaries and consistency.

Pure functions from :class:`pandas.DataFrame` to :class:`pandas.DataFrame`, plus small readers
for the per-checkpoint files the training and dissection stages write and one writer that fixes
column order, dtypes and Parquet options so that identical inputs give byte-identical files.

The study tables (one row per ...):

- ``accuracy``: trained checkpoint (method, trial, level).
- ``units``: unit of a dissected layer of a dissected checkpoint (method, trial, level, layer,
  unit).
- ``summary``: (method, trial, level, layer, category); ``category == "all"`` holds the totals
  over every category.
- ``consistency``: (method, trial, level, layer), each compared with level 0 of the same trial
  and layer.
- ``speed`` (written by :mod:`prunedissect.speed`'s rule, not by this module): timed network
  (variant, method, trial, level, device, batch); machine-dependent, so outside the golden
  digests.

and the uncertainty tables of :mod:`prunedissect.uncertainty`:

- ``bootstrap``: (method, trial, level, layer, category, replicate), the summary's counts in
  each probe-image bootstrap replicate; ``layer == "all"`` counts over every dissected layer,
  level -1 is the trial's untrained network.
- ``intervals``: (method, trial, level, layer, category), the full-sample counts with their
  bootstrap percentile intervals.
- ``verdict``: (method, layer, quantity), Frankle & Bau's hypothesis A, B or C, or undecided,
  with its evidence.

``method`` names an arm of the study (config ``methods``: how masks are chosen and survivors
retrained). Every arm starts from the same dense level 0 of a trial, so the level-0 rows are that
one network, repeated under every method: each method's rows are a complete curve from the dense
network down, and the repeated rows are identical apart from ``method``. Count level 0 once when
pooling over methods.

Every column is described in :data:`COLUMNS`; the descriptions are also stored as Parquet field
metadata (key ``description``) in every written file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ALL_CATEGORIES = "all"
"""The ``category`` value of the summary rows that count over every category."""

_KEY = {
    "method": (
        pa.string(),
        "Pruning method (a name from config `methods`); level-0 rows are the shared dense "
        "network, repeated under every method.",
    ),
    "trial": (pa.int64(), "Trial (independent pruning chain, seed = config seed + trial)."),
    "level": (pa.int64(), "Pruning level; 0 is the dense network."),
    "density": (pa.float64(), "Fraction of prunable weights remaining (1.0 at level 0)."),
    "layer": (pa.string(), "Name of the dissected module (e.g. layer4)."),
}

_SUMMARY_CATEGORY = (
    pa.string(),
    f"Broden category, or {ALL_CATEGORIES!r} for the totals over every category.",
)

COLUMNS: Mapping[str, Mapping[str, tuple[pa.DataType, str]]] = {
    "accuracy": {
        **{k: _KEY[k] for k in ("method", "trial", "level", "density")},
        "params_remaining": (pa.int64(), "Number of prunable weights still alive."),
        "top1": (pa.float64(), "Top-1 accuracy on the validation set, a fraction in [0, 1]."),
        "top5": (pa.float64(), "Top-5 accuracy on the validation set, a fraction in [0, 1]."),
        "loss": (pa.float64(), "Mean cross-entropy loss on the validation set."),
    },
    "units": {
        **_KEY,
        "unit": (pa.int64(), "Unit (channel) index within the layer, 0-based."),
        "threshold": (
            pa.float64(),
            "Activation threshold T_k (top dissection.quantile of the unit's activations).",
        ),
        "concept": (pa.string(), "Concept of highest IoU with the unit (its label)."),
        "category": (pa.string(), "Broden category of that concept (object, part, colour...)."),
        "iou": (pa.float64(), "IoU of the unit with its concept, in [0, 1]."),
        "interpretable": (
            pa.bool_(),
            "True when iou exceeds dissection.iou_threshold.",
        ),
        "interpretable_fraction": (
            pa.float64(),
            "Fraction of probe-image bootstrap replicates in which the unit is interpretable.",
        ),
        "same_concept_fraction": (
            pa.float64(),
            "Fraction of replicates in which the unit's label is its concept above; NaN when it "
            "has none (best IoU 0).",
        ),
        "alive": (
            pa.bool_(),
            "True when the unit's activation is nonzero somewhere on the probe set (a channel "
            "removed by structured pruning is exactly zero: dead).",
        ),
    },
    "summary": {
        **_KEY,
        "category": _SUMMARY_CATEGORY,
        "interpretable_units": (
            pa.int64(),
            "Interpretable units whose concept belongs to the category (all: every one).",
        ),
        "unique_concepts": (
            pa.int64(),
            "Distinct concepts among those units (all: distinct over every category).",
        ),
        "units": (
            pa.int64(),
            "Units of the layer (fewer in a reduced network); the same in every category row.",
        ),
        "alive_units": (
            pa.int64(),
            "Units of the layer that are alive (nonzero somewhere on the probe set).",
        ),
        "interpretable_alive_fraction": (
            pa.float64(),
            "interpretable_units / alive_units (Frankle & Bau's second prediction for filter "
            "pruning); NaN when no unit is alive.",
        ),
    },
    "consistency": {
        **_KEY,
        "level0_units": (
            pa.int64(),
            "Units interpretable at level 0 (the shared dense network) of the same trial and "
            "layer.",
        ),
        "kept_units": (pa.int64(), "Of those, units also interpretable at this level."),
        "same_concept_units": (
            pa.int64(),
            "Of the kept units, those whose concept equals their level-0 concept.",
        ),
        "still_interpretable": (
            pa.float64(),
            "kept_units / level0_units; NaN when no unit is interpretable at level 0.",
        ),
        "same_concept": (
            pa.float64(),
            "same_concept_units / kept_units; NaN when kept_units is 0.",
        ),
    },
    "bootstrap": {
        **{k: _KEY[k] for k in ("method", "trial")},
        "level": (
            pa.int64(),
            "Pruning level; 0 is the dense network, -1 the untrained network of the trial (its "
            "level-0 initialisation, the floor), repeated under every method.",
        ),
        "density": (pa.float64(), "Fraction of prunable weights remaining (1.0 at levels 0, -1)."),
        "layer": (
            pa.string(),
            "Dissected module, or 'all' for the counts over every dissected layer together.",
        ),
        "category": _SUMMARY_CATEGORY,
        "replicate": (
            pa.int64(),
            "Probe-image bootstrap replicate, 0-based; replicate b resamples the same images "
            "for every checkpoint (bootstrap.seed), so differences between levels are paired.",
        ),
        "interpretable_units": (pa.int64(), "Interpretable units in this replicate."),
        "unique_concepts": (pa.int64(), "Distinct concepts among them in this replicate."),
    },
    "intervals": {
        **{k: _KEY[k] for k in ("method", "trial")},
        "level": (pa.int64(), "Pruning level; 0 dense, -1 the untrained network (the floor)."),
        "density": (pa.float64(), "Fraction of prunable weights remaining (1.0 at levels 0, -1)."),
        "layer": (pa.string(), "Dissected module, or 'all' for every dissected layer together."),
        "category": _SUMMARY_CATEGORY,
        "interpretable_units": (pa.int64(), "Interpretable units of the full probe set."),
        "unique_concepts": (pa.int64(), "Distinct concepts among them (full probe set)."),
        "interpretable_units_low": (
            pa.float64(),
            "Lower end of the bootstrap percentile interval (level bootstrap.confidence).",
        ),
        "interpretable_units_high": (pa.float64(), "Upper end of that interval."),
        "unique_concepts_low": (pa.float64(), "Lower end of the interval of unique_concepts."),
        "unique_concepts_high": (pa.float64(), "Upper end of that interval."),
    },
    "verdict": {
        "method": (pa.string(), "Pruning method (a name from config `methods`)."),
        "layer": (pa.string(), "Dissected module, or 'all' for every dissected layer together."),
        "quantity": (pa.string(), "interpretable_units or unique_concepts (category 'all')."),
        "verdict": (
            pa.string(),
            "A (no change until accuracy drops), B (pruning raises it), C (pruning lowers it) "
            "or undecided (Frankle & Bau's hypotheses; prunedissect.uncertainty).",
        ),
        "reason": (pa.string(), "Why, in words (names ties and missing evidence)."),
        "trials": (pa.int64(), "Trials judged."),
        "judged_levels": (
            pa.int64(),
            "Pruned levels before accuracy drops (the levels the verdict reads).",
        ),
        "accuracy_drop_density": (
            pa.float64(),
            "Density of the first level whose trial-mean top-1 is more than "
            "bootstrap.accuracy_drop below level 0's; NaN when accuracy never drops.",
        ),
        "first_below_density": (
            pa.float64(),
            "Density of the first judged level whose paired interval (level - level 0) lies "
            "below 0 in every trial; NaN when none.",
        ),
        "first_above_density": (
            pa.float64(),
            "Density of the first judged level whose paired interval lies above 0 in every "
            "trial; NaN when none.",
        ),
        "decisive_density": (
            pa.float64(),
            "Density of the level the verdict rests on (first below/above; for A the last "
            "judged level); NaN when undecided for lack of judged levels.",
        ),
        "level0_value": (pa.float64(), "The quantity at level 0, mean over trials."),
        "change": (
            pa.float64(),
            "Quantity at the decisive level minus level 0, mean over trials (full probe set).",
        ),
        "change_low": (
            pa.float64(),
            "Lower end of the paired bootstrap interval of that trial-mean change.",
        ),
        "change_high": (pa.float64(), "Upper end of that interval."),
        "trials_agreeing": (
            pa.int64(),
            "Trials whose own paired interval at the decisive level agrees with the verdict.",
        ),
        "floor_value": (
            pa.float64(),
            "The quantity in the untrained network (level -1), mean over trials; NaN when it "
            "was not dissected.",
        ),
    },
    # Inference timings (prunedissect.speed): machine-dependent, so not a golden-digest table.
    "speed": {
        "variant": (
            pa.string(),
            "Network timed: dense (level 0), masked (a magnitude arm's checkpoint, dense "
            "compute), slimmed (a structured arm's checkpoint, physically slimmed) or reduced "
            "(a reduced arm's thinner network).",
        ),
        "method": (pa.string(), "Arm the checkpoint belongs to; 'dense' for level 0."),
        **{k: _KEY[k] for k in ("trial", "level", "density")},
        "device": (pa.string(), "Device the network ran on: cpu or cuda."),
        "device_name": (
            pa.string(),
            "The GPU's name, or the CPU kernels torch used (cpu-avx2 when pinned).",
        ),
        "threads": (pa.int64(), "torch intra-op CPU threads during the timing."),
        "batch": (pa.int64(), "Images per forward pass."),
        "repeats": (pa.int64(), "Timed passes (after speed.warmup untimed ones)."),
        "latency_ms": (
            pa.float64(),
            "Median time of one forward pass of the batch, in milliseconds (read at batch 1).",
        ),
        "throughput_img_s": (
            pa.float64(),
            "batch / median pass time, in images per second (read at batch 64).",
        ),
        "params": (pa.int64(), "Parameters the network stores, zeros included."),
        "nonzero_params": (pa.int64(), "Of those, the non-zero ones."),
        "macs": (
            pa.int64(),
            "Multiply-accumulates per image as computed (zeros count: a masked network does "
            "the dense arithmetic); Torch-Pruning's count_ops_and_params.",
        ),
        "top1": (
            pa.float64(),
            "Top-1 accuracy of the checkpoint (accuracy table); NaN where it has none.",
        ),
    },
}
"""Per table: column name -> (Arrow type, description). Column order is the file's order."""

_METRICS_KEYS = ("trial", "level", "density", "params_remaining", "top1", "top5", "loss")
_SERIES = ["method", "trial"]  # one curve against density
UNIT_FILE_COLUMNS = (
    "unit",
    "threshold",
    "concept",
    "category",
    "iou",
    "interpretable",
    "interpretable_fraction",
    "same_concept_fraction",
    "alive",
)
"""Columns of a per-layer ``units.parquet`` (:func:`prunedissect.dissection.dissect_activations`:
the labels of :func:`~prunedissect.dissection.label_units` and their bootstrap stability)."""


class TableError(ValueError):
    """Input files or frames do not fit together into a result table."""


def method_order(table_methods: Iterable[str], methods: Iterable[str] | None = None) -> list[str]:
    """The order of a study's methods: ``methods`` (the config's order, repeats dropped) or, by
    default, the sorted names in ``table_methods`` (e.g. a table's ``method`` column).

    Figures and the overview follow this order, so a method keeps its place (and colour) in
    every output even where a table lacks another method. A method of the table that
    ``methods`` lacks is an error.
    """
    present = set(table_methods)
    order = list(dict.fromkeys(methods)) if methods is not None else sorted(present)
    unknown = sorted(present - set(order))
    if unknown:
        raise TableError(f"methods {unknown} of the table are not in methods {order}")
    return order


# --------------------------------------------------------------------------- readers


def read_metrics(paths: Iterable[str | Path], methods: Iterable[str]) -> pd.DataFrame:
    """Read ``metrics.json`` files (one per trained checkpoint) into one raw frame.

    ``methods`` holds the method each file counts under, in the order of ``paths`` (the
    workflow's rule passes them as a param; the shared level 0 is listed once per method). Only
    the keys the accuracy table needs are kept; a missing key is an error naming the file.
    """
    rows = []
    for path, method in zip(paths, methods, strict=True):
        with open(path) as handle:
            record = json.load(handle)
        missing = [k for k in _METRICS_KEYS if k not in record]
        if missing:
            raise TableError(
                f"{path}: metrics.json lacks {missing}; it must hold {list(_METRICS_KEYS)} "
                "(rerun the training rule that wrote it)"
            )
        rows.append({"method": str(method), **{k: record[k] for k in _METRICS_KEYS}})
    if not rows:
        raise TableError("no metrics.json files given; train at least one checkpoint first")
    return pd.DataFrame(rows)


def read_keyed_files(
    paths: Iterable[str | Path],
    keys: Iterable[tuple[str, int, int, str]],
    columns: Sequence[str],
    what: str,
) -> pd.DataFrame:
    """Concatenate per-layer Parquet files, keeping ``columns`` and adding method, trial,
    level, layer in front.

    ``keys`` holds each file's ``(method, trial, level, layer)``, in the order of ``paths`` (the
    workflow's rule passes them as a param), so the files need not repeat them and no path is
    parsed. ``what`` names the files in errors.
    """
    frames = []
    for path, (method, trial, level, layer) in zip(paths, keys, strict=True):
        frame = pd.read_parquet(path)
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise TableError(
                f"{path}: {what} lacks columns {missing}; expected {list(columns)} (rerun the "
                "dissection rule that wrote it)"
            )
        frame = frame.loc[:, list(columns)]
        frame.insert(0, "layer", layer)
        frame.insert(0, "level", int(level))
        frame.insert(0, "trial", int(trial))
        frame.insert(0, "method", str(method))
        frames.append(frame)
    if not frames:
        raise TableError(f"no {what} files given; dissect at least one checkpoint first")
    return pd.concat(frames, ignore_index=True)


def read_dissection_units(
    paths: Iterable[str | Path], keys: Iterable[tuple[str, int, int, str]]
) -> pd.DataFrame:
    """Concatenate per-checkpoint ``units.parquet`` files, adding method, trial, level, layer
    (:func:`read_keyed_files`); the shared level 0 is listed once per method."""
    return read_keyed_files(paths, keys, UNIT_FILE_COLUMNS, "units.parquet")


def read_categories(paths: str | Path | Iterable[str | Path]) -> list[str]:
    """The sorted distinct categories in one or more dissection ``tally.parquet`` files.

    A tally lists every (unit, concept) pair, so one file names every category of the probe set,
    including categories no unit ends up labelled with.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    found: set[str] = set()
    for path in paths:
        column = pd.read_parquet(path, columns=["category"])["category"]
        found.update(str(c) for c in column.dropna().unique())
    if not found:
        raise TableError(f"no categories in {list(map(str, paths))}; is the tally empty?")
    return sorted(found)


# --------------------------------------------------------------------------- tables


def _conform(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Select the table's columns in order, with fixed dtypes and a fresh RangeIndex."""
    columns = COLUMNS[table]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TableError(f"{table} table: missing columns {missing}")
    out = {}
    for name, (dtype, _) in columns.items():
        values = frame[name]
        if pa.types.is_string(dtype):
            out[name] = values.astype("str").where(values.notna(), None)
        elif pa.types.is_boolean(dtype):
            if values.isna().any():
                raise TableError(f"{table} table: column {name} holds missing values")
            out[name] = values.astype(bool)
        elif pa.types.is_integer(dtype):
            if values.isna().any():
                raise TableError(f"{table} table: column {name} holds missing values")
            out[name] = values.astype(np.int64)
        else:
            out[name] = values.astype(np.float64)
    return pd.DataFrame(out).reset_index(drop=True)


def _check_unique(frame: pd.DataFrame, keys: list[str], what: str) -> None:
    duplicated = frame.duplicated(keys, keep=False)
    if duplicated.any():
        example = frame.loc[duplicated, keys].iloc[0].to_dict()
        raise TableError(f"{what}: duplicate rows for {example}; each {keys} must occur once")


def accuracy_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """One row per trained checkpoint, sorted by method, trial and level (see
    ``COLUMNS['accuracy']``).

    ``metrics`` holds at least the columns of :func:`read_metrics`.
    """
    _check_unique(metrics, ["method", "trial", "level"], "metrics")
    out = _conform(metrics, "accuracy")
    for column in ("top1", "top5"):
        bad = out[(out[column] < 0) | (out[column] > 1)]
        if len(bad):
            raise TableError(
                f"metrics: {column} must be a fraction in [0, 1], got {bad[column].iloc[0]} "
                f"({bad.method.iloc[0]}, trial {bad.trial.iloc[0]}, level {bad.level.iloc[0]})"
            )
    return out.sort_values(["method", "trial", "level"], kind="stable", ignore_index=True)


def units_table(units: pd.DataFrame, accuracy: pd.DataFrame) -> pd.DataFrame:
    """Every unit of every dissected checkpoint, with the checkpoint's density joined in.

    ``units`` comes from :func:`read_dissection_units`; ``accuracy`` from
    :func:`accuracy_table` and must cover every (method, trial, level) in ``units``.
    """
    checkpoint = ["method", "trial", "level"]
    _check_unique(units, [*checkpoint, "layer", "unit"], "units")
    density = accuracy.loc[:, [*checkpoint, "density"]]
    merged = units.drop(columns=["density"], errors="ignore").merge(
        density, on=checkpoint, how="left", validate="many_to_one"
    )
    lacking = merged[merged["density"].isna()][checkpoint].drop_duplicates()
    if len(lacking):
        raise TableError(
            "units: no accuracy row (metrics.json) for "
            + ", ".join(f"{m} trial {t} level {lv}" for m, t, lv in lacking.itertuples(index=False))
            + "; every dissected checkpoint must also be trained and evaluated"
        )
    out = _conform(merged, "units")
    return out.sort_values([*checkpoint, "layer", "unit"], kind="stable", ignore_index=True)


def category_order(categories: Iterable[str]) -> list[str]:
    """The order of a table's categories: ``"all"`` first, then the categories alphabetically."""
    return [ALL_CATEGORIES] + sorted(set(categories) - {ALL_CATEGORIES})


def label_counts(interpretable: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Interpretable units and distinct concepts of ``interpretable`` (rows of interpretable
    units with ``unit``, ``concept`` and ``category``) per ``keys`` and category, plus per
    ``keys`` over every category (``category == "all"``); combinations without a row are
    absent (callers complete them with zeros)."""
    keys = list(keys)
    aggregate = {"interpretable_units": ("unit", "size"), "unique_concepts": ("concept", "nunique")}
    per_category = interpretable.groupby([*keys, "category"], sort=False).agg(**aggregate)
    totals = interpretable.groupby(keys, sort=False).agg(**aggregate)
    totals["category"] = ALL_CATEGORIES
    return pd.concat([per_category.reset_index(), totals.reset_index()], ignore_index=True)


def summary_table(units: pd.DataFrame, *, categories: Iterable[str] | None = None) -> pd.DataFrame:
    """Interpretable units and distinct concepts per (method, trial, level, layer, category).

    Every checkpoint and layer gets one row per category (zeros where nothing was found) plus a
    ``category == "all"`` row with the totals, each with the layer's units, its alive units
    (``alive``) and the interpretable fraction of the alive ones. ``categories`` defaults to
    every category named in ``units`` (interpretable or not); pass the probe's category list to
    also show categories no unit ever picked. Rows are sorted by method, trial, level, layer,
    then "all" first and the categories alphabetically.
    """
    keys = ["method", "trial", "level", "density", "layer"]
    cats = category_order(
        categories if categories is not None else units["category"].dropna().unique()
    )
    interpretable = units[units["interpretable"]]
    unknown = sorted(set(interpretable["category"].dropna()) - set(cats))
    if unknown:
        raise TableError(f"summary: units name categories {unknown} missing from {cats[1:]}")
    counts = label_counts(interpretable, keys)
    sizes = units.groupby(keys, sort=False).agg(
        units=("unit", "size"), alive_units=("alive", "sum")
    )
    grid = sizes.reset_index().merge(pd.DataFrame({"category": cats}), how="cross")
    out = grid.merge(counts, on=keys + ["category"], how="left")
    out[["interpretable_units", "unique_concepts"]] = out[
        ["interpretable_units", "unique_concepts"]
    ].fillna(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["interpretable_alive_fraction"] = np.where(
            out["alive_units"] > 0, out["interpretable_units"] / out["alive_units"], np.nan
        )
    out["_order"] = out["category"].map({c: i for i, c in enumerate(cats)})
    out = out.sort_values(["method", "trial", "level", "layer", "_order"], kind="stable")
    return _conform(out, "summary")


def consistency_table(units: pd.DataFrame) -> pd.DataFrame:
    """Compare every dissected (method, trial, level, layer) with level 0 of the same method,
    trial and layer (the shared dense network).

    ``still_interpretable`` is the fraction of units interpretable at level 0 that are still
    interpretable; ``same_concept`` the fraction of units interpretable at both levels whose
    concept is unchanged. Level 0 gives 1.0 and 1.0 (NaN only when no unit is interpretable at
    level 0). Every (method, trial, layer) needs level 0 dissected, with the same units.
    """
    group = [*_SERIES, "layer"]
    base = units.loc[units["level"] == 0, [*group, "unit", "interpretable", "concept"]]
    base = base.rename(columns={"interpretable": "interpretable0", "concept": "concept0"})
    groups = units[group].drop_duplicates()
    lacking = groups.merge(base[group].drop_duplicates(), how="left", indicator=True)
    lacking = lacking[lacking["_merge"] == "left_only"]
    if len(lacking):
        raise TableError(
            "consistency: level 0 is not dissected for "
            + ", ".join(
                f"{m} trial {t} layer {ly}" for m, t, ly, _ in lacking.itertuples(index=False)
            )
            + "; include 0 in dissection.levels (or leave it null for every level)"
        )
    merged = units.merge(base, on=[*group, "unit"], how="left", validate="many_to_one")
    orphan = merged["interpretable0"].isna()
    if orphan.any():
        row = merged[orphan].iloc[0]
        raise TableError(
            f"consistency: unit {row.unit} of {row.method} trial {row.trial} layer {row.layer} "
            f"level {row.level} has no level-0 counterpart; all levels must dissect the same "
            "units"
        )
    interp0 = merged["interpretable0"].astype(bool)
    kept = interp0 & merged["interpretable"].astype(bool)
    same = kept & (merged["concept"] == merged["concept0"]).fillna(False).astype(bool)
    merged = merged.assign(level0_units=interp0, kept_units=kept, same_concept_units=same)
    keys = [*_SERIES, "level", "density", "layer"]
    out = merged.groupby(keys, sort=False)[["level0_units", "kept_units", "same_concept_units"]]
    out = out.sum().reset_index()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["still_interpretable"] = np.where(
            out["level0_units"] > 0, out["kept_units"] / out["level0_units"], np.nan
        )
        out["same_concept"] = np.where(
            out["kept_units"] > 0, out["same_concept_units"] / out["kept_units"], np.nan
        )
    out = out.sort_values([*_SERIES, "level", "layer"], kind="stable")
    return _conform(out, "consistency")


# --------------------------------------------------------------------------- writer


def arrow_schema(table: str) -> pa.Schema:
    """The Arrow schema of a result table, each field carrying its description as metadata."""
    return pa.schema(
        [
            pa.field(name, dtype, metadata={"description": doc})
            for name, (dtype, doc) in COLUMNS[table].items()
        ]
    )


def write_table(frame: pd.DataFrame, path: str | Path, *, table: str) -> None:
    """Write ``frame`` as the result table ``table`` (a key of :data:`COLUMNS`) to Parquet.

    Column order and types follow :data:`COLUMNS`, pandas' own metadata (which records the
    pandas version) is dropped and the compression is fixed, so equal frames give equal bytes.
    """
    if table not in COLUMNS:
        raise TableError(f"unknown table {table!r}; known: {sorted(COLUMNS)}")
    data = _conform(frame, table)
    arrow = pa.Table.from_pandas(data, schema=arrow_schema(table), preserve_index=False)
    arrow = arrow.replace_schema_metadata(None)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(arrow, path, compression="zstd", compression_level=3)


def read_table(path: str | Path, *, table: str) -> pd.DataFrame:
    """Read a result table and check it has the documented columns."""
    frame = pd.read_parquet(path)
    expected = list(COLUMNS[table])
    if list(frame.columns) != expected:
        raise TableError(f"{path}: columns {list(frame.columns)}, expected {expected}")
    return frame


def check_tables(frames: Mapping[str, pd.DataFrame]) -> list[str]:
    """Sanity checks on a study's result tables; returns one line per problem (empty: fine).

    ``frames`` maps table names (keys of :data:`COLUMNS`) to frames as read from the files.
    Checked: the documented columns in order, fractions within [0, 1], densities strictly
    decreasing with level within each method and trial, level 0 (and the untrained level -1)
    equal under every method, and level-0 consistency equal to 1 where defined.
    Meant for end-to-end tests and for a quick look at a finished run.
    """
    problems = []
    for name, frame in frames.items():
        expected = list(COLUMNS[name])
        if list(frame.columns) != expected:
            problems.append(f"{name}: columns {list(frame.columns)}, expected {expected}")
            continue
        fractions = {
            "accuracy": ["density", "top1", "top5"],
            "units": ["density", "iou", "interpretable_fraction", "same_concept_fraction"],
            "summary": ["density", "interpretable_alive_fraction"],
            "consistency": ["density", "still_interpretable", "same_concept"],
            "verdict": ["accuracy_drop_density", "decisive_density"],
        }.get(name, ["density"])
        for column in fractions:
            values = frame[column].dropna()
            if ((values < 0) | (values > 1)).any():
                problems.append(f"{name}.{column}: values outside [0, 1]")
        if "level" not in frame:
            continue
        pruning = frame[frame["level"] >= 0]  # level -1: the untrained network, beside level 0
        for (method, trial), group in pruning.groupby(_SERIES):
            series = f"{name}: {method} trial {trial}"
            per_level = group.groupby("level")["density"].agg(["min", "max"]).sort_index()
            if (per_level["min"] != per_level["max"]).any():
                problems.append(f"{series} has several densities for one level")
            if not per_level["min"].is_monotonic_decreasing or per_level["min"].duplicated().any():
                problems.append(f"{series}: densities do not decrease with level")
        for shared_level, network in ((0, "dense"), (-1, "untrained")):
            level0 = frame[frame["level"] == shared_level]
            shared = level0.drop(columns="method").astype(str).drop_duplicates()
            if len(shared) * level0["method"].nunique() != len(level0):
                problems.append(
                    f"{name}: level-{shared_level} rows differ between methods; every method "
                    f"shares one {network} network per trial"
                )
        if name == "consistency":
            level0 = frame[frame["level"] == 0]
            for column in ("still_interpretable", "same_concept"):
                values = level0[column].dropna()
                if (values != 1.0).any():
                    problems.append(f"consistency.{column}: level 0 differs from 1.0")
    return problems


def markdown_columns(table: str) -> str:
    """A Markdown table documenting the columns of ``table`` (for README and reports)."""
    lines = ["| column | type | meaning |", "|---|---|---|"]
    lines += [f"| `{name}` | {dtype} | {doc} |" for name, (dtype, doc) in COLUMNS[table].items()]
    return "\n".join(lines)
