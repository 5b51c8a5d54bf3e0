# Network dissection: probe labels (once per probe set) -> activations -> per-unit thresholds
# -> unit x concept IoU tally and unit labels, per trial, level and layer. Each step is its own
# rule, so thresholds or the tally can be recomputed (new quantile, counting mode, IoU threshold)
# without extracting activations again.


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
        model=verified("results/train/trial{trial}/level{level}/model.pt"),
        probe=probe_dir(),
        probe_check=PROBE_CHECK,
    output:
        activations=activations_output(f"{DISSECTED}/activations.npy"),
        activations_sha256=activations_output(f"{DISSECTED}/activations.npy.sha256"),
    log:
        "logs/extract_activations/trial{trial}_level{level}_{layer}.log",
    benchmark:
        "results/benchmarks/extract_activations/trial{trial}_level{level}_{layer}.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    threads: jobs.threads(config, "extract_activations")
    resources:
        gpu=jobs.gpu(config, "extract_activations"),
        mem_mb=jobs.mem_mb(config, "extract_activations"),
        runtime=jobs.runtime(config, "extract_activations"),
    params:
        layer=lambda wildcards: wildcards.layer,
        arch=config["model"]["arch"],
        model_kwargs=model_kwargs(config["model"]),
        image_size=config["dataset"]["image_size"],
        mean=config["dataset"]["mean"],
        std=config["dataset"]["std"],
        batch_size=config["dissection"]["batch_size"],
        device=config["device"],
        cpu=config["cpu"],
    script:
        "../scripts/extract_activations.py"


rule compute_thresholds:
    input:
        activations=verified(rules.extract_activations.output.activations),
        # thresholds on upsampled maps need the segmentation size, read from the probe labels
        labels=(
            rules.encode_probe_labels.output.labels
            if config["dissection"]["threshold_on"] == "upsampled"
            else []
        ),
    output:
        thresholds=f"{DISSECTED}/thresholds.parquet",
    log:
        "logs/compute_thresholds/trial{trial}_level{level}_{layer}.log",
    benchmark:
        "results/benchmarks/compute_thresholds/trial{trial}_level{level}_{layer}.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    resources:
        mem_mb=jobs.mem_mb(config, "compute_thresholds"),
        runtime=jobs.runtime(config, "compute_thresholds"),
        # how the job runs, not what it computes (exact on any device): not a param, so changing
        # it reruns nothing
        device=config["device"],
    params:
        quantile=config["dissection"]["quantile"],
        threshold_on=config["dissection"]["threshold_on"],
    script:
        "../scripts/compute_thresholds.py"


rule tally_iou:
    input:
        activations=verified(rules.extract_activations.output.activations),
        thresholds=rules.compute_thresholds.output.thresholds,
        labels=rules.encode_probe_labels.output.labels,
    output:
        tally=f"{DISSECTED}/tally.parquet",
        units=f"{DISSECTED}/units.parquet",
    log:
        "logs/tally_iou/trial{trial}_level{level}_{layer}.log",
    benchmark:
        "results/benchmarks/tally_iou/trial{trial}_level{level}_{layer}.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    resources:
        mem_mb=jobs.mem_mb(config, "tally_iou"),
        runtime=jobs.runtime(config, "tally_iou"),
        # how the job runs, not what it computes (integer counts, exact in any batch size and
        # on any device): not params, so changing them reruns nothing
        device=config["device"],
        batch_size=config["dissection"]["batch_size"],
    params:
        category_restricted=config["dissection"]["category_restricted"],
        iou_threshold=config["dissection"]["iou_threshold"],
    script:
        "../scripts/tally_iou.py"
