"""Rule tally_iou: unit x concept IoU over the probe set -> tally.parquet and units.parquet.

The device and batch size come from the rule's resources: the tally counts integers, the same
on any device and in any batch size, so they are no params (changing them reruns nothing).
"""

import numpy as np
import pandas as pd
import torch

from prunedissect.checkpoints import verify
from prunedissect.devices import resolve_device
from prunedissect.dissection import label_units, load_probe_labels, tally_iou, tally_table
from prunedissect.logs import log_to_file
from prunedissect.reproducibility import job_threads, kernel_report

sm = snakemake
log = log_to_file(sm.log[0], name="tally_iou")
params = sm.params
torch.set_num_threads(job_threads(sm.threads))
log.info(kernel_report())
verify(sm.input.activations)
activations = np.load(sm.input.activations, mmap_mode="r")
table = pd.read_parquet(sm.input.thresholds)
thresholds = table.sort_values("unit")["threshold"].to_numpy()
tally = tally_iou(
    activations,
    thresholds,
    load_probe_labels(sm.input.labels),
    category_restricted=params.category_restricted,
    device=resolve_device(sm.resources.device),
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
