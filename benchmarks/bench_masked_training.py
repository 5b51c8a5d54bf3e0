"""Masked vs dense training throughput (images/s) for the same model and batch on the CPU.

Masked training zeroes pruned gradients before and pruned weights after every optimiser step;
the target is that this costs at most 5% of the dense throughput. Runs alternate (dense, masked,
dense, ...) so that drift in machine load hits both alike; the medians and their ratio are
printed for wall-clock time and for CPU time (the latter is steadier on a shared machine), with
the time of the mask enforcement alone, which is what masking adds to a step.

    .venv/bin/python benchmarks/bench_masked_training.py [--width 16] [--batch-size 64] ...
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import torch

from prunedissect.models import get_model
from prunedissect.pruning import Mask, prune_global_magnitude
from prunedissect.training import InMemoryImages, TrainingConfig, train


def synthetic_images(count: int, size: int, classes: int) -> InMemoryImages:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (count, 3, size, size), dtype=torch.uint8, generator=generator)
    targets = torch.randint(0, classes, (count,), generator=generator)
    return InMemoryImages(
        images,
        targets,
        classes=[str(c) for c in range(classes)],
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        augment=True,
    )


def throughput(
    model: torch.nn.Module, data: InMemoryImages, mask: Mask | None, batch: int
) -> tuple[float, float]:
    """Images per wall-clock second and per CPU second of one epoch of :func:`train`."""
    config = TrainingConfig(
        epochs=1, batch_size=batch, lr=0.01, momentum=0.9, nesterov=False, weight_decay=1e-4,
        schedule="constant", milestones=(), gamma=0.1, warmup_epochs=0, augment=True,
        num_workers=0, eval_batch_size=256,
    )  # fmt: skip
    images = len(data) // batch * batch
    wall, cpu = time.perf_counter(), time.process_time()
    train(
        model, data, config=config, seed=0, device="cpu", mask=mask,
        logger=logging.getLogger("bench"),
    )  # fmt: skip
    return images / (time.perf_counter() - wall), images / (time.process_time() - cpu)


def masking_overhead_ms(model: torch.nn.Module, mask: Mask, steps: int = 200) -> float:
    """Milliseconds per step of the mask enforcement alone (zero pruned gradients and weights)."""
    params = dict(model.named_parameters())
    pairs = [(params[name], keep.to(params[name].dtype)) for name, keep in mask.items()]
    grads = [torch.randn_like(param) for param, _ in pairs]
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(steps):
            for grad, (_, keep) in zip(grads, pairs):
                grad.mul_(keep)
            for param, keep in pairs:
                param.mul_(keep)
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet20")
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=15, help="optimiser steps per timed run")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--density", type=float, default=0.1, help="fraction of weights kept")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    kwargs = {"width": args.width} if args.arch == "resnet20" else {}
    model = get_model(args.arch, num_classes=10, generator=torch.Generator().manual_seed(0),
                      **kwargs)  # fmt: skip
    mask = prune_global_magnitude(
        dict(model.named_parameters()), Mask.ones_like(model), fraction=1 - args.density
    )
    data = synthetic_images(args.batch_size * args.batches, args.image_size, 10)
    throughput(model, data, None, args.batch_size)  # warm-up (allocator, oneDNN kernels)
    dense, masked = [], []
    for _ in range(args.repeats):
        dense.append(throughput(model, data, None, args.batch_size))
        masked.append(throughput(model, data, mask, args.batch_size))
    print(
        f"model {args.arch} (width {args.width}), batch {args.batch_size}, "
        f"{args.image_size} px, {args.threads} thread(s), density {mask.density:.3f}"
    )
    overhead = masking_overhead_ms(model, mask)
    step_ms = 1e3 * args.batch_size / statistics.median(run[0] for run in dense)
    print(
        f"mask enforcement alone: {overhead:.3f} ms per step = "
        f"{100 * overhead / step_ms:.2f}% of a dense step ({step_ms:.1f} ms)"
    )
    for clock, index in (("wall-clock", 0), ("CPU-time", 1)):
        d = statistics.median(run[index] for run in dense)
        m = statistics.median(run[index] for run in masked)
        print(f"{clock} images/s: dense {d:8.1f}  masked {m:8.1f}  "
              f"ratio masked/dense {m / d:.3f} "
              f"(masking costs {100 * (1 - m / d):+.1f}%)")  # fmt: skip


if __name__ == "__main__":
    main()
