# Real datasets: the Broden probe download, CIFAR-10 preparation and probe resizing.
# None of these rules runs in the default study (generated concept world); they run only when
# the config asks for probe.kind broden (without probe.path), dataset.kind cifar10 or
# probe.resize. Downloads are local rules: cluster compute nodes often have no internet access.


rule download_broden:
    output:
        probe=directory("resources/broden/{name}"),
    log:
        "logs/download_broden/{name}.log",
    benchmark:
        "results/benchmarks/download_broden/{name}.tsv"
    wildcard_constraints:
        name="broden1_224|broden1_227",
    localrule: True
    conda:
        "../../envs/prunedissect.yaml"
    params:
        url=config["probe"]["url"],
        md5=config["probe"]["md5"],
    script:
        "../scripts/download_broden.py"


rule prepare_cifar10:
    output:
        images=directory("resources/cifar10/images"),
    log:
        "logs/prepare_cifar10/cifar10.log",
    benchmark:
        "results/benchmarks/prepare_cifar10/cifar10.tsv"
    localrule: True
    conda:
        "../../envs/prunedissect.yaml"
    params:
        url=config["dataset"]["url"],
        md5=config["dataset"]["md5"],
    script:
        "../scripts/prepare_cifar10.py"


rule resize_probe:
    input:
        probe=unresized_probe_dir(),
    output:
        probe=directory("resources/probe_resized/{size}"),
    log:
        "logs/resize_probe/{size}.log",
    benchmark:
        "results/benchmarks/resize_probe/{size}.tsv"
    wildcard_constraints:
        size=r"\d+",
    conda:
        "../../envs/prunedissect.yaml"
    threads: jobs.threads(config, "resize_probe")
    script:
        "../scripts/resize_probe.py"
