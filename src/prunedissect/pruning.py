"""Masks, global magnitude pruning and compact mask files.

A :class:`Mask` maps the name of every prunable parameter (the ``weight`` of each ``Conv2d`` and
``Linear`` module, minus excluded modules; never biases or BatchNorm) to a boolean tensor of the
parameter's shape: True keeps the weight, False prunes it. Masks are explicit: nothing is ever
inferred from zeros in a weight tensor.

:func:`prune_global_magnitude` is lottery-ticket pruning (Frankle & Carbin 2019; open_lth's
``sparse_global``): rank every still-alive prunable weight of the network by magnitude, all
tensors together, and remove the smallest ``fraction`` of them. Applied ``n`` times from a full
mask it leaves ``(1 - fraction) ** n`` of the weights (up to rounding to whole weights).
:func:`prune_one_shot` reaches that density in one ranking of the dense weights, and
:func:`random_mask` draws a mask of a given size without looking at any weight (the masks of the
arms of :mod:`prunedissect.methods`).
"""

from __future__ import annotations

import dataclasses
import io
import os
import zipfile
from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import torch
from torch import nn

from prunedissect.files import write_bytes_atomic

_NPZ_DATE = (1980, 1, 1, 0, 0, 0)  # fixed zip timestamp: same mask -> byte-identical file


def prunable_parameters(model: nn.Module, *, exclude: Iterable[str] = ()) -> list[str]:
    """Names of the prunable parameters of ``model``, in ``named_modules`` order.

    Prunable: the ``weight`` of every ``nn.Conv2d`` and ``nn.Linear``. ``exclude`` lists module
    names (e.g. ``conv1``, ``fc``) whose weights are kept whole; a container name excludes every
    module inside it (``layer1`` excludes ``layer1.0.conv1`` ...). A name that matches no module
    is an error, so a typo cannot silently prune a layer meant to be kept.
    """
    exclude = list(exclude)
    module_names = {name for name, _ in model.named_modules()}
    unknown = [name for name in exclude if name not in module_names]
    if unknown:
        raise ValueError(
            f"pruning.exclude names modules that do not exist: {unknown}; module names of this "
            f"model include: {', '.join(sorted(n for n in module_names if n and '.' not in n))}"
        )

    def excluded(name: str) -> bool:
        return any(name == e or name.startswith(e + ".") for e in exclude)

    return [
        f"{name}.weight"
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear) and not excluded(name)
    ]


def _as_bool(name: str, value: torch.Tensor | np.ndarray) -> torch.Tensor:
    tensor = torch.as_tensor(value).detach().cpu()
    if tensor.dtype == torch.bool:
        return tensor.clone()
    valid = (tensor == 0) | (tensor == 1)
    if not bool(valid.all()):
        bad = tensor[~valid].flatten()[:3].tolist()
        raise ValueError(
            f"mask entry {name!r} holds values other than 0 and 1 (e.g. {bad}); a mask marks "
            "kept weights with 1/True and pruned weights with 0/False"
        )
    return tensor.to(torch.bool)


