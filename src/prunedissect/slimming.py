"""Physical slimming: a structured-pruned (masked) network as a physically smaller one.

Structured pruning here keeps the network's shapes and zeroes whole output channels: the
channel's filter in every convolution (or linear layer) that writes it, and the weight and bias
of every BatchNorm that normalises it. Such a channel is exactly zero everywhere (a BatchNorm
with zero scale and shift outputs 0; additions, ReLU and pooling of zeros stay 0), so the layers
that read it gain nothing from its input slices. :func:`slim` removes those channels for real,
with Torch-Pruning's dependency graph (Fang et al., "DepGraph: Towards Any Structural Pruning",
CVPR 2023; ``torch_pruning``), which finds the channels that must go together: a residual
addition ties the channels of every block of a stage to the shortcut and the stem, and removing
one of them means removing it from every layer that writes or reads that stream.

- :func:`channel_groups`: Torch-Pruning's coupled channel groups of a network, as plain data
  (which module writes or reads which channel of each group); tests and the structured masks use
  them instead of hand-written channel dependencies.
- :func:`zero_channels`: zero channels of one group in every layer that writes them (what a
  structured mask does to a network).
- :func:`dead_channels`: the channels of a group that every writing layer has zeroed.
- :func:`slim`: remove every dead channel; the result is an ordinary ``nn.Module``.
- :func:`max_output_difference` and :func:`check_slim`: the check, on random inputs.
- :func:`save_slim` / :func:`load_slim`: the slim network as a ``torch.export`` program
  (``.pt2``) with a checksum sidecar; it loads with ``torch.export.load(path).module()`` alone,
  without this package, Torch-Pruning or the model's Python class.

Why ``torch.export`` and not TorchScript or a pickled module: a slim network's layer shapes no
longer match its architecture's constructor, so a ``state_dict`` cannot be loaded into a freshly
built model, and pickling the module (``torch.save(model)``) needs the model's classes at load
time plus an unsafe ``weights_only=False`` load. TorchScript (``torch.jit.trace``/``save``)
would carry the graph too, but torch 2.14 marks it deprecated in favour of ``torch.export``. An
exported program stores the graph of ATen operations with the weights, is loaded by torch
itself, and is saved here with a dynamic batch dimension, so one file serves batch 1 and 64.

A channel counts as removable only when *every* layer writing it is zero at that channel
(convolution or linear filter and bias, BatchNorm weight and bias), which is exactly the
condition under which removing it leaves the outputs unchanged. A group whose channels are all
dead keeps one (zero) channel, because a layer cannot have none; its parameters then remain.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
from torch import nn

TOLERANCE = 1e-5
"""Largest allowed max absolute output difference between a slim network and its masked twin."""

_FILTERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)
_PRODUCERS = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)


class SlimmingError(ValueError):
    """A network cannot be slimmed as asked (unsupported layer, outputs that differ)."""


@dataclasses.dataclass(frozen=True)
class ChannelGroup:
    """Channels that exist together: removing channel ``k`` removes it from every listed layer.

    ``writers`` and ``readers`` map module names (``model.named_modules()``) to the index, in
    that module, of each of the group's ``size`` channels: ``writers[name][k]`` is the output
    channel of ``name`` that is the group's channel ``k``, ``readers[name][k]`` the input channel.
    ``root`` is the convolution or linear layer Torch-Pruning grew the group from.
    """

    root: str
    size: int
    writers: dict[str, tuple[int, ...]]
    readers: dict[str, tuple[int, ...]]
    filters: tuple[str, ...]
    """The writers that are convolutions or linear layers (the rest normalise)."""

    @property
    def residual(self) -> bool:
        """True when several layers' filters write the group (channels tied by an addition)."""
        return len(self.filters) > 1


def _tp():
    import torch_pruning  # imported here: loading a slim network must not need it

    return torch_pruning


def _output_modules(model: nn.Module, example_input: torch.Tensor) -> list[nn.Module]:
    """Modules whose output is the network's output (their output channels are never pruned)."""
    outputs: dict[int, nn.Module] = {}
    handles = [
        module.register_forward_hook(lambda m, _i, out: outputs.__setitem__(id(out), m))
        for module in model.modules()
        if module is not model
    ]
    try:
        with torch.no_grad():
            result = model(example_input)
    finally:
        for handle in handles:
            handle.remove()
    results = result if isinstance(result, tuple | list) else [result]
    return [outputs[id(out)] for out in results if id(out) in outputs]


