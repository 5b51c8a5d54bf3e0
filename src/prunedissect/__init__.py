"""prunedissect: lottery-ticket pruning and network dissection, as a library.

Modules (each usable from a notebook without Snakemake):

- ``prunedissect.data``: the generated concept world, the Broden reader, image transforms,
  dataset downloads.
- ``prunedissect.models``: a registry of architectures (CIFAR ResNet-20, torchvision ResNets,
  GoogLeNet).
- ``prunedissect.pruning``: masks, global magnitude pruning, compact mask files.
- ``prunedissect.training``: SGD training with rewinding, resumable checkpoints, evaluation.
- ``prunedissect.dissection``: activation extraction, per-unit quantile thresholds, unit x
  concept IoU.
- ``prunedissect.tables`` and ``prunedissect.plots``: tidy Parquet tables and the paper's figures.
- ``prunedissect.checkpoints``, ``prunedissect.torchfiles`` and ``prunedissect.verify``: atomic
  writes with SHA-256 sidecars, verified loading, resume points, checking a results tree.
- ``prunedissect.layer_table``: which modules of each architecture can be dissected (no torch).
"""

__version__ = "0.1.0"
