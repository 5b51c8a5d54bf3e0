"""dissection.layers is checked before any job (issue 13): the committed layer table, its
messages, the workflow's parse-time check and the CLI's check before it creates anything."""

from __future__ import annotations

import time

import pytest
import torch
import yaml
from snakemake.utils import validate

from conftest import REPO, make_imagefolder, run_snakemake
from prunedissect.config import semantic_errors
from prunedissect.layer_table import TABLE_PATH, layer_errors, load_table
from prunedissect.models import get_model
from prunedissect.models.layers import output_shapes, table_text


def test_the_committed_layer_table_is_what_the_models_give():
    assert TABLE_PATH.read_text() == table_text(), (
        "src/prunedissect/models/layers.json is stale: run python -m prunedissect.models.layers"
    )


@pytest.mark.parametrize(("arch", "size"), [("resnet20", 32), ("resnet18", 224), ("resnet50", 64)])
def test_table_strides_give_the_real_map_sizes(arch, size):
    model = get_model(arch, num_classes=10, **({"width": 4} if arch == "resnet20" else {}))
    shapes = output_shapes(model, size)
    table = load_table()[arch]
    for name, shape in shapes.items():
        entry = table[name]
        if shape is not None and len(shape) == 4 and not entry.get("global"):
            assert -(-size // entry["stride"]) == shape[2], (name, shape)


def test_a_misspelt_layer_names_the_value_and_the_closest_modules():
    [message] = layer_errors(["layr4"], arch="resnet50", image_size=224)
    assert message.startswith("got 'layr4', which is not a module of resnet50; closest")
    assert "layer4" in message.split("closest valid names:")[1].split("(")[0]


@pytest.mark.parametrize(
    ("arch", "layer", "size", "reason"),
    [
        ("resnet20", "fc", 32, "rank-2 vectors (N, K), not a spatial (N, C, H, W) map"),
        ("resnet50", "avgpool", 224, "1x1 at image size 224"),
        ("resnet50", "layer4", 32, "1x1 at image size 32"),
        ("googlenet", "dropout", 224, "rank-2 vectors"),
    ],
)
def test_layers_without_a_spatial_map_are_rejected_with_the_reason(arch, layer, size, reason):
    [message] = layer_errors([layer], arch=arch, image_size=size)
    assert reason in message and "dissectable top-level modules" in message


def test_valid_layers_pass():
    assert layer_errors(["layer3", "layer3.2", "layer2"], arch="resnet20", image_size=32) == []
    assert layer_errors(["layer4"], arch="resnet50", image_size=224) == []
    assert layer_errors(["inception4e"], arch="googlenet", image_size=224) == []


def test_semantic_errors_name_the_config_key():
    # semantic_errors takes a config whose defaults the schema has filled, as the workflow does
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["dissection"]["layers"] = ["layer3", "layer9"]
    validate(config, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    [line] = semantic_errors(config)
    assert line.startswith("config key dissection.layers: got 'layer9'")


@pytest.mark.parametrize("preset", ["config.yaml", "paper.yaml"])
def test_a_misspelt_layer_fails_the_dry_run_in_seconds(preset, tmp_path):
    override = {"dissection": {"layers": ["layer9"]}}
    if preset == "paper.yaml":
        override["dataset"] = {"path": str(make_imagefolder(tmp_path / "imagenet"))}
    (tmp_path / "override.yaml").write_text(yaml.safe_dump(override))
    started = time.monotonic()
    proc = run_snakemake(
        "-n", "--cores", "1", "--configfile", str(REPO / "config" / preset),
        str(tmp_path / "override.yaml"), check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "config key dissection.layers: got 'layer9'" in output, output
    assert "closest valid names: " in output
    assert "Job stats" not in output
    assert seconds < 30, f"the dry run took {seconds:.1f} s"


def test_table_covers_every_registered_model():
    from prunedissect.models import list_models

    assert sorted(load_table()) == list_models()
    assert torch  # imported: the table module itself never needs it
