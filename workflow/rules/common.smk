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
from prunedissect.methods import (
    DENSE,
    INIT,
    INIT_LEVEL,
    MASK_SOURCES,
    methods_from_config,
)
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


# The arms of the study (prunedissect.methods), in config order, by name.
METHODS = {method.name: method for method in methods_from_config(config["methods"])}


wildcard_constraints:
    method="|".join([DENSE, INIT, *METHODS]),
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


def method_names():
    """Names of the arms, in config order."""
    return list(METHODS)


def layers():
    """Module names whose units are dissected."""
    return list(config["dissection"]["layers"])


def report_levels():
    """Pruned levels shown beside level 0 in the per-unit report."""
    chosen = config["report"]["levels"]
    return sorted(set(chosen)) if chosen else [config["pruning"]["levels"]]


def report_methods():
    """Methods whose pruned levels the per-unit report shows side by side (default every arm
    but reduced ones: a reduced network's units are its own, not level 0's)."""
    chosen = config["report"]["methods"]
    if chosen:
        return list(chosen)
    return [name for name in method_names() if METHODS[name].kind != "reduced"]


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
            name=[
                "accuracy",
                "units",
                "summary",
                "consistency",
                "bootstrap",
                "intervals",
                "verdict",
            ],
        ),
        *expand("results/figures/{fig}.{ext}", fig=FIGURES, ext=["png", "pdf"]),
        f"results/report/units_trial{config['report']['trial']}.html",
        "results/report/summary.md",
        "results/report/verdict.md",
        "results/report/verdict.html",
        *speed_outputs(),  # speed.smk: inference timings, their figure, slim networks
    ]


# One checkpoint's training files and one dissected layer's files: train.smk and dissect.smk
# write them, tables.smk and report.smk read them, all from these two patterns. The shared dense
# level 0 of every arm is stored once, under the method name DENSE ("dense"): DENSE_TRAINED.
TRAINED = "results/train/{method}/trial{trial}/level{level}"
DENSE_TRAINED = TRAINED.replace("{method}", DENSE).replace("{level}", "0")
# each trial's untrained network (the floor), stored as level 0 of the reserved method INIT
INIT_TRAINED = TRAINED.replace("{method}", INIT).replace("{level}", "0")
DISSECTED = "results/dissect/{method}/trial{trial}/level{level}/{layer}"


def stored_under(method, level):
    """The method directory of (method, level): DENSE for an arm's level 0, else the arm's
    name (INIT, the untrained networks, is its own)."""
    return DENSE if int(level) == 0 and method != INIT else method


def trained_file(name, method, trial, level):
    """The training output ``name`` of (method, trial, level), level 0 being the dense one."""
    return f"{TRAINED}/{name}".format(
        method=stored_under(method, level), trial=trial, level=level
    )


def dissection_keys(trials, levels, methods=None):
    """(method, trial, level, layer) of every dissected layer of these checkpoints of
    ``methods`` (default every arm); rules hand these identifiers to their scripts as params,
    in the order of dissection_files(). Level 0 appears once per method (the shared network).
    """
    return [
        (method, trial, level, layer)
        for method in (method_names() if methods is None else methods)
        for trial in trials
        for level in levels
        for layer in layers()
    ]


def dissection_files(name, keys):
    """The file ``name`` of each dissected layer (method, trial, level, layer) in ``keys``."""
    return [
        f"{DISSECTED}/{name}".format(
            method=stored_under(method, level), trial=trial, level=level, layer=layer
        )
        for method, trial, level, layer in keys
    ]


def layer_pattern(name, layer):
    """The file ``name`` of ``layer`` in the DISSECTED pattern, method, trial and level left as
    wildcards (the outputs of the one extraction job per checkpoint)."""
    return f"{DISSECTED}/{name}".replace("{layer}", layer)


def is_reduced(method, level):
    """True for a pruned level of a reduced arm: a narrower network (prunedissect.methods)."""
    return int(level) > 0 and method in METHODS and METHODS[method].kind == "reduced"


