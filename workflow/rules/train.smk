# Iterative magnitude pruning with lottery-ticket rewinding: one job per trial and level.
# Level 0 trains dense and records the rewind point; level n >= 1 prunes level n-1's trained
# weights, rewinds the survivors to level 0's rewind point and retrains (prunedissect.training).
# A killed level resumes from results/train/trial{trial}/level{level}/resume.pt when rerun.
# Params hold only what a level's result depends on: pruning.levels is absent (more levels
# reuse the finished ones) and level 0 ignores the pruning fraction and strategy.
# model.pt, mask.npz and rewind.pt each have a .sha256 sidecar (prunedissect.checkpoints);
# verified() (common.smk) checks a level's existing inputs against them while the DAG is built,
# so a corrupt file stops the run, named with its rebuild command, before any output is deleted.
# Training also waits for check_probe (a broken probe must not cost a training run); ancient():
# a re-checked probe never retrains anything.
# Resources: prunedissect.resources (threads: one per loader worker plus one; runtime: the
# level's estimated time with slack; a GPU unless device: cpu).


rule train_dense:
    input:
        images=train_images(),
        probe_check=ancient(PROBE_CHECK),
    output:
        model="results/train/trial{trial}/level0/model.pt",
        mask="results/train/trial{trial}/level0/mask.npz",
        metrics="results/train/trial{trial}/level0/metrics.json",
        rewind="results/train/trial{trial}/level0/rewind.pt",
        model_sha256="results/train/trial{trial}/level0/model.pt.sha256",
        mask_sha256="results/train/trial{trial}/level0/mask.npz.sha256",
        rewind_sha256="results/train/trial{trial}/level0/rewind.pt.sha256",
    log:
        "logs/train_dense/trial{trial}.log",
    benchmark:
        "results/benchmarks/train_dense/trial{trial}.tsv"
    # the pruning chains are the critical path: never let analysis jobs hold them up
    priority: 10
    conda:
        "../../envs/prunedissect.yaml"
    threads: jobs.threads(config, "train_dense")
    resources:
        gpu=jobs.gpu(config, "train_dense"),
        mem_mb=jobs.mem_mb(config, "train_dense"),
        runtime=jobs.runtime(config, "train_dense"),
    params:
        trial=lambda wildcards: int(wildcards.trial),
        level=0,
        seed=lambda wildcards: config["seed"] + int(wildcards.trial),
        model={"arch": config["model"]["arch"], **model_kwargs(config["model"])},
        data={key: config["dataset"][key] for key in ("image_size", "mean", "std")},
        training=config["training"],
        pruning={key: config["pruning"][key] for key in ("rewind", "exclude")},
        # the device and the pinned kernels shape the trained bytes (README: Reproducibility)
        device=config["device"],
        cpu=config["cpu"],
    script:
        "../scripts/train_level.py"


rule train_pruned:
    input:
        # level n-1's trained weights and mask (level 0 is its own rule)
        model=verified(previous_level("model")),
        mask=verified(previous_level("mask")),
        rewind=verified(rules.train_dense.output.rewind),
        images=train_images(),
        probe_check=ancient(PROBE_CHECK),
    output:
        model="results/train/trial{trial}/level{level}/model.pt",
        mask="results/train/trial{trial}/level{level}/mask.npz",
        metrics="results/train/trial{trial}/level{level}/metrics.json",
        model_sha256="results/train/trial{trial}/level{level}/model.pt.sha256",
        mask_sha256="results/train/trial{trial}/level{level}/mask.npz.sha256",
    log:
        "logs/train_pruned/trial{trial}_level{level}.log",
    benchmark:
        "results/benchmarks/train_pruned/trial{trial}_level{level}.tsv"
    wildcard_constraints:
        level="[1-9][0-9]*",
    # the pruning chains are the critical path: never let analysis jobs hold them up
    priority: 10
    conda:
        "../../envs/prunedissect.yaml"
    threads: jobs.threads(config, "train_pruned")
    resources:
        gpu=jobs.gpu(config, "train_pruned"),
        mem_mb=jobs.mem_mb(config, "train_pruned"),
        runtime=jobs.runtime(config, "train_pruned"),
    params:
        trial=lambda wildcards: int(wildcards.trial),
        level=lambda wildcards: int(wildcards.level),
        seed=lambda wildcards: config["seed"] + int(wildcards.trial),
        model={"arch": config["model"]["arch"], **model_kwargs(config["model"])},
        data={key: config["dataset"][key] for key in ("image_size", "mean", "std")},
        training=config["training"],
        pruning={
            key: config["pruning"][key]
            for key in ("fraction", "strategy", "rewind", "finetune", "exclude")
        },
        device=config["device"],
        cpu=config["cpu"],
    script:
        "../scripts/train_level.py"
