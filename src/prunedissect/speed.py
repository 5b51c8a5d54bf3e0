"""Inference speed of pruned networks (Crowley et al. 2018's comparison): latency and throughput.

A masked (unstructured) network stores and computes every weight, zeros included, so on dense
hardware it runs as fast as the dense network; a slimmed structured network
(:mod:`prunedissect.slimming`) and a reduced network (the same architecture, every layer
thinner) really are smaller. :func:`time_network` times one network: ``repeats`` forward passes
of one batch after ``warmup`` untimed ones, in eval mode without autograd, with
``torch.cuda.synchronize`` around each pass on a GPU; :func:`measure` reports the median per
batch size as latency (milliseconds per pass) and throughput (images per second), with the
parameters and multiply-accumulates (MACs, Torch-Pruning's ``count_ops_and_params``) beside
them. Read latency at batch 1 and throughput at batch 64.

Timings depend on the machine, its load, the kernels and the thread count, so the ``speed``
table is never byte-identical between runs and is not one of the golden-digest tables
(:data:`prunedissect.digests.TABLES`). Each row records the device, the CPU kernels
(``device_name``) and the threads it ran with.
"""

from __future__ import annotations

import contextlib
import copy
import statistics
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pandas as pd
import torch
from torch import nn

VARIANTS = ("dense", "masked", "slimmed", "reduced")
"""The networks compared: the dense level 0; a masked unstructured arm's checkpoint (dense
compute); a structured arm's checkpoint slimmed; a reduced arm's thinner network."""


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run the block with ``threads`` intra-op threads, then restore the previous count."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_network(
    model: nn.Module, inputs: torch.Tensor, *, warmup: int, repeats: int
) -> list[float]:
    """Seconds of each of ``repeats`` forward passes of ``inputs`` (after ``warmup`` untimed
    ones), on the device of ``inputs``; the model must already be there, in eval mode."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats} and {warmup}")
    device = inputs.device
    seconds = []
    with torch.inference_mode():
        for index in range(warmup + repeats):
            _synchronize(device)
            start = time.perf_counter()
            model(inputs)
            _synchronize(device)
            if index >= warmup:
                seconds.append(time.perf_counter() - start)
    return seconds


def count_macs(model: nn.Module, image_size: int, *, channels: int = 3) -> tuple[int, int]:
    """(multiply-accumulates per image, parameters) of ``model`` on the CPU, counted by
    Torch-Pruning (``tp.utils.count_ops_and_params``) on one image; zeros count like any
    weight (a masked network does the dense network's arithmetic)."""
    import torch_pruning as tp

    cpu = copy.deepcopy(model).cpu().eval()
    example = torch.zeros(1, channels, image_size, image_size)
    macs, params = tp.utils.count_ops_and_params(cpu, example)
    return int(macs), int(params)


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU kernels torch dispatches to (e.g. ``cpu-avx2``)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu-{torch.backends.cpu.get_cpu_capability().lower()}"


def available_devices(choice: str = "auto") -> list[torch.device]:
    """Devices to time on: the CPU, and the GPU too unless ``choice`` (config ``device``) is
    ``cpu`` or none is visible."""
    devices = [torch.device("cpu")]
    if choice != "cpu" and torch.cuda.is_available():
        devices.append(torch.device(choice if choice.startswith("cuda") else "cuda"))
    return devices


def measure(
    model: nn.Module,
    *,
    image_size: int,
    batch_sizes: Sequence[int] = (1, 64),
    devices: Iterable[torch.device] = (torch.device("cpu"),),
    threads: int,
    warmup: int,
    repeats: int,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per (device, batch size): the median pass time as ``latency_ms`` and
    ``batch / median`` as ``throughput_img_s``, with ``params``, ``nonzero_params`` and
    ``macs`` (:func:`count_macs`). Inputs are standard-normal images drawn from ``seed``;
    ``model`` itself is left on its device and in its mode."""
    macs, params = count_macs(model, image_size)
    nonzero = sum(int(torch.count_nonzero(p)) for p in model.parameters())
    generator = torch.Generator().manual_seed(seed)
    rows = []
    with torch_threads(threads):
        for device in devices:
            network = copy.deepcopy(model).to(device).eval()
            for batch in batch_sizes:
                inputs = torch.randn(batch, 3, image_size, image_size, generator=generator)
                seconds = time_network(network, inputs.to(device), warmup=warmup, repeats=repeats)
                median = statistics.median(seconds)
                rows.append(
                    {
                        "device": device.type,
                        "device_name": device_name(device),
                        "threads": threads,
                        "batch": batch,
                        "repeats": repeats,
                        "latency_ms": 1000.0 * median,
                        "throughput_img_s": batch / median,
                        "params": params,
                        "nonzero_params": nonzero,
                        "macs": macs,
                    }
                )
            del network
    return rows


def network_kwargs(
    arch: str, state_dict: Mapping[str, torch.Tensor], model_kwargs: Mapping[str, Any]
) -> dict[str, Any]:
    """The builder kwargs that load ``state_dict`` (a reduced network is narrower than the
    study's ``model_kwargs`` say).

    ISSUE 18a HOOK, the one place a reduced network's constructor kwargs come from: issue 18a
    adds :func:`prunedissect.models.kwargs_for_state_dict` (widths read from the tensor shapes).
    Until that is merged the study's kwargs are returned; then import it directly here.
    """
    try:
        from prunedissect.models import kwargs_for_state_dict  # type: ignore[attr-defined]
    except ImportError:  # before issue 18a's reduced networks are merged
        return dict(model_kwargs)
    return kwargs_for_state_dict(arch, state_dict, model_kwargs)


def speed_table(
    rows: Iterable[Mapping[str, Any]], accuracy: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The ``speed`` table (``prunedissect.tables.COLUMNS['speed']``) from :func:`measure` rows
    that also carry ``variant``, ``method``, ``trial`` and ``level``.

    ``density`` and ``top1`` come from the accuracy table's row of the same method, trial and
    level (level 0, the shared dense network, from any method's level-0 row of the trial);
    without one, ``density`` is the row's own value (NaN when absent) and ``top1`` NaN.
    """
    frame = pd.DataFrame(list(rows))
    if frame.empty:
        raise ValueError("no timings given; time at least the dense network")
    unknown = sorted(set(frame["variant"]) - set(VARIANTS))
    if unknown:
        raise ValueError(f"unknown variants {unknown}; allowed: {', '.join(VARIANTS)}")
    if "density" not in frame:
        frame["density"] = float("nan")
    frame["top1"] = float("nan")
    if accuracy is not None:
        found: dict[tuple, tuple[float, float]] = {}
        for row in accuracy.itertuples(index=False):
            value = (float(row.density), float(row.top1))
            found[(row.method, row.trial, row.level)] = value
            if row.level == 0:
                found.setdefault(("*", row.trial, 0), value)
        for index, row in frame.iterrows():
            key = ("*" if row["level"] == 0 else row["method"], row["trial"], row["level"])
            if key in found:
                frame.loc[index, ["density", "top1"]] = found[key]
    order = {variant: index for index, variant in enumerate(VARIANTS)}
    frame = frame.sort_values(
        ["device", "batch", "level", "variant", "method"],
        key=lambda column: column.map(order) if column.name == "variant" else column,
        kind="stable",
    )
    return frame.reset_index(drop=True)
