"""The ``prunedissect`` command line: dissect any checkpoint on any Broden-format directory.

Example (a torchvision ResNet-18 checkpoint on broden1_224, its last block)::

    prunedissect dissect --arch resnet18 --checkpoint model.pt --probe broden1_224 \\
        --layer layer4 --out dissection/

writes, per layer, ``dissection/<layer>/{activations.npy, thresholds.parquet, tally.parquet,
units.parquet, replicates.parquet}`` (the workflow's files and columns) plus the encoded probe
labels in ``dissection/probe_labels/``, and prints a per-layer summary. The layers are checked
(they must exist and output spatial maps larger than 1x1) before anything is created.

``prunedissect verify results/`` checks a workflow's results tree: every checkpoint, mask,
rewind point, resume point and activation file against its ``.sha256`` sidecar and every table
for readability; it lists what is broken with the command that rebuilds it and exits with
status 1 when anything is.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

import yaml

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prunedissect",
        description="Lottery-ticket pruning and network dissection; see `prunedissect dissect -h`.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    dissect = commands.add_parser(
        "dissect",
        help="dissect a checkpoint on a Broden-format probe directory",
        description=(
            "Network dissection of a checkpoint (a plain state dict loadable into a "
            "prunedissect or torchvision architecture) on a Broden-format directory."
        ),
    )
    model = dissect.add_argument_group("model")
    model.add_argument(
        "--arch",
        required=True,
        help="architecture: a prunedissect model (resnet20, resnet18, resnet50, "
        "googlenet) or any torchvision model name",
    )
    model.add_argument("--checkpoint", required=True, help="state dict file (torch.save)")
    model.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="classifier outputs (default: read from the checkpoint's last linear layer)",
    )
    model.add_argument(
        "--model-kwarg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra builder argument, repeatable (e.g. width=16 for resnet20)",
    )
    model.add_argument(
        "--layer",
        action="append",
        required=True,
        metavar="NAME",
        help="module whose output units are dissected, repeatable (e.g. layer4)",
    )
    data = dissect.add_argument_group("probe and preprocessing")
    data.add_argument("--probe", required=True, help="Broden-format directory (holding index.csv)")
    data.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="resize probe images to this square side (default: keep their size)",
    )
    data.add_argument(
        "--mean",
        type=float,
        nargs=3,
        default=IMAGENET_MEAN,
        help="normalisation mean, as in training (default: ImageNet's)",
    )
    data.add_argument(
        "--std",
        type=float,
        nargs=3,
        default=IMAGENET_STD,
        help="normalisation std, as in training (default: ImageNet's)",
    )
    method = dissect.add_argument_group("dissection")
    method.add_argument(
        "--quantile",
        type=float,
        default=0.005,
        help="top fraction of a unit's activations above its threshold (0.005)",
    )
    method.add_argument(
        "--threshold-on",
        choices=["raw", "upsampled"],
        default="raw",
        help="quantile over raw maps (NetDissect) or maps upsampled to the segmentation",
    )
    method.add_argument(
        "--iou-threshold",
        type=float,
        default=0.05,
        help="a unit is interpretable when its best IoU exceeds this (0.05; NetDissect 0.04)",
    )
    method.add_argument(
        "--unrestricted",
        action="store_true",
        help="count a unit's pixels in every image, not only where the concept's "
        "category is labelled",
    )
    method.add_argument(
        "--bootstrap-replicates",
        type=int,
        default=200,
        help="probe-image bootstrap replicates written to replicates.parquet (200)",
    )
    method.add_argument("--bootstrap-seed", type=int, default=0, help="bootstrap seed (0)")
    run = dissect.add_argument_group("execution")
    run.add_argument("--out", required=True, help="output directory")
    run.add_argument("--batch-size", type=int, default=128)
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    run.add_argument("--num-workers", type=int, default=0, help="image loading processes")
    run.add_argument("--quiet", action="store_true", help="log warnings only")
    verify = commands.add_parser(
        "verify",
        help="check a results tree's checkpoints and tables; list what is broken",
        description=(
            "Check every checkpoint, mask, rewind/resume point and activation file under "
            "RESULTS_DIR against its .sha256 checksum and read every table; list broken files "
            "with the command that rebuilds them. Exit status 1 when anything is broken."
        ),
    )
    verify.add_argument("results_dir", metavar="RESULTS_DIR", help="e.g. results/")
    verify.add_argument("--quiet", action="store_true", help="log warnings only")
    return parser


def run_verify(args: argparse.Namespace) -> int:
    from prunedissect.verify import format_report, verify_results

    checked, problems = verify_results(args.results_dir)
    print(format_report(checked, problems))
    return 1 if problems else 0


def parse_kwargs(items: Sequence[str]) -> dict[str, Any]:
    """``["width=16", "aux_logits=false"]`` -> ``{"width": 16, "aux_logits": False}``.

    Values are read as YAML."""
    kwargs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--model-kwarg expects KEY=VALUE, got {item!r}")
        kwargs[key] = yaml.safe_load(value)
    return kwargs


def run_dissect(args: argparse.Namespace) -> int:
    from prunedissect.data.broden import Broden
    from prunedissect.devices import resolve_device
    from prunedissect.dissection import (
        DissectionSettings,
        build_model,
        dissect_model,
        load_state_dict,
    )
    from prunedissect.models.layers import check_layers

    logger = logging.getLogger("prunedissect.dissect")
    device = resolve_device(args.device)
    model = build_model(
        args.arch,
        load_state_dict(args.checkpoint),
        num_classes=args.num_classes,
        model_kwargs=parse_kwargs(args.model_kwarg),
    )
    settings = DissectionSettings(
        quantile=args.quantile,
        threshold_on=args.threshold_on,
        iou_threshold=args.iou_threshold,
        category_restricted=not args.unrestricted,
        batch_size=args.batch_size,
        bootstrap_replicates=args.bootstrap_replicates,
        bootstrap_seed=args.bootstrap_seed,
    )
    broden = Broden(args.probe)
    # before anything is written: a wrong layer must not leave an empty output directory
    side = args.image_size or int(broden.index["ih"].iloc[0])
    check_layers(model, args.layer, arch=args.arch, image_size=side)
    logger.info(
        "dissecting %s (%s) on %r with %s on %s",
        args.checkpoint,
        args.arch,
        broden,
        settings,
        device,
    )
    results = dissect_model(
        model,
        broden,
        layers=args.layer,
        out_dir=args.out,
        image_size=args.image_size,
        mean=args.mean,
        std=args.std,
        settings=settings,
        device=device,
        num_workers=args.num_workers,
        logger=logger,
    )
    for layer, result in results.items():
        units = result.units
        interpretable = units[units["interpretable"]]
        print(
            f"{layer}: {len(interpretable)} of {len(units)} units interpretable "
            f"(IoU > {args.iou_threshold}), {interpretable['concept'].nunique()} distinct concepts"
        )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``prunedissect`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    from prunedissect.devices import DeviceUnavailableError

    try:
        return run_verify(args) if args.command == "verify" else run_dissect(args)
    except (ValueError, FileNotFoundError, DeviceUnavailableError) as error:
        parser.exit(2, f"prunedissect {args.command}: error: {error}\n")


if __name__ == "__main__":
    sys.exit(main())
