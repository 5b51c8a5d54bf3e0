"""The Broden reader and writer, on a hand-written fixture in the real broden1_224 layout."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.transforms import functional as TF

from prunedissect.data.broden import (
    Broden,
    BrodenFormatError,
    BrodenWriter,
    CategoryLabels,
    LabelSpec,
    decode_label_png,
    encode_label_png,
)
from prunedissect.dissection.pipeline import BrodenImages

# Label 300 needs the green channel (300 = 44 + 256 * 1); label 21 is listed in two categories.
LABEL_CSV = """number,name,category,frequency,coverage,syns
1,black-c,color(2),2,1.250000,
2,white-c,color(1),1,0.750000,
3,dog,object(1),1,0.250000,canine;hound
4,head,part(1),1,0.125000,
5,kitchen,scene(2),2,2.000000,
6,street,scene(1),1,1.000000,
7,striped,texture(2),2,2.000000,
8,dotted,texture(1),1,1.000000,
9,leg,part(1),1,0.187500,
21,fabric,material(1);object(1),2,0.875000,cloth
300,tablecloth,object(1),1,0.125000,
"""
CATEGORY_CSV = """name,first,last,count,frequency
color,1,2,2,3
object,3,300,3,3
part,4,9,2,2
material,21,21,1,1
scene,5,6,2,3
texture,7,8,2,3
"""
C_FILES = {
    "color": "code,number,name,frequency,coverage\n1,1,black-c,2,1.25\n2,2,white-c,1,0.75\n",
    # fabric covers more pixels as an object than as a material: its primary category is object
    "object": (
        "code,number,name,frequency,coverage\n"
        "1,3,dog,1,0.25\n2,21,fabric,1,0.75\n3,300,tablecloth,1,0.125\n"
    ),
    "part": "code,number,name,frequency,coverage\n1,4,head,1,0.125\n2,9,leg,1,0.1875\n",
    "material": "code,number,name,frequency,coverage\n1,21,fabric,1,0.125\n",
    "scene": "code,number,name,frequency,coverage\n1,5,kitchen,2,2.0\n2,6,street,1,1.0\n",
    "texture": "code,number,name,frequency,coverage\n1,7,striped,2,2.0\n2,8,dotted,1,1.0\n",
}
INDEX_CSV = """image,split,ih,iw,sh,sw,color,object,part,material,scene,texture
ade20k/a.jpg,train,8,8,4,4,ade20k/a_color.png,ade20k/a_object.png,ade20k/a_part_1.png;ade20k/a_part_2.png,ade20k/a_material.png,5,
dtd/b.png,val,8,6,4,3,dtd/b_color.png,,,,6;5,7;8
pascal/c.png,train,8,8,4,4,,,,,,7;pascal/c_texture.png
"""

# label maps of the fixture (4x4 for a and c, 4x3 for b)
A_COLOR = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [1, 1, 2, 2], [0, 0, 1, 1]])
A_OBJECT = np.array([[3, 3, 0, 0], [300, 300, 0, 0], [21, 21, 21, 21], [21, 21, 21, 21]])
A_PART_1 = np.array([[4, 4, 0, 0], [9, 9, 9, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
A_PART_2 = np.array([[0, 4, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
A_MATERIAL = np.array([[0, 0, 0, 0], [0, 0, 0, 0], [21, 21, 0, 0], [0, 0, 0, 0]])
B_COLOR = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 0], [0, 0, 0]])
C_TEXTURE = np.array([[8, 8, 0, 0]] * 4)


@pytest.fixture
def fixture_dir(tmp_path):
    root = tmp_path / "broden_fixture"
    (root / "images").mkdir(parents=True)
    for sub in ("ade20k", "dtd", "pascal"):
        (root / "images" / sub).mkdir()
    (root / "label.csv").write_text(LABEL_CSV)
    (root / "category.csv").write_text(CATEGORY_CSV)
    for category, text in C_FILES.items():
        (root / f"c_{category}.csv").write_text(text)
    # real Broden files end lines with \r\n (Python 2 csv module); the reader takes both
    (root / "index.csv").write_text(INDEX_CSV.replace("\n", "\r\n"))
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(
        root / "images/ade20k/a.jpg"
    )
    Image.fromarray(rng.integers(0, 256, (8, 6, 3), dtype=np.uint8)).save(root / "images/dtd/b.png")
    Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), mode="L").save(
        root / "images/pascal/c.png"
    )
    for name, labels in {
        "ade20k/a_color.png": A_COLOR,
        "ade20k/a_object.png": A_OBJECT,
        "ade20k/a_part_1.png": A_PART_1,
        "ade20k/a_part_2.png": A_PART_2,
        "ade20k/a_material.png": A_MATERIAL,
        "dtd/b_color.png": B_COLOR,
        "pascal/c_texture.png": C_TEXTURE,
    }.items():
        rgb = np.zeros((*labels.shape, 3), dtype=np.uint8)  # written by hand, not by the writer
        rgb[..., 0] = labels % 256
        rgb[..., 1] = labels // 256
        Image.fromarray(rgb).save(root / "images" / name)
    return root


def test_tables_are_read_field_by_field(fixture_dir):
    broden = Broden(fixture_dir)
    assert broden.root == fixture_dir
    assert broden.categories == ["color", "object", "part", "material", "scene", "texture"]
    assert len(broden) == 3
    labels = broden.labels
    assert list(labels.columns) == ["number", "name", "category", "frequency", "coverage"]
    assert labels["number"].tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 21, 300]
    assert labels["name"].tolist() == [
        "black-c",
        "white-c",
        "dog",
        "head",
        "kitchen",
        "street",
        "striped",
        "dotted",
        "leg",
        "fabric",
        "tablecloth",
    ]
    assert labels["category"].tolist() == [
        "color",
        "color",
        "object",
        "part",
        "scene",
        "scene",
        "texture",
        "texture",
        "part",
        "object",
        "object",
    ]
    assert labels["frequency"].tolist() == [2, 1, 1, 1, 2, 1, 2, 1, 1, 2, 1]
    assert labels["coverage"].tolist() == [
        1.25,
        0.75,
        0.25,
        0.125,
        2.0,
        1.0,
        2.0,
        1.0,
        0.1875,
        0.875,
        0.125,
    ]
    assert labels["number"].dtype == np.int64 and labels["frequency"].dtype == np.int64
    index = broden.index
    assert list(index.columns) == [
        "image",
        "split",
        "ih",
        "iw",
        "sh",
        "sw",
        "color",
        "object",
        "part",
        "material",
        "scene",
        "texture",
    ]
    assert index["image"].tolist() == ["ade20k/a.jpg", "dtd/b.png", "pascal/c.png"]
    assert index["split"].tolist() == ["train", "val", "train"]
    assert index["iw"].tolist() == [8, 6, 8] and index["sw"].tolist() == [4, 3, 4]
    assert index.at[1, "material"] == "" and index.at[0, "scene"] == "5"
    assert broden.codes["object"]["number"].tolist() == [3, 21, 300]


def test_primary_category_is_the_one_with_most_coverage(fixture_dir):
    # fabric is listed as material first, but covers more as an object
    labels = Broden(fixture_dir).labels.set_index("name")
    assert labels.at["fabric", "category"] == "object"
    # with equal coverage the category listed first wins
    (fixture_dir / "c_material.csv").write_text(
        "code,number,name,frequency,coverage\n1,21,fabric,1,0.75\n"
    )
    assert Broden(fixture_dir).labels.set_index("name").at["fabric", "category"] == "material"


def test_segmentation_reads_layers_image_labels_and_skips_empty_cells(fixture_dir):
    broden = Broden(fixture_dir)
    a = broden.segmentation(0)
    assert set(a) == {"color", "object", "part", "material", "scene"}
    for labels in a.values():
        assert isinstance(labels, CategoryLabels)
        assert labels.pixel.dtype == np.int32
    np.testing.assert_array_equal(a["color"].pixel, A_COLOR[None])
    np.testing.assert_array_equal(a["object"].pixel, A_OBJECT[None])  # 300 = R 44 + 256 * G 1
    np.testing.assert_array_equal(a["part"].pixel, np.stack([A_PART_1, A_PART_2]))
    np.testing.assert_array_equal(a["material"].pixel, A_MATERIAL[None])
    assert a["color"].image == ()
    assert a["scene"].image == (5,) and a["scene"].pixel.shape == (0, 4, 4)

    b = broden.segmentation(1)
    assert set(b) == {"color", "scene", "texture"}
    assert b["scene"].image == (6, 5)  # dominant first, order kept
    assert b["texture"].image == (7, 8) and b["texture"].pixel.shape == (0, 4, 3)
    np.testing.assert_array_equal(b["color"].pixel, B_COLOR[None])

    c = broden.segmentation(2)
    assert set(c) == {"texture"}
    assert c["texture"].image == (7,)
    np.testing.assert_array_equal(c["texture"].pixel, C_TEXTURE[None])


def test_images_load_as_rgb_in_index_order(fixture_dir):
    broden = Broden(fixture_dir)
    assert broden.image_path(1) == fixture_dir / "images" / "dtd" / "b.png"
    grey = broden.load_image(2)
    assert grey.mode == "RGB" and grey.size == (8, 8)
    assert broden.load_image(1).size == (6, 8)
    dataset = BrodenImages(broden, lambda image: TF.to_tensor(image.resize((4, 4))))
    assert len(dataset) == 3
    tensors, indices = next(iter(DataLoader(dataset, batch_size=3)))
    assert indices.tolist() == [0, 1, 2]
    expected = TF.to_tensor(
        Image.open(fixture_dir / "images/dtd/b.png").convert("RGB").resize((4, 4))
    )
    assert torch.equal(tensors[1], expected)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda root: (root / "label.csv").unlink(), "label.csv is missing"),
        (lambda root: (root / "c_part.csv").unlink(), "c_part.csv is missing"),
        (lambda root: shutil.rmtree(root / "images"), "images"),
        (
            lambda root: (root / "category.csv").write_text(
                CATEGORY_CSV + "lighting,400,400,1,1\n"
            ),
            "category.csv lists ['lighting']",
        ),
        (
            lambda root: (root / "index.csv").write_text(
                INDEX_CSV.replace("train,8,8,4,4", "train,8,8,x,4", 1)
            ),
            "column sh must be a positive integer",
        ),
        (
            lambda root: (root / "label.csv").write_text(
                LABEL_CSV.replace("fabric,material(1)", "fabric,material")
            ),
            "should read like 'object(12)'",
        ),
        (
            lambda root: (root / "c_color.csv").write_text(
                C_FILES["color"] + "3,77,green-c,1,0.1\n"
            ),
            "absent from label.csv",
        ),
    ],
)
def test_malformed_directories_fail_with_a_clear_message(fixture_dir, damage, message):
    damage(fixture_dir)
    with pytest.raises(BrodenFormatError, match=re.escape(message)):
        Broden(fixture_dir)


def test_missing_directory_says_what_to_do(tmp_path):
    with pytest.raises(BrodenFormatError, match="probe.path"):
        Broden(tmp_path / "nowhere")


def test_bad_label_files_fail_when_read(fixture_dir):
    encode_label_png(np.zeros((5, 4), dtype=np.int32)).save(
        fixture_dir / "images/ade20k/a_color.png"
    )
    (fixture_dir / "images/dtd/b_color.png").unlink()
    broden = Broden(fixture_dir)
    with pytest.raises(BrodenFormatError, match=r"is 5x4 but index.csv row 0 says sh x sw = 4x4"):
        broden.segmentation(0)
    with pytest.raises(BrodenFormatError, match="b_color.png, which does not exist"):
        broden.segmentation(1)


def test_a_label_row_zero_is_not_a_label(fixture_dir):
    (fixture_dir / "label.csv").write_text(LABEL_CSV.replace("syns\n", "syns\n0,-,,0,0.0,\n"))
    (fixture_dir / "c_color.csv").write_text(
        C_FILES["color"].replace("coverage\n", "coverage\n0,0,-,0,0.0\n")
    )
    broden = Broden(fixture_dir)
    assert 0 not in set(broden.labels["number"])
    assert broden.codes["color"]["number"].tolist() == [1, 2]


def test_label_png_codec_round_trips_numbers_above_255(tmp_path):
    labels = np.array([[0, 1, 255], [256, 300, 65535]])
    encode_label_png(labels).save(tmp_path / "l.png")
    rgb = np.asarray(Image.open(tmp_path / "l.png"))
    assert rgb[1, 1].tolist() == [44, 1, 0]
    np.testing.assert_array_equal(decode_label_png(tmp_path / "l.png"), labels)
    with pytest.raises(ValueError, match="0..65535"):
        encode_label_png(np.array([[65536]]))


def test_writer_output_reads_back_with_statistics_from_the_data(tmp_path):
    specs = [
        LabelSpec(1, "red", "color"),
        LabelSpec(2, "blue", "color"),
        LabelSpec(3, "ball", "object"),
        LabelSpec(4, "beach", "scene"),
        LabelSpec(5, "unused", "object"),
    ]
    writer = BrodenWriter(tmp_path / "out", labels=specs, folder="gen")
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    colour_1 = np.array([[1, 1, 1, 1]] * 2 + [[2, 2, 0, 0]] * 2)
    colour_2 = np.zeros((4, 4), dtype=np.int64)
    colour_2[0, 0] = 2
    ball = np.zeros((4, 4), dtype=np.int64)
    ball[1:3, 1:3] = 3
    writer.add(
        "x",
        image=image,
        pixel={"color": [colour_1, colour_2], "object": [ball]},
        image_level={"scene": [4]},
    )
    writer.add("y", image=image, pixel={"color": [np.full((4, 4), 2)]}, split="val")
    writer.close()
    broden = Broden(tmp_path / "out")
    assert broden.categories == ["color", "object", "scene"]
    assert (tmp_path / "out/images/gen/x_color_1.png").is_file()
    assert (tmp_path / "out/images/gen/y_color.png").is_file()
    x = broden.segmentation(0)
    np.testing.assert_array_equal(x["color"].pixel, np.stack([colour_1, colour_2]))
    np.testing.assert_array_equal(x["object"].pixel, ball[None])
    assert x["scene"].image == (4,)
    assert set(broden.segmentation(1)) == {"color"}
    labels = broden.labels.set_index("name")
    # blue: 2/16 + 1/16 in x (two layers), 16/16 in y
    assert labels.at["blue", "frequency"] == 2
    assert labels.at["blue", "coverage"] == pytest.approx(21 / 16, abs=1e-6)
    assert labels.at["red", "coverage"] == pytest.approx(0.5, abs=1e-6)
    assert labels.at["unused", "frequency"] == 0
    assert labels.at["beach", "coverage"] == 1.0
    category = pd.read_csv(tmp_path / "out/category.csv")
    assert category.to_dict("list") == {
        "name": ["color", "object", "scene"],
        "first": [1, 3, 4],
        "last": [2, 5, 4],
        "count": [2, 2, 1],
        "frequency": [3, 1, 1],
    }
    codes = pd.read_csv(tmp_path / "out/c_color.csv")
    assert codes["name"].tolist() == ["blue", "red"]  # most frequent first
    assert (tmp_path / "out/index.csv").read_text().splitlines()[0] == (
        "image,split,ih,iw,sh,sw,color,object,part,material,scene,texture"
    )


def test_writer_rejects_undeclared_labels(tmp_path):
    writer = BrodenWriter(tmp_path / "out", labels=[LabelSpec(1, "red", "color")])
    with pytest.raises(ValueError, match="not a declared label of category 'object'"):
        writer.add("x", image=np.zeros((2, 2, 3)), pixel={"object": [np.ones((2, 2), dtype=int)]})
    with pytest.raises(ValueError, match="unique and >= 1"):
        BrodenWriter(tmp_path / "o2", labels=[LabelSpec(0, "none", "color")])
