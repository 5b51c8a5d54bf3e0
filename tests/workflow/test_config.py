"""Config validation: every bad value stops the workflow before any job, naming the key."""

from __future__ import annotations

import copy

import pytest
import yaml
from snakemake.utils import validate

from conftest import REPO, make_imagefolder, run_snakemake
from prunedissect.config import ConfigError, check_config, schema_errors

SCHEMA_PATH = REPO / "workflow/schemas/config.schema.yaml"
SCHEMA = yaml.safe_load(SCHEMA_PATH.read_text())
PRESETS = sorted((REPO / "config").glob("*.yaml"))


def filled(config: dict) -> dict:
    config = copy.deepcopy(config)
    validate(config, str(SCHEMA_PATH), set_default=True)
    return config


def test_empty_config_gets_every_default():
    config = filled({})
    assert config["pruning"]["fraction"] == 0.2
    assert config["dissection"]["quantile"] == 0.005
    assert config["dissection"]["iou_threshold"] == 0.05
    assert config["pruning"]["rewind"] == {"unit": "iteration", "step": 100}
    assert config["dataset"]["concepts"]["probe_images"] == 1000
    check_config(config, SCHEMA)


@pytest.mark.parametrize(
    "path", PRESETS + [REPO / ".test/config/config.yaml"], ids=lambda p: p.name
)
def test_shipped_configs_are_valid(path):
    config = yaml.safe_load(path.read_text())
    assert schema_errors(config, SCHEMA) == []


BAD = [
    # (overrides, key named in the message, fragment of what is allowed)
    ({"trials": "two"}, "trials", "type integer"),
    ({"pruning": {"levells": 3}}, "pruning.levells", "unknown key"),
    ({"pruning": {"levels": -1}}, "pruning.levels", ">= 0"),
    ({"dissection": {"iou_threshold": 1.5}}, "dissection.iou_threshold", "< 1"),
    ({"dissection": {"iou_threshold": 0}}, "dissection.iou_threshold", "> 0"),
    ({"pruning": {"fraction": 1.0}}, "pruning.fraction", "< 1"),
    ({"model": {"arch": "vgg"}}, "model.arch", "'resnet20'"),
    ({"dataset": {"mean": [0.5, 0.5]}}, "dataset.mean", "min 3"),
    ({"methods": [{"name": "a", "kind": "prune"}]}, "methods[0].kind", "'oneshot'"),
    ({"methods": []}, "methods", "min 1"),
    ({"methods": [{"name": "a b", "kind": "lottery"}]}, "methods[0].name", "matching"),
    ({"methods": [{"name": "a", "kind": "random", "scope": "unit"}]}, "methods[0].scope",
     "'layerwise'"),
    ({"pruning": {"strategy": "rewind"}}, "pruning.strategy", "removed; use the list `methods`"),
    ({"pruning": {"finetune": {"epochs": 2}}}, "pruning.finetune", "kind finetune"),
]


@pytest.mark.parametrize("override,key,allowed", BAD, ids=[b[1] for b in BAD])
def test_schema_errors_name_key_value_and_allowed(override, key, allowed):
    lines = schema_errors(override, SCHEMA)
    assert len(lines) == 1, lines
    assert f"config key {key}:" in lines[0]
    assert allowed in lines[0]


def test_missing_dataset_path_is_reported(tmp_path):
    config = filled({"dataset": {"kind": "imagefolder", "path": str(tmp_path / "nowhere")}})
    with pytest.raises(ConfigError, match=r"dataset\.path: .*nowhere"):
        check_config(config, SCHEMA)
    config = filled({"dataset": {"kind": "imagefolder"}})
    with pytest.raises(ConfigError, match=r"dataset\.path: dataset\.path is not set"):
        check_config(config, SCHEMA)


def test_imagefolder_with_train_and_val_passes(tmp_path):
    make_imagefolder(tmp_path)
    check_config(filled({"dataset": {"kind": "imagefolder", "path": str(tmp_path)}}), SCHEMA)


def test_cross_key_checks():
    config = filled({"pruning": {"levels": 3}, "dissection": {"levels": [0, 5]}, "trials": 2})
    config["report"]["trial"] = 2
    config["speed"].update(trial=3, levels=[1, 4])
    with pytest.raises(ConfigError) as info:
        check_config(config, SCHEMA)
    message = str(info.value)
    assert "dissection.levels: levels [5] do not exist; allowed: 0..3" in message
    assert "report.trial: got 2; allowed: 0..1" in message
    assert "speed.levels: levels [4] do not exist; allowed: 0..3" in message
    assert "speed.trial: got 3; allowed: 0..1" in message


