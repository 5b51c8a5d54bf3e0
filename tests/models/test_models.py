"""The model registry and the architectures it builds."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from prunedissect.config import model_kwargs
from prunedissect.models import get_model, list_models, register_model


def resnet20_parameter_count(width: int, classes: int) -> int:
    """Parameters of the option-B CIFAR ResNet-20, counted by hand layer by layer."""
    w = (width, 2 * width, 4 * width)

    def conv(cin, cout, k):
        return cin * cout * k * k

    def bn(c):
        return 2 * c

    total = conv(3, w[0], 3) + bn(w[0])
    cin = w[0]
    for stage, cout in enumerate(w):
        for block in range(3):
            total += conv(cin, cout, 3) + bn(cout) + conv(cout, cout, 3) + bn(cout)
            if stage > 0 and block == 0:
                total += conv(cin, cout, 1) + bn(cout)  # the projection shortcut
            cin = cout
    return total + w[2] * classes + classes


def test_registry_lists_the_four_architectures():
    assert {"resnet20", "resnet18", "resnet50", "googlenet"} <= set(list_models())
    assert list_models() == sorted(list_models())


def test_duplicate_registration_is_an_error():
    with pytest.raises(ValueError, match="already registered"):
        register_model("resnet20")(lambda *, num_classes: nn.Linear(1, num_classes))
    # The original builder is untouched.
    assert sum(p.numel() for p in get_model("resnet20", num_classes=10).parameters()) == (
        resnet20_parameter_count(16, 10)
    )


def test_unknown_model_names_the_registered_ones():
    with pytest.raises(ValueError, match="resnet20"):
        get_model("resnet21", num_classes=10)


@pytest.mark.parametrize("width", [16, 4])
def test_resnet20_has_the_hand_counted_parameters(width):
    model = get_model("resnet20", num_classes=7, width=width)
    assert sum(p.numel() for p in model.parameters()) == resnet20_parameter_count(width, 7)


def test_resnet20_module_names_and_shapes():
    model = get_model("resnet20", num_classes=5, width=8).eval()
    top = [name for name, _ in model.named_children()]
    assert top == ["conv1", "bn1", "layer1", "layer2", "layer3", "fc"]
    features = []
    model.layer3.register_forward_hook(lambda m, i, o: features.append(o.shape) and None)
    logits = model(torch.zeros(2, 3, 32, 32))
    assert logits.shape == (2, 5)
    assert features == [(2, 32, 8, 8)]  # 4 * width channels at 1/4 the side
    # Any input side works (global average pooling).
    assert model(torch.zeros(1, 3, 20, 20)).shape == (1, 5)


def test_resnet20_shortcuts_are_projections_only_where_shapes_change():
    model = get_model("resnet20", num_classes=10)
    assert isinstance(model.layer1[0].shortcut, nn.Identity)
    assert isinstance(model.layer2[0].shortcut, nn.Sequential)
    assert model.layer2[0].shortcut[0].stride == (2, 2)
    assert isinstance(model.layer2[1].shortcut, nn.Identity)


def test_resnet20_initialisation_follows_open_lth():
    model = get_model("resnet20", num_classes=10, generator=torch.Generator().manual_seed(0))
    scales = torch.cat(
        [m.weight.detach() for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    )
    assert float(scales.min()) >= 0.0 and float(scales.max()) < 1.0
    assert float(scales.std()) > 0.2  # uniform in [0, 1), not the constant 1
    conv = model.layer3[1].conv1.weight.detach()
    fan_in = conv.shape[1] * 9
    assert abs(float(conv.std()) - (2.0 / fan_in) ** 0.5) < 0.1 * (2.0 / fan_in) ** 0.5


def test_generator_seeds_the_init_without_touching_the_global_rng():
    state = torch.random.get_rng_state()
    a = get_model("resnet20", num_classes=3, width=4, generator=torch.Generator().manual_seed(1))
    b = get_model("resnet20", num_classes=3, width=4, generator=torch.Generator().manual_seed(1))
    c = get_model("resnet20", num_classes=3, width=4, generator=torch.Generator().manual_seed(2))
    assert torch.equal(torch.random.get_rng_state(), state)
    for (name, x), (_, y), (_, z) in zip(
        a.state_dict().items(), b.state_dict().items(), c.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_torchvision_models_take_the_class_count_and_no_weights():
    for name in ("resnet18", "resnet50"):
        model = get_model(name, num_classes=13)
        assert model.fc.out_features == 13
        assert model.layer4 is not None
    googlenet = get_model("googlenet", num_classes=13).eval()
    assert googlenet.aux1 is None and googlenet.aux2 is None
    assert googlenet(torch.zeros(1, 3, 64, 64)).shape == (1, 13)


def test_torchvision_models_reject_resnet20_arguments():
    with pytest.raises(TypeError):
        get_model("resnet18", num_classes=10, width=8)


def test_model_kwargs_from_the_config_section():
    assert model_kwargs({"arch": "resnet20", "width": 8}) == {"width": 8}
    assert model_kwargs({"arch": "resnet50", "width": 16}) == {}
