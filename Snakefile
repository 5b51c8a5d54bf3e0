# prunedissect: what does pruning do to the interpretability of a neural network?
# Frankle & Bau (2019), "Dissecting Pruned Neural Networks", as a reproducible workflow.
#
# DAG: generate or download data -> train level 0 -> prune + rewind + retrain levels 1..L
# (per trial) -> extract activations -> per-unit thresholds -> unit x concept IoU -> tables ->
# figures and the per-unit report. See README.md; every config key is in config/README.md.

from snakemake.utils import min_version

min_version("9.20")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/dissect.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/speed.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
