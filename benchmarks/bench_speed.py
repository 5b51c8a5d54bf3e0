"""Inference speed of dense, masked, slimmed and reduced networks at matching densities.

Crowley et al. (2018): unstructured sparsity gives no speed-up on dense hardware; a network
that is really smaller does. Random weights (the speed of a network does not depend on them);
at each density (fraction of conv and linear weights kept, as the accuracy table counts it):

- masked: global magnitude pruning to the density (``prune_global_magnitude``): dense shapes.
- slimmed: structured pruning in the style of Li et al. (2017) for ResNets: only the channels
  inside residual blocks (Torch-Pruning groups written by a single convolution; the
  residual-tied channels stay whole), the lowest-L1 filters of every block by one common
  fraction, zeroed and physically removed by ``prunedissect.slimming.slim``. Its smallest
  density is what the residual stream alone keeps; lower densities are reported as not reached.
- reduced: every channel group, the residual stream included, narrowed by one common fraction
  (what a width-multiplied constructor builds: Crowley et al.'s reduced network), built the same
  way. For resnet20 this is the ``width`` knob up to rounding.

Latency and throughput are the medians of ``prunedissect.speed.time_network`` (the timing the
``speed`` rule's ``measure`` uses); ``cpu_ms`` adds the process CPU time per pass.
The fraction is found by bisection on the kept weights (counted from the groups' shapes; the
slim network's count is asserted to match). Networks run at ``--threads`` CPU threads, and on
CUDA too when present. Run it niced on a shared machine::

    nice .venv/bin/python benchmarks/bench_speed.py --arch resnet20 --width 16 --image-size 32
    nice .venv/bin/python benchmarks/bench_speed.py --arch resnet50 --image-size 224 --classes 1000
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from torch import nn

from prunedissect import slimming, speed
from prunedissect.models import get_model
from prunedissect.pruning import Mask, prunable_parameters, prune_global_magnitude


def prunable_count(model: nn.Module) -> int:
    params = dict(model.named_parameters())
    return sum(params[name].numel() for name in prunable_parameters(model))


def masked(model: nn.Module, density: float) -> nn.Module:
    network = copy.deepcopy(model)
    mask = Mask.ones_like(network)
    mask = prune_global_magnitude(network.state_dict(), mask, fraction=1.0 - density)
    mask.apply_(network)
    return network


def channel_pruned(model: nn.Module, groups: list[slimming.ChannelGroup], keep: float) -> nn.Module:
    """Zero the lowest-L1 ``1 - keep`` of the channels of every group, then slim."""
    network = copy.deepcopy(model)
    modules = dict(network.named_modules())
    for group in groups:
        scores = torch.zeros(group.size)
        for name in group.filters:
            weight = modules[name].weight.detach()
            scores += weight.abs().flatten(1).sum(1)[list(group.writers[name])]
        drop = group.size - max(1, round(keep * group.size))
        order = sorted(range(group.size), key=lambda k: (float(scores[k]), k))
        slimming.zero_channels(network, group, order[:drop])
    return network


def kept_count(
    model: nn.Module, groups: list[slimming.ChannelGroup], pruned: list[slimming.ChannelGroup],
    keep: float,
) -> int:  # fmt: skip
    """Prunable weights left when every group of ``pruned`` keeps ``keep`` of its channels:
    each conv or linear weight shrinks by the channels its groups (as writer, as reader) lose."""
    kept = {id(group): group.size for group in groups}
    for group in pruned:
        kept[id(group)] = max(1, round(keep * group.size))
    outs: dict[str, int] = {}
    ins: dict[str, int] = {}
    for group in groups:
        for name in group.writers:
            outs[name] = kept[id(group)]
        for name in group.readers:
            ins[name] = kept[id(group)]
    modules = dict(model.named_modules())
    total = 0
    for name in prunable_parameters(model):
        module = name.removesuffix(".weight")
        weight = modules[module].weight
        out = outs.get(module, weight.shape[0])
        inp = ins.get(module, weight.shape[1])
        total += out * inp * weight[0, 0].numel()
    return total


def matched(
    model: nn.Module,
    groups: list[slimming.ChannelGroup],
    pruned: list[slimming.ChannelGroup],
    density: float,
    example: torch.Tensor,
) -> tuple[nn.Module, float] | None:
    """The slim network whose kept prunable weights come closest to ``density`` (bisection on
    the common keep fraction of the ``pruned`` groups), or None when even one channel per group
    keeps more."""
    target = density * prunable_count(model)
    if kept_count(model, groups, pruned, 0.0) > target * 1.02:
        return None
    low, high = 0.0, 1.0
    for _ in range(30):
        middle = (low + high) / 2
        if kept_count(model, groups, pruned, middle) > target:
            high = middle
        else:
            low = middle
    keep = min((low, high), key=lambda k: abs(kept_count(model, groups, pruned, k) - target))
    network = slimming.slim(channel_pruned(model, pruned, keep), example)
    assert prunable_count(network) == kept_count(model, groups, pruned, keep)
    return network, prunable_count(network) / prunable_count(model)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet20", choices=["resnet20", "resnet18", "resnet50"])
    parser.add_argument("--width", type=int, default=16, help="resnet20 only")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--densities", type=float, nargs="+", default=[0.5, 0.2, 0.1])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    torch.manual_seed(0)
    kwargs = {"width": args.width} if args.arch == "resnet20" else {}
    dense = get_model(args.arch, num_classes=args.classes, **kwargs).eval()
    example = slimming.example_input(args.image_size)
    groups = slimming.channel_groups(dense, example)
    inner = [group for group in groups if not group.residual]
    networks = [("dense", 1.0, dense)]
    for density in args.densities:
        networks.append(("masked", density, masked(dense, density)))
        for variant, chosen in (("slimmed", inner), ("reduced", groups)):
            found = matched(dense, groups, chosen, density, example)
            if found is None:
                print(f"# {variant} at density {density}: not reached (residual stream too big)")
                continue
            networks.append((variant, found[1], found[0]))

    devices = speed.available_devices("auto")
    print(
        f"# {args.arch} at {args.image_size} px, {args.threads} CPU thread(s), "
        f"{speed.device_name(devices[0])}; medians of {args.repeats} passes after "
        f"{args.warmup} warm-up passes; density = kept conv+linear weights; cpu_ms = CPU time "
        "per pass summed over threads, min_ms = fastest pass (both steadier than the median on a "
        "loaded machine)"
    )
    print(
        f"{'variant':8} {'density':>7} {'device':6} {'batch':>5} {'latency_ms':>11} "
        f"{'images/s':>10} {'min_ms':>9} {'cpu_ms':>9} {'params':>10} {'MMACs':>9}"
    )
    for variant, density, network in networks:
        macs, params = speed.count_macs(network, args.image_size)
        for device in devices:
            model = copy.deepcopy(network).to(device).eval()
            for batch in args.batch_sizes:
                inputs = torch.randn(batch, 3, args.image_size, args.image_size).to(device)
                with speed.torch_threads(args.threads):
                    cpu = time.process_time()
                    seconds = speed.time_network(
                        model, inputs, warmup=args.warmup, repeats=args.repeats
                    )
                    cpu = (time.process_time() - cpu) / (args.warmup + args.repeats)
                median = statistics.median(seconds)
                print(
                    f"{variant:8} {density:7.3f} {device.type:6} {batch:5d} "
                    f"{1000 * median:11.3f} {batch / median:10.1f} {1000 * min(seconds):9.3f} "
                    f"{1000 * cpu:9.2f} "
                    f"{params:10d} {macs / 1e6:9.2f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
