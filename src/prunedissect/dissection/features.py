"""Activation extraction: the output maps of named layers for every probe image.

Activations are taken with forward hooks registered by :func:`capture_outputs`, a context
manager that removes them on exit (no global hook lists), and written batch by batch into a
float16 ``.npy`` per layer, shape ``(N, K, h, w)`` in probe index order, through
``np.lib.format.open_memmap`` so memory stays bounded by one batch. float16 keeps ~3 significant
digits, ample for a top-0.5% threshold and 4x smaller than NetDissect's float64 memmaps; a value
beyond float16's range (65504) is an error rather than a silent ``inf``.

Checkpoints are plain state dicts (also accepted: a dict holding one under ``state_dict`` or
``model``, and ``module.``-prefixed keys from ``DataParallel``). The architecture is looked up
in :mod:`prunedissect.models` first, then among torchvision's models, so any
torchvision-compatible checkpoint can be dissected.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from prunedissect.checkpoints import write_checksum
from prunedissect.files import temporary_sibling
from prunedissect.torchfiles import read_torch

FLOAT16_MAX = float(np.finfo(np.float16).max)


@contextmanager
def capture_outputs(model: nn.Module, layers: Sequence[str]) -> Iterator[dict[str, torch.Tensor]]:
    """Within the block, every forward pass of ``model`` stores each named layer's output.

    Yields a dict ``layer name -> latest output``; the hooks are removed when the block exits,
    even on error. Unknown names raise ``ValueError`` listing the model's module names.
    """
    modules = dict(model.named_modules())
    unknown = [name for name in layers if name not in modules or name == ""]
    if unknown:
        names = [n for n in modules if n and "." not in n]
        raise ValueError(
            f"layer(s) {unknown} not found in {type(model).__name__}; its top-level modules are "
            f"{names} (nested ones are addressed with dots, e.g. 'layer4.2'); "
            "set dissection.layers / --layer accordingly"
        )
    outputs: dict[str, torch.Tensor] = {}
    handles = []

    def hook_for(name: str):
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            if not isinstance(output, torch.Tensor):
                raise TypeError(f"layer {name!r} returns {type(output).__name__}, not a tensor")
            outputs[name] = output

        return hook

    try:
        for name in layers:
            handles.append(modules[name].register_forward_hook(hook_for(name)))
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def extract_activations(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    n_images: int,
    outputs: Mapping[str, str | os.PathLike],
    device: torch.device | str = "cpu",
    logger: logging.Logger | None = None,
) -> dict[str, tuple[int, ...]]:
    """Run ``model`` over ``batches`` and write each layer's outputs to ``outputs[layer]``.

    ``batches`` yields ``(images, indices)`` (e.g. a ``DataLoader`` over
    :class:`~prunedissect.data.broden.BrodenImages`); row ``indices[b]`` of each file receives
    image ``b``'s maps, so the files are in probe index order whatever the loader's order.
    2-D outputs ``(B, K)`` are stored as ``(B, K, 1, 1)``. ``model`` is moved to ``device`` and
    put in eval mode. Each file is written beside its path and renamed into place when complete,
    then gets a ``.sha256`` sidecar (:mod:`prunedissect.checkpoints`). Returns each file's shape.
    """
    logger = logger or logging.getLogger(__name__)
    device = torch.device(device)
    model = model.to(device).eval()
    files: dict[str, np.memmap] = {}
    written = np.zeros(n_images, dtype=bool)
    start = time.perf_counter()
    with capture_outputs(model, list(outputs)) as captured, torch.inference_mode():
        for images, indices in batches:
            model(images.to(device, non_blocking=True))
            rows = np.asarray(indices, dtype=np.int64)
            if rows.size and (rows.min() < 0 or rows.max() >= n_images):
                raise IndexError(
                    f"image index out of range 0..{n_images - 1}: {rows.min()}..{rows.max()}"
                )
            for layer, path in outputs.items():
                maps = _as_maps(captured[layer], layer)
                if layer not in files:
                    files[layer] = np.lib.format.open_memmap(
                        temporary_sibling(path),
                        mode="w+",
                        dtype=np.float16,
                        shape=(n_images, *maps.shape[1:]),
                    )
                files[layer][rows] = _to_float16(maps, layer)
            written[rows] = True
    if not written.all():
        raise ValueError(
            f"the batches covered {int(written.sum())} of {n_images} images "
            f"(first missing: {int(np.flatnonzero(~written)[0])})"
        )
    elapsed = time.perf_counter() - start
    logger.info(
        "extracted %s for %d images in %.1f s (%.0f images/s)",
        ", ".join(outputs),
        n_images,
        elapsed,
        n_images / max(elapsed, 1e-9),
    )
    shapes = {}
    for layer, array in files.items():
        array.flush()
        shapes[layer] = tuple(array.shape)
        temporary = Path(array.filename)
        del array
        os.replace(temporary, outputs[layer])
        write_checksum(outputs[layer])
    files.clear()
    return shapes


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A checkpoint's weights as a plain state dict (see the module docstring for formats).

    An unreadable (e.g. truncated) file raises a ValueError naming it.
    """
    loaded = read_torch(path)
    if isinstance(loaded, Mapping):
        for key in ("state_dict", "model"):
            if key in loaded and isinstance(loaded[key], Mapping):
                loaded = loaded[key]
                break
    if not isinstance(loaded, Mapping) or not all(
        isinstance(v, torch.Tensor) for v in loaded.values()
    ):
        raise ValueError(
            f"{path} does not hold a state dict (a mapping of parameter names to tensors); "
            "save one with torch.save(model.state_dict(), path)"
        )
    return {key.removeprefix("module."): value for key, value in loaded.items()}


