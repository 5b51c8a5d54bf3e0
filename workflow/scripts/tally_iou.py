"""Rule tally_iou: unit x concept IoU over the probe set -> tally.parquet and units.parquet."""


import numpy as np
import pandas as pd
import torch

from prunedissect.checkpoints import verify
from prunedissect.logs import log_to_file
from prunedissect.reproducibility import job_threads, kernel_report
from prunedissect.devices import resolve_device
from prunedissect.dissection import label_units, load_probe_labels, tally_iou, tally_table

log = log_to_file(snakemake.log[0], name="tally_iou")  # noqa: F821

params = snakemake.params  # noqa: F821
torch.set_num_threads(job_threads(snakemake.threads))  # noqa: F821
log.info(kernel_report())
verify(snakemake.input.activations)  # noqa: F821
activations = np.load(snakemake.input.activations, mmap_mode="r")  # noqa: F821
table = pd.read_parquet(snakemake.input.thresholds)  # noqa: F821
thresholds = table.sort_values("unit")["threshold"].to_numpy()
tally = tally_iou(
    activations,
    thresholds,
    load_probe_labels(snakemake.input.labels),  # noqa: F821
    category_restricted=params.category_restricted,
    device=resolve_device(params.device),
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
