# The one place that validates the config and defines input functions and wildcard constraints.

import os
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

# The package lives in src/. Make it importable here and in every job, also where the
# environment lacks the editable install (--software-deployment-method conda, a bare snakemake).
_SRC = str(Path(workflow.basedir) / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH")) if p)
)

from prunedissect.checkpoints import (
    CorruptFileError,
    load_passed,
    quick_check,
    save_passed,
    sidecar,
)
from prunedissect import resources as jobs
from prunedissect.config import model_kwargs, raise_for, schema_errors, semantic_errors
from prunedissect.verify import rebuild_hint

SCHEMA = workflow.source_path("../schemas/config.schema.yaml")
with open(SCHEMA) as handle:
    _schema = yaml.safe_load(handle)
# Friendly messages first (key, bad value, what is allowed), then Snakemake's validate fills
# the defaults, then the checks a schema cannot express (paths, cross-key bounds).
raise_for(schema_errors(config, _schema))
validate(config, SCHEMA, set_default=True)
raise_for(semantic_errors(config))

# Pin the CPU kernels of every job (prunedissect.reproducibility): jobs inherit this process's
# environment, under Slurm too (each job parses this file again), and the pin overrides whatever
# the caller's environment held, so a run is byte-identical on any x86-64 host.
from prunedissect.reproducibility import cpu_environment

os.environ.update(cpu_environment(**config["cpu"]))


wildcard_constraints:
    trial=r"\d+",
    level=r"\d+",
    layer=r"[A-Za-z_][A-Za-z0-9_.]*",


def trial_ids():
    """Trial indices 0..trials-1; trial t trains with seed + t."""
    return list(range(config["trials"]))


def levels():
    """Pruning levels 0..pruning.levels (0 is the dense network)."""
    return list(range(config["pruning"]["levels"] + 1))


def dissected_levels():
    """Levels whose checkpoints are dissected (dissection.levels, default every level)."""
    chosen = config["dissection"]["levels"]
    return sorted(set(chosen)) if chosen is not None else levels()


def layers():
    """Module names whose units are dissected."""
    return list(config["dissection"]["layers"])


def report_levels():
    """Pruned levels shown beside level 0 in the per-unit report."""
    chosen = config["report"]["levels"]
    return sorted(set(chosen)) if chosen else [config["pruning"]["levels"]]


def train_images():
    """ImageFolder root (with train/ and val/) the networks are trained on."""
    kind = config["dataset"]["kind"]
    if kind == "concepts":
        return "resources/concepts/images"
    if kind == "cifar10":
        return "resources/cifar10/images"
    return config["dataset"]["path"]


def unresized_probe_dir():
    """The Broden-format probe directory before any resizing."""
    probe = config["probe"]
    if probe["kind"] == "concepts":
        return "resources/concepts/probe"
    if probe["path"]:
        return probe["path"]
    return f"resources/broden/{probe['name']}"


def probe_dir():
    """The Broden-format probe directory dissection reads (resized when probe.resize is set)."""
    if config["probe"]["resize"]:
        return f"resources/probe_resized/{config['probe']['resize']}"
    return unresized_probe_dir()


FIGURES = [
    "fig1_accuracy",
    "fig2_interpretability",
    "fig3_categories",
    "fig4_consistency",
    "fig5_overview",
]


def final_outputs():
    """Everything `snakemake` builds by default: tables, figures (PNG + PDF), per-unit report,
    the summary of what the study shows."""
    return [
        *expand(
            "results/tables/{name}.parquet",
            name=["accuracy", "units", "summary", "consistency"],
        ),
        *expand("results/figures/{fig}.{ext}", fig=FIGURES, ext=["png", "pdf"]),
        f"results/report/units_trial{config['report']['trial']}.html",
        "results/report/summary.md",
    ]


# The directory of one dissected layer: dissect.smk writes its files, tables.smk and report.smk
# read them (dissection_files), all from this one pattern.
DISSECTED = "results/dissect/trial{trial}/level{level}/{layer}"


