# Per-unit visual report of one trial (report.trial): level 0 beside the pruned levels
# report_levels(), the top images of each unit with its thresholded activation mask.


REPORT_TRIAL = config["report"]["trial"]
REPORT_LEVELS = [0, *[level for level in report_levels() if level != 0]]
REPORT_KEYS = dissection_keys([REPORT_TRIAL], REPORT_LEVELS)


rule unit_report:
    input:
        units=dissection_files("units.parquet", REPORT_KEYS),
        activations=verified(dissection_files("activations.npy", REPORT_KEYS)),
        metrics=expand(
            "results/train/trial{trial}/level{level}/metrics.json",
            trial=REPORT_TRIAL,
            level=REPORT_LEVELS,
        ),
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
        # (trial, level, layer) of each units and activations file, in input order
        ids=REPORT_KEYS,
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
    script:
        "../scripts/overview.py"
