"""The concept world's vocabulary: colours, materials, textures, shapes and parts, scenes, the
training classes and the Broden label list (:func:`concept_labels`)."""

from __future__ import annotations

from dataclasses import dataclass

from prunedissect.data.broden import LabelSpec

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