def dissection_keys(trials, levels):
    """(trial, level, layer) of every dissected layer of these checkpoints; rules hand these
    identifiers to their scripts as params, in the order of dissection_files()."""
    return [
        (trial, level, layer)
        for trial in trials
        for level in levels
        for layer in layers()
    ]


def dissection_files(name, keys):
    """The file ``name`` of each dissected layer (trial, level, layer) in ``keys``."""
    return [
        f"{DISSECTED}/{name}".format(trial=trial, level=level, layer=layer)
        for trial, level, layer in keys
    ]


def layer_pattern(name, layer):
    """The file ``name`` of ``layer`` in the DISSECTED pattern, trial and level left as
    wildcards (the outputs of the one extraction job per checkpoint)."""
    return f"{DISSECTED}/{name}".replace("{layer}", layer)


def previous_level(output):
    """Input function: level n-1's ``output`` (model or mask) of the same trial."""

    def resolve(wildcards):
        producer = rules.train_dense if wildcards.level == "1" else rules.train_pruned
        return getattr(producer.output, output).format(
            trial=wildcards.trial, level=int(wildcards.level) - 1
        )

    return resolve


# Every probe file decoded once (rule check_probe) before any training or dissection job.
PROBE_CHECK = "results/probe_check.txt"

# Files that passed, by size, mtime and digest: a file is hashed again only once it changed.
_PASSED_RECORD = ".snakemake/prunedissect/checksums_passed.json"
_PASSED = load_passed(_PASSED_RECORD)
_CORRUPT = {}  # path -> message, for refuse_corrupt_inputs()


def _check_existing(path):
    """quick_check a finished file that has a checksum sidecar; raise naming its rebuild.

    Raising drops the consuming job from the DAG (Snakemake then takes the consumer's existing
    outputs as they are, so nothing downstream of a corrupt file is rerun or deleted); the
    problem is logged at once and refuse_corrupt_inputs() stops a run before its first job.
    """
    if not (os.path.exists(path) and sidecar(path).exists()):
        return  # not built yet, or its producer reruns anyway (a declared output is missing)
    before = _PASSED.get(path)
    try:
        quick_check(path, passed=_PASSED)
    except CorruptFileError as error:
        message = f"{error}\n{rebuild_hint(path)}"
        if path not in _CORRUPT:
            _CORRUPT[path] = message
            logger.warning(f"Corrupt input, jobs that read it are left out: {message}")
        raise WorkflowError(message) from None
    if _PASSED.get(path) != before:
        save_passed(_PASSED_RECORD, _PASSED)


def refuse_corrupt_inputs():
    """onstart: stop before the first job when a finished input failed its checksum."""
    if _CORRUPT:
        raise WorkflowError(
            "corrupt finished file(s); nothing was run or deleted:\n"
            + "\n".join(_CORRUPT.values())
        )


def verified(path):
    """Input function: ``path`` (a pattern, a list, or a function of wildcards) after checking
    every existing file against its .sha256 sidecar (prunedissect.checkpoints.quick_check).

    It runs while the DAG is built, before any job starts or Snakemake deletes any output, so a
    corrupt finished checkpoint stops the run with its name and the command that rebuilds it
    instead of starting (and first wiping) the jobs downstream of it. Cost: one SHA-256 pass over
    each existing input the first time it is seen (375 MB/s measured on 2 busy cores), then
    nothing until its size, mtime or checksum file changes (_PASSED_RECORD); activation files
    over 1 GiB get a header/size check only.
    """

    def resolve(wildcards):
        if callable(path):
            targets = path(wildcards)
        elif isinstance(path, str):
            targets = path.format(**dict(wildcards.items()))
        else:
            targets = list(path)
        for target in [targets] if isinstance(targets, str) else targets:
            _check_existing(target)
        return targets

    return resolve


def activations_output(path):
    """Activation files are kept unless dissection.keep_activations is false (then temp())."""
    return path if config["dissection"]["keep_activations"] else temp(path)


onstart:
    refuse_corrupt_inputs()
