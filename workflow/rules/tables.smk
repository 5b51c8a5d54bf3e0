# Result tables (results/tables/*.parquet): tidy, typed, byte-identical for identical inputs.
# Columns: prunedissect.tables.COLUMNS (also stored as Parquet field metadata).


# Level 0 is always dissected for the tables: consistency compares every level with it. Every
# method's rows include the shared level 0 (its files listed once per method), so each method's
# curve starts from the dense network.
TABLE_LEVELS = sorted({0, *dissected_levels()})
TABLE_KEYS = dissection_keys(trial_ids(), TABLE_LEVELS)
# the untrained network of each trial (the floor), listed under every method at INIT_LEVEL; its
# files are those of the method INIT, level 0
FLOOR_KEYS = [
    (method, trial, INIT_LEVEL, layer)
    for method, trial, level, layer in TABLE_KEYS
    if level == 0
]
FLOOR_FILES = [(INIT, trial, 0, layer) for _, trial, _, layer in FLOOR_KEYS]
# (method, trial, level) of every trained checkpoint, in the order of the metrics inputs
ACCURACY_KEYS = [
    (method, trial, level)
    for method in method_names()
    for trial in trial_ids()
    for level in levels()
]


rule gather_accuracy:
    input:
        metrics=[trained_file("metrics.json", *key) for key in ACCURACY_KEYS],
    output:
        "results/tables/accuracy.parquet",
    log:
        "logs/gather_accuracy/accuracy.log",
    benchmark:
        "results/benchmarks/gather_accuracy/accuracy.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    params:
        # the method each metrics file counts under, in input order
        methods=[method for method, _, _ in ACCURACY_KEYS],
    script:
        "../scripts/gather_accuracy.py"


rule gather_units:
    input:
        accuracy=rules.gather_accuracy.output[0],
        units=dissection_files("units.parquet", TABLE_KEYS),
    output:
        "results/tables/units.parquet",
    log:
        "logs/gather_units/units.log",
    benchmark:
        "results/benchmarks/gather_units/units.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    params:
        # (method, trial, level, layer) of each units file, in input order
        ids=TABLE_KEYS,
    script:
        "../scripts/gather_units.py"


rule summarise:
    input:
        units=rules.gather_units.output[0],
        # One tally names every category of the probe set, also those no unit is labelled with.
        tally=dissection_files(
            "tally.parquet", [(method_names()[0], trial_ids()[0], 0, layers()[0])]
        ),
    output:
        "results/tables/summary.parquet",
    log:
        "logs/summarise/summary.log",
    benchmark:
        "results/benchmarks/summarise/summary.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    script:
        "../scripts/summarise.py"


rule consistency:
    input:
        units=rules.gather_units.output[0],
    output:
        "results/tables/consistency.parquet",
    log:
        "logs/consistency/consistency.log",
    benchmark:
        "results/benchmarks/consistency/consistency.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    script:
        "../scripts/consistency.py"


# Uncertainty: the probe-image bootstrap of every dissected layer (its replicates.parquet), with
# the untrained floor, counted like the summary and turned into intervals and the verdict.
rule gather_bootstrap:
    input:
        accuracy=rules.gather_accuracy.output[0],
        units=dissection_files("units.parquet", TABLE_KEYS)
        + dissection_files("units.parquet", FLOOR_FILES),
        replicates=dissection_files("replicates.parquet", TABLE_KEYS)
        + dissection_files("replicates.parquet", FLOOR_FILES),
        tally=rules.summarise.input.tally,
    output:
        bootstrap="results/tables/bootstrap.parquet",
        intervals="results/tables/intervals.parquet",
    log:
        "logs/gather_bootstrap/bootstrap.log",
    benchmark:
        "results/benchmarks/gather_bootstrap/bootstrap.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    params:
        # (method, trial, level, layer) of each units and replicates file, in input order
        ids=TABLE_KEYS + FLOOR_KEYS,
        layers=layers(),
        replicates=config["bootstrap"]["replicates"],
        confidence=config["bootstrap"]["confidence"],
    script:
        "../scripts/gather_bootstrap.py"


rule verdict:
    input:
        accuracy=rules.gather_accuracy.output[0],
        bootstrap=rules.gather_bootstrap.output.bootstrap,
        intervals=rules.gather_bootstrap.output.intervals,
    output:
        "results/tables/verdict.parquet",
    log:
        "logs/verdict/verdict.log",
    benchmark:
        "results/benchmarks/verdict/verdict.tsv"
    conda:
        "../../envs/prunedissect.yaml"
    params:
        confidence=config["bootstrap"]["confidence"],
        accuracy_drop=config["bootstrap"]["accuracy_drop"],
    script:
        "../scripts/verdict.py"