class Mask(Mapping[str, torch.Tensor]):
    """An immutable mapping from parameter name to a boolean keep-tensor.

    Accepts boolean tensors or numeric ones holding only 0 and 1 (anything else is refused);
    stores CPU boolean tensors. ``uncounted`` names entries that are enforced but not counted
    as prunable weights (``num_total``, ``num_remaining``, ``density``): the BatchNorm scales
    and shifts (and conv biases) of the channels a structured mask removes
    (:func:`prune_channels`).
    """

    def __init__(
        self, entries: Mapping[str, torch.Tensor | np.ndarray], *, uncounted: Iterable[str] = ()
    ) -> None:
        self._entries = {name: _as_bool(name, value) for name, value in entries.items()}
        self.uncounted = frozenset(uncounted)
        unknown = sorted(self.uncounted - set(self._entries))
        if unknown:
            raise ValueError(f"uncounted names entries the mask lacks: {unknown[:5]}")

    @classmethod
    def ones_like(cls, model: nn.Module, *, exclude: Iterable[str] = ()) -> Mask:
        """The full mask (nothing pruned) over the prunable parameters of ``model``."""
        params = dict(model.named_parameters())
        names = prunable_parameters(model, exclude=exclude)
        return cls({name: torch.ones_like(params[name], dtype=torch.bool) for name in names})

    def __getitem__(self, name: str) -> torch.Tensor:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Mask({len(self)} tensors, {self.num_remaining}/{self.num_total} kept)"

    def _counted(self) -> Iterator[torch.Tensor]:
        return (m for n, m in self._entries.items() if n not in self.uncounted)

    @property
    def num_total(self) -> int:
        """Number of prunable weights (entries in :attr:`uncounted` are enforced, not counted)."""
        return sum(m.numel() for m in self._counted())

    @property
    def num_remaining(self) -> int:
        """Number of prunable weights still kept (:attr:`uncounted` entries left out)."""
        return sum(int(m.sum()) for m in self._counted())

    @property
    def density(self) -> float:
        """Fraction of prunable weights kept (1.0 for a full mask)."""
        total = self.num_total
        return self.num_remaining / total if total else 1.0

    def is_subset_of(self, other: Mask) -> bool:
        """True when every weight kept here is also kept by ``other``.

        Both must hold the same counted entries (same names and shapes); an uncounted entry
        only one of them holds counts as fully kept by the other (a structured mask adds the
        BatchNorm entries of its removed channels to a full mask).
        """
        if set(self) - self.uncounted != set(other) - other.uncounted:
            return False
        for name in set(self) | set(other):
            if name not in self:
                if not bool(other[name].all()):
                    return False
            elif name in other:
                if self[name].shape != other[name].shape:
                    return False
                if bool((self[name] & ~other[name]).any()):
                    return False
        return True

    def check_matches(self, model: nn.Module) -> None:
        """Raise ValueError unless the mask covers exactly named parameters of ``model``."""
        params = dict(model.named_parameters())
        missing = [name for name in self if name not in params]
        if missing:
            raise ValueError(
                f"mask names parameters the model lacks: {missing[:5]}; was the mask made for "
                "another architecture (config key model.arch / model.width)?"
            )
        wrong = [n for n in self if tuple(params[n].shape) != tuple(self[n].shape)]
        if wrong:
            name = wrong[0]
            raise ValueError(
                f"mask shape {tuple(self[name].shape)} != parameter shape "
                f"{tuple(params[name].shape)} for {name!r}"
            )

    @torch.no_grad()
    def apply_(self, model: nn.Module) -> None:
        """Zero the pruned weights of ``model`` in place."""
        self.check_matches(model)
        params = dict(model.named_parameters())
        for name, keep in self._entries.items():
            param = params[name]
            param.mul_(keep.to(device=param.device, dtype=param.dtype))

    def save(self, path: str | os.PathLike) -> None:
        """Write the mask bit-packed (``numpy.packbits``) into an ``.npz`` file.

        Layout: ``names`` (unicode array, mask order), and per index ``i`` the arrays
        ``bits_i`` (uint8, packed, big-endian bit order) and ``shape_i`` (int64); ``uncounted``
        (unicode array) only when some entries are not counted. The zip entries
        carry a fixed timestamp so the same mask always gives the same bytes. The file is written
        next to ``path`` and renamed into place, so a killed job never leaves half a mask.
        """
        arrays: dict[str, np.ndarray] = {"names": np.array(list(self._entries), dtype=str)}
        if self.uncounted:
            arrays["uncounted"] = np.array(sorted(self.uncounted), dtype=str)
        for i, keep in enumerate(self._entries.values()):
            arrays[f"bits_{i}"] = np.packbits(keep.numpy().reshape(-1))
            arrays[f"shape_{i}"] = np.array(keep.shape, dtype=np.int64)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for key, array in arrays.items():
                entry = io.BytesIO()
                np.lib.format.write_array(entry, array, allow_pickle=False)
                info = zipfile.ZipInfo(f"{key}.npy", date_time=_NPZ_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, entry.getvalue())
        write_bytes_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: str | os.PathLike) -> Mask:
        """Read a mask written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as data:
            names = [str(n) for n in data["names"]]
            uncounted = [str(n) for n in data["uncounted"]] if "uncounted" in data else []
            entries = {}
            for i, name in enumerate(names):
                shape = tuple(int(s) for s in data[f"shape_{i}"])
                count = int(np.prod(shape))
                bits = np.unpackbits(data[f"bits_{i}"], count=count).astype(bool)
                entries[name] = torch.from_numpy(bits.reshape(shape))
        return cls(entries, uncounted=uncounted)


def prune_global_magnitude(
    weights: Mapping[str, torch.Tensor], mask: Mask, *, fraction: float
) -> Mask:
    """Remove the ``fraction`` of still-alive weights with the smallest magnitude, globally.

    ``weights`` maps at least every name in ``mask`` to its trained tensor (a model's
    ``state_dict()`` will do). The number removed is ``round(fraction * alive)``; all alive
    weights of all tensors are ranked together by ``|w|`` and ties are broken by position (mask
    order, then flat index), so the result never depends on sort stability or hardware. Weights
    already pruned stay pruned: the new mask is a subset of ``mask``.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(
            f"fraction must be in [0, 1) (config key pruning.fraction), got {fraction}"
        )
    missing = [name for name in mask if name not in weights]
    if missing:
        raise ValueError(f"weights lack the masked parameters {missing[:5]}")
    magnitudes = []
    for name, keep in mask.items():
        weight = weights[name].detach().to("cpu", torch.float64)
        if tuple(weight.shape) != tuple(keep.shape):
            raise ValueError(
                f"weight shape {tuple(weight.shape)} != mask shape {tuple(keep.shape)} for {name!r}"
            )
        magnitudes.append(weight.abs().reshape(-1))
    flat_keep = torch.cat([keep.reshape(-1) for keep in mask.values()])
    flat_magnitude = torch.cat(magnitudes)
    alive = torch.nonzero(flat_keep).flatten()
    n_prune = _pruned_count(fraction, alive.numel())
    # Stable sort on magnitude: equal magnitudes keep position order, so ties are deterministic.
    order = torch.sort(flat_magnitude[alive], stable=True).indices
    new_keep = flat_keep.clone()
    new_keep[alive[order[:n_prune]]] = False
    return _unflatten(new_keep, mask)


