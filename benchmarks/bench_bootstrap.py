"""What the probe-image bootstrap costs: time next to the IoU tally, and memory.

Two measurements (each in its own run; peak RSS is per process):

``--case default`` (the default study's dissection): ResNet-20 of width 16 (random weights, or
``--checkpoint``) on a generated 1,000-image concept probe at 32 px, layers 1-3. Per layer: the
tally alone, and the tally with the bootstrap accumulated in the same pass plus every
replicate's labels (what ``tally_iou`` + ``dissect_activations`` do in the workflow), and their
ratio. Target: at most 2x.

``--case broden`` (memory at the paper's scale, measured at a reduced size): ``--units`` units
at 7x7 (ResNet-50 layer4 has 2,048) against ``--images`` images of the generated Broden-size
probe of ``benchmarks/synthetic_broden.py`` (112 px segmentations, Broden's 1,376 labels with
Zipf-like frequencies). Prints the accumulator's bytes, the peak RSS with and without the
bootstrap, the times, and their extrapolation to 2,048 units (everything the bootstrap holds is
linear in the units; nothing grows with the images).

    python benchmarks/bench_bootstrap.py --case default
    python benchmarks/bench_bootstrap.py --case broden --units 256 --images 300
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from prunedissect.data.broden import Broden
from prunedissect.dissection import (
    encode_probe_labels,
    extract_activations,
    probe_loader,
    tally_iou,
    unit_thresholds,
)
from prunedissect.dissection.bootstrap import BootstrapAccumulator, image_weights
from prunedissect.models import get_model

REPLICATES = 200


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def accumulator(labels, n_units: int, replicates: int) -> BootstrapAccumulator:
    return BootstrapAccumulator(
        image_weights(len(labels), replicates=replicates, seed=0),
        n_units=n_units,
        concept_category=labels.concept_category,
        n_categories=len(labels.categories),
    )


def timed_tally(acts, thresholds, labels, *, replicates: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the tally, with the bootstrap and its labels when ``replicates``
    > 0. CPU seconds (every thread of this process) stay meaningful on a shared machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    boot = accumulator(labels, acts.shape[1], replicates) if replicates else None
    tally_iou(acts, thresholds, labels, bootstrap=boot)
    if boot is not None:
        boot.labels(category_restricted=True, iou_threshold=0.05)
    return time.perf_counter() - wall, time.process_time() - cpu


def default_case(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_dissection import generate_probe

    work = Path(tempfile.mkdtemp(prefix="bench_bootstrap_"))
    broden = Broden(generate_probe(work, 1000, 32))
    if args.checkpoint:
        state = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        model = get_model("resnet20", num_classes=state["fc.weight"].shape[0], width=16)
        model.load_state_dict(state)
    else:
        torch.manual_seed(0)
        model = get_model("resnet20", num_classes=10, width=16)
    layers = ["layer1", "layer2", "layer3"]
    outputs = {layer: work / f"{layer}.npy" for layer in layers}
    loader = probe_loader(broden, image_size=32, mean=(0.5,) * 3, std=(0.25,) * 3, batch_size=128)
    extract_activations(model.eval(), loader, n_images=len(broden), outputs=outputs)
    labels = encode_probe_labels(broden, directory=work / "labels")
    print(
        f"default study: {len(broden)} probe images, {len(labels.concepts)} concepts, "
        f"{REPLICATES} replicates, torch threads {torch.get_num_threads()}"
    )
    total = np.zeros((2, 2))  # (without, with) x (wall, CPU)
    for layer, path in outputs.items():
        acts = np.load(path, mmap_mode="r")
        thresholds = unit_thresholds(acts, quantile=0.005)
        timed_tally(acts, thresholds, labels, replicates=0)  # warm-up
        runs = {0: [], REPLICATES: []}
        for _ in range(args.repeats):  # alternating, so drifting load hits both alike
            for replicates in runs:
                runs[replicates].append(
                    timed_tally(acts, thresholds, labels, replicates=replicates)
                )
        best = np.array([np.min(runs[r], axis=0) for r in runs])  # fastest of the repeats
        total += best
        print(
            f"{layer} {tuple(acts.shape[1:])}: tally {best[0, 0]:.3f} s wall "
            f"({best[0, 1]:.3f} s CPU), with bootstrap {best[1, 0]:.3f} s ({best[1, 1]:.3f} s "
            f"CPU); ratio {best[1, 0] / best[0, 0]:.2f} wall, {best[1, 1] / best[0, 1]:.2f} CPU"
        )
    wall, cpu = total[1] / total[0]
    print(
        f"all layers: tally {total[0, 0]:.2f} s wall ({total[0, 1]:.2f} s CPU), with bootstrap "
        f"{total[1, 0]:.2f} s ({total[1, 1]:.2f} s CPU); ratio {wall:.2f} wall, {cpu:.2f} CPU "
        f"(target <= 2: {'met' if max(wall, cpu) <= 2 else 'NOT met'})"
    )


def broden_case(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from synthetic_broden import generate_broden_probe

    root = Path(args.probe_dir or tempfile.mkdtemp(prefix="bench_bootstrap_broden_"))
    if not (root / "index.csv").exists():  # the same images for both measurements
        generate_broden_probe(root, args.images)
    labels = encode_probe_labels(Broden(root))
    rng = np.random.default_rng(0)
    acts = rng.standard_normal((args.images, args.units, 7, 7)).astype(np.float16)
    thresholds = unit_thresholds(acts, quantile=0.005)
    before = rss_mib()
    boot = accumulator(labels, args.units, args.replicates) if args.replicates else None
    held = 0
    if boot is not None:
        held = sum(
            t.numel() * t.element_size()
            for t in (boot.intersection, boot.active_by_category, boot.active_total, boot.pixels)
        )
    wall, cpu = time.perf_counter(), time.process_time()
    tally_iou(acts, thresholds, labels, bootstrap=boot)
    tally_seconds = (time.perf_counter() - wall, time.process_time() - cpu)
    wall, cpu = time.perf_counter(), time.process_time()
    if boot is not None:
        boot.labels(category_restricted=True, iou_threshold=0.05)
    label_seconds = (time.perf_counter() - wall, time.process_time() - cpu)
    print(
        f"replicates {args.replicates}: {args.images} images x {args.units} units x "
        f"{len(labels.concepts)} concepts at 112 px: tally {tally_seconds[0]:.1f} s "
        f"({tally_seconds[1]:.1f} s CPU), replicate labels {label_seconds[0]:.1f} s "
        f"({label_seconds[1]:.1f} s CPU); accumulator {held / 2**20:.0f} MiB; peak RSS "
        f"{rss_mib():.0f} MiB ({rss_mib() - before:.0f} MiB above the loaded inputs)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", choices=["default", "broden"], default="default")
    parser.add_argument("--checkpoint", default=None, help="default case: a ResNet-20 state dict")
    parser.add_argument("--repeats", type=int, default=5, help="default case: runs of each")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default 1: idle OpenMP threads spin, so on a shared machine CPU "
        "seconds of several threads overstate the work)",
    )
    parser.add_argument("--units", type=int, default=256)
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--replicates", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--probe-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.case == "default":
        default_case(args)
        return
    if args.replicates is not None:  # one measurement, in this process
        broden_case(args)
        return
    probe_dir = tempfile.mkdtemp(prefix="bench_bootstrap_broden_")
    for replicates in (0, REPLICATES):  # each in a fresh process: peak RSS is per process
        subprocess.run(
            [sys.executable, __file__, "--case", "broden", "--units", str(args.units),
             "--images", str(args.images), "--replicates", str(replicates),
             "--probe-dir", probe_dir],
            check=True,
        )  # fmt: skip
    scale = 2048 / args.units
    print(
        f"extrapolated to 2,048 units (x{scale:g}, linear in the units): the accumulator and the "
        f"RSS above the inputs grow by that factor; the probe size adds nothing"
    )


if __name__ == "__main__":
    main()
