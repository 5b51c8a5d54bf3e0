# Network dissection: probe labels (once per probe set) -> activations of every dissected layer
# (one forward pass per method, trial and level; the shared level 0 once, under "dense") ->
# per-unit thresholds, the unit x concept IoU tally and unit labels (one job per checkpoint and
# layer). Thresholds and the tally are recomputed (new
# quantile, counting mode, IoU threshold) without extracting activations again; they share a job
# because each costs less than starting one.


rule check_probe:
    input:
        probe=probe_dir(),
    output:
        report=PROBE_CHECK,
    log:
        "logs/check_probe/probe_check.log",
    benchmark:
        "results/benchmarks/check_probe/probe_check.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    threads: jobs.threads(config, "check_probe")
    resources:
        mem_mb=jobs.mem_mb(config, "check_probe"),
        runtime=jobs.runtime(config, "check_probe"),
    script:
        "../scripts/check_probe.py"


rule encode_probe_labels:
    input:
        probe=probe_dir(),
        probe_check=PROBE_CHECK,
    output:
        labels=directory("results/dissect/probe_labels"),
    log:
        "logs/encode_probe_labels/probe_labels.log",
    benchmark:
        "results/benchmarks/encode_probe_labels/probe_labels.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    resources:
        mem_mb=jobs.mem_mb(config, "encode_probe_labels"),
        runtime=jobs.runtime(config, "encode_probe_labels"),
    script:
        "../scripts/encode_probe_labels.py"


rule extract_activations:
    input:
        model=verified(f"{TRAINED}/model.pt"),
        probe=probe_dir(),
        probe_check=PROBE_CHECK,
    output:
        # one forward pass per checkpoint writes every dissected layer's maps
        activations=[
            activations_output(layer_pattern("activations.npy", layer))
            for layer in layers()
        ],
        checksums=[
            activations_output(layer_pattern("activations.npy.sha256", layer))
            for layer in layers()
        ],
    log:
        "logs/extract_activations/{method}_trial{trial}_level{level}.log",
    benchmark:
        "results/benchmarks/extract_activations/{method}_trial{trial}_level{level}.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    threads: jobs.threads(config, "extract_activations")
    resources:
        gpu=jobs.gpu(config, "extract_activations"),
        mem_mb=jobs.mem_mb(config, "extract_activations"),
        runtime=jobs.runtime(config, "extract_activations"),
    params:
        layers=layers(),
        arch=config["model"]["arch"],
        model_kwargs=model_kwargs(config["model"]),
        # a reduced arm's pruned levels are narrower networks (widths from the checkpoint)
        reduced=lambda wildcards: is_reduced(wildcards.method, wildcards.level),
        image_size=config["dataset"]["image_size"],
        mean=config["dataset"]["mean"],
        std=config["dataset"]["std"],
        batch_size=config["dissection"]["batch_size"],
        device=config["device"],
        cpu=config["cpu"],
    script:
        "../scripts/extract_activations.py"


rule tally_iou:
    input:
        activations=verified(f"{DISSECTED}/activations.npy"),
        labels=rules.encode_probe_labels.output.labels,
    output:
        thresholds=f"{DISSECTED}/thresholds.parquet",
        tally=f"{DISSECTED}/tally.parquet",
        units=f"{DISSECTED}/units.parquet",
        replicates=f"{DISSECTED}/replicates.parquet",
    log:
        "logs/tally_iou/{method}_trial{trial}_level{level}_{layer}.log",
    benchmark:
        "results/benchmarks/tally_iou/{method}_trial{trial}_level{level}_{layer}.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    resources:
        mem_mb=jobs.mem_mb(config, "tally_iou"),
        runtime=jobs.runtime(config, "tally_iou"),
        # how the job runs, not what it computes (exact quantiles; integer counts, exact in any
        # batch size and on any device): not params, so changing them reruns nothing
        device=config["device"],
        batch_size=config["dissection"]["batch_size"],
    params:
        quantile=config["dissection"]["quantile"],
        threshold_on=config["dissection"]["threshold_on"],
        category_restricted=config["dissection"]["category_restricted"],
        iou_threshold=config["dissection"]["iou_threshold"],
        bootstrap_replicates=config["bootstrap"]["replicates"],
        bootstrap_seed=config["bootstrap"]["seed"],
    script:
        "../scripts/tally_iou.py"


# One target rule per arm, `dissect_<method>`: every pruned level of that arm dissected (level 0
# is the shared dense network, not the arm's own). README, "Partial reruns":
#   snakemake --cores all dissect_oneshot --forcerun extract_activations
# rebuilds that arm's analysis alone, no training, no other arm.
for _method in method_names():

    rule:
        name:
            f"dissect_{_method}"
        input:
            dissection_files(
                "units.parquet",
                dissection_keys(
                    trial_ids(),
                    [lv for lv in dissected_levels() if lv != 0],
                    [_method],
                ),
            ),
