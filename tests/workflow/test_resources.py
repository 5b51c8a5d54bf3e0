"""Job resources (prunedissect.resources) against every shipped preset."""

from __future__ import annotations

import copy
import re

import pytest
import yaml
from snakemake.utils import validate

from conftest import REPO
from prunedissect import resources
from prunedissect.methods import Method

SCHEMA_PATH = REPO / "workflow/schemas/config.schema.yaml"
PRESETS = {
    "default": REPO / "config/config.yaml",
    "test": REPO / ".test/config/config.yaml",
    "cifar": REPO / "config/cifar.yaml",
    "paper": REPO / "config/paper.yaml",
}
RULES = (
    "train_dense", "train_pruned", "extract_activations", "tally_iou",
    "check_probe", "encode_probe_labels",
)  # fmt: skip


def preset(name: str) -> dict:
    config = copy.deepcopy(yaml.safe_load(PRESETS[name].read_text()))
    validate(config, str(SCHEMA_PATH), set_default=True)
    return config


@pytest.mark.parametrize("name", PRESETS)
def test_every_preset_gets_positive_resources_and_training_threads_match_its_workers(name):
    config = preset(name)
    for rule in RULES:
        assert resources.threads(config, rule) >= 1
        assert resources.mem_mb(config, rule) >= 1000
        assert resources.runtime(config, rule) >= 30
    for rule in resources.TRAINING_RULES:
        assert resources.threads(config, rule) == config["training"]["num_workers"] + 1
        # the limit covers the level's estimated time with room to spare
        assert resources.runtime(config, rule) >= 1.5 * resources.estimated_minutes(config, rule)
    on_gpu = config["device"] != "cpu"
    assert resources.gpu(config, "train_dense") == resources.gpu(config, "train_pruned") == on_gpu
    assert resources.gpu(config, "extract_activations") == on_gpu
    assert resources.gpu(config, "tally_iou") == 0
    # the timing job: its threads are the ones it times with; a GPU to time on unless cpu
    assert resources.threads(config, "speed") == config["speed"]["threads"]
    assert resources.gpu(config, "speed") == on_gpu


def test_paper_level_limit_covers_its_25_gpu_hours_with_its_16_loader_workers():
    config = preset("paper")
    assert resources.large(config)
    assert resources.threads(config, "train_dense") == 17
    for rule in resources.TRAINING_RULES:
        assert resources.runtime(config, rule) >= 25 * 60 * 1.5
    assert resources.mem_mb(config, "train_dense") == 32000


def test_small_studies_keep_their_small_sizes():
    for name in ("default", "test"):
        config = preset(name)
        assert not resources.large(config)
        assert resources.threads(config, "train_dense") == 1
        assert resources.runtime(config, "train_dense") == 60
        assert resources.mem_mb(config, "tally_iou") == 4000
        assert resources.gpu(config, "train_dense") == 0  # device: cpu


def test_finetuned_levels_are_sized_by_their_arms_epochs():
    config = preset("paper")
    finetune = Method(name="ft", kind="finetune", epochs=3, lr=0.001)
    lottery = Method(name="lottery", kind="lottery")
    assert resources.level_epochs(config, "train_pruned", finetune) == 3
    assert resources.level_epochs(config, "train_pruned", lottery) == 90
    assert resources.level_epochs(config, "train_dense") == 90
    short = resources.runtime(config, "train_pruned", finetune)
    assert short < resources.runtime(config, "train_pruned", lottery)
    assert short < resources.runtime(config, "train_dense")


def test_the_paper_cost_is_one_figure_in_readme_and_preset():
    """3 trials x (90 + 19 x 84 epochs) x 1.28 M images at ~1,250 images/s: ~1,450 GPU-hours."""
    config = preset("paper")
    training, pruning = config["training"], config["pruning"]
    rewind = pruning["rewind"]["step"]
    epochs = training["epochs"] + pruning["levels"] * (training["epochs"] - rewind)
    hours = config["trials"] * epochs * 1_281_167 / 1250 / 3600
    assert 1400 < hours < 1500
    figures = {
        path: set(re.findall(r"about ([\d,]+) GPU-hours of\s+#?\s*training", path.read_text()))
        for path in (REPO / "README.md", PRESETS["paper"])
    }
    assert figures[REPO / "README.md"] == figures[PRESETS["paper"]] == {"1,450"}, figures


def test_the_cost_of_each_further_arm_in_readme_and_preset():
    """Per arm, 3 trials x 19 levels x its epochs per level at ~1,250 images/s (README)."""
    config = preset("paper")
    levels, epochs = config["pruning"]["levels"], config["training"]["epochs"]
    rewound = epochs - config["pruning"]["rewind"]["step"]
    per_epoch = 1_281_167 / 1250 / 3600  # GPU-hours
    hours = {
        kind: config["trials"] * levels * level_epochs * per_epoch
        for kind, level_epochs in (("oneshot", rewound), ("reinit", epochs), ("finetune", 2))
    }
    assert 1350 < hours["oneshot"] < 1370 and 1450 < hours["reinit"] < 1470
    assert 30 <= round(hours["finetune"], -1) <= 30
    for path in (REPO / "README.md", PRESETS["paper"]):
        text = " ".join(path.read_text().split())
        for figure in ("1,360", "1,460", "30"):
            assert f"about {figure}" in text.replace("# ", ""), (path, figure)
