# Inference speed (Crowley et al. 2018): one CPU job (a GPU job unless `device: cpu`) times
# the dense level 0, the masked checkpoint of the first magnitude arm (lottery, finetune or
# oneshot: unstructured zeros, the dense network's arithmetic), every structured arm's
# checkpoint slimmed (prunedissect.slimming) and every reduced arm's thinner network, at the
# levels speed.levels of trial speed.trial; on the CPU and, when the job sees one, on CUDA.
# Kinds absent from `methods` are skipped: a study of magnitude arms times dense and masked.
# Timings depend on the machine: speed.parquet is not one of the golden-digest tables.
# Rule slim writes each timed structured checkpoint as a physically slim network (.pt2, a
# torch.export program that loads without this package) with its check against the masked one.
# Which networks are timed: speed_networks() in common.smk.


rule slim:
    input:
        model=verified(f"{TRAINED}/model.pt"),
    output:
        model=f"{SLIMMED}/model.pt2",
        model_sha256=f"{SLIMMED}/model.pt2.sha256",
        check=f"{SLIMMED}/check.json",
    log:
        "logs/slim/{method}_trial{trial}_level{level}.log",
    benchmark:
        "results/benchmarks/slim/{method}_trial{trial}_level{level}.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    params:
        arch=config["model"]["arch"],
        model_kwargs=model_kwargs(config["model"]),
        image_size=config["dataset"]["image_size"],
    script:
        "../scripts/slim.py"


rule speed:
    input:
        accuracy=rules.gather_accuracy.output[0],
        # one checkpoint per entry of params.networks, in that order
        models=verified(
            [
                trained_file("model.pt", n["method"], n["trial"], n["level"])
                for n in speed_networks()
            ]
        ),
    output:
        "results/tables/speed.parquet",
    log:
        "logs/speed/speed.log",
    benchmark:
        "results/benchmarks/speed/speed.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    threads: jobs.threads(config, "speed")
    resources:
        gpu=jobs.gpu(config, "speed"),
        mem_mb=jobs.mem_mb(config, "speed"),
        runtime=jobs.runtime(config, "speed"),
    params:
        networks=speed_networks(),
        arch=config["model"]["arch"],
        model_kwargs=model_kwargs(config["model"]),
        image_size=config["dataset"]["image_size"],
        device=config["device"],
        speed=config["speed"],
    script:
        "../scripts/speed.py"


rule plot_speed:
    input:
        speed=rules.speed.output[0],
    output:
        png=report(
            "results/figures/speed.png",
            caption="../report/speed.rst",
            category="Figures",
            subcategory="6 Speed",
        ),
        pdf="results/figures/speed.pdf",
    log:
        "logs/plot_speed/speed.log",
    benchmark:
        "results/benchmarks/plot_speed/speed.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    params:
        figure="speed",
        methods=method_names(),
    script:
        "../scripts/plot_figures.py"