def _pruned_count(fraction: float, alive: int) -> int:
    """Weights removed when pruning ``fraction`` of ``alive``: rounded half up."""
    return int(np.floor(fraction * alive + 0.5))


def _unflatten(flat: torch.Tensor, like: Mask) -> Mask:
    """A mask of ``like``'s names and shapes from ``flat``, its tensors concatenated in order."""
    entries, start = {}, 0
    for name, keep in like.items():
        entries[name] = flat[start : start + keep.numel()].reshape(keep.shape)
        start += keep.numel()
    return Mask(entries)


def level_density(fraction: float, level: int) -> float:
    """The scheduled density of level ``level``: ``(1 - fraction) ** level``."""
    return (1.0 - fraction) ** level


def kept_at_level(total: int, fraction: float, level: int) -> int:
    """Weights one-shot pruning keeps of ``total`` at ``level`` (rounding as
    :func:`prune_global_magnitude`)."""
    return total - _pruned_count(1.0 - level_density(fraction, level), total)


def prune_one_shot(
    weights: Mapping[str, torch.Tensor], mask: Mask, *, fraction: float, level: int
) -> Mask:
    """One-shot magnitude pruning straight to level ``level``'s density.

    Removes ``1 - (1 - fraction) ** level`` of the weights alive in ``mask`` (the dense
    network's full mask) in one global magnitude ranking of ``weights`` (the dense trained
    network), where iterative pruning reaches the same density in ``level`` rounds, retraining
    in between.
    """
    if level < 1:
        raise ValueError(f"one-shot pruning needs a level >= 1, got {level}")
    return prune_global_magnitude(weights, mask, fraction=1.0 - level_density(fraction, level))