def infer_num_classes(state_dict: Mapping[str, torch.Tensor]) -> int:
    """The number of classes of a classifier checkpoint: rows of its last 2-D weight tensor.

    torchvision-style classifiers (ResNets, GoogLeNet, the CIFAR ResNet-20) end with the
    ``fc`` layer, so the last matrix in the state dict is the classifier.
    """
    matrices = [v for k, v in state_dict.items() if k.endswith("weight") and v.ndim == 2]
    if not matrices:
        raise ValueError(
            "cannot infer the number of classes: the state dict has no linear layer weight; "
            "pass num_classes explicitly (--num-classes)"
        )
    return int(matrices[-1].shape[0])


def build_model(
    arch: str,
    state_dict: Mapping[str, torch.Tensor],
    *,
    num_classes: int | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
) -> nn.Module:
    """Instantiate ``arch`` and load ``state_dict`` into it strictly.

    ``arch`` is a :func:`prunedissect.models.list_models` name or a torchvision model name
    (built with ``weights=None``: nothing is downloaded). ``num_classes`` defaults to
    :func:`infer_num_classes`.
    """
    from prunedissect.models import get_model, list_models

    num_classes = infer_num_classes(state_dict) if num_classes is None else num_classes
    kwargs = dict(model_kwargs or {})
    if arch in list_models():
        model = get_model(arch, num_classes=num_classes, **kwargs)
    else:
        import torchvision

        if arch not in torchvision.models.list_models():
            raise ValueError(
                f"unknown architecture {arch!r}: neither a prunedissect model "
                f"({', '.join(list_models())}) nor a torchvision one "
                "(torchvision.models.list_models())"
            )
        model = torchvision.models.get_model(arch, weights=None, num_classes=num_classes, **kwargs)
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:
        raise ValueError(_misfit_message(arch, num_classes, kwargs, state_dict, error)) from None
    return model


def _misfit_message(
    arch: str,
    num_classes: int,
    kwargs: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    error: RuntimeError,
    *,
    detail_lines: int = 6,
) -> str:
    """A one-line diagnosis (what the checkpoint looks like), then the first mismatches."""
    from prunedissect.models.diagnose import guess_architecture

    guess = guess_architecture(state_dict)
    conv1 = state_dict.get("conv1.weight")
    evidence = f" (conv1.weight has shape {tuple(conv1.shape)})" if conv1 is not None else ""
    looks = f"; it looks like {guess}{evidence}" if guess else ""
    details = [line.strip() for line in str(error).splitlines() if line.strip()]
    shown = details[:detail_lines]
    more = f"\n  ... {len(details) - len(shown)} more lines" if len(details) > len(shown) else ""
    return (
        f"the checkpoint does not fit {arch} with {num_classes} classes and {dict(kwargs) or 'no'}"
        f" extra arguments{looks} (CLI: --arch, --model-kwarg width=N; workflow: model.arch, "
        "model.width)\n  details: "
        + "\n  ".join(shown)
        + more
    )


def _as_maps(output: torch.Tensor, layer: str) -> torch.Tensor:
    if output.ndim == 2:
        return output[:, :, None, None]
    if output.ndim != 4:
        raise ValueError(
            f"layer {layer!r} outputs shape {tuple(output.shape)}; dissection needs "
            "(B, K, h, w) feature maps or (B, K) vectors"
        )
    return output


def _to_float16(maps: torch.Tensor, layer: str) -> np.ndarray:
    values = maps.detach().float()
    largest = float(values.abs().max()) if values.numel() else 0.0
    if not np.isfinite(largest) or largest > FLOAT16_MAX:
        raise ValueError(
            f"layer {layer!r} produced {largest:g}, beyond float16's range (65504) or not finite; "
            "the checkpoint or the input normalisation (dataset.mean/std) is probably wrong"
        )
    return values.to(torch.float16).cpu().numpy()
