"""Physical slimming: masked structured networks become smaller networks with the same outputs.

The channel groups come from Torch-Pruning (prunedissect.slimming.channel_groups), never from
hand-written dependencies. The reference for the slim network's size is brute force: hooks
record which input and output channels of every layer are identically zero in the masked
network on random images, and a layer's parameters count as alive when they join a live input
channel to a live output channel.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
import torchvision
from torch import nn

from prunedissect import slimming
from prunedissect.models import get_model

NETWORKS = {  # name: (builder, image side of the example input)
    "resnet20": (lambda: get_model("resnet20", num_classes=10, width=8), 32),
    "resnet18": (lambda: torchvision.models.resnet18(num_classes=10), 64),
    "resnet50": (lambda: torchvision.models.resnet50(num_classes=10), 96),
}


def _trained_looking_batchnorm(model: nn.Module, side: int, generator: torch.Generator) -> None:
    """BatchNorm layers like a trained network's: random scales and shifts near 1 and 0 except
    where a channel is pruned (zero stays zero), running statistics of random images through
    the pruned network, so that every live channel is centred."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                alive = (module.weight != 0) | (module.bias != 0)
                n = module.num_features
                module.weight.copy_((0.5 + torch.rand(n, generator=generator)) * alive)
                module.bias.copy_(0.1 * torch.randn(n, generator=generator) * alive)
                module.reset_running_stats()
                module.momentum = None  # cumulative average over the calibration batches
        model.train()
        for _ in range(2):
            model(torch.randn(8, 3, side, side, generator=generator))
    model.eval()


def _masked_network(name: str, seed: int = 0):
    """(masked network, example input, the zeroed groups): every group loses a quarter of its
    channels, chosen at random; the residual-tied groups included."""
    builder, side = NETWORKS[name]
    torch.manual_seed(seed)
    model = builder().eval()
    generator = torch.Generator().manual_seed(seed)
    example = slimming.example_input(side)
    groups = slimming.channel_groups(model, example)
    for group in groups:
        chosen = torch.randperm(group.size, generator=generator)[: group.size // 4].tolist()
        slimming.zero_channels(model, group, chosen)
    _trained_looking_batchnorm(model, side, generator)
    return model, example, groups


def _alive_parameters(model: nn.Module, side: int) -> int:
    """Brute force: parameters joining a live input channel to a live output channel, where a
    channel is dead when it is exactly zero at every position of 32 random images (a live
    channel is positive at about half of them after a ReLU, so none vanishes by chance)."""
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [
        module.register_forward_hook(
            lambda m, inputs, output, name=name: seen.__setitem__(
                name,
                (inputs[0].clone(), output.clone()),  # before an in-place ReLU
            )
        )
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear | nn.BatchNorm2d)
    ]
    generator = torch.Generator().manual_seed(123)
    with torch.no_grad():
        model(torch.randn(32, 3, side, side, generator=generator))
    for hook in hooks:
        hook.remove()

    def live(tensor: torch.Tensor) -> torch.Tensor:
        dims = [d for d in range(tensor.dim()) if d != 1]
        return tensor.abs().amax(dim=dims) > 0

    total = 0
    modules = dict(model.named_modules())
    for name, (inputs, output) in seen.items():
        module = modules[name]
        out_live = int(live(output).sum())
        if isinstance(module, nn.BatchNorm2d):
            total += 2 * out_live
            continue
        assert getattr(module, "groups", 1) == 1
        in_live = int(live(inputs).sum())
        per_pair = module.weight[0, 0].numel()
        total += out_live * in_live * per_pair + (out_live if module.bias is not None else 0)
    return total


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_slim_network_matches_its_masked_twin(name):
    masked, example, groups = _masked_network(name)
    assert any(group.residual for group in groups), "no residual-tied group was zeroed"
    slim = slimming.slim(masked, example)

    difference = slimming.check_slim(masked, slim, example)
    assert difference <= slimming.TOLERANCE
    side = example.shape[-1]
    assert slimming.count_parameters(slim) == _alive_parameters(masked, side)
    assert slimming.count_parameters(slim) < slimming.count_parameters(masked)
    # a residual-tied group really lost its channels in every block that writes the stream
    tied = next(group for group in groups if group.residual)
    modules = dict(slim.named_modules())
    kept = tied.size - len(slimming.dead_channels(masked, tied))
    for writer in tied.writers:
        width = modules[writer].weight.shape[0]
        assert width == kept, f"{writer} kept {width} channels, expected {kept}"


def test_channels_zeroed_in_only_some_writers_are_kept():
    builder, side = NETWORKS["resnet20"]
    torch.manual_seed(0)
    model = builder().eval()
    example = slimming.example_input(side)
    tied = next(g for g in slimming.channel_groups(model, example) if g.residual)
    modules = dict(model.named_modules())
    first = tied.filters[0]
    with torch.no_grad():  # the filter of one writer only: the channel is still live
        modules[first].weight[tied.writers[first][0]].zero_()
    assert slimming.dead_channels(model, tied) == []
    slim = slimming.slim(model, example)
    assert slimming.count_parameters(slim) == slimming.count_parameters(model)
    assert slimming.max_output_difference(model, slim, example) <= slimming.TOLERANCE


def test_check_slim_rejects_a_network_with_other_outputs():
    masked, example, _ = _masked_network("resnet20")
    slim = slimming.slim(masked, example)
    with torch.no_grad():
        slim.fc.bias.add_(1e-3)
    with pytest.raises(slimming.SlimmingError, match="differ from the masked network"):
        slimming.check_slim(masked, slim, example)


def test_saved_slim_network_loads_without_pruning_code(tmp_path):
    masked, example, _ = _masked_network("resnet18")
    slim = slimming.slim(masked, example)
    path = tmp_path / "slim.pt2"
    slimming.save_slim(slim, path, example)
    assert (tmp_path / "slim.pt2.sha256").exists()
    batch = torch.randn(3, *example.shape[1:], generator=torch.Generator().manual_seed(5))
    torch.save({"batch": batch, "masked": masked(batch).detach()}, tmp_path / "io.pt")
    script = textwrap.dedent(
        """
        import json, sys
        import torch
        network = torch.export.load(sys.argv[1]).module()
        io = torch.load(sys.argv[2])
        with torch.no_grad():
            out = network(io["batch"])
            one = network(io["batch"][:1])  # the batch dimension is dynamic
        print(json.dumps({
            "difference": (out - io["masked"]).abs().max().item(),
            "difference_one": (one - io["masked"][:1]).abs().max().item(),
            "parameters": sum(p.numel() for p in network.parameters()),
            "imported": sorted(m for m in sys.modules
                               if m.split(".")[0] in ("torch_pruning", "prunedissect")),
        }))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(path), str(tmp_path / "io.pt")],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["imported"] == []
    assert result["difference"] <= slimming.TOLERANCE
    assert result["difference_one"] <= slimming.TOLERANCE
    assert result["parameters"] == slimming.count_parameters(slim)
    # and through the library's loader, which checks the sidecar first
    assert slimming.count_parameters(slimming.load_slim(path)) == slimming.count_parameters(slim)