def _dependency_graph(model: nn.Module, example_input: torch.Tensor):
    tp = _tp()
    return tp.DependencyGraph().build_dependency(model, example_inputs=example_input, verbose=False)


def _groups(model: nn.Module, example_input: torch.Tensor):
    """(dependency graph, [(tp group, ChannelGroup)]) of ``model`` (in eval mode)."""
    graph = _dependency_graph(model, example_input)
    names = {module: name for name, module in model.named_modules()}
    modules = dict(model.named_modules())
    found = []
    for group in graph.get_all_groups(
        ignored_layers=_output_modules(model, example_input),
        root_module_types=_FILTERS,
    ):
        writers: dict[str, dict[int, int]] = {}
        readers: dict[str, dict[int, int]] = {}
        for dep, idxs in group:
            module = dep.target.module
            if module not in names or not any(True for _ in module.parameters(recurse=False)):
                continue  # additions, activations, reshapes: nothing stored
            if graph.is_out_channel_pruning_fn(dep.handler):
                table = writers
            elif graph.is_in_channel_pruning_fn(dep.handler):
                table = readers
            else:
                continue
            table.setdefault(names[module], {}).update(
                (getattr(i, "root_idx", i), getattr(i, "idx", i)) for i in idxs
            )
        root = names[group[0].dep.target.module]
        size = len(group[0].idxs)
        found.append(
            (
                group,
                ChannelGroup(
                    root=root,
                    size=size,
                    writers={n: tuple(m[k] for k in range(size)) for n, m in writers.items()},
                    readers={n: tuple(m[k] for k in range(size)) for n, m in readers.items()},
                    filters=tuple(n for n in writers if isinstance(modules[n], _FILTERS)),
                ),
            )
        )
    return graph, found


def channel_groups(model: nn.Module, example_input: torch.Tensor) -> list[ChannelGroup]:
    """Torch-Pruning's groups of coupled channels of ``model`` for inputs like ``example_input``.

    The output layer (whose output is the network's output) is left out: its channels are the
    classes. The model is traced in eval mode and left unchanged.
    """
    model = copy.deepcopy(model).eval()
    return [channel_group for _, channel_group in _groups(model, example_input)[1]]


def _writer_slices(module: nn.Module, index: int) -> list[torch.Tensor]:
    """The parameters of ``module`` that produce its output channel ``index``."""
    if not isinstance(module, _PRODUCERS):
        raise SlimmingError(
            f"cannot tell whether a {type(module).__name__} output channel is zero; slimming "
            f"supports {', '.join(t.__name__ for t in _PRODUCERS)} as channel writers"
        )
    if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d) and not module.affine:
        raise SlimmingError(
            f"a BatchNorm without affine parameters ({module}) cannot zero a channel"
        )
    return [p[index] for p in (module.weight, module.bias) if p is not None]


def zero_channels(model: nn.Module, group: ChannelGroup, channels: Iterable[int]) -> None:
    """Zero ``channels`` (indices into ``group``) in every layer that writes them, in place:
    the filters and biases of convolutions and linear layers, BatchNorm weights and biases."""
    modules = dict(model.named_modules())
    with torch.no_grad():
        for channel in channels:
            for name, indices in group.writers.items():
                for tensor in _writer_slices(modules[name], indices[channel]):
                    tensor.zero_()


def dead_channels(model: nn.Module, group: ChannelGroup) -> list[int]:
    """The channels of ``group`` that every layer writing them has zeroed (removable exactly)."""
    modules = dict(model.named_modules())
    return [
        channel
        for channel in range(group.size)
        if all(
            not torch.any(tensor)
            for name, indices in group.writers.items()
            for tensor in _writer_slices(modules[name], indices[channel])
        )
    ]


def slim(model: nn.Module, example_input: torch.Tensor) -> nn.Module:
    """A physically smaller copy of ``model`` without its dead channels (:func:`dead_channels`
    of every :func:`channel_group <channel_groups>`), in eval mode; ``model`` is unchanged.

    ``example_input`` (e.g. one image of the network's input size) is traced to find the
    channel dependencies. Check the result with :func:`max_output_difference`.
    """
    slimmed = copy.deepcopy(model).eval()
    graph, groups = _groups(slimmed, example_input)
    plans = []
    for group, channel_group in groups:
        dead = dead_channels(slimmed, channel_group)
        if len(dead) == channel_group.size:
            dead = dead[1:]  # a layer needs one channel: keep a zero one
        if dead:
            plans.append((group[0].dep.target.module, group[0].dep.handler, dead))
    for module, handler, dead in plans:
        pruning = graph.get_pruning_group(module, handler, dead)
        if not graph.check_pruning_group(pruning):
            raise SlimmingError(f"Torch-Pruning refuses to remove channels {dead} of {module}")
        pruning.prune()
    return slimmed


