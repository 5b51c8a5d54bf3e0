"""The dissection steps chained: probe loader, thresholds + IoU + labels of one layer, and a
whole-model run that writes the same files as the workflow (used by the ``prunedissect`` CLI).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from prunedissect.data.broden import Broden
from prunedissect.data.transforms import make_probe_transform

from .bootstrap import BootstrapAccumulator, image_weights, replicate_table, unit_stability
from .features import extract_activations
from .iou import DEFAULT_MAX_ELEMENTS, tally_iou, tally_table
from .labels import best_concepts, label_units
from .quantiles import thresholds_table, unit_thresholds
from .rowfiles import RowReader
from .segments import ProbeLabels, encode_probe_labels


class BrodenImages(Dataset):
    """The probe images of a :class:`Broden` in index order, as ``(transform(image), index)``."""

    def __init__(self, broden: Broden, transform) -> None:
        self.broden = broden
        self.transform = transform

    def __len__(self) -> int:
        return len(self.broden)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.transform(self.broden.load_image(i)), i


@dataclass(frozen=True)
class DissectionSettings:
    """The knobs of one dissection (the ``dissection`` config keys; no defaults of its own:
    the workflow's schema and the CLI's options give them, NetDissect's except ``iou_threshold``,
    which is Frankle & Bau's 0.05)."""

    quantile: float
    threshold_on: str  # "raw" or "upsampled"
    iou_threshold: float
    category_restricted: bool
    batch_size: int
    bootstrap_replicates: int
    bootstrap_seed: int


@dataclass(frozen=True)
class LayerResult:
    """The four tables of one dissected layer (see the path contract): ``units`` carries each
    unit's bootstrap stability, ``replicates`` the units interpretable in each replicate."""

    thresholds: pd.DataFrame
    tally: pd.DataFrame
    units: pd.DataFrame
    replicates: pd.DataFrame

    def write(self, directory: str | os.PathLike) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        for name in ("thresholds", "tally", "units", "replicates"):
            getattr(self, name).to_parquet(directory / f"{name}.parquet", index=False)


def probe_loader(
    broden: Broden,
    *,
    image_size: int | None,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int = 128,
    num_workers: int = 0,
) -> DataLoader:
    """Probe images in index order, preprocessed like the training images (whole, no crop)."""
    transform = make_probe_transform(image_size=image_size, mean=mean, std=std)
    return DataLoader(
        BrodenImages(broden, transform),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=torch.cuda.is_available(),
    )


def compute_thresholds(
    activations: np.ndarray,
    *,
    quantile: float,
    threshold_on: str,
    segmentation_size: tuple[int, int] | None,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Per-unit thresholds on ``raw`` maps, or on maps ``upsampled`` to ``segmentation_size``."""
    if threshold_on not in ("raw", "upsampled"):
        raise ValueError(f"threshold_on must be 'raw' or 'upsampled', got {threshold_on!r}")
    upsample_to = None
    if threshold_on == "upsampled":
        if segmentation_size is None:
            raise ValueError("threshold_on='upsampled' needs the probe's segmentation size")
        upsample_to = segmentation_size
    return unit_thresholds(activations, quantile=quantile, upsample_to=upsample_to, device=device)


def alive_units(activations: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per unit: True when its activation is nonzero somewhere on the probe set.

    A unit whose threshold is nonzero is alive (the threshold is one of its values); the
    others are read whole. A channel removed by structured pruning outputs exactly zero, so it
    is dead; so is a unit whose ReLU never fires on any probe image.
    """
    alive = np.asarray(thresholds) != 0
    dead = np.flatnonzero(~alive)
    if dead.size == 0:
        return alive
    rows = RowReader(activations)  # one streamed pass for every candidate, not one per unit
    step = max(1, DEFAULT_MAX_ELEMENTS // int(np.prod(activations.shape[1:])))
    for start in range(0, len(rows), step):
        chunk = rows.read(start, min(len(rows), start + step))
        alive[dead] |= np.any(chunk[:, dead] != 0, axis=(0, *range(2, chunk.ndim)))
    return alive


def dissect_activations(
    activations: np.ndarray,
    labels: ProbeLabels,
    *,
    settings: DissectionSettings,
    device: torch.device | str = "cpu",
    logger: logging.Logger | None = None,
) -> LayerResult:
    """Thresholds, the unit x concept tally and unit labels of one layer's activations, with
    the probe-image bootstrap of the labels (:mod:`.bootstrap`) accumulated in the same pass."""
    thresholds = compute_thresholds(
        activations,
        quantile=settings.quantile,
        threshold_on=settings.threshold_on,
        segmentation_size=labels.shape,
        device=device,
    )
    bootstrap = BootstrapAccumulator(
        image_weights(
            len(labels), replicates=settings.bootstrap_replicates, seed=settings.bootstrap_seed
        ),
        n_units=activations.shape[1],
        concept_category=labels.concept_category,
        n_categories=len(labels.categories),
        device=device,
    )
    tally = tally_iou(
        activations,
        thresholds,
        labels,
        category_restricted=settings.category_restricted,
        device=device,
        batch_size=settings.batch_size,
        bootstrap=bootstrap,
        logger=logger,
    )
    units = label_units(tally, thresholds, iou_threshold=settings.iou_threshold)
    concept, iou, interpretable = bootstrap.labels(
        category_restricted=settings.category_restricted, iou_threshold=settings.iou_threshold
    )
    full, _ = best_concepts(tally.iou)  # the concept index of each unit's label
    stability = unit_stability(concept, interpretable, full)
    units = units.merge(stability, on="unit", validate="one_to_one")
    units["alive"] = alive_units(activations, thresholds)
    return LayerResult(
        thresholds=thresholds_table(thresholds),
        tally=tally_table(tally),
        units=units,
        replicates=replicate_table(concept, iou, interpretable, labels.concepts),
    )


def dissect_model(
    model: nn.Module,
    broden: Broden,
    *,
    layers: Sequence[str],
    out_dir: str | os.PathLike,
    image_size: int | None,
    mean: Sequence[float],
    std: Sequence[float],
    settings: DissectionSettings,
    device: torch.device | str = "cpu",
    num_workers: int = 0,
    logger: logging.Logger | None = None,
) -> dict[str, LayerResult]:
    """Dissect ``layers`` of ``model`` on ``broden``; write ``out_dir/<layer>/...``.

    Per layer: ``activations.npy``, ``thresholds.parquet``, ``tally.parquet``,
    ``units.parquet`` (the workflow's files); the encoded labels go to ``out_dir/probe_labels``.
    """
    logger = logger or logging.getLogger(__name__)
    out_dir = Path(out_dir)
    paths = {layer: out_dir / layer / "activations.npy" for layer in layers}
    for path in paths.values():
        path.parent.mkdir(parents=True, exist_ok=True)
    loader = probe_loader(
        broden,
        image_size=image_size,
        mean=mean,
        std=std,
        batch_size=settings.batch_size,
        num_workers=num_workers,
    )
    extract_activations(
        model, loader, n_images=len(broden), outputs=paths, device=device, logger=logger
    )
    labels = encode_probe_labels(broden, directory=out_dir / "probe_labels", logger=logger)
    results = {}
    for layer, path in paths.items():
        activations = np.load(path, mmap_mode="r")
        result = dissect_activations(
            activations, labels, settings=settings, device=device, logger=logger
        )
        result.write(out_dir / layer)
        n_interpretable = int(result.units["interpretable"].sum())
        logger.info(
            "%s: %d of %d units interpretable (IoU > %g)",
            layer,
            n_interpretable,
            len(result.units),
            settings.iou_threshold,
        )
        results[layer] = result
    return results
