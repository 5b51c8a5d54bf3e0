"""Builders shared by the test modules: the config schema's defaults, training settings, small
probe sets (a real Broden directory, or an in-memory fake)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from prunedissect.data.broden import BrodenWriter, CategoryLabels, LabelSpec
from prunedissect.training import PruningConfig, TrainingConfig

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def schema_defaults(section: str) -> dict[str, Any]:
    """The defaults the config schema fills into ``section`` (one level of nesting)."""
    properties = yaml.safe_load(SCHEMA.read_text())["properties"][section]["properties"]
    defaults = {}
    for key, spec in properties.items():
        if "properties" in spec:
            defaults[key] = {k: v["default"] for k, v in spec["properties"].items()}
        elif "default" in spec:
            defaults[key] = spec["default"]
    return defaults


def training_config(**overrides: Any) -> TrainingConfig:
    """The schema's ``training`` defaults with ``overrides``."""
    return TrainingConfig.from_config({**schema_defaults("training"), **overrides})


def pruning_config(**overrides: Any) -> PruningConfig:
    """The schema's ``pruning`` defaults for a lottery arm's pruned level, with ``overrides``
    of the fields."""
    section = PruningConfig.from_config(
        {**schema_defaults("pruning"), "method": {"kind": "lottery"}}
    )
    return PruningConfig(**{**section.__dict__, **overrides})


@dataclass
class FakeProbe:
    """In-memory stand-in for :class:`Broden`: ``segs[i]`` maps category -> CategoryLabels."""

    categories: list[str]
    names: dict[int, str]
    segs: list[dict[str, CategoryLabels]]
    shape: tuple[int, int]

    @property
    def labels(self) -> pd.DataFrame:
        numbers = sorted(self.names)
        return pd.DataFrame({"number": numbers, "name": [self.names[n] for n in numbers]})

    @property
    def index(self) -> pd.DataFrame:
        return pd.DataFrame({"sh": [self.shape[0]] * len(self), "sw": [self.shape[1]] * len(self)})

    def __len__(self) -> int:
        return len(self.segs)

    def segmentation(self, i: int) -> dict[str, CategoryLabels]:
        return self.segs[i]


def random_probe(rng: np.random.Generator, *, n_images: int, shape: tuple[int, int]) -> FakeProbe:
    """A random probe: colour (2 layers, overlapping numbers), object, part (shares number 5
    with object), scene (image level, sometimes two labels), categories sometimes unlabelled."""
    names = {n: f"label{n}" for n in range(1, 13)}
    segs = []
    for _ in range(n_images):
        seg = {}
        if rng.random() < 0.85:
            layers = rng.choice([0, 1, 2, 3], size=(2, *shape), p=[0.2, 0.4, 0.2, 0.2])
            seg["color"] = CategoryLabels(pixel=layers.astype(np.int32), image=())
        if rng.random() < 0.7:
            layer = rng.choice([0, 4, 5, 6], size=(1, *shape))
            seg["object"] = CategoryLabels(pixel=layer.astype(np.int32), image=())
        if rng.random() < 0.6:
            layer = rng.choice([0, 5, 7, 8], size=(1, *shape), p=[0.5, 0.2, 0.2, 0.1])
            seg["part"] = CategoryLabels(pixel=layer.astype(np.int32), image=())
        if rng.random() < 0.7:
            scenes = tuple(
                int(s) for s in rng.choice([10, 11, 12], size=rng.integers(1, 3), replace=False)
            )
            seg["scene"] = CategoryLabels(pixel=np.zeros((0, *shape), np.int32), image=scenes)
        segs.append(seg)
    return FakeProbe(["color", "object", "part", "scene"], names, segs, shape)


def concept_mask(seg: dict[str, CategoryLabels], number: int, category: str, shape) -> np.ndarray:
    """The obviously-correct mask of concept (number, category) in one image."""
    if category not in seg:
        return np.zeros(shape, dtype=bool)
    labels = seg[category]
    if number in labels.image:
        return np.ones(shape, dtype=bool)
    return (
        np.any(labels.pixel == number, axis=0) if labels.pixel.shape[0] else np.zeros(shape, bool)
    )


SQUARE_LABELS = [
    LabelSpec(1, "red", "color"),
    LabelSpec(2, "blue", "color"),
    LabelSpec(3, "square", "object"),
    LabelSpec(4, "field", "scene"),
    LabelSpec(300, "stripes", "texture"),  # > 255: stored as R + 256 * G
]


def write_probe(root: Path, *, n_images: int = 6, size: int = 8, seed: int = 0) -> Path:
    """A real Broden directory: red/blue colour maps, a square object, a scene, stripes.

    Image ``i`` holds a red square at a random place on a blue background (odd images lack the
    texture layer; image 0 has no scene label). Pixel RGB values follow the colour labels, so a
    "redness" detector fires exactly on the ``red`` concept.
    """
    rng = np.random.default_rng(seed)
    writer = BrodenWriter(root, SQUARE_LABELS)
    for i in range(n_images):
        side = int(rng.integers(2, size // 2 + 1))
        y, x = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        square = np.zeros((size, size), dtype=bool)
        square[y : y + side, x : x + side] = True
        image = np.zeros((size, size, 3), dtype=np.uint8)
        image[square] = (255, 0, 0)
        image[~square] = (0, 0, 255)
        pixel = {"color": [np.where(square, 1, 2)], "object": [np.where(square, 3, 0)]}
        if i % 2 == 0:
            pixel["texture"] = [np.where(np.arange(size)[None, :] % 2 == 0, 300, 0).repeat(size, 0)]
        writer.add(f"img{i}", image=image, pixel=pixel, image_level={"scene": [4]} if i else {})
    writer.close()
    return root


def run_download_rule(
    workdir: Path, target: str, *, config: dict, unresized_probe: str = "unused", cores: int = 1
) -> subprocess.CompletedProcess:
    """Build ``target`` with workflow/rules/download.smk alone: a Snakefile that sets ``config``
    and stubs what common.smk would give it, run by a real ``snakemake`` in ``workdir/run``."""
    snakefile = workdir / "Snakefile"
    snakefile.write_text(
        f"config.update({config!r})\n"
        f"def unresized_probe_dir():\n    return {unresized_probe!r}\n"
        "from prunedissect import resources as jobs\n"
        f"include: '{REPO / 'workflow' / 'rules' / 'download.smk'}'\n"
    )
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir / "run"),
         "--cores", str(cores), "--workflow-profile", "none", target],
        capture_output=True, text=True, timeout=300, env=env, check=False, cwd=workdir,
    )  # fmt: skip