def pruned_inputs(wildcards):
    """Input function of train_pruned (wrapped in verified()): the files level n of an arm
    starts from, by its kind (prunedissect.training.PreviousLevel): the mask it prunes further,
    copies or matches, the trained weights it ranks or fine-tunes, and level 0's rewind state
    where the kind rewinds; nothing for a reduced arm (trained from scratch)."""
    method, trial, level = (
        METHODS[wildcards.method],
        wildcards.trial,
        int(wildcards.level),
    )
    if method.chained:
        inputs = {
            "model": trained_file("model.pt", method.name, trial, level - 1),
            "mask": trained_file("mask.npz", method.name, trial, level - 1),
        }
    elif method.kind == "oneshot":
        inputs = {
            "model": trained_file("model.pt", DENSE, trial, 0),
            "mask": trained_file("mask.npz", DENSE, trial, 0),
        }
    elif method.copies_source:
        inputs = {"mask": trained_file("mask.npz", method.source, trial, level)}
    elif method.kind == "reduced":
        inputs = {}  # a narrower network from scratch: no input but the images
    else:  # random, scope global: the dense full mask gives the tensors
        inputs = {"mask": trained_file("mask.npz", DENSE, trial, 0)}
    if method.rewinds:
        inputs["rewind"] = trained_file("rewind.pt", DENSE, trial, 0)
    return inputs


def pruning_params(wildcards):
    """Params of train_pruned's pruning: only what the arm's results depend on (so adding or
    changing an arm reruns no other): its kind and options, the fraction where it prunes by it
    (a copied mask already carries it), the rewind point where it rewinds, and exclude.
    """
    method = METHODS[wildcards.method]
    pruning = config["pruning"]
    params = {"exclude": pruning["exclude"], "method": method.options()}
    if not method.copies_source:
        params["fraction"] = pruning["fraction"]
    if method.rewinds:
        params["rewind"] = pruning["rewind"]
    return params


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
        if isinstance(targets, str):
            checked = [targets]
        elif isinstance(targets, dict):  # named inputs for unpack()
            checked = targets.values()
        else:
            checked = targets
        for target in checked:
            _check_existing(target)
        return targets

    return resolve


def activations_output(path):
    """Activation files are kept unless dissection.keep_activations is false (then temp())."""
    return path if config["dissection"]["keep_activations"] else temp(path)


# Inference timing (speed.smk): the networks rule speed times, chosen by the arms' kinds.
SPEED_VARIANT_KINDS = {
    # magnitude-pruned masks; the first such arm only: every one has the dense compute
    "masked": MASK_SOURCES,
    "slimmed": ("structured",),
    "reduced": ("reduced",),
}
SLIMMED = "results/slim/{method}/trial{trial}/level{level}"


def speed_levels():
    """Pruned levels timed beside level 0 (speed.levels, default every pruned level)."""
    chosen = config["speed"]["levels"]
    return sorted(set(chosen)) if chosen else levels()[1:]


def speed_arms():
    """(variant, arm name) of every arm timed, by kind (SPEED_VARIANT_KINDS)."""
    arms = []
    for variant, kinds in SPEED_VARIANT_KINDS.items():
        chosen = [m.name for m in METHODS.values() if m.kind in kinds]
        arms += [
            (variant, name) for name in (chosen[:1] if variant == "masked" else chosen)
        ]
    return arms


def speed_networks():
    """Every network the speed rule times, as {variant, method, trial, level}."""
    trial = config["speed"]["trial"]
    networks = [{"variant": "dense", "method": DENSE, "trial": trial, "level": 0}]
    for level in speed_levels():
        networks += [
            {"variant": variant, "method": name, "trial": trial, "level": level}
            for variant, name in speed_arms()
        ]
    return networks


def speed_outputs():
    """The speed table, its figure, and the slim networks of the timed structured arms."""
    slimmed = [n for n in speed_networks() if n["variant"] == "slimmed"]
    return [
        "results/tables/speed.parquet",
        *expand("results/figures/speed.{ext}", ext=["png", "pdf"]),
        *[f"{SLIMMED}/model.pt2".format(**n) for n in slimmed],
    ]


onstart:
    refuse_corrupt_inputs()
