"""Rule tally_iou: per-unit top-quantile thresholds, then the unit x concept IoU over the probe
set -> thresholds.parquet, tally.parquet and units.parquet.

The device and batch size come from the rule's resources: thresholds are exact quantiles and the
tally counts integers, the same on any device and in any batch size, so they are no params
(changing them reruns nothing).
"""

import numpy as np
import torch

from prunedissect.checkpoints import verify
from prunedissect.devices import resolve_device
from prunedissect.dissection import (
    compute_thresholds,
    label_units,
    load_probe_labels,
    tally_iou,
    tally_table,
    thresholds_table,
)
from prunedissect.logs import log_to_file
from prunedissect.reproducibility import job_threads, kernel_report

sm = snakemake
log = log_to_file(sm.log[0], name="tally_iou")
params = sm.params
torch.set_num_threads(job_threads(sm.threads))
log.info(kernel_report())
device = resolve_device(sm.resources.device)
verify(sm.input.activations)
activations = np.load(sm.input.activations, mmap_mode="r")
labels = load_probe_labels(sm.input.labels)

thresholds = compute_thresholds(
    activations,
    quantile=params.quantile,
    threshold_on=params.threshold_on,
    segmentation_size=labels.shape,
    device=device,
)
thresholds_table(thresholds).to_parquet(sm.output.thresholds, index=False)
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
    batch_size=sm.resources.batch_size,
    logger=log,
)
units = label_units(tally, thresholds, iou_threshold=params.iou_threshold)
tally_table(tally).to_parquet(sm.output.tally, index=False)
units.to_parquet(sm.output.units, index=False)
interpretable = units[units["interpretable"]]
log.info(
    "%d of %d units interpretable (IoU > %g), %d distinct concepts",
    len(interpretable),
    len(units),
    params.iou_threshold,
    interpretable["concept"].nunique(),
)