def random_mask(
    reference: Mask,
    *,
    generator: torch.Generator,
    scope: str = "layerwise",
    keep: int | None = None,
) -> Mask:
    """A mask over ``reference``'s tensors keeping weights chosen uniformly at random.

    ``scope="layerwise"``: every tensor keeps exactly as many weights as ``reference`` keeps in
    it (the layer-wise proportions of a magnitude-pruned mask). ``scope="global"``: ``keep``
    weights (default: as many as ``reference`` keeps) drawn over all prunable weights together,
    so layers keep their share only on average. Which weights are kept depends on
    ``generator`` alone, never on any weight value.
    """
    if scope == "layerwise":
        if keep is not None:
            raise ValueError("keep is for scope 'global'; layerwise copies reference's counts")
        entries = {}
        for name, keep in reference.items():
            order = torch.randperm(keep.numel(), generator=generator)
            flat = torch.zeros(keep.numel(), dtype=torch.bool)
            flat[order[: int(keep.sum())]] = True
            entries[name] = flat.reshape(keep.shape)
        return Mask(entries)
    if scope == "global":
        count = reference.num_remaining if keep is None else keep
        if not 0 <= count <= reference.num_total:
            raise ValueError(f"keep must be in 0..{reference.num_total}, got {count}")
        order = torch.randperm(reference.num_total, generator=generator)
        flat = torch.zeros(reference.num_total, dtype=torch.bool)
        flat[order[:count]] = True
        return _unflatten(flat, reference)
    raise ValueError(f"scope must be 'layerwise' or 'global', got {scope!r}")


# --------------------------------------------------------------------------- structured


@dataclasses.dataclass(frozen=True)
class ChannelFamily:
    """Output channels pruned together: channel ``j`` of the family is, in every member,
    the index that member lists at position ``j``.

    ``outputs``: conv weights whose output filter ``W[i]`` produces the channel (several when a
    residual addition ties them: a stage's shortcut and every block's second conv); ``zeroed``:
    one-dimensional parameters of the channel (BatchNorm scale and shift, conv biases) set to
    zero with it, so its output is exactly 0; ``inputs``: conv and linear weights whose input
    slice ``W[:, i]`` reads the channel, masked too so the masked count equals the weights a
    physically slimmed network keeps. Each member is ``(parameter name, indices)``.
    """

    name: str
    size: int
    outputs: tuple[tuple[str, tuple[int, ...]], ...]
    zeroed: tuple[tuple[str, tuple[int, ...]], ...]
    inputs: tuple[tuple[str, tuple[int, ...]], ...]


def _index(value: object) -> int:
    return int(getattr(value, "idx", value))


def channel_families(
    model: nn.Module, example_inputs: torch.Tensor, *, exclude: Iterable[str] = ()
) -> list[ChannelFamily]:
    """The families of conv output channels of ``model`` that can be pruned whole.

    Torch-Pruning's dependency graph (Fang et al. 2023, ``torch_pruning.DependencyGraph``)
    traces one forward pass of ``example_inputs`` (on a copy in eval mode, so ``model``'s
    BatchNorm statistics are untouched) and groups every channel with the channels tied to it:
    the convolutions whose outputs a residual addition sums, their BatchNorms, the layers
    reading them. A family is left out when a member cannot be zeroed cleanly: a module named in
    ``exclude``, a grouped convolution, a BatchNorm without affine parameters, or a linear
    layer's outputs (the classifier's classes). A consumer whose indices do not map one to one
    onto the channels (a linear layer after flattening a spatial map) is not masked.
    """
    import torch_pruning as tp

    copy = _copy_for_tracing(model)
    names = {module: name for name, module in copy.named_modules()}
    prunable = set(prunable_parameters(copy, exclude=exclude))
    graph = tp.DependencyGraph().build_dependency(copy, example_inputs=example_inputs)
    linears = [m for m in copy.modules() if isinstance(m, nn.Linear)]
    families = []
    for group in graph.get_all_groups(ignored_layers=linears, root_module_types=[nn.Conv2d]):
        size = len(group[0].idxs)
        outputs, zeroed, inputs = [], [], []
        usable = True
        for item in group:
            module, handler = item.dep.target.module, item.dep.handler
            name = names.get(module)
            if name is None:
                continue  # a functional node of the trace (addition, activation, flatten)
            idxs = tuple(_index(i) for i in item.idxs)
            if graph.is_out_channel_pruning_fn(handler):
                if isinstance(module, nn.Conv2d) and module.groups == 1:
                    usable &= f"{name}.weight" in prunable
                    outputs.append((f"{name}.weight", idxs))
                    if module.bias is not None:
                        zeroed.append((f"{name}.bias", idxs))
                elif isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
                    zeroed += [(f"{name}.weight", idxs), (f"{name}.bias", idxs)]
                else:
                    usable = False
            elif isinstance(module, nn.Conv2d | nn.Linear) and f"{name}.weight" in prunable:
                if isinstance(module, nn.Conv2d) and module.groups != 1:
                    usable = False
                elif len(idxs) == size:
                    inputs.append((f"{name}.weight", idxs))
        if usable and outputs:
            families.append(
                ChannelFamily(
                    name=outputs[0][0].removesuffix(".weight"),
                    size=size,
                    outputs=tuple(outputs),
                    zeroed=tuple(zeroed),
                    inputs=tuple(inputs),
                )
            )
    return families


