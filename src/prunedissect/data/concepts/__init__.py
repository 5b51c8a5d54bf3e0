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
below a network (see tests/data/test_concepts.py), which must bind shape to colour, material and
scene.

Randomness comes only from ``numpy.random.Generator`` objects seeded per image from
``(seed, stream, class, index)``, so the same seed gives byte-identical files.

Modules: :mod:`.vocabulary` (colours, shapes, scenes, classes, the label list), :mod:`.specs`
(what an image holds), :mod:`.layout` (sampling it), :mod:`.geometry` and :mod:`.rendering`
(drawing it with its labels), :mod:`.writing` (the training and probe sets on disk). The montage
in the README is drawn by ``docs/make_montage.py``.
"""

from __future__ import annotations

from prunedissect.data.concepts.layout import (
    sample_probe_spec,
    sample_swatch_spec,
    sample_training_spec,
)
from prunedissect.data.concepts.rendering import render, supersampling
from prunedissect.data.concepts.specs import (
    ObjectSpec,
    Pattern,
    Region,
    RenderedImage,
    SceneSpec,
    SwatchSpec,
)
from prunedissect.data.concepts.vocabulary import (
    CLASSES,
    COLOURS,
    DISTRACTOR_SHAPES,
    KEY_SHAPES,
    MATERIALS,
    MIN_IMAGE_SIZE,
    PROBE_FOLDER,
    SCENES,
    SHAPE_PARTS,
    SHAPES,
    SWATCH_EVERY,
    SWATCH_TEXTURES,
    TEXTURES,
    TrainingClass,
    class_names,
    concept_labels,
)
from prunedissect.data.concepts.writing import (
    generate_concept_dataset,
    is_swatch,
    probe_image,
    probe_spec,
    training_image,
    training_spec,
)

__all__ = [
    "CLASSES",
    "COLOURS",
    "DISTRACTOR_SHAPES",
    "KEY_SHAPES",
    "MATERIALS",
    "MIN_IMAGE_SIZE",
    "PROBE_FOLDER",
    "SCENES",
    "SHAPES",
    "SHAPE_PARTS",
    "SWATCH_EVERY",
    "SWATCH_TEXTURES",
    "TEXTURES",
    "ObjectSpec",
    "Pattern",
    "Region",
    "RenderedImage",
    "SceneSpec",
    "SwatchSpec",
    "TrainingClass",
    "class_names",
    "concept_labels",
    "generate_concept_dataset",
    "is_swatch",
    "probe_image",
    "probe_spec",
    "render",
    "sample_probe_spec",
    "sample_swatch_spec",
    "sample_training_spec",
    "supersampling",
    "training_image",
    "training_spec",
]