def test_method_checks_name_the_arm_and_the_fix():
    arms = [
        {"name": "dense", "kind": "lottery"},
        {"name": "ft", "kind": "finetune", "scope": "global"},
        {"name": "ft", "kind": "oneshot"},
        {"name": "copy", "kind": "reinit", "source": "nowhere"},
        {"name": "noise", "kind": "random", "source": "copy"},
    ]
    config = filled({"methods": arms, "report": {"methods": ["ft", "lotery"]}})
    with pytest.raises(ConfigError) as info:
        check_config(config, SCHEMA)
    message = str(info.value)
    assert "methods[0].name: 'dense' is reserved" in message
    assert "methods[1].scope: applies to kind random or structured only, not 'finetune'" in message
    assert "methods[1].name: 'ft' is used by more than one arm" in message
    assert "methods[3].source: 'nowhere' is not an arm of methods" in message
    assert "methods[4].source: arm 'copy' has kind 'reinit'" in message
    assert "report.methods: ['lotery'] are not arms of methods" in message
    # an arm that copies a chain's masks without one: named, with the fix
    lonely = filled({"methods": [{"name": "scratch", "kind": "reinit"}]})
    with pytest.raises(ConfigError, match=r"methods\[0\]: kind 'reinit' copies the masks of a "):
        check_config(lonely, SCHEMA)
    # a global random arm needs no chain; every kind together is fine
    check_config(filled({"methods": [{"name": "r", "kind": "random", "scope": "global"}]}), SCHEMA)
    kinds = ("lottery", "finetune", "oneshot", "reinit", "random", "structured", "connection",
             "reduced")  # fmt: skip
    check_config(filled({"methods": [{"name": k, "kind": k} for k in kinds]}), SCHEMA)


def test_structured_connection_and_reduced_arms_are_checked():
    arms = [
        {"name": "s", "kind": "structured", "scope": "layerwise"},
        {"name": "c", "kind": "connection", "epochs": 3},
        {"name": "r", "kind": "random", "scope": "layer"},
        {"name": "n", "kind": "reduced", "scope": "global"},
    ]
    with pytest.raises(ConfigError) as info:
        check_config(filled({"methods": arms}), SCHEMA)
    message = str(info.value)
    assert "methods[0].scope: 'layerwise' is not a scope of kind 'structured'; allowed: layer" in (
        message
    )
    assert "methods[1].epochs: applies with retrain: finetune only" in message
    assert "methods[2].scope: 'layer' is not a scope of kind 'random'" in message
    assert "methods[3].scope: applies to kind random or structured only, not 'reduced'" in message
    wide = filled({"methods": [{"name": "n", "kind": "reduced"}], "model": {"arch": "resnet18"}})
    with pytest.raises(ConfigError, match=r"methods\[0\].kind: reduced narrows model.arch "):
        check_config(wide, SCHEMA)
    tuned = [{"name": "s", "kind": "structured", "retrain": "finetune", "epochs": 1}]
    check_config(filled({"methods": tuned}), SCHEMA)


def test_training_cross_key_checks_live_in_the_config_checks():
    training = {"nesterov": True, "momentum": 0, "epochs": 2, "warmup_epochs": 3}
    config = filled({"training": training})
    with pytest.raises(ConfigError) as info:
        check_config(config, SCHEMA)
    message = str(info.value)
    assert "training.nesterov: got true with training.momentum 0" in message
    assert "training.warmup_epochs: got 3; allowed: 0..2" in message
    check_config(filled({"training": {"nesterov": True, "epochs": 2, "warmup_epochs": 2}}), SCHEMA)


def test_broden_probe_path_without_index(tmp_path):
    config = filled({"probe": {"kind": "broden", "path": str(tmp_path)}})
    with pytest.raises(ConfigError, match=r"probe\.path: .*index\.csv"):
        check_config(config, SCHEMA)


@pytest.mark.parametrize(
    "override,key",
    [
        ("pruning:\n  levels: -1\n", "pruning.levels"),
        ("dissection:\n  iou_threshold: 2\n", "dissection.iou_threshold"),
        ("trials: 1.5\n", "trials"),
        ("dataset:\n  kind: imagefolder\n  path: /no/such/imagenet\n", "dataset.path"),
        ("pruning:\n  fractoin: 0.2\n", "pruning.fractoin"),
        ("methods:\n  - {name: scratch, kind: reinit}\n", "methods[0]"),
        ("methods:\n  - {name: a, kind: lottery}\n  - {name: a, kind: oneshot}\n",
         "methods[0].name"),
        ("methods:\n  - {name: a, kind: lotery}\n", "methods[0].kind"),
    ],
)
def test_workflow_stops_before_any_job(tmp_path, override, key):
    """A real `snakemake -n` with a bad config fails at parse time, naming the key."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(override)
    proc = run_snakemake("-n", "--configfile", str(bad), "--cores", "1", check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert f"config key {key}:" in output
    assert "Job stats" not in output  # no DAG was built, no job planned
