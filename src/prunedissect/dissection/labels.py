"""Naming units: each unit's best concept, its category and IoU, and whether it is interpretable.

A unit's label is the concept of highest IoU; ties go to the lowest label number, then to the
category listed first in the probe (concept index order, see :mod:`.segments`). A unit whose
best IoU is 0 (it never fires on any labelled pixel, e.g. a dead unit) gets no concept: its
``concept`` and ``category`` are missing. A unit is interpretable when its IoU exceeds
``iou_threshold`` strictly (0.05 in Frankle & Bau 2019, 0.04 in NetDissect).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .iou import ConceptTally


def iou_of(intersection: np.ndarray, union: np.ndarray) -> np.ndarray:
    """``intersection / union``, 0 where the union is empty, float64."""
    union = np.asarray(union).astype(np.float64)
    out = np.zeros_like(union)
    np.divide(intersection, union, out=out, where=union > 0)
    return out


def best_concepts(iou: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's (unit's) label, as the module docstring says: the concept index of highest
    IoU (first maximum, i.e. lowest index, on ties; -1 where the best IoU is 0) and that IoU."""
    best = np.argmax(iou, axis=-1)
    best_iou = np.take_along_axis(iou, best[..., None], axis=-1)[..., 0]
    return np.where(best_iou > 0, best, -1), best_iou


def label_units(
    tally: ConceptTally, thresholds: np.ndarray, *, iou_threshold: float
) -> pd.DataFrame:
    """The ``(unit, threshold, concept, category, iou, interpretable)`` table, one row per unit."""
    if not 0.0 < iou_threshold < 1.0:
        raise ValueError(f"iou_threshold must lie strictly between 0 and 1, got {iou_threshold}")
    thresholds = np.asarray(thresholds, dtype=np.float64)
    if thresholds.shape != (tally.n_units,):
        raise ValueError(
            f"expected one threshold per unit ({tally.n_units}), got shape {thresholds.shape}"
        )
    best, best_iou = best_concepts(tally.iou)
    named = best >= 0
    concept = tally.concepts["concept"].to_numpy(dtype=object)[best]
    category = tally.concepts["category"].to_numpy(dtype=object)[best]
    return pd.DataFrame(
        {
            "unit": np.arange(tally.n_units, dtype=np.int64),
            "threshold": thresholds,
            "concept": pd.array(np.where(named, concept, None), dtype="string"),
            "category": pd.array(np.where(named, category, None), dtype="string"),
            "iou": best_iou,
            "interpretable": best_iou > iou_threshold,
        }
    )
