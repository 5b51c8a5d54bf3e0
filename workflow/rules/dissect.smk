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
    threads: 4
    resources:
        mem_mb=sized(2000, 8000),
        runtime=sized(30, 240),
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
        mem_mb=sized(4000, 16000),
        runtime=sized(30, 240),
    script:
        "../scripts/encode_probe_labels.py"


rule extract_activations:
    input:
        model=verified("results/train/trial{trial}/level{level}/model.pt"),
        probe=probe_dir(),
        probe_check=PROBE_CHECK,
    output:
        activations=activations_output(
            "results/dissect/trial{trial}/level{level}/{layer}/activations.npy"
        ),
        activations_sha256=activations_output(
            "results/dissect/trial{trial}/level{level}/{layer}/activations.npy.sha256"
        ),
    log:
        "logs/extract_activations/trial{trial}_level{level}_{layer}.log",
    benchmark:
        "results/benchmarks/extract_activations/trial{trial}_level{level}_{layer}.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    threads: 4
    resources:
        gpu=gpu_count,
        mem_mb=sized(4000, 32000),
        runtime=sized(30, 180),
    params:
        arch=config["model"]["arch"],
        model_kwargs=model_kwargs(),
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
        thresholds="results/dissect/trial{trial}/level{level}/{layer}/thresholds.parquet",
    log:
        "logs/compute_thresholds/trial{trial}_level{level}_{layer}.log",
    benchmark:
        "results/benchmarks/compute_thresholds/trial{trial}_level{level}_{layer}.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    resources:
        mem_mb=sized(4000, 32000),
        runtime=sized(30, 120),
    params:
        quantile=config["dissection"]["quantile"],
        threshold_on=config["dissection"]["threshold_on"],
        device=config["device"],
    script:
        "../scripts/compute_thresholds.py"


rule tally_iou:
    input:
        activations=verified(rules.extract_activations.output.activations),
        thresholds=rules.compute_thresholds.output.thresholds,
        labels=rules.encode_probe_labels.output.labels,
    output:
        tally="results/dissect/trial{trial}/level{level}/{layer}/tally.parquet",
        units="results/dissect/trial{trial}/level{level}/{layer}/units.parquet",
    log:
        "logs/tally_iou/trial{trial}_level{level}_{layer}.log",
    benchmark:
        "results/benchmarks/tally_iou/trial{trial}_level{level}_{layer}.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    resources:
        mem_mb=sized(4000, 32000),
        runtime=sized(60, 24 * 60),
    params:
        category_restricted=config["dissection"]["category_restricted"],
        iou_threshold=config["dissection"]["iou_threshold"],
        batch_size=config["dissection"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/tally_iou.py"
