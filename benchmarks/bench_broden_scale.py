"""Dissection at the paper's scale: ResNet-50 layer4 (2,048 units, 7x7) on a Broden-size probe.

Builds, without downloading anything, a generated Broden-format probe of ``--images`` images
(224 px, segmentations at 112 px, Broden's 1,376 labels with Zipf-like frequencies:
``synthetic_broden.py``), extracts layer4 of a ResNet-50 (torchvision, random weights whose
batch-norm statistics are calibrated on 64 probe images, so activations have a realistic
scale) into a float16 ``.npy`` as the workflow stores it, and then runs the package's
thresholds and IoU tally on it::

    python benchmarks/bench_broden_scale.py --images 2000 --cache /tmp/broden_scale
    python benchmarks/bench_broden_scale.py --images 10000 --cache /tmp/broden_scale

Every stage runs in its own subprocess, so the peak RSS printed for it is that stage's alone
(torch and numpy imports included; the ``baseline`` line is a process that only imports them),
and its CPU time (user + system, all threads; on a shared machine a steadier measure than
wall time).
``--cache DIR`` keeps the probe, the model, the labels, the activations and the thresholds: a
rerun skips what exists, and a smaller ``--images`` reuses the first rows of a larger extraction
(image ``i`` is the same in every generated probe of any size). ``--extract-images M`` runs the
network on the first M images only and gives image ``i`` the activations of image ``i mod M``
(for a slow or shared machine: thresholds and tally see N images all the same; the forward pass
is timed on its own and scaled to N). ``--threads 1`` on a machine shared with other
jobs: torch's OpenMP threads spin while waiting for each other, which on oversubscribed cores
costs several times the work itself.

Printed: seconds, images/s, CPU time and peak RSS per stage, the forward pass alone (timed on
``--forward-images`` images held in memory, scaled to N), and (thresholds + tally) / forward in
wall and in CPU time, the issue's target being <= 0.5.
``--bootstrap B`` feeds a B-replicate bootstrap accumulator in the tally, as the workflow does
(its B x 2,048 x 1,376 int32 table is ~11 MB per replicate).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAGES = ("baseline", "generate", "labels", "model", "extract", "forward", "thresholds", "tally")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)  # ImageNet normalisation


def paths(cache: Path, n: int) -> dict[str, Path]:
    return {
        "probe": cache / f"probe-{n}",
        "labels": cache / f"labels-{n}",
        "model": cache / "resnet50-calibrated.pt",
        "activations": cache / f"layer4-{n}.npy",
        "thresholds": cache / f"thresholds-{n}.npy",
    }


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB


# ------------------------------------------------------------------- stages (one per process)


def stage_baseline(args, p) -> dict:
    """The interpreter with numpy, torch and the package loaded: what every stage starts from."""
    for module in ("numpy", "torch", "prunedissect.dissection"):
        importlib.import_module(module)
    return {}


def stage_generate(args, p) -> dict:
    sys.path.insert(0, str(HERE))
    from synthetic_broden import generate_broden_probe

    generate_broden_probe(p["probe"], args.images, seed=args.seed)
    return {}


def stage_labels(args, p) -> dict:
    from prunedissect.data.broden import Broden
    from prunedissect.dissection import encode_probe_labels

    labels = encode_probe_labels(Broden(p["probe"]), directory=p["labels"])
    return {
        "concepts": len(labels.concepts),
        "combinations": len(labels.combos),
        "concepts by category": labels.concepts["category"].value_counts().to_dict(),
    }


def _resnet50(seed: int):
    import torch
    import torchvision

    torch.manual_seed(seed)
    return torchvision.models.resnet50(weights=None)


def stage_model(args, p) -> dict:
    """Random ResNet-50 with batch-norm statistics calibrated on the first 64 probe images."""
    import torch

    from prunedissect.data.broden import Broden
    from prunedissect.dissection import probe_loader

    model = _resnet50(args.seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the calibration batches
    model.train()
    loader = probe_loader(Broden(p["probe"]), image_size=None, mean=MEAN, std=STD, batch_size=16)
    with torch.no_grad():
        for b, (images, _) in enumerate(loader):
            if b == 4:
                break
            model(images)
    torch.save(model.state_dict(), p["model"])
    return {}


def _load_model(args, p):
    import torch

    model = _resnet50(args.seed)
    model.load_state_dict(torch.load(p["model"], weights_only=True))
    return model.eval()


def stage_extract(args, p) -> dict:
    """Extract the first M = ``--extract-images`` images (all by default) into
    ``layer4-extracted-M.npy``, then write the N-row file, row i = extracted row i mod M."""
    import numpy as np
    import torch

    from prunedissect.data.broden import Broden
    from prunedissect.dissection import extract_activations, probe_loader

    m = min(args.images, args.extract_images or args.images)
    extracted = args.cache / f"layer4-extracted-{m}.npy"
    larger = sorted(
        (int(path.stem.rsplit("-", 1)[1]), path)
        for path in args.cache.glob("layer4-extracted-*.npy")
        if path.stem.rsplit("-", 1)[1].isdigit() and int(path.stem.rsplit("-", 1)[1]) >= m
    )
    if larger:  # its first m rows are these very images
        extracted = larger[0][1]
    report = {}
    if not extracted.exists():
        broden = Broden(p["probe"])
        loader = probe_loader(
            broden, image_size=None, mean=MEAN, std=STD, batch_size=args.batch_size
        )
        subset = torch.utils.data.Subset(loader.dataset, range(m))
        loader = torch.utils.data.DataLoader(subset, batch_size=args.batch_size)
        start = time.perf_counter()
        extract_activations(_load_model(args, p), loader, n_images=m, outputs={"layer4": extracted})
        report["extracted images/s"] = round(m / (time.perf_counter() - start), 2)
    source = np.load(extracted, mmap_mode="r")
    shape = (args.images, *source.shape[1:])
    with open(p["activations"], "wb") as handle:  # written block by block: memory stays flat
        header = {"descr": np.lib.format.dtype_to_descr(source.dtype), "fortran_order": False}
        np.lib.format.write_array_header_1_0(handle, {**header, "shape": shape})
        for b0 in range(0, args.images, 256):
            rows = np.arange(b0, min(args.images, b0 + 256)) % m
            handle.write(np.ascontiguousarray(source[rows]).tobytes())
    report["rows extracted"] = m
    return report


def stage_forward(args, p) -> dict:
    """The forward pass alone on images already in memory, per image."""
    import torch

    from prunedissect.data.broden import Broden
    from prunedissect.dissection import probe_loader

    model = _load_model(args, p)
    n = min(args.forward_images, args.images)
    loader = probe_loader(Broden(p["probe"]), image_size=None, mean=MEAN, std=STD, batch_size=64)
    images = []
    for batch, _ in loader:
        images.append(batch)
        if sum(len(b) for b in images) >= n:
            break
    images = torch.cat(images)[:n]
    with torch.inference_mode():
        model(images[:16])  # warm-up
        start, cpu = time.perf_counter(), time.process_time()
        for b0 in range(0, n, args.batch_size):
            model(images[b0 : b0 + args.batch_size])
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"timed images": n, "seconds per image": seconds / n, "CPU seconds per image": cpu / n}


def stage_thresholds(args, p) -> dict:
    import numpy as np

    from prunedissect.dissection import compute_thresholds

    acts = np.load(p["activations"], mmap_mode="r")
    thresholds = compute_thresholds(
        acts, quantile=args.quantile, threshold_on="raw", segmentation_size=None
    )
    np.save(p["thresholds"], thresholds)
    return {"mean threshold": float(thresholds.mean())}


def stage_tally(args, p) -> dict:
    import numpy as np

    from prunedissect.dissection import label_units, load_probe_labels, tally_iou
    from prunedissect.dissection.bootstrap import BootstrapAccumulator, image_weights

    acts = np.load(p["activations"], mmap_mode="r")
    labels = load_probe_labels(p["labels"])
    thresholds = np.load(p["thresholds"])
    bootstrap = None
    if args.bootstrap:
        bootstrap = BootstrapAccumulator(
            image_weights(len(labels), replicates=args.bootstrap, seed=0),
            n_units=acts.shape[1],
            concept_category=labels.concept_category,
            n_categories=len(labels.categories),
        )
    tally = tally_iou(acts, thresholds, labels, batch_size=args.batch_size, bootstrap=bootstrap)
    units = label_units(tally, thresholds, iou_threshold=0.05)
    return {
        "interpretable units": int(units["interpretable"].sum()),
        "labelled active pixels per unit and image": float(
            tally.intersection.sum() / (tally.n_units * len(labels))
        ),
        "intersection digest": _digest(tally.intersection, tally.union),
    }


def _digest(*arrays) -> str:
    """A short hash of the counts, to check that two code versions agree."""
    import hashlib

    digest = hashlib.sha256()
    for array in arrays:
        digest.update(array.astype("<i8").tobytes())
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------------------- the driver


def run_stage(stage: str, args) -> dict:
    """Run ``stage`` in a fresh interpreter; return its JSON report (seconds, peak RSS, ...)."""
    command = [sys.executable, __file__, "--stage", stage, *sys.argv[1:]]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"stage {stage} failed (exit {result.returncode})")
    return json.loads(result.stdout.strip().splitlines()[-1])


def needed(stage: str, p: dict[str, Path]) -> bool:
    target = {
        "generate": p["probe"] / "index.csv",
        "labels": p["labels"] / "meta.json",
        "model": p["model"],
        "extract": p["activations"],
    }.get(stage)
    return target is None or not target.exists()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--cache", required=True, help="directory kept between runs")
    parser.add_argument("--batch-size", type=int, default=128, help="dissection.batch_size")
    parser.add_argument("--quantile", type=float, default=0.005)
    parser.add_argument("--bootstrap", type=int, default=0, help="replicates (0: none)")
    parser.add_argument("--forward-images", type=int, default=256)
    parser.add_argument(
        "--extract-images",
        type=int,
        default=None,
        help="extract only the first M images and fill row i with row i mod M (default: all)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads of every stage (default: torch's)"
    )
    parser.add_argument(
        "--stages", default=",".join(STAGES), help=f"comma-separated subset of {STAGES}"
    )
    parser.add_argument("--stage", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.cache = Path(args.cache)
    args.cache.mkdir(parents=True, exist_ok=True)
    p = paths(args.cache, args.images)

    if args.stage:  # child process: run one stage, print one JSON line
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        start = time.perf_counter()
        extra = globals()[f"stage_{args.stage}"](args, p)
        seconds = time.perf_counter() - start
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime
        print(
            json.dumps({"seconds": seconds, "peak_rss_gib": peak_rss_gib(), "cpu_s": cpu, **extra})
        )
        return

    import torch

    print(
        f"Broden-scale dissection: {args.images} images, ResNet-50 layer4 (2048 x 7x7), "
        f"segmentations 112x112, torch {torch.__version__}, "
        f"{args.threads or torch.get_num_threads()} threads, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, cache {args.cache}",
        flush=True,
    )
    reports = {}
    for stage in args.stages.split(","):
        if stage not in STAGES:
            raise SystemExit(f"unknown stage {stage!r}; choose from {STAGES}")
        if not needed(stage, p):
            print(f"{stage:<11} cached", flush=True)
            continue
        report = reports[stage] = run_stage(stage, args)
        seconds, rss = report.pop("seconds"), report.pop("peak_rss_gib")
        cpu = report.pop("cpu_s")
        rate = "" if stage in ("baseline", "model") else f"{args.images / seconds:9.1f} images/s"
        print(
            f"{stage:<11} {seconds:8.1f} s {rate:>19}  CPU {cpu:7.1f} s  peak RSS {rss:5.2f} GiB  "
            + ", ".join(f"{k}: {v}" for k, v in report.items()),
            flush=True,
        )
        report["seconds"], report["cpu"] = seconds, cpu
    if {"forward", "thresholds", "tally"} <= set(reports):
        forward = reports["forward"]["seconds per image"] * args.images
        work = reports["thresholds"]["seconds"] + reports["tally"]["seconds"]
        print(
            f"forward pass over {args.images} images (scaled from "
            f"{reports['forward']['timed images']}): {forward:.1f} s; "
            f"(thresholds + tally) / forward = {work / forward:.3f} "
            f"(target <= 0.5: {'met' if work <= 0.5 * forward else 'NOT met'})"
        )
        forward_cpu = reports["forward"]["CPU seconds per image"] * args.images
        work_cpu = reports["thresholds"]["cpu"] + reports["tally"]["cpu"]
        print(
            f"in CPU time: forward {forward_cpu:.1f} s, thresholds + tally {work_cpu:.1f} s "
            f"(imports included), ratio {work_cpu / forward_cpu:.3f}"
        )
        rate = reports.get("extract", {}).get("extracted images/s")
        if rate:
            extraction = args.images / rate
            print(
                f"extraction of {args.images} images at {rate} images/s: {extraction:.0f} s; "
                f"(thresholds + tally) / extraction = {work / extraction:.3f}"
            )


if __name__ == "__main__":
    main()