def count_parameters(model: nn.Module) -> int:
    """Number of parameter values a network stores (zeros included)."""
    return sum(parameter.numel() for parameter in model.parameters())


def max_output_difference(
    reference: nn.Module,
    candidate: nn.Module,
    example_input: torch.Tensor,
    *,
    batches: int = 4,
    seed: int = 0,
    dtype: torch.dtype | None = None,
) -> float:
    """Max absolute difference of the two networks' outputs over ``batches`` batches of
    standard-normal inputs shaped like ``example_input`` (drawn from ``seed``), in eval mode.

    ``dtype`` (e.g. ``torch.float64``) compares copies of both networks cast to it; by default
    they run as they are.
    """
    if dtype is not None:
        reference = copy.deepcopy(reference).to(dtype)
        candidate = copy.deepcopy(candidate).to(dtype)
    generator = torch.Generator().manual_seed(seed)
    reference.eval()
    candidate.eval()
    worst = 0.0
    with torch.no_grad():
        for _ in range(batches):
            inputs = torch.randn(example_input.shape, generator=generator)
            inputs = inputs.to(example_input.device, dtype or example_input.dtype)
            difference = (reference(inputs) - candidate(inputs)).abs().max().item()
            worst = max(worst, float(difference))
    return worst


def check_slim(
    masked: nn.Module, slimmed: nn.Module, example_input: torch.Tensor, *, seed: int = 0
) -> float:
    """The max absolute output difference of the two networks in float64 (the precision that
    shows whether the surgery is exact); :class:`SlimmingError` above :data:`TOLERANCE`.

    Why float64: in float32 the slim network's convolutions sum over fewer channels in other
    kernel blockings, so its outputs differ from the masked network's by float32 rounding that
    grows with depth (about 1e-6 for ResNet-18, 1.5e-5 for a random-weight ResNet-50, whose
    float64 difference is 2e-15); a channel removed wrongly shows up as 1e-3 or more either way.
    :func:`max_output_difference` without ``dtype`` gives the float32 figure.
    """
    difference = max_output_difference(
        masked, slimmed, example_input, seed=seed, dtype=torch.float64
    )
    if not difference <= TOLERANCE:
        raise SlimmingError(
            f"the slim network's outputs differ from the masked network's by up to "
            f"{difference:.3g} (allowed {TOLERANCE:g}); a pruned channel is not zero in every "
            "layer that writes it (filter, bias, BatchNorm weight and bias), or the network "
            "holds an operation Torch-Pruning does not follow"
        )
    return difference


def save_slim(model: nn.Module, path: str | os.PathLike, example_input: torch.Tensor) -> None:
    """Save ``model`` as a ``torch.export`` program with a dynamic batch dimension (atomic
    write and ``.sha256`` sidecar); :func:`load_slim` or ``torch.export.load`` reads it."""
    from prunedissect.checkpoints import write_verified

    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    # traced at batch 2: an example batch of 1 would let the exporter specialise the size
    example = example_input[:1].expand(2, *example_input.shape[1:]).contiguous()
    program = torch.export.export(
        model.eval(), (example,), dynamic_shapes=({0: batch},), strict=False
    )
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    write_verified(path, buffer.getvalue())


def load_slim(path: str | os.PathLike) -> nn.Module:
    """The network saved by :func:`save_slim`, after checking its sidecar (needs torch only:
    ``torch.export.load(path).module()`` does the same without the check)."""
    from prunedissect.checkpoints import verify

    verify(path)
    return torch.export.load(Path(path)).module()


def example_input(image_size: int, *, channels: int = 3, batch: int = 1) -> torch.Tensor:
    """A zero image batch of the network's input size (what :func:`slim` traces with)."""
    return torch.zeros(batch, channels, image_size, image_size)


__all__: Sequence[str] = (
    "TOLERANCE",
    "ChannelGroup",
    "SlimmingError",
    "channel_groups",
    "check_slim",
    "count_parameters",
    "dead_channels",
    "example_input",
    "load_slim",
    "max_output_difference",
    "save_slim",
    "slim",
    "zero_channels",
)
