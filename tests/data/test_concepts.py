"""The generated concept world: determinism, Broden round trip, statistics, class structure."""

from __future__ import annotations

import dataclasses
import hashlib
import runpy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from conftest import REPO
from prunedissect.data import concepts
from prunedissect.data.broden import Broden
from prunedissect.data.concepts import (
    CLASSES,
    COLOURS,
    SCENES,
    TEXTURES,
    class_names,
    concept_labels,
    generate_concept_dataset,
    geometry,
    probe_image,
    training_image,
)

SMALL = dict(image_size=32, train_per_class=3, val_per_class=2, probe_images=24)


def _generate(root: Path, *, seed: int = 0, workers: int = 1, **overrides) -> tuple[Path, Path]:
    probe, images = root / "probe", root / "images"
    generate_concept_dataset(
        probe_dir=probe, images_dir=images, seed=seed, workers=workers, **{**SMALL, **overrides}
    )
    return probe, images


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, Path]:
    return _generate(tmp_path_factory.mktemp("world"))


def test_same_seed_gives_byte_identical_files_also_in_parallel(world, tmp_path):
    first = _hashes(world[0].parent)
    again = _hashes(_generate(tmp_path / "again", workers=2)[0].parent)
    assert first == again
    # every file is there: 10 classes x (3 + 2) images; 24 probe images with their label PNGs
    # (one per layer); index, label, category and 6 c_ files
    broden = Broden(world[0])
    label_files = sum(
        len(labels.pixel) for i in range(len(broden)) for labels in broden.segmentation(i).values()
    )
    assert len(first) == 10 * 5 + 24 + label_files + 3 + 6


def test_different_seed_gives_different_images(world, tmp_path):
    first = _hashes(world[0].parent)
    other = _hashes(_generate(tmp_path / "other", seed=1)[0].parent)
    # glass falls elsewhere, so the set of second-layer label files differs; images do not
    assert {n for n in first if "_" not in Path(n).stem} == {
        n for n in other if "_" not in Path(n).stem
    }
    images = [name for name in first if name.endswith(".png") and "_" not in Path(name).stem]
    assert len(images) == 50 + 24
    assert all(first[name] != other[name] for name in images if name in other)


def test_probe_set_reads_back_exactly_what_was_rendered(world):
    broden = Broden(world[0])
    assert broden.categories == ["color", "object", "part", "material", "scene", "texture"]
    assert len(broden) == SMALL["probe_images"]
    two_layers = swatches = 0
    for i in range(len(broden)):
        rendered = probe_image(seed=0, index=i, image_size=32)
        np.testing.assert_array_equal(np.asarray(broden.load_image(i)), rendered.image)
        segmentation = broden.segmentation(i)
        for category in ("color", "object", "part", "material"):
            expected = rendered.pixel.get(category, ())
            if len(expected):
                np.testing.assert_array_equal(segmentation[category].pixel, expected)
                assert segmentation[category].image == ()
            else:
                assert category not in segmentation
        two_layers += len(segmentation["color"].pixel) == 2
        # exactly one image-level label: the scene, or on a swatch the texture
        image_level = {c: s.image for c, s in segmentation.items() if s.image}
        assert image_level == {c: (n,) for c, n in rendered.image_level.items()}
        assert len(image_level) == 1 and segmentation[next(iter(image_level))].pixel.shape == (
            0,
            32,
            32,
        )
        swatches += "texture" in image_level
        row = broden.index.iloc[i]
        assert (row["ih"], row["iw"], row["sh"], row["sw"]) == (32, 32, 32, 32)
    assert two_layers > 0  # glass gave some images ';'-separated colour layers
    assert swatches == sum(concepts.is_swatch(i) for i in range(len(broden))) > 0


