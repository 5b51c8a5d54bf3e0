# Network dissection: probe labels (once per probe set) -> activations of every dissected layer
# (one forward pass per trial and level) -> per-unit thresholds, the unit x concept IoU tally and
# unit labels (one job per trial, level and layer). Thresholds and the tally are recomputed (new
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
        # one forward pass per checkpoint writes every dissected layer's maps
        activations=[
            activations_output(
                f"results/dissect/trial{{trial}}/level{{level}}/{layer}/activations.npy"
            )
            for layer in layers()
        ],
        checksums=[
            activations_output(
                f"results/dissect/trial{{trial}}/level{{level}}/{layer}/activations.npy.sha256"
            )
            for layer in layers()
        ],
    log:
        "logs/extract_activations/trial{trial}_level{level}.log",
    benchmark:
        "results/benchmarks/extract_activations/trial{trial}_level{level}.tsv"
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
        layers=layers(),
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
        activations=verified(
            "results/dissect/trial{trial}/level{level}/{layer}/activations.npy"
        ),
        labels=rules.encode_probe_labels.output.labels,
    output:
        thresholds="results/dissect/trial{trial}/level{level}/{layer}/thresholds.parquet",
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
        quantile=config["dissection"]["quantile"],
        threshold_on=config["dissection"]["threshold_on"],
        category_restricted=config["dissection"]["category_restricted"],
        iou_threshold=config["dissection"]["iou_threshold"],
        batch_size=config["dissection"]["batch_size"],
        device=config["device"],
    script:
        "../scripts/tally_iou.py"
