"""Resizing a Broden-format probe: hand-computed nearest-neighbour labels, rewritten index."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import run_download_rule
from prunedissect.data.broden import check_broden_dir, decode_labels, encode_labels
from prunedissect.data.resize import nearest_indices, resize_probe

REPO = Path(__file__).resolve().parents[2]
HEADER = "image,split,ih,iw,sh,sw,color,object,part,material,scene,texture"
ROWS = [
    "ade/a.jpg,train,40,40,20,20,ade/a_color.png,ade/a_object.png;ade/a_object_2.png,,,12,",
    "pascal/b.png,val,40,40,20,20,,pascal/b_object.png,,,,300;301",
    "dtd/c.jpg,train,40,40,40,40,,,,,,305",
]
CODES = "code,number,name,frequency,coverage\n"
TABLES = {
    "label.csv": "number,name,category,frequency,coverage,syns\n1,red-c,color(1),1,0.5,\n"
    "12,street-s,scene(1),1,1.0,\n256,car,object(2),2,0.3,\n300,brick-t,texture(2),2,2.0,\n",
    "category.csv": "name,first,last,count,frequency\ncolor,1,1,1,1\nscene,12,12,1,1\n"
    "object,256,256,1,2\npart,0,0,0,0\ntexture,300,300,1,2\n",
    "c_color.csv": CODES + "1,1,red-c,1,0.5\n",
    "c_object.csv": CODES + "1,256,car,2,0.3\n",
    "c_part.csv": CODES,
    "c_scene.csv": CODES + "1,12,street-s,1,1.0\n",
    "c_texture.csv": CODES + "1,300,brick-t,2,2.0\n",
}


def _label_grid(size: int, offset: int = 256) -> np.ndarray:
    """Label number r * size + c + offset at row r, column c (crosses the R/G byte boundary)."""
    rows, cols = np.indices((size, size))
    return rows * size + cols + offset


def _blue_grid(size: int) -> np.ndarray:
    rows, cols = np.indices((size, size))
    return ((rows + cols) % 7).astype(np.uint8)


def make_broden(root: Path) -> Path:
    """A three-image Broden directory: JPEG and PNG images, multi-label cells, image labels."""
    rng = np.random.default_rng(1)
    images = root / "images"
    for name in ("ade/a.jpg", "pascal/b.png", "dtd/c.jpg"):
        (images / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(images / name)
    for name, offset in (
        ("ade/a_color.png", 1),
        ("ade/a_object.png", 256),
        ("ade/a_object_2.png", 500),
        ("pascal/b_object.png", 256),
    ):
        rgb = encode_labels(_label_grid(20, offset), _blue_grid(20))
        Image.fromarray(rgb).save(images / name)
    (root / "index.csv").write_text("\n".join([HEADER, *ROWS]) + "\n")
    for name, text in TABLES.items():
        (root / name).write_text(text)
    return root


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _index(root: Path) -> list[dict[str, str]]:
    with open(root / "index.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def probe(tmp_path) -> Path:
    return make_broden(tmp_path / "broden")


def test_nearest_indices_hand_computed():
    assert nearest_indices(20, 4).tolist() == [2, 7, 12, 17]  # floor((2i + 1) * 2.5)
    assert nearest_indices(2, 4).tolist() == [0, 0, 1, 1]
    assert nearest_indices(5, 5).tolist() == [0, 1, 2, 3, 4]


def test_nearest_indices_match_pixel_centres():
    for n_in in range(1, 40):
        for n_out in range(1, 40):
            centres = (np.arange(n_out) + 0.5) * n_in / n_out
            expected = np.minimum(np.floor(centres + 1e-9), n_in - 1).astype(int)
            assert nearest_indices(n_in, n_out).tolist() == expected.tolist(), (n_in, n_out)


def test_label_encoding_round_trips():
    labels = np.array([[0, 1, 255], [256, 300, 65535]])
    rgb = encode_labels(labels)
    assert rgb[1, 1].tolist() == [44, 1, 0]  # 300 = 44 + 256 * 1
    np.testing.assert_array_equal(decode_labels(rgb), labels)
    with pytest.raises(ValueError, match="0..65535"):
        encode_labels(np.array([[65536]]))


def test_resize_probe_rewrites_index_and_resizes_labels(probe, tmp_path):
    (probe / ".snakemake_timestamp").write_bytes(b"")  # as in a rule's directory() output
    out = resize_probe(probe, tmp_path / "small", size=8)
    assert not (out / ".snakemake_timestamp").exists()
    assert check_broden_dir(out) == out
    before, after = _index(probe), _index(out)
    assert [row["image"] for row in after] == [row["image"] for row in before]
    # Images become 8 px; segmentations keep each row's ratio (20/40 -> 4 px, 40/40 -> 8 px).
    assert [(r["ih"], r["iw"], r["sh"], r["sw"]) for r in after] == [
        ("8", "8", "4", "4"),
        ("8", "8", "4", "4"),
        ("8", "8", "8", "8"),
    ]
    for old, new in zip(before, after, strict=True):
        for column in ("image", "split", "color", "object", "part", "material", "scene", "texture"):
            assert new[column] == old[column]
    for name in TABLES:
        assert (out / name).read_bytes() == (probe / name).read_bytes()
    # Nearest neighbour picks source rows/columns 2, 7, 12, 17 of the 20 px grid r*20 + c + 256.
    expected = np.array(
        [
            [298, 303, 308, 313],
            [398, 403, 408, 413],
            [498, 503, 508, 513],
            [598, 603, 608, 613],
        ]
    )
    object_rgb = _rgb(out / "images/ade/a_object.png")
    np.testing.assert_array_equal(decode_labels(object_rgb), expected)
    np.testing.assert_array_equal(
        object_rgb[..., 2], _blue_grid(20)[np.ix_([2, 7, 12, 17], [2, 7, 12, 17])]
    )
    np.testing.assert_array_equal(
        decode_labels(_rgb(out / "images/ade/a_object_2.png")), expected + 244
    )
    # Every label in the output occurs in the input: nearest never invents a label.
    assert set(decode_labels(_rgb(out / "images/ade/a_color.png")).ravel()) <= set(
        _label_grid(20, 1).ravel()
    )


def test_resize_probe_images_are_bilinear(probe, tmp_path):
    out = resize_probe(probe, tmp_path / "small", size=8)
    with Image.open(probe / "images/pascal/b.png") as source:
        expected = np.asarray(source.convert("RGB").resize((8, 8), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(_rgb(out / "images/pascal/b.png"), expected)  # PNG: lossless
    with Image.open(probe / "images/ade/a.jpg") as source:
        reference = np.asarray(source.convert("RGB").resize((8, 8), Image.Resampling.BILINEAR))
    with Image.open(out / "images/ade/a.jpg") as resized:
        assert resized.format == "JPEG" and resized.size == (8, 8)
        error = np.abs(np.asarray(resized).astype(int) - reference).mean()
    assert error < 8  # JPEG re-encoding at quality 95 on random 8 px noise


def test_resize_probe_seg_size_overrides_the_ratio(probe, tmp_path):
    out = resize_probe(probe, tmp_path / "small", size=8, seg_size=5)
    assert {(r["sh"], r["sw"]) for r in _index(out)} == {("5", "5")}
    assert _rgb(out / "images/pascal/b_object.png").shape == (5, 5, 3)


def test_resize_probe_is_identical_across_workers_and_runs(probe, tmp_path):
    one = _tree(resize_probe(probe, tmp_path / "one", size=8))
    again = _tree(resize_probe(probe, tmp_path / "again", size=8))
    two = _tree(resize_probe(probe, tmp_path / "two", size=8, workers=2))
    assert one == again == two
    assert len(one) == 3 + 4 + 1 + len(TABLES)  # images, label PNGs, index, tables


def test_resize_probe_failure_leaves_nothing(probe, tmp_path):
    (probe / "images/ade/a_object_2.png").unlink()
    with pytest.raises(FileNotFoundError):
        resize_probe(probe, tmp_path / "out" / "small", size=8)
    assert os.listdir(tmp_path / "out") == []


def test_resize_probe_refuses_bad_arguments(probe, tmp_path):
    (tmp_path / "exists").mkdir()
    with pytest.raises(FileExistsError):
        resize_probe(probe, tmp_path / "exists", size=8)
    with pytest.raises(ValueError, match="positive"):
        resize_probe(probe, tmp_path / "x", size=0)
    with pytest.raises(ValueError, match="index.csv is missing"):
        resize_probe(tmp_path / "exists", tmp_path / "x", size=8)


def test_the_broden_reader_reads_the_resized_probe(probe, tmp_path):
    broden = pytest.importorskip("prunedissect.data.broden")
    out = resize_probe(probe, tmp_path / "small", size=8)
    reader = broden.Broden(out)
    assert len(reader) == 3 and list(reader.labels["number"]) == [1, 12, 256, 300]
    first = reader.segmentation(0)
    assert sorted(first) == ["color", "object", "scene"]
    assert first["object"].pixel.shape == (2, 4, 4) and first["scene"].image == (12,)
    np.testing.assert_array_equal(
        first["object"].pixel[0], decode_labels(_rgb(out / "images/ade/a_object.png"))
    )
    second, third = reader.segmentation(1), reader.segmentation(2)
    assert second["texture"].image == (300, 301) and second["object"].pixel.shape == (1, 4, 4)
    assert third["texture"].pixel.shape == (0, 8, 8) and third["texture"].image == (305,)
    assert reader.load_image(2).size == (8, 8)


@pytest.mark.slow
def test_resize_probe_rule(probe, tmp_path):
    result = run_download_rule(
        tmp_path,
        "resources/probe_resized/8",
        config={"probe": {"url": None, "md5": None}, "dataset": {"url": "unused", "md5": "unused"}},
        unresized_probe=str(probe),
        cores=2,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / "run" / "resources" / "probe_resized" / "8"
    made_by_rule = _tree(out)
    assert made_by_rule.pop(".snakemake_timestamp") == b""  # Snakemake's directory() marker
    assert made_by_rule == _tree(resize_probe(probe, tmp_path / "direct", size=8))
    log = (tmp_path / "run" / "logs" / "resize_probe" / "8.log").read_text()
    assert "Resized 7 of 7 files" in log and "Resized 7 images and label files" in log
