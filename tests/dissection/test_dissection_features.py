"""Activation extraction, checkpoint loading, and a whole dissection of a hand-built detector."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from helpers import write_probe
from prunedissect.data.broden import Broden
from prunedissect.dissection import (
    DissectionSettings,
    build_model,
    capture_outputs,
    dissect_model,
    extract_activations,
    infer_num_classes,
    load_state_dict,
)

torch.set_num_threads(1)


class Tiny(nn.Module):
    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.layer1 = nn.Sequential(nn.ReLU(), nn.Conv2d(4, 5, 3, stride=2, padding=1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(5, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.layer1(self.conv1(x))).flatten(1))


def test_capture_outputs_returns_layer_outputs_and_removes_hooks():
    torch.manual_seed(0)
    model = Tiny().eval()
    x = torch.randn(2, 3, 8, 8)
    with capture_outputs(model, ["conv1", "layer1.1"]) as outputs:
        model(x)
        torch.testing.assert_close(outputs["conv1"], model.conv1(x), rtol=0, atol=0)
        torch.testing.assert_close(
            outputs["layer1.1"], model.layer1(model.conv1(x)), rtol=0, atol=0
        )
    assert all(not m._forward_hooks for m in model.modules())
    with pytest.raises(RuntimeError, match="boom"), capture_outputs(model, ["conv1"]):
        raise RuntimeError("boom")
    assert all(not m._forward_hooks for m in model.modules())


def test_unknown_layer_lists_the_model_modules():
    with (
        pytest.raises(ValueError, match=r"layer4.*conv1.*layer1"),
        capture_outputs(Tiny(), ["layer4"]),
    ):
        pass


def test_extraction_writes_float16_rows_in_index_order(tmp_path):
    torch.manual_seed(1)
    model = Tiny().eval()
    images = torch.randn(7, 3, 8, 8)
    order = [[5, 0, 3], [6, 1], [2, 4]]  # a loader in scrambled order
    batches = [(images[idx], torch.tensor(idx)) for idx in order]
    paths = {"layer1": tmp_path / "layer1.npy", "fc": tmp_path / "fc.npy"}  # fc: 2-D output
    shapes = extract_activations(model, batches, n_images=7, outputs=paths)
    assert shapes == {"layer1": (7, 5, 4, 4), "fc": (7, 3, 1, 1)}
    stored = np.load(paths["layer1"])
    assert stored.dtype == np.float16
    with torch.no_grad():
        expected = model.layer1(model.conv1(images))
        logits = model(images)[:, :, None, None]
    np.testing.assert_array_equal(stored, expected.numpy().astype(np.float16))
    np.testing.assert_array_equal(np.load(paths["fc"]), logits.numpy().astype(np.float16))


def test_extraction_refuses_incomplete_or_overflowing_output(tmp_path):
    model = Tiny().eval()
    images = torch.randn(3, 3, 8, 8)
    with pytest.raises(ValueError, match="covered 2 of 3"):
        extract_activations(
            model,
            [(images[:2], torch.arange(2))],
            n_images=3,
            outputs={"conv1": tmp_path / "a.npy"},
        )
    with torch.no_grad():
        model.conv1.weight.mul_(1e6)
    with pytest.raises(ValueError, match="float16"):
        extract_activations(
            model, [(images, torch.arange(3))], n_images=3, outputs={"conv1": tmp_path / "b.npy"}
        )


def test_state_dict_formats_and_num_classes(tmp_path):
    model = Tiny(num_classes=7)
    state = model.state_dict()
    assert infer_num_classes(state) == 7
    for i, saved in enumerate(
        [state, {"state_dict": state, "epoch": 3}, {f"module.{k}": v for k, v in state.items()}]
    ):
        torch.save(saved, tmp_path / f"{i}.pt")
        loaded = load_state_dict(tmp_path / f"{i}.pt")
        assert list(loaded) == list(state)
        assert all(torch.equal(loaded[k], state[k]) for k in state)
    torch.save({"note": "not weights"}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="state dict"):
        load_state_dict(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="num_classes"):
        infer_num_classes({"conv.weight": torch.zeros(2, 3, 1, 1)})


def test_build_model_from_the_registry_and_from_torchvision():
    from prunedissect.models import get_model

    ours = get_model("resnet20", num_classes=5, width=4)
    rebuilt = build_model("resnet20", ours.state_dict(), model_kwargs={"width": 4})
    assert all(
        torch.equal(a, b)
        for a, b in zip(ours.state_dict().values(), rebuilt.state_dict().values(), strict=True)
    )
    import torchvision

    theirs = torchvision.models.get_model("squeezenet1_1", weights=None, num_classes=6)
    # squeezenet's classifier is a 1x1 conv: the class count must be given
    rebuilt = build_model("squeezenet1_1", theirs.state_dict(), num_classes=6)
    assert type(rebuilt) is type(theirs)
    with pytest.raises(ValueError, match="does not fit"):
        build_model("resnet20", ours.state_dict(), model_kwargs={"width": 8})
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("no_such_net", ours.state_dict())


class RedDetector(nn.Module):
    """conv1 unit 0 = R - B (1 on red pixels, -1 on blue); unit 1 = G (always 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 2, 1)
        self.fc = nn.Linear(2, 2)
        with torch.no_grad():
            self.conv1.weight.zero_()
            self.conv1.bias.zero_()
            self.conv1.weight[0, 0] = 1
            self.conv1.weight[0, 2] = -1
            self.conv1.weight[1, 1] = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv1(x).mean((2, 3)))


def test_a_red_detector_is_labelled_red_with_iou_one(tmp_path):
    broden = Broden(write_probe(tmp_path / "probe", n_images=6, size=8))
    # the red squares cover < 50% of the pixels, so the median threshold lies at -1
    settings = DissectionSettings(
        quantile=0.5,
        threshold_on="raw",
        iou_threshold=0.05,
        category_restricted=True,
        batch_size=4,
        bootstrap_replicates=20,
        bootstrap_seed=0,
    )
    results = dissect_model(
        RedDetector(),
        broden,
        layers=["conv1"],
        out_dir=tmp_path / "out",
        image_size=None,
        mean=(0, 0, 0),
        std=(1, 1, 1),
        settings=settings,
    )
    units = pd.read_parquet(tmp_path / "out/conv1/units.parquet")
    pd.testing.assert_frame_equal(units, results["conv1"].units)
    # red and the square object share their pixels exactly: the tie goes to red (label 1 < 3)
    assert units.loc[0, ["concept", "category"]].tolist() == ["red", "color"]
    assert units.loc[0, "iou"] == 1.0 and units.loc[0, "interpretable"]
    assert units.loc[0, "threshold"] == -1.0
    assert pd.isna(units.loc[1, "concept"]) and not units.loc[1, "interpretable"]
    tally = pd.read_parquet(tmp_path / "out/conv1/tally.parquet")
    square = tally[(tally["unit"] == 0) & (tally["concept"] == "square")].iloc[0]
    assert square["iou"] == 1.0 and square["category"] == "object"
    thresholds = pd.read_parquet(tmp_path / "out/conv1/thresholds.parquet")
    assert thresholds["unit"].tolist() == [0, 1]
    assert np.load(tmp_path / "out/conv1/activations.npy").shape == (6, 2, 8, 8)


def test_threshold_and_tally_imports_leave_torchvision_unloaded():
    # the threshold and tally jobs import these; torchvision would add ~1.5 s to each of them
    import subprocess
    import sys

    code = (
        "import sys; import prunedissect.dissection, prunedissect.devices, prunedissect.tables; "
        "print('torchvision' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
