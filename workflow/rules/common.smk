# The one place that validates the config and defines input functions and wildcard constraints.

import os
import sys
from pathlib import Path

import yaml
from snakemake.utils import validate

# The package lives in src/. Make it importable here and in every job, also where the
# environment lacks the editable install (--software-deployment-method conda, a bare snakemake).
_SRC = str(Path(workflow.basedir) / "src")
if _SRC not in sys.path:
    sys.path.insert(0, _SRC)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH")) if p)
)

from prunedissect.config import raise_for, schema_errors, semantic_errors

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


def model_kwargs():
    """Builder keyword arguments of config["model"] (torch-free twin of
    prunedissect.models.model_kwargs, so parsing the workflow never imports torch)."""
    model = config["model"]
    return {"width": model["width"]} if model["arch"] == "resnet20" else {}


# Job sizes for cluster schedulers (profiles/README.md), scaled from the config; a profile's
# set-resources overrides them. Minutes per epoch on one GPU: resnet20 on 32-px sets, the
# torchvision models on ImageNet.
EPOCH_MINUTES = {"resnet20": 1, "resnet18": 10, "googlenet": 12, "resnet50": 20}


def sized(small, large):
    """A resource value for 32-px studies (small) or ImageNet-scale (>= 128 px) ones (large)."""
    return large if config["dataset"]["image_size"] >= 128 else small


def gpu_count(wildcards):
    """One GPU for training and extraction, none when the config pins the CPU."""
    return 0 if config["device"] == "cpu" else 1


def train_threads(wildcards):
    """The training process plus its data-loader workers."""
    return config["training"]["num_workers"] + 1


def train_runtime(wildcards):
    """Minutes for one level: epochs x minutes per epoch, +50% and 30 min of slack.

    A level killed at the limit resumes from its last epoch checkpoint when retried.
    """
    epochs = config["training"]["epochs"]
    if (
        wildcards.get("level", "0") != "0"
        and config["pruning"]["strategy"] == "finetune"
    ):
        epochs = config["pruning"]["finetune"]["epochs"]
    return 30 + int(1.5 * epochs * EPOCH_MINUTES[config["model"]["arch"]])


def activations_output(path):
    """Activation files are kept unless dissection.keep_activations is false (then temp())."""
    return path if config["dissection"]["keep_activations"] else temp(path)
