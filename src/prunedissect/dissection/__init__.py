"""Network dissection (Bau et al., CVPR 2017), exact and vectorised.

The steps map one-to-one onto workflow rules:

1. :func:`extract_activations` (``features``): layer outputs for every probe image -> float16
   ``(N, K, h, w)`` ``.npy``.
2. :func:`unit_thresholds` (``quantiles``): per-unit ``T_k`` with ``P(a_k > T_k) = quantile``,
   numpy's linear quantile, exact.
3. :func:`encode_probe_labels` (``segments``): the probe's segmentations as concept codes, once
   per probe set.
4. :func:`tally_iou` (``iou``): unit x concept intersections and unions over the probe set,
   NetDissect's category-restricted counting by default.
5. :func:`label_units` (``labels``): best concept per unit, interpretable if IoU > threshold.

:func:`dissect_model` runs everything for a model and a Broden directory (the CLI's engine).
"""

from .features import (
    build_model,
    capture_outputs,
    extract_activations,
    infer_num_classes,
    load_state_dict,
)
from .iou import ConceptTally, tally_iou, tally_table
from .labels import label_units
from .pipeline import (
    DissectionSettings,
    LayerResult,
    compute_thresholds,
    dissect_activations,
    dissect_model,
    probe_loader,
)
from .quantiles import QuantilePosition, quantile_position, thresholds_table, unit_thresholds
from .segments import ProbeLabels, encode_probe_labels, load_probe_labels, save_probe_labels
from .upsample import upsample

__all__ = [
    "ConceptTally",
    "DissectionSettings",
    "LayerResult",
    "ProbeLabels",
    "QuantilePosition",
    "build_model",
    "capture_outputs",
    "compute_thresholds",
    "dissect_activations",
    "dissect_model",
    "encode_probe_labels",
    "extract_activations",
    "infer_num_classes",
    "label_units",
    "load_probe_labels",
    "load_state_dict",
    "probe_loader",
    "quantile_position",
    "save_probe_labels",
    "tally_iou",
    "tally_table",
    "thresholds_table",
    "unit_thresholds",
    "upsample",
]
