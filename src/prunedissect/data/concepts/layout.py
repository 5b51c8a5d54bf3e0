"""Scene layout: sampling what each image holds (background regions, objects, their colours,
textures, materials, placement) as a :class:`~.specs.SceneSpec`, from a seeded generator."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from prunedissect.data.concepts.geometry import _object_parts, _pixel_centres, _window
from prunedissect.data.concepts.specs import ObjectSpec, Pattern, Region, SceneSpec, SwatchSpec
from prunedissect.data.concepts.vocabulary import (
    CLASSES,
    COLOURS,
    DISTRACTOR_SHAPES,
    MATERIALS,
    SCENES,
    SHAPES,
    SIMILAR_COLOURS,
    SWATCH_TEXTURES,
    TEXTURES,
)

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


def _photometric(rng: np.random.Generator) -> dict[str, float | int]:
    """An image's brightness factor and the seed of its pixel noise (scenes and swatches)."""
    return {
        "brightness": float(rng.uniform(0.88, 1.12)),
        "noise_seed": int(rng.integers(2**31)),
    }


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
        **_photometric(rng),
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
        **_photometric(rng),
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
