"""Time the concept-world generator at the default counts (10 classes x (300 + 100) training
images and 1000 probe images) for a few image sizes and worker counts.

    python benchmarks/bench_generate.py                      # 32 and 112 px, 1 and 2 workers
    python benchmarks/bench_generate.py --sizes 64 --workers 2

Prints one line per run: size, workers, seconds, images per second (training + probe images).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from prunedissect.data.concepts import CLASSES, generate_concept_dataset


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 112])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--train-per-class", type=int, default=300)
    parser.add_argument("--val-per-class", type=int, default=100)
    parser.add_argument("--probe-images", type=int, default=1000)
    args = parser.parse_args()
    total = len(CLASSES) * (args.train_per_class + args.val_per_class) + args.probe_images
    print(f"{'size':>5} {'workers':>7} {'seconds':>8} {'images/s':>9}  ({total} images per run)")
    for size in args.sizes:
        for workers in args.workers:
            with tempfile.TemporaryDirectory() as scratch:
                start = time.perf_counter()
                generate_concept_dataset(
                    probe_dir=Path(scratch) / "probe",
                    images_dir=Path(scratch) / "images",
                    seed=0,
                    image_size=size,
                    train_per_class=args.train_per_class,
                    val_per_class=args.val_per_class,
                    probe_images=args.probe_images,
                    workers=workers,
                )
                seconds = time.perf_counter() - start
            print(f"{size:>5} {workers:>7} {seconds:>8.1f} {total / seconds:>9.0f}", flush=True)


if __name__ == "__main__":
    main()
