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
    stores CPU boolean tensors.
    """

    def __init__(self, entries: Mapping[str, torch.Tensor | np.ndarray]) -> None:
        self._entries = {name: _as_bool(name, value) for name, value in entries.items()}

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

    @property
    def num_total(self) -> int:
        """Number of prunable weights."""
        return sum(m.numel() for m in self._entries.values())

    @property
    def num_remaining(self) -> int:
        """Number of weights still kept."""
        return sum(int(m.sum()) for m in self._entries.values())

    @property
    def density(self) -> float:
        """Fraction of prunable weights kept (1.0 for a full mask)."""
        total = self.num_total
        return self.num_remaining / total if total else 1.0

    def is_subset_of(self, other: Mask) -> bool:
        """True when every weight kept here is also kept by ``other`` (same names and shapes)."""
        if set(self) != set(other):
            return False
        return all(
            self[n].shape == other[n].shape and not bool((self[n] & ~other[n]).any()) for n in self
        )

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
        ``bits_i`` (uint8, packed, big-endian bit order) and ``shape_i`` (int64). The zip entries
        carry a fixed timestamp so the same mask always gives the same bytes. The file is written
        next to ``path`` and renamed into place, so a killed job never leaves half a mask.
        """
        arrays: dict[str, np.ndarray] = {"names": np.array(list(self._entries), dtype=str)}
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
            entries = {}
            for i, name in enumerate(names):
                shape = tuple(int(s) for s in data[f"shape_{i}"])
                count = int(np.prod(shape))
                bits = np.unpackbits(data[f"bits_{i}"], count=count).astype(bool)
                entries[name] = torch.from_numpy(bits.reshape(shape))
        return cls(entries)


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
