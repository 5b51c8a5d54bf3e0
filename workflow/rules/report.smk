# Per-unit visual report of one trial (report.trial): the shared level 0 beside the pruned
# levels report_levels() of the methods report_methods(), side by side, the top images of each
# unit with its thresholded activation mask.


REPORT_TRIAL = config["report"]["trial"]
REPORT_COLUMNS = [(DENSE, 0)] + [
    (method, level)
    for method in report_methods()
    for level in report_levels()
    if level != 0
]
REPORT_KEYS = [
    (method, REPORT_TRIAL, level, layer)
    for method, level in REPORT_COLUMNS
    for layer in layers()
]


rule unit_report:
    input:
        units=dissection_files("units.parquet", REPORT_KEYS),
        activations=verified(dissection_files("activations.npy", REPORT_KEYS)),
        metrics=[
            trained_file("metrics.json", method, REPORT_TRIAL, level)
            for method, level in REPORT_COLUMNS
        ],
        probe=probe_dir(),
    output:
        report(
            f"results/report/units_trial{REPORT_TRIAL}.html",
            caption="../report/units.rst",
            category="Units",
        ),
    log:
        f"logs/unit_report/trial{REPORT_TRIAL}.log",
    benchmark:
        f"results/benchmarks/unit_report/trial{REPORT_TRIAL}.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    params:
        trial=REPORT_TRIAL,
        # (method, trial, level, layer) of each units and activations file, in input order
        ids=REPORT_KEYS,
        # (method, level) of each metrics file, in input order
        metrics_ids=REPORT_COLUMNS,
        units=config["report"]["units"],
        top_images=config["report"]["top_images"],
    script:
        "../scripts/unit_report.py"


rule overview:
    input:
        accuracy=rules.gather_accuracy.output[0],
        summary=rules.summarise.output[0],
        consistency=rules.consistency.output[0],
    output:
        report(
            "results/report/summary.md",
            caption="../report/summary.rst",
            category="Summary",
        ),
    log:
        "logs/overview/summary.log",
    benchmark:
        "results/benchmarks/overview/summary.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    params:
        methods=method_names(),
    script:
        "../scripts/overview.py"


rule verdict_report:
    input:
        verdict=rules.verdict.output[0],
    output:
        markdown=report(
            "results/report/verdict.md",
            caption="../report/verdict.rst",
            category="Summary",
        ),
        html=report(
            "results/report/verdict.html",
            caption="../report/verdict.rst",
            category="Summary",
        ),
    log:
        "logs/verdict_report/verdict.log",
    benchmark:
        "results/benchmarks/verdict_report/verdict.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    params:
        confidence=config["bootstrap"]["confidence"],
        accuracy_drop=config["bootstrap"]["accuracy_drop"],
        replicates=config["bootstrap"]["replicates"],
        methods=method_names(),
        # linked, not read: a redrawn figure does not rewrite the page
        figures=expand("results/figures/{fig}.png", fig=FIGURES),
    script:
        "../scripts/verdict_report.py"
