"""Speed and memory of the dissection steps for one model and probe set.

Default: ResNet-20 (random weights, or --checkpoint) on a generated concept-world probe of 1000
images at 32 px, layer3. Larger, e.g.::

    python benchmarks/bench_dissection.py --arch resnet50 --size 224 --images 2000 --layer layer4

Prints images/s of the forward pass alone (images already in memory), of extraction (image
loading + forward + float16 write), of the label encoding (once per probe set), of the
thresholds and of the IoU tally, plus peak memory: process RSS (getrusage), numpy allocations
per step (tracemalloc) and CUDA memory (torch.cuda.max_memory_allocated). The target is
thresholds + IoU <= half the forward-pass time.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prunedissect.data.broden import Broden
from prunedissect.devices import resolve_device
from prunedissect.dissection import (
    build_model,
    encode_probe_labels,
    extract_activations,
    label_units,
    load_state_dict,
    probe_loader,
    tally_iou,
    tally_table,
    unit_thresholds,
)
from prunedissect.models import get_model


def measure(
    name: str, n_images: int, step: Callable[[], Any], device: torch.device
) -> tuple[Any, float]:
    """Run ``step`` once; print seconds, images/s and memory; return its result and seconds."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    tracemalloc.start()
    start = time.perf_counter()
    result = step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    _, numpy_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB on Linux
    line = (
        f"{name:<22} {seconds:8.3f} s {n_images / seconds:10.0f} images/s   "
        f"numpy peak {numpy_peak / 2**20:7.1f} MiB   process peak RSS {rss:7.0f} MiB"
    )
    if device.type == "cuda":
        line += f"   CUDA peak {torch.cuda.max_memory_allocated() / 2**20:7.0f} MiB"
    print(line, flush=True)
    return result, seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", default="resnet20")
    parser.add_argument("--checkpoint", default=None, help="state dict (default: random init)")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--layer", default=None, help="default layer3 (resnet20) / layer4")
    parser.add_argument("--probe", default=None, help="Broden directory (default: generate one)")
    parser.add_argument("--images", type=int, default=1000, help="generated probe size")
    parser.add_argument("--size", type=int, default=32, help="generated probe image side")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--quantile", type=float, default=0.005)
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    layer = args.layer or ("layer3" if args.arch == "resnet20" else "layer4")
    work = Path(tempfile.mkdtemp(prefix="bench_dissection_"))
    probe_dir = Path(args.probe) if args.probe else generate_probe(work, args.images, args.size)
    broden = Broden(probe_dir)
    n = len(broden)

    if args.checkpoint:
        model = build_model(args.arch, load_state_dict(args.checkpoint))
    else:
        torch.manual_seed(0)
        model = get_model(args.arch, num_classes=args.num_classes)
    model = model.to(device).eval()
    loader = probe_loader(
        broden,
        image_size=args.size if not args.probe else None,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        batch_size=args.batch_size,
    )
    print(
        f"{args.arch} {layer} on {n} probe images ({broden.root}), device {device}, "
        f"torch threads {torch.get_num_threads()}, batch {args.batch_size}"
    )

    images = torch.cat([batch for batch, _ in loader])

    def forward() -> None:
        with torch.inference_mode():
            for b0 in range(0, n, args.batch_size):
                model(images[b0 : b0 + args.batch_size].to(device))

    forward()  # warm-up (allocator, cuDNN autotuning)
    _, t_forward = measure("forward pass alone", n, forward, device)

    path = work / "activations.npy"
    measure(
        "extraction",
        n,
        lambda: extract_activations(
            model, loader, n_images=n, outputs={layer: path}, device=device
        ),
        device,
    )
    acts = np.load(path, mmap_mode="r")
    print(f"activations {acts.shape} float16, {path.stat().st_size / 2**20:.1f} MiB")

    labels, _ = measure(
        "label encoding (once)",
        n,
        lambda: encode_probe_labels(broden, directory=work / "labels"),
        device,
    )
    print(
        f"{len(labels.concepts)} concepts, {len(labels.combos)} pixel combinations, "
        f"segmentation {labels.shape}"
    )

    thresholds, t_thresholds = measure(
        "thresholds",
        n,
        lambda: unit_thresholds(acts, quantile=args.quantile, device=device),
        device,
    )

    def iou() -> Any:
        tally = tally_iou(acts, thresholds, labels, device=device, batch_size=args.batch_size)
        return tally, tally_table(tally), label_units(tally, thresholds, iou_threshold=0.05)

    (tally, _, units), t_iou = measure("IoU tally + labels", n, iou, device)
    print(
        f"{int(units['interpretable'].sum())} of {len(units)} units interpretable; "
        f"mean active pixels per unit and image "
        f"{tally.intersection.sum() / max(1, tally.n_units * n):.1f} labelled"
    )
    ratio = (t_thresholds + t_iou) / t_forward
    print(
        f"(thresholds + IoU) / forward = {ratio:.2f}  (target <= 0.5: "
        f"{'met' if ratio <= 0.5 else 'NOT met'})"
    )


def generate_probe(work: Path, n_images: int, size: int) -> Path:
    from prunedissect.data.concepts import generate_concept_dataset

    start = time.perf_counter()
    generate_concept_dataset(
        probe_dir=work / "probe",
        images_dir=work / "train",
        seed=0,
        image_size=size,
        train_per_class=1,
        val_per_class=1,
        probe_images=n_images,
    )
    print(f"generated a {n_images}-image probe at {size} px in {time.perf_counter() - start:.1f} s")
    return work / "probe"


if __name__ == "__main__":
    main()
