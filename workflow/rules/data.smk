# The generated concept world: the ImageFolder training set and the Broden-format probe set.


rule generate_concepts:
    output:
        probe=directory("resources/concepts/probe"),
        images=directory("resources/concepts/images"),
    log:
        "logs/generate_concepts/concepts.log",
    benchmark:
        "results/benchmarks/generate_concepts/concepts.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    threads: jobs.threads(config, "generate_concepts")
    params:
        concepts=config["dataset"]["concepts"],
        image_size=config["dataset"]["image_size"],
        cpu=config["cpu"],
    script:
        "../scripts/generate_concepts.py"
