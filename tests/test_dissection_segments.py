"""Encoding probe segmentations into concept codes: checked against the raw label arrays.

Also home of the small probe fixtures the other dissection tests import: ``FakeProbe`` (an
in-memory object with the Broden reader's interface, for cases the writer cannot express, such
as one label number under two categories) and ``write_probe`` (a real Broden directory).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from prunedissect.data.broden import Broden, BrodenWriter, CategoryLabels, LabelSpec
from prunedissect.dissection import encode_probe_labels, load_probe_labels, save_probe_labels


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


def test_encoding_reproduces_every_concept_mask():
    probe = random_probe(np.random.default_rng(1), n_images=15, shape=(6, 7))
    labels = encode_probe_labels(probe)
    concepts = labels.concepts
    assert list(zip(concepts["label"], concepts["category"], strict=True)) == sorted(
        zip(concepts["label"], concepts["category"], strict=True),
        key=lambda pair: (pair[0], probe.categories.index(pair[1])),
    )
    assert (5, "object") in set(zip(concepts["label"], concepts["category"], strict=True))
    assert (5, "part") in set(zip(concepts["label"], concepts["category"], strict=True))
    pixels = np.zeros(len(concepts), dtype=np.int64)
    images = np.zeros(len(concepts), dtype=np.int64)
    for i, seg in enumerate(probe.segs):
        masks = labels.concept_masks(i)
        for j, (number, category) in enumerate(
            zip(concepts["label"], concepts["category"], strict=True)
        ):
            expected = concept_mask(seg, number, category, probe.shape)
            np.testing.assert_array_equal(masks[j], expected, err_msg=f"image {i} concept {j}")
            pixels[j] += expected.sum()
            images[j] += expected.any()
        for g, category in enumerate(labels.categories):
            assert labels.present[i, g] == (category in seg)
    np.testing.assert_array_equal(concepts["pixels"], pixels)
    np.testing.assert_array_equal(concepts["images"], images)
    assert concepts["concept"].tolist() == [f"label{n}" for n in concepts["label"]]


@pytest.mark.parametrize("n_layers", [3, 17])  # 17 layers of 4-bit codes overflow a packed key
def test_many_layers_per_pixel(n_layers):
    rng = np.random.default_rng(n_layers)
    shape = (5, 6)
    segs = [
        {
            "part": CategoryLabels(
                pixel=rng.integers(0, 13, size=(n_layers, *shape)).astype(np.int32), image=()
            )
        }
        for _ in range(4)
    ]
    probe = FakeProbe(["part"], {n: f"p{n}" for n in range(1, 13)}, segs, shape)
    labels = encode_probe_labels(probe)
    assert len(labels.concepts) == 12
    for i, seg in enumerate(segs):
        masks = labels.concept_masks(i)
        for j, number in enumerate(labels.concepts["label"]):
            np.testing.assert_array_equal(masks[j], concept_mask(seg, number, "part", shape))


def test_duplicate_and_image_level_entries_count_once():
    shape = (2, 3)
    layer = np.array([[1, 1, 0], [2, 0, 1]], dtype=np.int32)
    seg = {
        # the same colour in two layers of one pixel, and label 2 also given image-level
        "color": CategoryLabels(pixel=np.stack([layer, layer]), image=(2,)),
    }
    probe = FakeProbe(["color"], {1: "red", 2: "blue"}, [seg], shape)
    labels = encode_probe_labels(probe)
    assert labels.concepts["pixels"].tolist() == [3, 6]  # red on 3 pixels; blue everywhere
    assert labels.image_concepts.tolist() == [[2]]
    # pixel combinations never repeat a concept and never hold the image-level one
    for row in labels.combos:
        codes = row[row > 0]
        assert len(codes) == len(set(codes)) and 2 not in codes


def test_broden_directory_roundtrip(tmp_path):
    broden = Broden(write_probe(tmp_path / "probe"))
    labels = encode_probe_labels(broden, directory=tmp_path / "labels")
    assert isinstance(labels.segments, np.memmap)
    again = load_probe_labels(tmp_path / "labels")
    assert again.categories == tuple(broden.categories)
    pd.testing.assert_frame_equal(again.concepts, labels.concepts)
    for i in range(len(broden)):
        seg = broden.segmentation(i)
        masks = again.concept_masks(i)
        for j, row in again.concepts.iterrows():
            expected = concept_mask(seg, row["label"], row["category"], again.shape)
            np.testing.assert_array_equal(masks[j], expected)
    texture = again.concepts.set_index("concept").loc["stripes"]
    assert texture["label"] == 300 and texture["images"] == 3
    # saving elsewhere and loading gives identical bytes for identical input
    save_probe_labels(again, tmp_path / "copy")
    for name in (
        "segments.npy",
        "combos.npy",
        "image_concepts.npy",
        "present.npy",
        "concepts.parquet",
    ):
        assert (tmp_path / "copy" / name).read_bytes() == (tmp_path / "labels" / name).read_bytes()


def test_encoding_is_deterministic(tmp_path):
    root = write_probe(tmp_path / "probe", n_images=5)
    for name in ("a", "b"):
        encode_probe_labels(Broden(root), directory=tmp_path / name)
    for path in sorted((tmp_path / "a").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name


def test_mixed_segmentation_sizes_are_rejected():
    probe = random_probe(np.random.default_rng(0), n_images=2, shape=(4, 4))
    index = pd.DataFrame({"sh": [4, 8], "sw": [4, 8]})
    probe_with_sizes = type(
        "P",
        (),
        {
            "categories": probe.categories,
            "labels": probe.labels,
            "index": index,
            "__len__": lambda self: 2,
            "segmentation": lambda self, i: probe.segs[i],
        },
    )()
    with pytest.raises(ValueError, match="probe.resize"):
        encode_probe_labels(probe_with_sizes)


def test_unknown_label_number_is_rejected():
    seg = {"color": CategoryLabels(pixel=np.full((1, 2, 2), 9, np.int32), image=())}
    with pytest.raises(ValueError, match="label.csv"):
        encode_probe_labels(FakeProbe(["color"], {1: "red"}, [seg], (2, 2)))


def test_loading_a_wrong_directory_says_how_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="encode_probe_labels"):
        load_probe_labels(tmp_path)
