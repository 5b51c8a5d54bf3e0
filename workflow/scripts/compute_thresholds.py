"""Rule compute_thresholds: per-unit top-quantile thresholds -> thresholds.parquet."""


import numpy as np
import torch

from prunedissect.checkpoints import verify
from prunedissect.logs import log_to_file
from prunedissect.reproducibility import job_threads, kernel_report
from prunedissect.devices import resolve_device
from prunedissect.dissection import (
    DissectionSettings,
    compute_thresholds,
    load_probe_labels,
    thresholds_table,
)

log = log_to_file(snakemake.log[0], name="compute_thresholds")  # noqa: F821

params = snakemake.params  # noqa: F821
torch.set_num_threads(job_threads(snakemake.threads))  # noqa: F821
log.info(kernel_report())
settings = DissectionSettings(quantile=params.quantile, threshold_on=params.threshold_on)
size = None
if snakemake.input.labels:  # noqa: F821
    size = load_probe_labels(snakemake.input.labels).shape  # noqa: F821
verify(snakemake.input.activations)  # noqa: F821
activations = np.load(snakemake.input.activations, mmap_mode="r")  # noqa: F821
thresholds = compute_thresholds(
    activations,
    settings=settings,
    segmentation_size=size,
    device=resolve_device(params.device),
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