def _copy_for_tracing(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).cpu().eval()


def _alive_channels(family: ChannelFamily, keep: Mapping[str, torch.Tensor]) -> list[int]:
    name, idxs = family.outputs[0]
    return [j for j in range(family.size) if bool(keep[name][idxs[j]].any())]


def _channel_score(
    family: ChannelFamily,
    channel: int,
    weights: Mapping[str, torch.Tensor],
    keep: Mapping[str, torch.Tensor],
) -> float:
    """Mean absolute weight of the channel's output filters over every tied member: their
    summed L1 norm divided by their size (within one family, the order of Li et al.'s L1
    norm)."""
    total, count = 0.0, 0
    for name, idxs in family.outputs:
        weight = weights[name].detach().to("cpu", torch.float64)[idxs[channel]]
        total += float((weight.abs() * keep[name][idxs[channel]]).sum())
        count += weight.numel()
    return total / count


def _remove_channel(
    family: ChannelFamily, channel: int, keep: dict[str, torch.Tensor]
) -> int:
    """Mask ``channel`` of ``family`` in ``keep``; return how many counted weights it removed."""
    removed = 0
    for name, idxs in family.outputs:
        removed += int(keep[name][idxs[channel]].sum())
        keep[name][idxs[channel]] = False
    for name, idxs in family.inputs:
        removed += int(keep[name][:, idxs[channel]].sum())
        keep[name][:, idxs[channel]] = False
    for name, idxs in family.zeroed:
        keep[name][idxs[channel]] = False
    return removed


def prune_channels(
    weights: Mapping[str, torch.Tensor],
    mask: Mask,
    families: list[ChannelFamily],
    *,
    fraction: float,
    level: int,
    scope: str = "layer",
) -> Mask:
    """Structured pruning: remove whole channel families until level ``level``'s density.

    L1-norm filter pruning (Li et al. 2016, "Pruning Filters for Efficient ConvNets"): each
    alive channel of each family (:func:`channel_families`) is scored by the mean absolute
    weight of its output filters over every tied member (:func:`_channel_score`; ``weights`` are
    the trained tensors, read through ``mask``). ``scope="layer"``: channels leave one at a time
    from the family keeping the largest fraction of its channels (the lowest-scored channel of
    it), so every layer loses the same share; ``scope="global"``: lowest score first over all
    families. A removed channel masks its output filters, its consumers' input slices and its
    BatchNorm scale and shift (added to the mask as one-dimensional entries), so it outputs
    exactly zero and retraining cannot revive it. Every family keeps at least one channel.
    Removal stops at the step whose counted remainder (conv and linear weights) lies closest to
    ``kept_at_level(mask.num_total, fraction, level)``; ties keep more weights. ``mask``
    (level n-1's) is never revived: the result is a subset of it.
    """
    if scope not in ("layer", "global"):
        raise ValueError(f"scope must be 'layer' or 'global', got {scope!r}")
    target = kept_at_level(mask.num_total, fraction, level)
    keep = _with_zeroed(mask, families, weights)
    alive = [_alive_channels(f, keep) for f in families]
    scores = [
        {j: _channel_score(f, j, weights, keep) for j in channels}
        for f, channels in zip(families, alive, strict=True)
    ]
    order = _removal_order(families, alive, scores, scope)
    remaining = mask.num_remaining
    trial = {name: value.clone() for name, value in keep.items()}
    steps = [remaining]
    for index, channel in order:
        if remaining <= target:
            break
        remaining -= _remove_channel(families[index], channel, trial)
        steps.append(remaining)
    if remaining > target and len(steps) == len(order) + 1:
        raise ValueError(
            f"structured pruning cannot reach level {level}'s {target} weights: every layer is "
            f"down to one channel ({remaining} weights); use fewer pruning.levels or a smaller "
            "pruning.fraction"
        )
    chosen = min(range(len(steps)), key=lambda k: (abs(steps[k] - target), k))
    for index, channel in order[:chosen]:
        _remove_channel(families[index], channel, keep)
    zeroed = {name for family in families for name, _ in family.zeroed}
    return Mask(keep, uncounted=mask.uncounted | zeroed)


