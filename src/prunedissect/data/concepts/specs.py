"""What an image holds (sampled first, rendered afterwards at any resolution)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class Pattern:
    """A texture placed in the image plane: pattern name, period (image units), angle, phase."""

    texture: str
    period: float
    angle: float
    phase: tuple[float, float]
    flecks: np.ndarray  # bool (16, 16), used by "flecked"


@dataclass(frozen=True, eq=False)
class Region:
    """A background region (sky or ground)."""

    colour: str
    rgb: np.ndarray  # float (3,) in 0..1
    pattern: Pattern


@dataclass(frozen=True, eq=False)
class ObjectSpec:
    """One object: shape, colour, texture and its placement (image units, radians)."""

    shape: str
    colour: str
    rgb: np.ndarray
    pattern: Pattern
    centre: tuple[float, float]  # (x, y), 0..1, y downwards
    size: float  # half extent of the unit box
    aspect: tuple[float, float]
    angle: float
    mirror: bool
    material: str
    sheen: float  # direction (radians) of a metal object's shading


@dataclass(frozen=True, eq=False)
class SceneSpec:
    """A whole image: scene, background regions, objects in paint order, photometric jitter."""

    scene: str
    sky: Region
    ground: Region
    horizon: tuple[float, float, float, float]  # height, amplitude, frequency, phase
    objects: tuple[ObjectSpec, ...]
    brightness: float
    noise_seed: int


@dataclass(frozen=True, eq=False)
class SwatchSpec:
    """A texture swatch: one pattern in one colour filling the image, photometric jitter."""

    colour: str
    rgb: np.ndarray  # float (3,) in 0..1
    pattern: Pattern
    brightness: float
    noise_seed: int


@dataclass(frozen=True, eq=False)
class RenderedImage:
    """An image with its pixel-exact labels (global label numbers, 0 = none).

    ``pixel`` maps each pixel-level category to its label layers ``(n_layers, S, S)``: one
    layer, a second one where glass lies over something, none where the category labels no
    pixel (an image without objects has no object, part or material layer). ``image_level``
    maps an image-level category to its label: ``scene`` for a scene, ``texture`` for a swatch.
    """

    image: np.ndarray  # uint8 (S, S, 3)
    pixel: dict[str, np.ndarray]  # int32 (n_layers, S, S)
    image_level: dict[str, int]
    instance: np.ndarray  # int32 (S, S): 1 + index of the topmost object in spec.objects
