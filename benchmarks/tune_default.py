"""Train one trial's dense network on the concept world and dissect it: the tuning measurement.

What the default study's world and training were chosen by (README, "The concept world"):
top-1 of the dense level 0, its interpretable units, distinct concepts and categories over the
dissected layers, and the share of the most common concept. Runs outside the workflow, in a
scratch directory, with the kernels pinned as in the workflow.

    .venv/bin/python benchmarks/tune_default.py --trial 0 --width 16 --training '{"epochs": 9}'
"""

from __future__ import annotations

import os

from prunedissect.reproducibility import cpu_environment

os.environ.update(cpu_environment(pin_kernels=True, threads=1))

import argparse  # E402 allowed in pyproject.toml: the pin must precede numpy and torch
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from prunedissect.data import concepts
from prunedissect.data.broden import Broden
from prunedissect.dissection import (
    DissectionSettings,
    build_model,
    dissect_model,
    load_state_dict,
)
from prunedissect.training import (
    LevelJob,
    LevelOutputs,
    PruningConfig,
    TrainingConfig,
    run_level,
)

DEFAULT_TRAINING = dict(
    epochs=9, batch_size=64, lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-4,
    schedule="cosine", milestones=[], gamma=0.1, warmup_epochs=0, augment=True, num_workers=0,
    eval_batch_size=256,
)  # fmt: skip
NORMALISE = dict(mean=(0.5,) * 3, std=(0.25,) * 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="reused for the data if it holds it")
    parser.add_argument("--trial", type=int, default=0)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--train-per-class", type=int, default=300)
    parser.add_argument("--training", default="{}", help="JSON overrides of training keys")
    parser.add_argument("--layers", default="layer1,layer2,layer3")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    log = logging.getLogger("tune")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="prunedissect-tune-"))
    data = workdir / "data"
    if not (data / "images").exists():
        concepts.generate_concept_dataset(
            probe_dir=data / "probe", images_dir=data / "images", seed=0, image_size=32,
            train_per_class=args.train_per_class, val_per_class=100, probe_images=1000,
            workers=2,
        )  # fmt: skip
    out = workdir / f"trial{args.trial}-{time.strftime('%H%M%S')}"
    out.mkdir(parents=True)
    job = LevelJob(
        trial=args.trial, level=0, seed=args.trial, arch="resnet20",
        model_kwargs={"width": args.width}, images=data / "images", image_size=32,
        training=TrainingConfig.from_config({**DEFAULT_TRAINING, **json.loads(args.training)}),
        pruning=PruningConfig(rewind_unit="epoch", rewind_step=1, exclude=()), **NORMALISE,
    )  # fmt: skip
    files = LevelOutputs(
        model=out / "model.pt", mask=out / "mask.npz", metrics=out / "metrics.json",
        rewind=out / "rewind.pt",
    )  # fmt: skip
    metrics = run_level(job, outputs=files, previous=None, device="cpu", logger=log)
    model = build_model(
        "resnet20", load_state_dict(files.model), model_kwargs={"width": args.width}
    )
    layers = args.layers.split(",")
    results = dissect_model(
        model, Broden(data / "probe"), layers=layers, out_dir=out / "dissect", image_size=32,
        logger=log, **NORMALISE, settings=DissectionSettings(
            quantile=0.005, threshold_on="raw", iou_threshold=0.05, category_restricted=True,
            batch_size=128, bootstrap_replicates=200, bootstrap_seed=0,
        ),
    )  # fmt: skip
    units = pd.concat([r.units.assign(layer=name) for name, r in results.items()])
    found = units[units["interpretable"]]
    counts = found["concept"].value_counts()
    print(
        f"top-1 {metrics['top1']:.3f}, loss {metrics['loss']:.3f}, "
        f"{metrics['wall_time_s']:.0f} s"
    )
    for layer in layers:
        here = found[found["layer"] == layer]
        print(f"  {layer}: {len(here)} of {(units['layer'] == layer).sum()} interpretable, "
              f"{here['concept'].nunique()} concepts, "
              f"{dict(here['category'].value_counts())}")  # fmt: skip
    share = counts.iloc[0] / len(found) if len(found) else 0.0
    print(f"  all: {len(found)} interpretable, {found['concept'].nunique()} concepts, "
          f"{found['category'].nunique()} categories, most common "
          f"{counts.index[0] if len(counts) else None} ({share:.0%})")  # fmt: skip
    print(f"  concepts: {dict(counts)}")
    tally = pd.concat([r.tally.assign(layer=name) for name, r in results.items()])
    best = tally.sort_values("iou", ascending=False).groupby("category").head(3)
    print("  best IoU per category:")
    print(best[["layer", "unit", "category", "concept", "iou"]].to_string(index=False))


if __name__ == "__main__":
    main()
