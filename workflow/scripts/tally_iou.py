"""Rule tally_iou: per-unit top-quantile thresholds, then the unit x concept IoU over the probe
set -> thresholds.parquet, tally.parquet and units.parquet."""


import numpy as np
import torch

from prunedissect.checkpoints import verify
from prunedissect.devices import resolve_device
from prunedissect.dissection import (
    DissectionSettings,
    compute_thresholds,
    label_units,
    load_probe_labels,
    tally_iou,
    tally_table,
    thresholds_table,
)
from prunedissect.logs import log_to_file
from prunedissect.reproducibility import job_threads, kernel_report

log = log_to_file(snakemake.log[0], name="tally_iou")  # noqa: F821

params = snakemake.params  # noqa: F821
torch.set_num_threads(job_threads(snakemake.threads))  # noqa: F821
log.info(kernel_report())
device = resolve_device(params.device)
verify(snakemake.input.activations)  # noqa: F821
activations = np.load(snakemake.input.activations, mmap_mode="r")  # noqa: F821
labels = load_probe_labels(snakemake.input.labels)  # noqa: F821

settings = DissectionSettings(quantile=params.quantile, threshold_on=params.threshold_on)
thresholds = compute_thresholds(
    activations, settings=settings, segmentation_size=labels.shape, device=device
)
thresholds_table(thresholds).to_parquet(snakemake.output.thresholds, index=False)  # noqa: F821
log.info(
    "%d units, quantile %g on %s maps: thresholds from %.4g to %.4g",
    len(thresholds),
    params.quantile,
    params.threshold_on,
    thresholds.min(),
    thresholds.max(),
)

tally = tally_iou(
    activations,
    thresholds,
    labels,
    category_restricted=params.category_restricted,
    device=device,
    batch_size=params.batch_size,
    logger=log,
)
units = label_units(tally, thresholds, iou_threshold=params.iou_threshold)
tally_table(tally).to_parquet(snakemake.output.tally, index=False)  # noqa: F821
units.to_parquet(snakemake.output.units, index=False)  # noqa: F821
interpretable = units[units["interpretable"]]
log.info(
    "%d of %d units interpretable (IoU > %g), %d distinct concepts",
    len(interpretable),
    len(units),
    params.iou_threshold,
    interpretable["concept"].nunique(),
)
