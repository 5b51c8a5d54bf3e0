"""Image preprocessing shared by training, evaluation and activation extraction.

One function builds every pipeline so that the probe images a network is dissected on are
normalised exactly like the images it was trained on.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torchvision.transforms import Compose

LARGE_IMAGE_SIDE = 128
"""Inputs of this side or more are "large" (ImageNet-scale): ImageNet-style geometry, streamed
from disk instead of held in memory, and the large job resources of the workflow."""

# torchvision is imported inside the functions: importing it costs ~1.5 s, and the threshold and
# tally jobs import prunedissect.dissection (hence this module) without ever building a pipeline.


def make_transform(
    *,
    image_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    train: bool = False,
    augment: bool = True,
    large: bool | None = None,
) -> Compose:
    """Return the torchvision pipeline from a PIL image to a normalised float tensor.

    ``large`` picks ImageNet-style geometry (random-resized crop for training, resize to 8/7 of
    the side then centre crop for evaluation); by default it is on for inputs of
    ``LARGE_IMAGE_SIDE`` (128) px or more.
    Small inputs (CIFAR, the concept world) train with a padded random crop and a horizontal flip
    and evaluate at their own size.
    """
    from torchvision import transforms as T

    if large is None:
        large = image_size >= LARGE_IMAGE_SIDE
    normalise = [T.ToTensor(), T.Normalize(list(mean), list(std))]
    if train and augment:
        if large:
            geometry = [T.RandomResizedCrop(image_size), T.RandomHorizontalFlip()]
        else:
            geometry = [
                T.Resize(image_size),
                T.CenterCrop(image_size),
                T.RandomCrop(image_size, padding=image_size // 8),
                T.RandomHorizontalFlip(),
            ]
    elif large:
        geometry = [T.Resize(round(image_size * 8 / 7)), T.CenterCrop(image_size)]
    else:
        geometry = [T.Resize(image_size), T.CenterCrop(image_size)]
    return T.Compose(geometry + normalise)


def make_probe_transform(
    *, image_size: int | None, mean: Sequence[float], std: Sequence[float]
) -> Compose:
    """Pipeline for dissection probe images: the whole image, no crop, no augmentation.

    NetDissect feeds each probe image whole so that activation maps align with the image's
    segmentation; ``image_size`` (when given) resizes the image to a square of that side first.
    """
    from torchvision import transforms as T

    geometry = [] if image_size is None else [T.Resize((image_size, image_size))]
    return T.Compose(geometry + [T.ToTensor(), T.Normalize(list(mean), list(std))])
