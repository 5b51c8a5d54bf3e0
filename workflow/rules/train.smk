# Training: one job per method, trial and level. Level 0 of a trial trains dense once, shared
# by every arm (results/train/dense/trial{trial}/level0), and records the rewind point; level
# n >= 1 of an arm chooses its mask as its kind says (prunedissect.methods: magnitude pruning of
# its own level n-1 or of the dense network, a copied or a random mask) and retrains
# (prunedissect.training). Chained kinds (lottery, finetune) run level after level; oneshot,
# reinit and random levels are independent jobs (reinit and layer-wise random wait for their
# source arm's mask of the same level).
# A killed level resumes from its directory's resume.pt when rerun.
# Params hold only what a level's result depends on: pruning.levels is absent (more levels
# reuse the finished ones), level 0 ignores the methods, and each arm's params hold only its own
# kind and options (pruning_params), so adding or changing an arm reruns no other.
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
        model=f"{DENSE_TRAINED}/model.pt",
        mask=f"{DENSE_TRAINED}/mask.npz",
        metrics=f"{DENSE_TRAINED}/metrics.json",
        rewind=f"{DENSE_TRAINED}/rewind.pt",
        model_sha256=f"{DENSE_TRAINED}/model.pt.sha256",
        mask_sha256=f"{DENSE_TRAINED}/mask.npz.sha256",
        rewind_sha256=f"{DENSE_TRAINED}/rewind.pt.sha256",
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


# The untrained floor: each trial's level-0 initialisation, never trained (Bau et al. 2017's
# control), stored as a checkpoint of the reserved method "init" and dissected like any other.
rule init_network:
    input:
        images=train_images(),
    output:
        model=f"{INIT_TRAINED}/model.pt",
        model_sha256=f"{INIT_TRAINED}/model.pt.sha256",
    log:
        "logs/init_network/trial{trial}.log",
    benchmark:
        "results/benchmarks/init_network/trial{trial}.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    resources:
        mem_mb=jobs.mem_mb(config, "init_network"),
        runtime=jobs.runtime(config, "init_network"),
    params:
        seed=lambda wildcards: config["seed"] + int(wildcards.trial),
        model={"arch": config["model"]["arch"], **model_kwargs(config["model"])},
    script:
        "../scripts/init_network.py"


rule train_pruned:
    input:
        # by the arm's kind: mask (and trained weights) to start from, the rewind state
        unpack(verified(pruned_inputs)),
        images=train_images(),
        probe_check=ancient(PROBE_CHECK),
    output:
        model=f"{TRAINED}/model.pt",
        mask=f"{TRAINED}/mask.npz",
        metrics=f"{TRAINED}/metrics.json",
        model_sha256=f"{TRAINED}/model.pt.sha256",
        mask_sha256=f"{TRAINED}/mask.npz.sha256",
    log:
        "logs/train_pruned/{method}_trial{trial}_level{level}.log",
    benchmark:
        "results/benchmarks/train_pruned/{method}_trial{trial}_level{level}.tsv"
    wildcard_constraints:
        method="|".join(METHODS),
        level="[1-9][0-9]*",
    # the pruning chains are the critical path: never let analysis jobs hold them up
    priority: 10
    conda:
        "../../envs/prunedissect.yaml"
    threads: jobs.threads(config, "train_pruned")
    resources:
        gpu=jobs.gpu(config, "train_pruned"),
        mem_mb=jobs.mem_mb(config, "train_pruned"),
        runtime=lambda wildcards: jobs.runtime(
            config, "train_pruned", METHODS[wildcards.method]
        ),
    params:
        trial=lambda wildcards: int(wildcards.trial),
        level=lambda wildcards: int(wildcards.level),
        seed=lambda wildcards: config["seed"] + int(wildcards.trial),
        model={"arch": config["model"]["arch"], **model_kwargs(config["model"])},
        data={key: config["dataset"][key] for key in ("image_size", "mean", "std")},
        training=config["training"],
        pruning=pruning_params,
        device=config["device"],
        cpu=config["cpu"],
    script:
        "../scripts/train_level.py"