def _with_zeroed(
    mask: Mask, families: list[ChannelFamily], weights: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """``mask``'s entries (cloned) plus full entries for the families' one-dimensional members."""
    keep = {name: value.clone() for name, value in mask.items()}
    for family in families:
        for name, _ in family.zeroed:
            if name not in keep:
                keep[name] = torch.ones(weights[name].shape, dtype=torch.bool)
    return keep


def _removal_order(
    families: list[ChannelFamily],
    alive: list[list[int]],
    scores: list[dict[int, float]],
    scope: str,
) -> list[tuple[int, int]]:
    """(family index, channel) in the order channels leave; at least one per family stays."""
    ranked = [
        sorted(channels, key=lambda j, s=s: (s[j], j)) for channels, s in zip(alive, scores)
    ]
    if scope == "global":
        pool = [(scores[f][j], f, j) for f, channels in enumerate(ranked) for j in channels[:-1]]
        # a family's highest-scored channel never leaves (its cheaper ones are in the pool)
        return [(f, j) for _, f, j in sorted(pool)]
    order = []
    left = [len(channels) for channels in ranked]
    taken = [0] * len(families)
    while True:
        candidates = [f for f in range(len(families)) if left[f] - taken[f] > 1]
        if not candidates:
            return order
        f = max(candidates, key=lambda f: ((left[f] - taken[f]) / families[f].size, -f))
        order.append((f, ranked[f][taken[f]]))
        taken[f] += 1


# --------------------------------------------------------------------------- connections


def prune_connections(
    weights: Mapping[str, torch.Tensor], mask: Mask, *, fraction: float, level: int
) -> Mask:
    """Connection sparsity: remove whole kernel slices ``W[k, c]`` until level ``level``'s
    density.

    A slice is one unit's (output channel ``k``) weights reading input channel ``c``: a 3x3
    kernel of a convolution, a single weight of a 1x1 convolution or a linear layer. All alive
    slices of all prunable tensors are ranked together by their mean absolute weight (L1 norm
    over size, so kernels of different sizes compare), ties broken by position, and the lowest
    leave until the counted remainder is closest to ``kept_at_level(mask.num_total, fraction,
    level)`` (ties keep more). Units keep their outputs and lose input connections (von Rad &
    Seuffert 2024, "connection sparsity"). The result is a subset of ``mask``.
    """
    target = kept_at_level(mask.num_total, fraction, level)
    scores, counts, shapes = [], [], {}
    for name, keep in mask.items():
        if name in mask.uncounted:
            continue
        weight = weights[name].detach().to("cpu", torch.float64) * keep
        slices = weight.reshape(keep.shape[0], keep.shape[1], -1)
        shapes[name] = slices.shape
        scores.append(slices.abs().mean(dim=2).reshape(-1))
        counts.append(keep.reshape(keep.shape[0], keep.shape[1], -1).sum(dim=2).reshape(-1))
    flat_score, flat_count = torch.cat(scores), torch.cat(counts)
    alive = torch.nonzero(flat_count > 0).flatten()
    order = alive[torch.sort(flat_score[alive], stable=True).indices]
    removed = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(flat_count[order], 0)])
    gap = (mask.num_remaining - removed - target).abs()
    chosen = int(torch.nonzero(gap == gap.min()).flatten()[0])
    flat_alive = torch.ones(flat_score.numel(), dtype=torch.bool)
    flat_alive[order[:chosen]] = False
    entries, start = {}, 0
    for name, keep in mask.items():
        if name in mask.uncounted:
            entries[name] = keep
            continue
        n_slices = shapes[name][0] * shapes[name][1]
        slice_keep = flat_alive[start : start + n_slices].reshape(shapes[name][:2])
        start += n_slices
        entries[name] = keep & slice_keep.reshape(*shapes[name][:2], *([1] * (keep.ndim - 2)))
    return Mask(entries, uncounted=mask.uncounted)