def test_label_tables_hold_the_statistics_of_the_written_data(world):
    broden = Broden(world[0])
    frequency: dict[int, int] = {}
    coverage: dict[int, float] = {}
    for i in range(len(broden)):
        for labels in broden.segmentation(i).values():
            # NetDissect's joinseg.py: pixels of every layer over the pixels of one layer
            present = {n: 1.0 for n in labels.image}
            for layer in labels.pixel:
                numbers, counts = np.unique(layer[layer > 0], return_counts=True)
                for number, count in zip(numbers.tolist(), counts.tolist(), strict=True):
                    present[number] = present.get(number, 0.0) + count / layer.size
            for number, share in present.items():
                frequency[number] = frequency.get(number, 0) + 1
                coverage[number] = coverage.get(number, 0.0) + share
    labels = broden.labels
    assert labels["frequency"].tolist() == [frequency.get(n, 0) for n in labels["number"]]
    np.testing.assert_allclose(
        labels["coverage"], [coverage.get(n, 0.0) for n in labels["number"]], atol=1e-6
    )
    category = pd.read_csv(world[0] / "category.csv")
    for row in category.itertuples():
        members = labels[labels["category"] == row.name]
        assert (row.first, row.last, row.count) == (
            members["number"].min(),
            members["number"].max(),
            len(members),
        )
        assert row.frequency == members["frequency"].sum()
        codes = broden.codes[row.name]
        assert codes["code"].tolist() == list(range(1, len(members) + 1))
        assert sorted(codes["number"]) == sorted(members["number"])
        assert codes["frequency"].is_monotonic_decreasing


def test_concept_vocabulary_meets_the_brief():
    labels = concept_labels()
    by_category = {
        c: [label.name for label in labels if label.category == c]
        for c in {lab.category for lab in labels}
    }
    assert len(by_category["color"]) >= 8 and set(by_category["color"]) == set(COLOURS)
    assert len(by_category["object"]) >= 8
    assert len(by_category["texture"]) >= 6 and set(by_category["texture"]) == set(TEXTURES) - {
        "plain"
    }
    assert len(by_category["scene"]) >= 6 and set(by_category["scene"]) == set(SCENES)
    for shape in by_category["object"]:
        assert sum(name.startswith(f"{shape}-") for name in by_category["part"]) >= 2
    assert len({label.name for label in labels}) == len(labels)
    assert [label.number for label in labels] == list(range(1, len(labels) + 1))


def test_every_concept_occurs_in_a_default_sized_probe_sample():
    seen: set[int] = set()
    for index in range(300):
        rendered = probe_image(seed=3, index=index, image_size=32)
        for layers in rendered.pixel.values():
            seen.update(np.unique(layers).tolist())
        seen.update(rendered.image_level.values())
    assert seen - {0} == {label.number for label in concept_labels()}


def test_training_set_is_an_image_folder_of_the_classes(world):
    images = world[1]
    for split, count in (("train", 3), ("val", 2)):
        assert sorted(p.name for p in (images / split).iterdir()) == sorted(class_names())
        for class_index, name in enumerate(class_names()):
            files = sorted((images / split / name).iterdir())
            assert [f.name for f in files] == [f"{i:05d}.png" for i in range(count)]
            for index, path in enumerate(files):
                rendered = training_image(
                    seed=0, split=split, class_index=class_index, index=index, image_size=32
                )
                np.testing.assert_array_equal(np.asarray(Image.open(path)), rendered.image)


def _numbers() -> dict[str, int]:
    return {label.name: label.number for label in concept_labels()}


def test_every_training_image_shows_its_key_object_with_its_class_attribute():
    numbers = _numbers()
    for class_index, key in enumerate(CLASSES):
        for index in range(15):
            rendered = training_image(
                seed=0, split="train", class_index=class_index, index=index, image_size=32
            )
            top = {name: layers[0] for name, layers in rendered.pixel.items()}
            on_key = top["object"] == numbers[key.shape]
            assert on_key.sum() >= 20, (key.name, index)
            if key.category == "scene":
                assert rendered.image_level == {"scene": numbers[key.value]}, key.name
            else:
                # colour or material: on a good share of the key object's pixels
                assert (on_key & (top[key.category] == numbers[key.value])).sum() >= 15
            # distractors never carry a key shape
            others = set(np.unique(rendered.pixel["object"]).tolist()) - {0, numbers[key.shape]}
            assert not others & {numbers[s] for s in concepts.KEY_SHAPES}


