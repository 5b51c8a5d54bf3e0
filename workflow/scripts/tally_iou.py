"""Rule tally_iou: per-unit top-quantile thresholds, then the unit x concept IoU over the probe
set, with its probe-image bootstrap -> thresholds.parquet, tally.parquet, units.parquet and
replicates.parquet (prunedissect.dissection's dissect_activations).

The device and batch size come from the rule's resources: thresholds are exact quantiles and the
tally counts integers, the same on any device and in any batch size, so they are no params
(changing them reruns nothing).
"""

import numpy as np
import torch

from prunedissect.checkpoints import verify
from prunedissect.devices import resolve_device
from prunedissect.dissection import DissectionSettings, dissect_activations, load_probe_labels
from prunedissect.logs import log_to_file
from prunedissect.reproducibility import job_threads, kernel_report

sm = snakemake
log = log_to_file(sm.log[0], name="tally_iou")
params = sm.params
torch.set_num_threads(job_threads(sm.threads))
log.info(kernel_report())
verify(sm.input.activations)
settings = DissectionSettings(
    quantile=params.quantile,
    threshold_on=params.threshold_on,
    iou_threshold=params.iou_threshold,
    category_restricted=params.category_restricted,
    batch_size=sm.resources.batch_size,
    bootstrap_replicates=params.bootstrap_replicates,
    bootstrap_seed=params.bootstrap_seed,
)
result = dissect_activations(
    np.load(sm.input.activations, mmap_mode="r"),
    load_probe_labels(sm.input.labels),
    settings=settings,
    device=resolve_device(sm.resources.device),
    logger=log,
)
result.thresholds.to_parquet(sm.output.thresholds, index=False)
result.tally.to_parquet(sm.output.tally, index=False)
result.units.to_parquet(sm.output.units, index=False)
result.replicates.to_parquet(sm.output.replicates, index=False)
thresholds = result.thresholds["threshold"]
interpretable = result.units[result.units["interpretable"]]
log.info(
    "%d units, quantile %g on %s maps: thresholds from %.4g to %.4g",
    len(thresholds),
    params.quantile,
    params.threshold_on,
    thresholds.min(),
    thresholds.max(),
)
log.info(
    "%d of %d units interpretable (IoU > %g), %d distinct concepts",
    len(interpretable),
    len(result.units),
    params.iou_threshold,
    interpretable["concept"].nunique(),
)
