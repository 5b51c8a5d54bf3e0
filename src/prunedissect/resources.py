"""What each workflow job asks a scheduler for: one function per resource, from the config.

The rules call :func:`threads`, :func:`mem_mb`, :func:`runtime` and :func:`gpu` with the checked
config and their own rule name; a profile's ``set-resources`` still overrides them
(profiles/README.md). Resources never change a result: under the pinned CPU kernels
(:mod:`prunedissect.reproducibility`) a job's torch thread count comes from ``cpu.threads``, not
from what is granted here. Torch-free, so the workflow can call it while it parses.

Sizes come in two classes: studies on small images (CIFAR, the concept world) and ImageNet-scale
ones (``dataset.image_size >= LARGE_IMAGE_SIDE``). A training level's runtime is its estimated
time from :data:`EPOCH_MINUTES`, with 50% and 30 minutes of slack; a level killed at its limit
resumes from its last epoch checkpoint when the job is retried.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prunedissect.data.transforms import LARGE_IMAGE_SIDE
from prunedissect.methods import Method

EPOCH_MINUTES = {"resnet20": 1, "resnet18": 10, "googlenet": 12, "resnet50": 20}
"""Minutes per training epoch on one GPU: resnet20 on a 32-px set of ~50k images, the
torchvision models on ImageNet (1.28 M images; resnet50 at ~1,070 images/s, below the
1,200-1,500 images/s of the README's cost estimate, so the limit errs long)."""

TRAINING_RULES = ("train_dense", "train_pruned")
GPU_RULES = (*TRAINING_RULES, "extract_activations", "speed")

_MEM_MB = {  # rule: (small study, ImageNet-scale study)
    "train_dense": (4000, 32000),
    "train_pruned": (4000, 32000),
    "extract_activations": (4000, 32000),
    "tally_iou": (4000, 32000),
    "check_probe": (2000, 8000),
    "encode_probe_labels": (4000, 16000),
    "init_network": (2000, 8000),
    "speed": (4000, 16000),
}
_RUNTIME = {  # rule: minutes (small study, ImageNet-scale study); training: see runtime()
    "train_dense": (60, 120),
    "train_pruned": (60, 120),
    "extract_activations": (30, 180),
    "tally_iou": (60, 24 * 60),  # thresholds, then the tally, of one layer
    "check_probe": (30, 240),
    "encode_probe_labels": (30, 240),
    "init_network": (10, 30),
    "speed": (30, 120),
}
_THREADS = {  # rules that use more than one core; training: see threads()
    "generate_concepts": 2,
    "resize_probe": 4,
    "check_probe": 4,
    "extract_activations": 4,
}


def large(config: Mapping[str, Any]) -> bool:
    """Whether the study is ImageNet-scale (``dataset.image_size >= LARGE_IMAGE_SIDE``)."""
    return config["dataset"]["image_size"] >= LARGE_IMAGE_SIDE


def _sized(config: Mapping[str, Any], table: Mapping[str, tuple[int, int]], rule: str) -> int:
    small, big = table[rule]
    return big if large(config) else small


def level_epochs(config: Mapping[str, Any], rule: str, method: Method | None = None) -> int:
    """Epochs one level of ``rule`` trains at most (a fine-tuning arm's levels: its ``epochs``)."""
    if rule == "train_pruned" and method is not None and method.finetunes:
        return int(method.epochs)
    return config["training"]["epochs"]


def estimated_minutes(config: Mapping[str, Any], rule: str, method: Method | None = None) -> float:
    """Estimated minutes of one training level on one GPU (:data:`EPOCH_MINUTES`)."""
    return level_epochs(config, rule, method) * EPOCH_MINUTES[config["model"]["arch"]]


def threads(config: Mapping[str, Any], rule: str) -> int:
    """Cores: a training job gets one for itself and one per data-loader worker."""
    if rule in TRAINING_RULES:
        return config["training"]["num_workers"] + 1
    if rule == "speed":  # timings are taken with this many threads
        return config["speed"]["threads"]
    return _THREADS.get(rule, 1)


def mem_mb(config: Mapping[str, Any], rule: str) -> int:
    """Memory in MB."""
    return _sized(config, _MEM_MB, rule)


def runtime(config: Mapping[str, Any], rule: str, method: Method | None = None) -> int:
    """Minutes; a training level (of arm ``method``): at least 1.5 x its estimate plus 30."""
    floor = _sized(config, _RUNTIME, rule)
    if rule in TRAINING_RULES:
        return max(floor, 30 + int(1.5 * estimated_minutes(config, rule, method)))
    return floor


def gpu(config: Mapping[str, Any], rule: str) -> int:
    """GPUs: one for training, extraction and timing (``speed``), none when ``device`` is
    ``cpu``."""
    return int(rule in GPU_RULES and config["device"] != "cpu")
