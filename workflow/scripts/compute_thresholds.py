"""Rule compute_thresholds: per-unit top-quantile thresholds -> thresholds.parquet.

The device comes from the rule's resources: thresholds are exact on any device, so it is no
param (changing it reruns nothing).
"""

import numpy as np
import torch

from prunedissect.checkpoints import verify
from prunedissect.devices import resolve_device
from prunedissect.dissection import (
    compute_thresholds,
    load_probe_labels,
    thresholds_table,
)
from prunedissect.logs import log_to_file
from prunedissect.reproducibility import job_threads, kernel_report

sm = snakemake
log = log_to_file(sm.log[0], name="compute_thresholds")
params = sm.params
torch.set_num_threads(job_threads(sm.threads))
log.info(kernel_report())
size = None
if sm.input.labels:
    size = load_probe_labels(sm.input.labels).shape
verify(sm.input.activations)
activations = np.load(sm.input.activations, mmap_mode="r")
thresholds = compute_thresholds(
    activations,
    quantile=params.quantile,
    threshold_on=params.threshold_on,
    segmentation_size=size,
    device=resolve_device(sm.resources.device),
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
