"""Image classification splits for training and evaluation.

:func:`load_split` opens an ImageFolder split: decoded once into memory when small
(:class:`InMemoryImages`, augmented with batched tensor ops) or streamed through a DataLoader
with :func:`~prunedissect.data.transforms.make_transform` (:class:`StreamingImages`). Every
batch's augmentation depends only on (seed, batch number), so a resumed epoch sees the same
images as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F
from torchvision import datasets
from torchvision import transforms as T

from prunedissect.data.transforms import LARGE_IMAGE_SIDE, make_transform
from prunedissect.seeds import derive_seed

IN_MEMORY_LIMIT_BYTES = 2 * 1024**3
"""Decoded ImageFolder splits up to this size are held in memory (uint8) instead of streamed."""


class ImageData(Protocol):
    """One split of an image classification set, batched on demand."""

    classes: list[str]

    def __len__(self) -> int: ...

    def content_hash(self) -> str:
        """A digest identifying the split's content."""
        ...

    def batches(
        self, *, batch_size: int, order: torch.Tensor | None, seed: int, first_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (normalised float images, int64 targets) in ``order`` (None: file order).

        ``seed`` and the absolute batch number ``first_batch + j`` fix the augmentation.
        """
        ...


class InMemoryImages:
    """A split decoded once to uint8 ``(N, 3, H, W)``; augmentation by batched tensor ops.

    The augmentation is the small-image one of :func:`make_transform`: a random crop of the
    image zero-padded by ``side // 8`` pixels, then a horizontal flip with probability 1/2,
    then normalisation. Each batch draws from its own generator seeded by (seed, batch number),
    so a batch looks the same however the epoch was entered (resume, rewind mid-epoch).
    """

    def __init__(
        self,
        images: torch.Tensor,
        targets: torch.Tensor,
        *,
        classes: list[str],
        mean: Sequence[float],
        std: Sequence[float],
        augment: bool,
    ) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"images must be uint8 (N, 3, H, W), got {images.dtype} {images.shape}"
            )
        self.images, self.targets, self.classes = images, targets, classes
        self.augment = augment
        self._mean = torch.tensor(mean, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def content_hash(self) -> str:
        """SHA-256 of the decoded pixels and targets (resume checkpoints are tied to it)."""
        digest = hashlib.sha256(self.images.cpu().numpy().tobytes())
        digest.update(self.targets.cpu().numpy().tobytes())
        return digest.hexdigest()

    def _augment(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        n, _, height, width = batch.shape
        pad = height // 8
        padded = F.pad(batch, (pad, pad, pad, pad))
        top = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        left = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
        flip = torch.rand(n, generator=generator) < 0.5
        rows = (top[:, None] + torch.arange(height)[None, :]).to(batch.device)
        cols = left[:, None] + torch.arange(width)[None, :]
        cols = torch.where(flip[:, None], cols.flip(1), cols).to(batch.device)
        index_n = torch.arange(n, device=batch.device)[:, None, None, None]
        index_c = torch.arange(3, device=batch.device)[None, :, None, None]
        return padded[index_n, index_c, rows[:, None, :, None], cols[:, None, None, :]]

    def batches(
        self, *, batch_size: int, order: torch.Tensor | None, seed: int, first_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        indices = torch.arange(len(self)) if order is None else order
        for j, start in enumerate(range(0, len(indices), batch_size)):
            chosen = indices[start : start + batch_size].to(self.images.device)
            batch = self.images[chosen]
            if self.augment:
                generator = torch.Generator().manual_seed(derive_seed(seed, first_batch + j))
                batch = self._augment(batch, generator)
            images = (batch.float() / 255.0 - self._mean) / self._std
            yield images, self.targets[chosen]


class StreamingImages:
    """A split read from disk each epoch through a DataLoader and a torchvision transform."""

    def __init__(self, folder: datasets.ImageFolder, *, num_workers: int) -> None:
        self.folder, self.classes, self.num_workers = folder, list(folder.classes), num_workers

    def __len__(self) -> int:
        return len(self.folder)

    def content_hash(self) -> str:
        """SHA-256 of the file list and targets (hashing every image would take too long)."""
        root = Path(self.folder.root)
        listing = [
            (str(Path(path).relative_to(root)), target) for path, target in self.folder.samples
        ]
        return hashlib.sha256(json.dumps(listing).encode()).hexdigest()

    def batches(
        self, *, batch_size: int, order: torch.Tensor | None, seed: int, first_batch: int = 0
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        sampler = list(range(len(self))) if order is None else order.tolist()
        generator = torch.Generator().manual_seed(derive_seed(seed, first_batch))
        loader = torch.utils.data.DataLoader(
            self.folder,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            generator=generator,
            persistent_workers=False,
        )
        # Without workers the transforms draw from the global RNG: fork and seed it per epoch.
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(derive_seed(seed, first_batch, 1))
            yield from loader


def _decode(path: str, size: int) -> torch.Tensor:
    geometry = T.Compose([T.Resize(size), T.CenterCrop(size)])
    with Image.open(path) as image:
        array = np.asarray(geometry(image.convert("RGB")), dtype=np.uint8)
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def load_split(
    root: str | os.PathLike,
    *,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    train: bool,
    augment: bool,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    in_memory_limit: int = IN_MEMORY_LIMIT_BYTES,
) -> ImageData:
    """Open the ImageFolder split ``root`` (one sub-directory per class).

    Small-image splits (side < ``LARGE_IMAGE_SIDE``) whose decoded size stays under
    ``in_memory_limit`` bytes are decoded once into memory on ``device``; larger ones stream
    from disk with :func:`make_transform` (ImageNet-style geometry for large sides).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"image folder {root} does not exist; expected <images>/train/<class>/*.png and "
            "<images>/val/<class>/*.png"
        )
    folder = datasets.ImageFolder(
        str(root),
        transform=make_transform(
            image_size=image_size, mean=mean, std=std, train=train, augment=augment
        ),
    )
    decoded_bytes = len(folder) * 3 * image_size * image_size
    if image_size >= LARGE_IMAGE_SIDE or decoded_bytes > in_memory_limit:
        return StreamingImages(folder, num_workers=num_workers)
    images = torch.stack([_decode(path, image_size) for path, _ in folder.samples])
    targets = torch.tensor(folder.targets, dtype=torch.int64)
    return InMemoryImages(
        images.to(device),
        targets.to(device),
        classes=list(folder.classes),
        mean=mean,
        std=std,
        augment=train and augment,
    )

