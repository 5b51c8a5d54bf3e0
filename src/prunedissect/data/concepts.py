"""A procedurally generated world of concepts: a training set and a Broden-format probe set.

Real ImageNet and Broden are too large for a laptop and cannot be fetched everywhere, so the
default study trains and dissects on this world. Every image is a scene background (a "sky"
region over a "ground" region, each with a named colour and a texture) with objects painted on
it; objects have parts, a named colour and a texture, and vary in position, scale, aspect,
rotation, mirroring, count and occlusion. Labels are pixel-exact because they come from the same
geometry the image is rendered from (the image is supersampled for anti-aliasing, the labels are
taken at pixel centres).

Concepts (Broden categories):

- colour (pixel level): the named colour a pixel was painted with (12 colours);
- object (pixel level): 10 shape classes; background pixels carry no object label;
- part (pixel level): 2 parts per shape, named ``<shape>-<part>``;
- material (pixel level): paint, metal (banded shading and a highlight) or glass (translucent);
  background pixels carry no material label;
- scene (image level): 7 classes, each a palette and texture of its sky and ground;
- texture (image level): 7 patterns (striped, chequered, ...), labelled on texture swatches:
  every tenth probe image is one pattern filling the frame in one colour, as Broden takes its
  textures from the Describable Textures Dataset (whole-image swatches, 9% of its images).
  Objects and backgrounds are textured too (8 patterns with ``plain``), but, as in Broden,
  scene images carry no texture labels.

Where a glass object lies over something, that pixel shows both, and its colour, object, part
and material labels have two layers: the glass first (dominant), what lies beneath second,
written as two ``;``-separated label PNGs as Broden does.

Training classes ask for concepts jointly: class ``<value>-<shape>`` holds one (sometimes two)
key objects of a key shape and fixes one attribute of another category: the key objects' colour
(``red-car``, ``blue-bottle``), their material (``glass-house``, ``metal-house``) or the scene
(``forest-tree``, ``snowfield-mushroom``); every other attribute (colour, texture, material,
scene) is drawn at random, beside 0-2 smaller distractor objects of the other five shapes. Each
key shape occurs in two classes and each colour and scene pair serves two shapes, so neither the
shape nor a colour or scene alone names the class: a classifier on colour histograms stays far
below a network (see tests/test_concepts.py), which must bind shape to colour, material and
scene.

Randomness comes only from ``numpy.random.Generator`` objects seeded per image from
``(seed, stream, class, index)``, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import shutil
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from prunedissect.data.broden import (
    Broden,
    BrodenWriter,
    LabelSpec,
    WrittenImage,
    write_image_files,
)

logger = logging.getLogger(__name__)

MIN_IMAGE_SIZE = 16
#: Sub-directory of the probe set's images/ holding the generated images and label PNGs.
PROBE_FOLDER = "concepts"

#: Named colours (sRGB prototypes); rendered colours are jittered around them.
COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (25, 25, 28),
    "white": (235, 235, 230),
    "grey": (128, 128, 128),
    "red": (205, 35, 35),
    "orange": (240, 135, 25),
    "yellow": (235, 215, 45),
    "green": (45, 160, 55),
    "cyan": (45, 200, 210),
    "blue": (40, 70, 205),
    "purple": (130, 55, 175),
    "pink": (240, 135, 185),
    "brown": (120, 72, 32),
}

#: Materials of objects (pixel level): flat paint, shaded metal with a highlight, and
#: translucent glass, through which what lies beneath shows (and is labelled as a second layer).
MATERIALS = ("paint", "metal", "glass")

#: Patterns of objects and background regions (``plain``: none).
TEXTURES = ("plain", "striped", "chequered", "dotted", "wavy", "zigzagged", "grid", "flecked")

#: The texture concepts: the patterns of the probe's texture swatches (every ``SWATCH_EVERY``-th
#: probe image, starting at ``SWATCH_EVERY // 2``). Texture labels are image level, as Broden's
#: (DTD swatches, 9% of its images): a unit's mask covers the top 0.5% of its activations, so
#: against a concept covering a share p of the probe's pixels its IoU is at most 0.005 / p; pixel
#: labels on every textured object and background (6-16% of the pixels per pattern) capped the
#: IoU of a perfect texture detector at 0.03-0.08, while a swatch texture covers 1.4%.
SWATCH_TEXTURES = TEXTURES[1:]
SWATCH_EVERY = 10

#: Shape -> its parts in paint order (a later part covers an earlier one).
SHAPE_PARTS: dict[str, tuple[str, str]] = {
    "house": ("wall", "roof"),
    "tree": ("trunk", "crown"),
    "fish": ("tail", "body"),
    "car": ("body", "wheel"),
    "star": ("point", "centre"),
    "mushroom": ("stem", "cap"),
    "arrow": ("shaft", "head"),
    "hammer": ("handle", "head"),
    "flower": ("petal", "centre"),
    "bottle": ("body", "neck"),
}
SHAPES = tuple(SHAPE_PARTS)

#: Parts painted in a fixed colour, plain, whatever the object's colour (the second entry is
#: used when the object already has the first). They give four of the five key shapes a
#: distinctive part, which a small network picks up within a few epochs; pure silhouette cues
#: (star against bottle) alone took twice as long to learn.
FIXED_PART_COLOURS: dict[tuple[str, str], tuple[str, str]] = {
    ("house", "roof"): ("brown", "black"),
    ("bottle", "neck"): ("black", "grey"),
    ("tree", "trunk"): ("brown", "black"),
    ("car", "wheel"): ("black", "grey"),
    ("mushroom", "stem"): ("white", "grey"),
    ("hammer", "handle"): ("brown", "black"),
    ("flower", "centre"): ("yellow", "orange"),
}


@dataclass(frozen=True)
class _RegionStyle:
    colours: tuple[str, ...]
    textures: tuple[str, ...]


#: Scene -> (sky style, ground style). Scenes share colours and textures, so only their
#: combination names the scene.
SCENES: dict[str, tuple[_RegionStyle, _RegionStyle]] = {
    "desert": (
        _RegionStyle(("blue", "cyan"), ("plain",)),
        _RegionStyle(("yellow", "orange"), ("wavy", "plain")),
    ),
    "ocean": (
        _RegionStyle(("white", "grey"), ("plain", "flecked")),
        _RegionStyle(("blue", "cyan"), ("wavy", "zigzagged")),
    ),
    "forest": (
        _RegionStyle(("green", "orange"), ("dotted", "flecked")),
        _RegionStyle(("brown", "grey"), ("flecked", "plain")),
    ),
    "snowfield": (
        _RegionStyle(("grey", "blue"), ("plain", "flecked")),
        _RegionStyle(("white", "grey"), ("flecked", "dotted")),
    ),
    "night": (
        _RegionStyle(("black", "purple"), ("dotted", "plain")),
        _RegionStyle(("blue", "grey"), ("plain", "grid")),
    ),
    "kitchen": (
        _RegionStyle(("yellow", "pink"), ("striped", "grid")),
        _RegionStyle(("white", "grey"), ("chequered",)),
    ),
    "meadow": (
        _RegionStyle(("cyan", "blue"), ("plain",)),
        _RegionStyle(("green", "yellow"), ("striped", "zigzagged")),
    ),
}

#: Colours hard to tell apart from a key colour on a small, noisy image.
SIMILAR_COLOURS: dict[str, set[str]] = {
    "red": {"orange", "pink", "brown"},
    "yellow": {"orange"},
    "green": {"cyan"},
    "blue": {"cyan", "purple"},
    "white": {"grey"},
}

@dataclass(frozen=True)
class TrainingClass:
    """A training class: a key shape and the one attribute that tells it from its twin class.

    ``category`` is the Broden category of that attribute (``color``, ``scene``, ``material``
    or ``texture``) and ``value`` its concept; the class is named ``<value>-<shape>``.
    """

    shape: str
    category: str
    value: str

    @property
    def name(self) -> str:
        return f"{self.value}-{self.shape}"


#: The training classes, in class-index order: five key shapes, each in two classes that differ
#: in one attribute of another category: colour (car, bottle), material (house) or scene (tree,
#: mushroom). Two shapes share each colour pair and each scene pair, so neither a colour nor a
#: scene alone names a class: the network must bind shape to colour, material and scene. Every
#: key shape has a part in a fixed colour (wheel, roof, trunk, stem, neck), which a small
#: network finds within an epoch. Attributes a class does not fix are drawn for every image.
#: Texture classes (striped against chequered cars or houses) stayed at chance after 9 epochs at
#: 32 px, so no class depends on texture (README, "The concept world").
CLASSES: tuple[TrainingClass, ...] = (
    TrainingClass("car", "color", "red"),
    TrainingClass("car", "color", "blue"),
    TrainingClass("house", "material", "glass"),
    TrainingClass("house", "material", "metal"),
    TrainingClass("tree", "scene", "forest"),
    TrainingClass("tree", "scene", "snowfield"),
    TrainingClass("mushroom", "scene", "forest"),
    TrainingClass("mushroom", "scene", "snowfield"),
    TrainingClass("bottle", "color", "red"),
    TrainingClass("bottle", "color", "blue"),
)
KEY_SHAPES = tuple(dict.fromkeys(c.shape for c in CLASSES))
DISTRACTOR_SHAPES = tuple(s for s in SHAPES if s not in KEY_SHAPES)

_STREAM = {"train": 0, "val": 1, "probe": 2}


def class_names() -> list[str]:
    """The training classes, ``<value>-<shape>``, in class-index order."""
    return [c.name for c in CLASSES]


def concept_labels() -> list[LabelSpec]:
    """Every concept as a Broden label; numbers run colour, object, part, material, scene,
    texture (the order of Broden's index.csv columns)."""
    names = (
        [(name, "color") for name in COLOURS]
        + [(name, "object") for name in SHAPES]
        + [(f"{shape}-{part}", "part") for shape, parts in SHAPE_PARTS.items() for part in parts]
        + [(name, "material") for name in MATERIALS]
        + [(name, "scene") for name in SCENES]
        + [(name, "texture") for name in SWATCH_TEXTURES]
    )
    return [
        LabelSpec(number, name, category) for number, (name, category) in enumerate(names, start=1)
    ]


_NUMBER = {label.name: label.number for label in concept_labels()}


# ----------------------------------------------------------------------------------------------
# What an image holds (sampled first, rendered afterwards at any resolution)


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


@dataclass(frozen=True, eq=False)
class SwatchSpec:
    """A texture swatch: one pattern in one colour filling the image, photometric jitter."""

    colour: str
    rgb: np.ndarray  # float (3,) in 0..1
    pattern: Pattern
    brightness: float
    noise_seed: int


#: Texture periods (image units) drawn for objects and for background regions: at 32 px a period
#: spans 4-6 pixels, enough for stripes, checks and dots to be told apart.
OBJECT_PERIOD = (0.12, 0.18)
BACKGROUND_PERIOD = (0.13, 0.19)


def _jitter_colour(rng: np.random.Generator, name: str) -> np.ndarray:
    base = np.asarray(COLOURS[name], dtype=float) / 255.0
    rgb = base * rng.uniform(0.88, 1.1) + rng.uniform(-0.04, 0.04, size=3)
    return np.clip(rgb, 0.0, 1.0)


def _sample_pattern(
    rng: np.random.Generator, texture: str, *, period: tuple[float, float]
) -> Pattern:
    return Pattern(
        texture=texture,
        period=float(rng.uniform(*period)),
        angle=float(rng.uniform(0, math.pi)),
        phase=(float(rng.uniform(0, 1)), float(rng.uniform(0, 1))),
        flecks=rng.random((16, 16)) < 0.4,
    )


def _sample_background(
    rng: np.random.Generator, scene: str, avoid: set[str]
) -> tuple[Region, Region]:
    """Sky and ground of ``scene``, in colours other than (and, where the scene allows, unlike)
    the key colours ``avoid``, so that key objects stand out."""
    similar = set(avoid).union(*(SIMILAR_COLOURS.get(c, set()) for c in avoid))
    regions = []
    for style in SCENES[scene]:
        allowed = (
            [c for c in style.colours if c not in similar]
            or [c for c in style.colours if c not in avoid]
            or list(style.colours)
        )
        colour = allowed[rng.integers(len(allowed))]
        texture = style.textures[rng.integers(len(style.textures))]
        pattern = _sample_pattern(rng, texture, period=BACKGROUND_PERIOD)
        regions.append(Region(colour, _jitter_colour(rng, colour), pattern))
    return regions[0], regions[1]


def _sample_object(
    rng: np.random.Generator,
    shape: str,
    colour: str,
    *,
    size: tuple[float, float],
    glass: float = 0.2,
    material: str | None = None,
    texture: str | None = None,
) -> ObjectSpec:
    """An object at a random place, scale, aspect, tilt and mirroring, with the given or a random
    texture and material (random: glass with probability ``glass``, metal 0.25, else paint)."""
    half = float(rng.uniform(*size))
    margin = 0.62 * half
    drawn_texture = TEXTURES[rng.integers(len(TEXTURES))]
    drawn_material = str(rng.choice(MATERIALS, p=[0.75 - glass, 0.25, glass]))
    return ObjectSpec(
        shape=shape,
        colour=colour,
        rgb=_jitter_colour(rng, colour),
        pattern=_sample_pattern(rng, texture or drawn_texture, period=OBJECT_PERIOD),
        centre=(float(rng.uniform(margin, 1 - margin)), float(rng.uniform(margin, 1 - margin))),
        size=half,
        aspect=(float(rng.uniform(0.85, 1.15)), float(rng.uniform(0.85, 1.15))),
        angle=float(rng.uniform(-0.45, 0.45)),
        mirror=bool(rng.integers(2)),
        material=material or drawn_material,
        sheen=float(rng.uniform(0, 2 * math.pi)),
    )


def _sample_scene_spec(
    rng: np.random.Generator,
    make_objects: Callable[[np.random.Generator, set[str]], list[ObjectSpec]],
    key_colours: set[str],
    scene: str | None = None,
) -> SceneSpec:
    drawn = list(SCENES)[rng.integers(len(SCENES))]
    scene = scene or drawn
    sky, ground = _sample_background(rng, scene, key_colours)
    objects = make_objects(rng, {sky.colour, ground.colour})
    return SceneSpec(
        scene=scene,
        sky=sky,
        ground=ground,
        horizon=(
            float(rng.uniform(0.3, 0.7)),
            float(rng.uniform(0.0, 0.06)),
            float(rng.uniform(1.0, 3.0)),
            float(rng.uniform(0, 2 * math.pi)),
        ),
        objects=tuple(objects),
        brightness=float(rng.uniform(0.88, 1.12)),
        noise_seed=int(rng.integers(2**31)),
    )


def _other_colour(rng: np.random.Generator, avoid: set[str]) -> str:
    allowed = [c for c in COLOURS if c not in avoid]
    return allowed[rng.integers(len(allowed))]


def sample_training_spec(
    rng: np.random.Generator, class_index: int, *, image_size: int
) -> SceneSpec:
    """An image of training class ``class_index``: its key object(s), distractors, a scene.

    The class fixes the key shape and one attribute (the key objects' colour, material or
    texture, or the scene); every other attribute is drawn at random. Key objects are never
    glass unless the class asks for it (their colour or texture must show as it is). The key
    object keeps at least 55% of its area visible; a layout failing that is redrawn.
    """
    key = CLASSES[class_index]
    fixed = {key.category: key.value}

    def make_objects(rng: np.random.Generator, background: set[str]) -> list[ObjectSpec]:
        colour = fixed.get("color") or _other_colour(rng, background)
        material = fixed.get("material") or str(rng.choice(MATERIALS[:2], p=[0.75, 0.25]))
        texture = fixed.get("texture")
        keys = [
            _sample_object(rng, key.shape, colour, size=(0.28, 0.38), material=material,
                           texture=texture)
        ]  # fmt: skip
        if rng.random() < 0.25:
            keys.append(
                _sample_object(rng, key.shape, colour, size=(0.15, 0.22), material=material,
                               texture=texture)
            )  # fmt: skip
        distractors = [
            _sample_object(
                rng,
                DISTRACTOR_SHAPES[rng.integers(len(DISTRACTOR_SHAPES))],
                _other_colour(rng, background),
                size=(0.1, 0.18),
            )
            for _ in range(rng.integers(0, 3))
        ]
        objects = keys + distractors
        order = rng.permutation(len(objects))
        return [objects[k] for k in order]

    key_colours = {fixed["color"]} if "color" in fixed else set()
    for _ in range(20):
        spec = _sample_scene_spec(rng, make_objects, key_colours, scene=fixed.get("scene"))
        if _objects_visible(spec, image_size, minimum=0.55, only_shape=key.shape):
            return spec
    # a crowded layout keeps failing: keep the key objects alone
    keys = tuple(o for o in spec.objects if o.shape == key.shape)
    return SceneSpec(**{**spec.__dict__, "objects": keys})


def sample_probe_spec(rng: np.random.Generator, *, image_size: int) -> SceneSpec:
    """A probe image: 1-4 objects of any shape and colour, each at least 30% visible."""

    def make_objects(rng: np.random.Generator, background: set[str]) -> list[ObjectSpec]:
        count = int(rng.integers(1, 5))
        return [
            _sample_object(
                rng,
                SHAPES[rng.integers(len(SHAPES))],
                _other_colour(rng, background),
                size=(0.24, 0.34) if k == 0 else (0.12, 0.26),
            )
            for k in range(count)
        ]

    for _ in range(20):
        spec = _sample_scene_spec(rng, make_objects, set())
        if _objects_visible(spec, image_size, minimum=0.3, only_shape=None):
            return spec
    return SceneSpec(**{**spec.__dict__, "objects": spec.objects[:1]})


def sample_swatch_spec(rng: np.random.Generator) -> SwatchSpec:
    """A texture swatch: any swatch texture in any colour, at object texture periods."""
    texture = SWATCH_TEXTURES[rng.integers(len(SWATCH_TEXTURES))]
    colour = list(COLOURS)[rng.integers(len(COLOURS))]
    return SwatchSpec(
        colour=colour,
        rgb=_jitter_colour(rng, colour),
        pattern=_sample_pattern(rng, texture, period=OBJECT_PERIOD),
        brightness=float(rng.uniform(0.88, 1.12)),
        noise_seed=int(rng.integers(2**31)),
    )


def _objects_visible(
    spec: SceneSpec, image_size: int, *, minimum: float, only_shape: str | None
) -> bool:
    """Whether every (key) object shows at least ``minimum`` of its in-frame area."""
    x, y = _pixel_centres(image_size)
    instance = np.zeros((image_size, image_size), dtype=np.int32)
    areas = []
    for k, obj in enumerate(spec.objects):
        window = _window(obj, image_size)
        mask = _object_parts(obj, x[window], y[window]).parts.any(axis=0)
        instance[window][mask] = k + 1
        areas.append(int(mask.sum()))
    for k, obj in enumerate(spec.objects):
        if only_shape is not None and obj.shape != only_shape:
            continue
        if areas[k] == 0 or (instance == k + 1).sum() < minimum * areas[k]:
            return False
    return True


# ----------------------------------------------------------------------------------------------
# Geometry and rendering


def _pixel_centres(resolution: int) -> tuple[np.ndarray, np.ndarray]:
    centres = (np.arange(resolution, dtype=float) + 0.5) / resolution
    return np.meshgrid(centres, centres, indexing="xy")


def _in_polygon(u: np.ndarray, v: np.ndarray, vertices: list[tuple[float, float]]) -> np.ndarray:
    """Even-odd rule point-in-polygon test, vectorised over the points (u, v)."""
    inside = np.zeros(u.shape, dtype=bool)
    for (u1, v1), (u2, v2) in zip(vertices, vertices[1:] + vertices[:1], strict=True):
        if v1 == v2:
            continue  # a horizontal edge is never crossed by a horizontal ray
        crosses = (v1 > v) != (v2 > v)
        inside ^= crosses & (u < (u2 - u1) / (v2 - v1) * (v - v1) + u1)
    return inside


def _box(u, v, u0, u1, v0, v1):
    return (u >= u0) & (u <= u1) & (v >= v0) & (v <= v1)


def _disc(u, v, cu, cv, r):
    return (u - cu) ** 2 + (v - cv) ** 2 <= r * r


def _star_vertices(points: int, outer: float, inner: float) -> tuple[list, list]:
    star, core = [], []
    for k in range(2 * points):
        angle = -math.pi / 2 + k * math.pi / points
        radius = outer if k % 2 == 0 else inner
        star.append((radius * math.cos(angle), radius * math.sin(angle)))
        if k % 2:
            core.append(star[-1])
    return star, core


_STAR, _STAR_CORE = _star_vertices(5, 0.98, 0.42)


def _shape_masks(shape: str, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Masks of the shape's two parts (paint order) in its unit box (u right, v down)."""
    if shape == "house":
        return _box(u, v, -0.62, 0.62, -0.12, 0.85), _in_polygon(
            u, v, [(-0.88, -0.1), (0, -0.88), (0.88, -0.1)]
        )
    if shape == "tree":
        return _box(u, v, -0.15, 0.15, 0.05, 0.92), _disc(u, v, 0, -0.25, 0.64)
    if shape == "fish":
        return _in_polygon(u, v, [(0.3, 0), (0.92, -0.5), (0.92, 0.5)]), (
            ((u + 0.15) / 0.64) ** 2 + (v / 0.4) ** 2 <= 1
        )
    if shape == "car":
        body = _box(u, v, -0.92, 0.92, -0.22, 0.36) | _box(u, v, -0.45, 0.4, -0.66, -0.2)
        return body, _disc(u, v, -0.5, 0.4, 0.25) | _disc(u, v, 0.5, 0.4, 0.25)
    if shape == "star":
        return _in_polygon(u, v, _STAR), _in_polygon(u, v, _STAR_CORE)
    if shape == "mushroom":
        cap = ((u / 0.88) ** 2 + ((v + 0.05) / 0.8) ** 2 <= 1) & (v <= -0.05)
        return _box(u, v, -0.24, 0.24, -0.1, 0.85), cap
    if shape == "arrow":
        return _box(u, v, -0.92, 0.2, -0.14, 0.14), _in_polygon(
            u, v, [(0.1, -0.52), (0.92, 0), (0.1, 0.52)]
        )
    if shape == "hammer":
        return _box(u, v, -0.12, 0.12, -0.45, 0.92), _box(u, v, -0.66, 0.66, -0.86, -0.42)
    if shape == "flower":
        petals = np.zeros(u.shape, dtype=bool)
        for k in range(5):
            angle = -math.pi / 2 + 2 * math.pi * k / 5
            petals |= _disc(u, v, 0.52 * math.cos(angle), 0.52 * math.sin(angle), 0.38)
        return petals, _disc(u, v, 0, 0, 0.32)
    if shape == "bottle":
        body = _in_polygon(
            u,
            v,
            [
                (-0.45, 0.92),
                (0.45, 0.92),
                (0.45, -0.05),
                (0.17, -0.32),
                (-0.17, -0.32),
                (-0.45, -0.05),
            ],
        )
        return body, _box(u, v, -0.17, 0.17, -0.88, -0.3)
    raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")


def _window(obj: ObjectSpec, resolution: int) -> tuple[slice, slice]:
    """The (rows, columns) slice of a ``resolution`` grid holding the object's unit box."""
    cos, sin = abs(math.cos(obj.angle)), abs(math.sin(obj.angle))
    half_x = obj.size * (obj.aspect[0] * cos + obj.aspect[1] * sin)
    half_y = obj.size * (obj.aspect[0] * sin + obj.aspect[1] * cos)

    def span(centre: float, half: float) -> slice:
        start = max(0, math.floor((centre - half) * resolution))
        return slice(
            start, max(start, min(resolution, math.ceil((centre + half) * resolution) + 1))
        )

    return span(obj.centre[1], half_y), span(obj.centre[0], half_x)


@dataclass(frozen=True)
class _Placed:
    """An object evaluated on a grid window: exclusive part masks (2, h, w), the offsets from
    its centre in image units (textures follow the object) and its own unit-box coordinates."""

    parts: np.ndarray
    dx: np.ndarray
    dy: np.ndarray
    u: np.ndarray
    v: np.ndarray


def _object_parts(obj: ObjectSpec, x: np.ndarray, y: np.ndarray) -> _Placed:
    """Evaluate ``obj`` at the image-plane points ``(x, y)``."""
    dx, dy = x - obj.centre[0], y - obj.centre[1]
    cos, sin = math.cos(obj.angle), math.sin(obj.angle)
    u = (dx * cos + dy * sin) / (obj.size * obj.aspect[0])
    v = (-dx * sin + dy * cos) / (obj.size * obj.aspect[1])
    if obj.mirror:
        u = -u
    first, second = _shape_masks(obj.shape, u, v)
    return _Placed(np.stack([first & ~second, second]), dx, dy, u, v)


def _pattern_mask(pattern: Pattern, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Where the texture's second tone lies (bool), for points in image units."""
    period = pattern.period
    cos, sin = math.cos(pattern.angle), math.sin(pattern.angle)
    a = (x * cos + y * sin) / period + pattern.phase[0]
    b = (-x * sin + y * cos) / period + pattern.phase[1]
    texture = pattern.texture
    if texture == "plain":
        return np.zeros(x.shape, dtype=bool)
    if texture == "striped":
        return (a % 1.0) < 0.5
    if texture == "chequered":
        return (np.floor(a / 0.75) + np.floor(b / 0.75)) % 2 == 1
    if texture == "dotted":
        return ((a % 1.0) - 0.5) ** 2 + ((b % 1.0) - 0.5) ** 2 < 0.3**2
    if texture == "wavy":
        return ((b + 0.35 * np.sin(2 * math.pi * a / 2.0)) % 1.0) < 0.5
    if texture == "zigzagged":
        triangle = 2 * np.abs(2 * ((a / 1.2) % 1.0) - 1) - 1
        return ((b + 0.45 * triangle) % 1.0) < 0.5
    if texture == "grid":
        return ((a % 1.0) < 0.28) | ((b % 1.0) < 0.28)
    if texture == "flecked":
        i = np.floor(a * 2).astype(np.int64) % 16
        j = np.floor(b * 2).astype(np.int64) % 16
        return pattern.flecks[i, j]
    raise ValueError(f"unknown texture {texture!r}; known: {TEXTURES}")


#: How far a texture's second tone departs from the base colour, on objects and backgrounds
#: (backgrounds are calmer so that objects stand out).
OBJECT_CONTRAST = 0.26
BACKGROUND_CONTRAST = 0.22
#: Texture swatches show their pattern boldly, as the photographs of textures Broden's come
#: from do: there the texture is the picture, not a surface detail (README, "The concept world",
#: gives the level-0 concepts found at 0.26, 0.5 and 0.7).
SWATCH_CONTRAST = 0.7


def _second_tone(rgb: np.ndarray, contrast: float) -> np.ndarray:
    """The texture's second tone: lighter for dark colours, darker for light ones."""
    luminance = float(rgb @ np.array([0.299, 0.587, 0.114]))
    return rgb + (1 - rgb) * contrast if luminance < 0.36 else rgb * (1 - contrast)


#: Brightness of a metal object's four shading bands, and where its highlight lies.
METAL_BANDS = (0.7, 0.9, 1.08, 1.26)
METAL_HIGHLIGHT = (0.3, 0.48)
GLASS_OPACITY = 0.45


class _Palette:
    """Paints by palette index (cheap 2-D writes); :meth:`rgb` turns the indices into colours."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.index = np.zeros(shape, dtype=np.int32)
        self.colours: list[np.ndarray] = []

    def paint(
        self, window, mask: np.ndarray, tones: np.ndarray, shade: np.ndarray | None = None
    ) -> None:
        """Paint ``tones[shade, tone]`` where ``mask`` holds (``tones``: (n_shades, 2, 3))."""
        tone = tones.shape[1] * (0 if shade is None else shade[mask]) + self._tone[mask]
        self.index[window][mask] = len(self.colours) + tone
        self.colours.extend(tones.reshape(-1, 3))

    def glaze(self, window, mask: np.ndarray, tones: np.ndarray) -> None:
        """Lay translucent ``tones[0, tone]`` over what is painted where ``mask`` holds."""
        beneath = self.index[window][mask]
        key = beneath * 2 + self._tone[mask]
        unique, inverse = np.unique(key, return_inverse=True)
        under = np.asarray(self.colours)[unique // 2]
        self.index[window][mask] = len(self.colours) + inverse.ravel()
        mixed = GLASS_OPACITY * tones[0, unique % 2] + (1 - GLASS_OPACITY) * under
        self.colours.extend(mixed)

    def texture(self, pattern: Pattern, x: np.ndarray, y: np.ndarray, mask: np.ndarray) -> None:
        """Set the pattern whose second tone the next :meth:`paint` or :meth:`glaze` uses,
        evaluated where ``mask`` holds."""
        self._tone = np.zeros(mask.shape, dtype=np.int32)
        if pattern.texture != "plain":
            self._tone[mask] = _pattern_mask(pattern, x[mask], y[mask])

    def rgb(self) -> np.ndarray:
        return np.asarray(self.colours)[self.index]


def _tones(rgb: np.ndarray, contrast: float) -> np.ndarray:
    """Base colour and texture tone, shape (1, 2, 3)."""
    return np.stack([rgb, _second_tone(rgb, contrast)])[None]


def _metal_tones(rgb: np.ndarray, contrast: float) -> np.ndarray:
    """Base and texture tone for each metal shading band and the highlight, (5, 2, 3)."""
    bands = [np.clip(rgb * factor, 0, 1) for factor in METAL_BANDS]
    bands.append(rgb + (1 - rgb) * 0.6)
    return np.stack([_tones(band, contrast)[0] for band in bands])


def _metal_shade(placed: _Placed, sheen: float) -> np.ndarray:
    """Shading band (0..3) or highlight (4) of each point of a metal object."""
    t = placed.u * math.cos(sheen) + placed.v * math.sin(sheen)
    shade = np.clip(np.floor((t + 1) * 2), 0, 3).astype(np.int32)
    shade[(t > METAL_HIGHLIGHT[0]) & (t < METAL_HIGHLIGHT[1])] = 4
    return shade


_LAYERED = ("color", "object", "part", "material")


def _draw(spec: SceneSpec, resolution: int, *, colours: bool) -> dict[str, np.ndarray]:
    """Label layers (2, R, R) per category, the topmost instance and, with ``colours``, the
    float RGB image, at the centres of a ``resolution`` grid."""
    x, y = _pixel_centres(resolution)
    shape = (resolution, resolution)
    out = {name: np.zeros((2, *shape), dtype=np.int32) for name in _LAYERED}
    out["instance"] = np.zeros(shape, dtype=np.int32)
    palette = _Palette(shape) if colours else None
    height, amplitude, frequency, phase = spec.horizon
    sky = y < height + amplitude * np.sin(2 * math.pi * frequency * x + phase)
    for region, mask in ((spec.sky, sky), (spec.ground, ~sky)):
        out["color"][0][mask] = _NUMBER[region.colour]
        if palette is not None:
            palette.texture(region.pattern, x, y, mask)
            palette.paint(..., mask, _tones(region.rgb, BACKGROUND_CONTRAST))
    for k, obj in enumerate(spec.objects):
        window = _window(obj, resolution)
        placed = _object_parts(obj, x[window], y[window])
        views = {name: out[name][:, window[0], window[1]] for name in _LAYERED}
        for part, mask in zip(SHAPE_PARTS[obj.shape], placed.parts, strict=True):
            colour, rgb, pattern = _part_look(obj, part)
            labels = {
                "color": _NUMBER[colour],
                "object": _NUMBER[obj.shape],
                "part": _NUMBER[f"{obj.shape}-{part}"],
                "material": _NUMBER[obj.material],
            }
            for name, number in labels.items():
                layers = views[name]
                # glass keeps what lies beneath as the second layer; opaque paint hides it
                layers[1][mask] = layers[0][mask] if obj.material == "glass" else 0
                layers[0][mask] = number
            out["instance"][window][mask] = k + 1
            if palette is not None:
                palette.texture(pattern, placed.dx, placed.dy, mask)
                if obj.material == "glass":
                    palette.glaze(window, mask, _tones(rgb, OBJECT_CONTRAST))
                elif obj.material == "metal":
                    shade = _metal_shade(placed, obj.sheen)
                    palette.paint(window, mask, _metal_tones(rgb, OBJECT_CONTRAST), shade)
                else:
                    palette.paint(window, mask, _tones(rgb, OBJECT_CONTRAST))
    if palette is not None:
        out["rgb"] = palette.rgb()
    return out


def _part_look(obj: ObjectSpec, part: str) -> tuple[str, np.ndarray, Pattern]:
    """Colour name, RGB and texture of one part: the object's, or a fixed plain colour."""
    fixed = FIXED_PART_COLOURS.get((obj.shape, part))
    if fixed is None:
        return obj.colour, obj.rgb, obj.pattern
    colour = fixed[1] if obj.colour == fixed[0] else fixed[0]
    plain = Pattern("plain", 1.0, 0.0, (0.0, 0.0), obj.pattern.flecks)
    return colour, np.asarray(COLOURS[colour], dtype=float) / 255.0, plain


def supersampling(image_size: int) -> int:
    """Supersampling factor for anti-aliasing: render at >= 128 px, at most 4x."""
    return max(1, min(4, math.ceil(128 / image_size)))


def _draw_swatch(spec: SwatchSpec, resolution: int) -> np.ndarray:
    """The float RGB image of a swatch at the centres of a ``resolution`` grid."""
    x, y = _pixel_centres(resolution)
    palette = _Palette((resolution, resolution))
    everywhere = np.ones((resolution, resolution), dtype=bool)
    palette.texture(spec.pattern, x, y, everywhere)
    palette.paint(..., everywhere, _tones(spec.rgb, SWATCH_CONTRAST))
    return palette.rgb()


def _finish(fine: np.ndarray, image_size: int, brightness: float, noise_seed: int) -> np.ndarray:
    """Average the supersampled ``fine`` RGB down to ``image_size``, jitter it, as uint8."""
    factor = fine.shape[0] // image_size
    rgb = fine.reshape(image_size, factor, image_size, factor, 3).mean(axis=(1, 3))
    noise = np.random.default_rng(noise_seed).normal(0.0, 0.025, size=rgb.shape)
    return np.round(np.clip(rgb * brightness + noise, 0.0, 1.0) * 255).astype(np.uint8)


def render(spec: SceneSpec | SwatchSpec, image_size: int) -> RenderedImage:
    """Render ``spec`` as an ``image_size`` square image with its pixel-exact label layers."""
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be at least {MIN_IMAGE_SIZE} px, got {image_size}")
    factor = supersampling(image_size)
    if isinstance(spec, SwatchSpec):
        fine = _draw_swatch(spec, image_size * factor)
        shape = (image_size, image_size)
        return RenderedImage(
            image=_finish(fine, image_size, spec.brightness, spec.noise_seed),
            pixel={"color": np.full((1, *shape), _NUMBER[spec.colour], dtype=np.int32)},
            image_level={"texture": _NUMBER[spec.pattern.texture]},
            instance=np.zeros(shape, dtype=np.int32),
        )
    labels = _draw(spec, image_size, colours=False)
    fine = _draw(spec, image_size * factor, colours=True)["rgb"]
    pixel = {}
    for name in _LAYERED:
        layers = labels[name]
        used = [k for k in range(len(layers)) if layers[k].any()]
        pixel[name] = layers[: used[-1] + 1] if used else layers[:0]
    return RenderedImage(
        image=_finish(fine, image_size, spec.brightness, spec.noise_seed),
        pixel=pixel,
        image_level={"scene": _NUMBER[spec.scene]},
        instance=labels["instance"],
    )


# ----------------------------------------------------------------------------------------------
# Datasets on disk


def _image_rng(seed: int, stream: str, class_index: int, index: int) -> np.random.Generator:
    return np.random.default_rng(
        np.random.SeedSequence([seed, _STREAM[stream], class_index, index])
    )


def training_spec(
    *, seed: int, split: str, class_index: int, index: int, image_size: int
) -> SceneSpec:
    """What image ``index`` of class ``class_index`` in ``split`` ("train" or "val") holds."""
    rng = _image_rng(seed, split, class_index, index)
    return sample_training_spec(rng, class_index, image_size=image_size)


def training_image(
    *, seed: int, split: str, class_index: int, index: int, image_size: int
) -> RenderedImage:
    """Image ``index`` of class ``class_index`` in ``split``, rendered."""
    spec = training_spec(
        seed=seed, split=split, class_index=class_index, index=index, image_size=image_size
    )
    return render(spec, image_size)


def is_swatch(index: int) -> bool:
    """Whether probe image ``index`` is a texture swatch (every ``SWATCH_EVERY``-th image)."""
    return index % SWATCH_EVERY == SWATCH_EVERY // 2


def probe_spec(*, seed: int, index: int, image_size: int) -> SceneSpec | SwatchSpec:
    """What probe image ``index`` holds: a scene, or a texture swatch (:func:`is_swatch`)."""
    if is_swatch(index):
        return sample_swatch_spec(_image_rng(seed, "probe", 1, index))
    return sample_probe_spec(_image_rng(seed, "probe", 0, index), image_size=image_size)


def probe_image(*, seed: int, index: int, image_size: int) -> RenderedImage:
    """Probe image ``index``, rendered with its labels."""
    return render(probe_spec(seed=seed, index=index, image_size=image_size), image_size)


def _prepare_empty(directory: Path) -> None:
    if directory.exists() and any(directory.iterdir()):
        raise FileExistsError(
            f"{directory} already holds files; remove it first (generation never overwrites)"
        )
    directory.mkdir(parents=True, exist_ok=True)


def generate_concept_dataset(
    *,
    probe_dir: str | os.PathLike,
    images_dir: str | os.PathLike,
    seed: int,
    image_size: int,
    train_per_class: int,
    val_per_class: int,
    probe_images: int,
    workers: int = 1,
) -> None:
    """Write the ImageFolder training set and the Broden-format probe set of the concept world.

    ``images_dir`` receives ``train/<class>/<n>.png`` and ``val/<class>/<n>.png``;
    ``probe_dir`` receives a Broden directory (index.csv, label.csv, category.csv,
    c_<category>.csv, images/concepts/...). Both must be absent or empty. The same arguments
    give byte-identical files whatever ``workers`` (processes rendering in parallel) is.
    """
    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be at least {MIN_IMAGE_SIZE} px, got {image_size}")
    counts = {
        "train_per_class": train_per_class,
        "val_per_class": val_per_class,
        "probe_images": probe_images,
    }
    for name, value in counts.items():
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    probe_dir, images_dir = Path(probe_dir), Path(images_dir)
    _prepare_empty(probe_dir)
    _prepare_empty(images_dir)
    try:
        with _executor(workers) as pool:
            _write_training_set(
                images_dir,
                seed=seed,
                image_size=image_size,
                counts={"train": train_per_class, "val": val_per_class},
                pool=pool,
            )
            _write_probe_set(
                probe_dir, seed=seed, image_size=image_size, count=probe_images, pool=pool
            )
    except BaseException:
        shutil.rmtree(probe_dir, ignore_errors=True)
        shutil.rmtree(images_dir, ignore_errors=True)
        raise


class _Serial:
    """The executor interface, run in this process (workers=1)."""

    def map(self, fn, jobs, chunksize: int = 1):
        return map(fn, jobs)

    def __enter__(self) -> "_Serial":
        return self

    def __exit__(self, *exc) -> None:
        return None


def _executor(workers: int):
    if workers == 1:
        return _Serial()
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def _save_training_image(job: tuple[Path, int, str, int, int, int]) -> None:
    folder, seed, split, class_index, index, image_size = job
    rendered = training_image(
        seed=seed, split=split, class_index=class_index, index=index, image_size=image_size
    )
    Image.fromarray(rendered.image, mode="RGB").save(folder / f"{index:05d}.png")


def _write_training_set(
    root: Path, *, seed: int, image_size: int, counts: dict[str, int], pool
) -> None:
    names = class_names()
    jobs = []
    for split, count in counts.items():
        for class_index, name in enumerate(names):
            folder = root / split / name
            folder.mkdir(parents=True)
            jobs += [
                (folder, seed, split, class_index, index, image_size) for index in range(count)
            ]
    for _ in pool.map(_save_training_image, jobs, chunksize=64):
        pass
    for split, count in counts.items():
        logger.info(
            "wrote %d %s images (%d classes x %d)", count * len(names), split, len(names), count
        )


def _save_probe_image(job: tuple[Path, int, int, int]) -> WrittenImage:
    root, seed, index, image_size = job
    rendered = probe_image(seed=seed, index=index, image_size=image_size)
    return write_image_files(
        root,
        f"{PROBE_FOLDER}/{index:06d}",
        image=rendered.image,
        pixel={name: list(layers) for name, layers in rendered.pixel.items()},
        image_level={name: [number] for name, number in rendered.image_level.items()},
    )


def _write_probe_set(root: Path, *, seed: int, image_size: int, count: int, pool) -> None:
    writer = BrodenWriter(root, labels=concept_labels(), folder=PROBE_FOLDER)
    jobs = [(root, seed, index, image_size) for index in range(count)]
    for written in pool.map(_save_probe_image, jobs, chunksize=32):
        writer.record(written)
    writer.close()
    logger.info("wrote %d probe images with labels to %s", count, root)


# ----------------------------------------------------------------------------------------------
# Montage


def _label_colours(numbers: np.ndarray, names: dict[int, str]) -> np.ndarray:
    """A display colour per label number: the named colour for colour labels, else a hue."""
    table = np.zeros((max(numbers.max(initial=0), max(names, default=0)) + 1, 3), dtype=np.uint8)
    for number, name in names.items():
        if name in COLOURS:
            table[number] = COLOURS[name]
        else:
            hue = (number * 0.618033988749895) % 1.0
            table[number] = _hsv_to_rgb(hue, 0.75, 0.95)
    return table[numbers]


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    i = int(h * 6) % 6
    f = h * 6 - math.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    r, g, b = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return round(r * 255), round(g * 255), round(b * 255)


def make_montage(
    probe_dir: str | os.PathLike, out_png: str | os.PathLike, *, n: int = 8, tile: int = 96
) -> None:
    """Render the first ``n`` probe images beside their colourised label maps, one row each.

    Columns: image, then one label map per pixel-level category of the concept world (label 0
    black); image-level labels (the scene, a swatch's texture) are written under the image.
    Reads the probe set through :class:`Broden`.
    """
    broden = Broden(probe_dir)
    names = dict(zip(broden.labels["number"].tolist(), broden.labels["name"].tolist(), strict=True))
    pixel_categories = [c for c in broden.categories if c in _LAYERED]
    header, caption = 14, 12
    columns = 1 + len(pixel_categories)
    rows = min(n, len(broden))
    canvas = Image.new("RGB", (columns * tile, header + rows * (tile + caption)), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(["image", *pixel_categories]):
        draw.text((c * tile + 3, 1), title, fill=(0, 0, 0))
    for r in range(rows):
        top = header + r * (tile + caption)
        canvas.paste(broden.load_image(r).resize((tile, tile), Image.Resampling.NEAREST), (0, top))
        segmentation = broden.segmentation(r)
        for c, category in enumerate(pixel_categories, start=1):
            labels = segmentation.get(category)
            if labels is None or labels.pixel.shape[0] == 0:
                continue
            picture = Image.fromarray(_label_colours(labels.pixel[0], names), mode="RGB")
            canvas.paste(picture.resize((tile, tile), Image.Resampling.NEAREST), (c * tile, top))
        text = ", ".join(
            f"{category}: {names[k]}"
            for category, labels in segmentation.items()
            for k in labels.image
        )
        draw.text((3, top + tile), text, fill=(0, 0, 0))
    Path(out_png).parent.mkdir(parents=True, exist_ok=True)
    canvas.save(out_png, optimize=True)