def test_no_single_attribute_names_the_class():
    names = class_names()
    assert len(set(names)) == len(CLASSES) == 10
    shapes = [key.shape for key in CLASSES]
    attributes = [(key.category, key.value) for key in CLASSES]
    # every shape serves two classes, every colour and scene two shapes (materials belong to
    # one key shape, but distractors of any shape are glass and metal too)
    assert all(shapes.count(s) == 2 for s in shapes)
    assert all(attributes.count(a) == 2 for a in attributes if a[0] in ("color", "scene"))
    # the twins of a shape differ in one attribute of one category, never the shape's own
    for shape in set(shapes):
        twins = [key for key in CLASSES if key.shape == shape]
        assert twins[0].category == twins[1].category != "object"
        assert twins[0].value != twins[1].value
    assert {key.category for key in CLASSES} >= {"color", "material", "scene"}


def test_colour_statistics_alone_do_not_separate_the_classes():
    """A least-squares classifier on each image's colour histogram, fit on 40 images per class
    and tested on 20 others, stays far below the >= 90% a network must reach."""

    def histograms(split: str, count: int) -> tuple[np.ndarray, np.ndarray]:
        features, targets = [], []
        for class_index in range(len(CLASSES)):
            for index in range(count):
                image = training_image(
                    seed=0, split=split, class_index=class_index, index=index, image_size=32
                ).image
                bins = (image // 64).reshape(-1, 3).astype(int) @ np.array([16, 4, 1])
                features.append(np.bincount(bins, minlength=64) / bins.size)
                targets.append(class_index)
        return np.asarray(features), np.asarray(targets)

    train_x, train_y = histograms("train", 40)
    test_x, test_y = histograms("val", 20)
    design = np.c_[train_x, np.ones(len(train_x))]
    weights, *_ = np.linalg.lstsq(design, np.eye(len(CLASSES))[train_y], rcond=None)
    accuracy = ((np.c_[test_x, np.ones(len(test_x))] @ weights).argmax(1) == test_y).mean()
    assert accuracy < 0.7


@pytest.mark.parametrize("size", [16, 64, 112])
def test_other_image_sizes_render_consistent_labels(size):
    rendered = probe_image(seed=0, index=4, image_size=size)
    assert rendered.image.shape == (size, size, 3) and rendered.image.dtype == np.uint8
    top = rendered.pixel["color"][0]
    assert top.shape == (size, size) and top.min() > 0  # every pixel has a colour
    objects = rendered.pixel["object"] > 0
    assert (objects == (rendered.pixel["part"] > 0)).all()
    assert (objects == (rendered.pixel["material"] > 0)).all()
    assert objects.any()
    assert rendered.image_level == probe_image(seed=0, index=4, image_size=32).image_level


@pytest.mark.parametrize("size", [32, 112])
def test_a_swatch_is_one_texture_in_one_colour_labelled_at_image_level(size):
    numbers = _numbers()
    index = next(i for i in range(20) if concepts.is_swatch(i))
    spec = concepts.probe_spec(seed=0, index=index, image_size=size)
    rendered = concepts.render(spec, size)
    assert set(rendered.pixel) == {"color"}
    assert (rendered.pixel["color"] == numbers[spec.colour]).all()
    assert rendered.image_level == {"texture": numbers[spec.pattern.texture]}
    assert spec.pattern.texture != "plain" and not rendered.instance.any()
    # the pattern shows: the two tones split the image, neither filling it
    tone = geometry._pattern_mask(spec.pattern, *geometry._pixel_centres(size))
    assert 0.1 < tone.mean() < 0.9
    image = rendered.image.astype(float).mean(axis=2)
    assert abs(image[tone].mean() - image[~tone].mean()) > 10


def test_glass_labels_what_lies_beneath_as_a_second_layer():
    """Brute force: under a topmost glass object the second layer equals the labels of the same
    image rendered without that object, and the first layer changes only where the glass is."""
    numbers = _numbers()
    checked = 0
    for index in range(80):
        spec = concepts.probe_spec(seed=0, index=index, image_size=32)
        if concepts.is_swatch(index) or spec.objects[-1].material != "glass":
            continue
        rendered = concepts.render(spec, 32)
        without = concepts.render(dataclasses.replace(spec, objects=spec.objects[:-1]), 32)
        glass = rendered.instance == len(spec.objects)
        assert glass.any()
        none = np.zeros((32, 32), dtype=np.int32)
        for name, layers in rendered.pixel.items():
            # a second layer is written only where something lies beneath (not the background's
            # missing material, object or part); an earlier glass object has its own
            first, second = (list(layers) + [none, none])[:2]
            below_first, below_second = (list(without.pixel[name]) + [none, none])[:2]
            np.testing.assert_array_equal(second[glass], below_first[glass])
            np.testing.assert_array_equal(first[~glass], below_first[~glass])
            np.testing.assert_array_equal(second[~glass], below_second[~glass])
        assert (rendered.pixel["material"][0][glass] == numbers["glass"]).all()
        checked += 1
    assert checked >= 3


def test_opaque_objects_leave_a_single_layer():
    for index in range(40):
        spec = concepts.probe_spec(seed=0, index=index, image_size=32)
        if not concepts.is_swatch(index) and all(obj.material != "glass" for obj in spec.objects):
            rendered = concepts.render(spec, 32)
            assert all(len(layers) == 1 for layers in rendered.pixel.values())


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 16 px"):
        _generate(tmp_path / "a", image_size=15)
    with pytest.raises(ValueError, match="probe_images must be at least 1"):
        _generate(tmp_path / "b", probe_images=0)
    (tmp_path / "c" / "probe").mkdir(parents=True)
    (tmp_path / "c" / "probe" / "stale.txt").write_text("old")
    with pytest.raises(FileExistsError, match="remove it first"):
        _generate(tmp_path / "c")


def test_montage_is_deterministic_and_shows_image_and_label_maps(world, tmp_path):
    make_montage = runpy.run_path(str(REPO / "docs" / "make_montage.py"))["make_montage"]
    make_montage(world[0], tmp_path / "a.png", n=4)
    make_montage(world[0], tmp_path / "b.png", n=4)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    montage = np.asarray(Image.open(tmp_path / "a.png").convert("RGB"))
    # columns: image, color, object, part, material; 96 px tiles; a header, then 4 rows of
    # tile + caption
    assert montage.shape == (14 + 4 * (96 + 12), 5 * 96, 3)
    first = np.asarray(Broden(world[0]).load_image(0).resize((96, 96), Image.Resampling.NEAREST))
    np.testing.assert_array_equal(montage[14 : 14 + 96, :96], first)


@pytest.mark.slow
def test_snakemake_rule_writes_the_same_files_as_the_library(tmp_path):
    from conftest import REPO, run_snakemake

    workdir = tmp_path / "study"
    (workdir / "config").mkdir(parents=True)
    (workdir / "config" / "config.yaml").write_text(
        "dataset:\n  image_size: 24\n  concepts:\n"
        "    seed: 5\n    train_per_class: 2\n    val_per_class: 1\n    probe_images: 6\n"
    )
    run_snakemake(
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--cores",
        "2",
        "generate_concepts",
    )
    log = workdir / "logs" / "generate_concepts" / "concepts.log"
    assert "wrote 6 probe images" in log.read_text()
    probe, images = _generate(
        tmp_path / "library",
        seed=5,
        image_size=24,
        train_per_class=2,
        val_per_class=1,
        probe_images=6,
    )
    for made, expected in (
        (workdir / "resources/concepts/probe", probe),
        (workdir / "resources/concepts/images", images),
    ):
        hashes = _hashes(made)
        hashes.pop(".snakemake_timestamp")  # Snakemake's marker in directory outputs
        assert hashes == _hashes(expected)
