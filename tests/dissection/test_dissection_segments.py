"""Encoding probe segmentations into concept codes: checked against the raw label arrays.

The probe builders (``FakeProbe``, ``random_probe``, ``write_probe``) live in tests/helpers.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from helpers import FakeProbe, concept_mask, random_probe, write_probe
from prunedissect.data.broden import Broden, CategoryLabels
from prunedissect.dissection import encode_probe_labels, load_probe_labels, save_probe_labels


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
