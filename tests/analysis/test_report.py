"""Per-unit HTML report (library), and every rule of tables/plots/report run by Snakemake."""

from __future__ import annotations

import base64
import io
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image

from conftest import REPO, run_snakemake
from prunedissect import report, tables
from prunedissect.checkpoints import write_checksum
from prunedissect.data.broden import BrodenWriter, LabelSpec
from prunedissect.dissection.upsample import upsample


def test_top_images_matches_brute_force_with_ties_and_chunks(tmp_path):
    rng = np.random.default_rng(0)
    acts = rng.normal(size=(11, 5, 4, 4)).astype(np.float16)
    acts[3, 2] = acts[7, 2] = 9.0  # a tie: image 3 must come before image 7
    np.save(tmp_path / "a.npy", acts)
    memmap = np.load(tmp_path / "a.npy", mmap_mode="r")
    units = [4, 2, 0]
    got = report.top_images(memmap, units, k=4, chunk=3)
    maxima = acts.astype(np.float32).max(axis=(2, 3))
    for row, unit in zip(got, units):
        expected = sorted(range(11), key=lambda i: (-maxima[i, unit], i))[:4]
        assert row.tolist() == expected
    assert got[1, :2].tolist() == [3, 7]
    assert report.top_images(acts, [0], k=50).shape == (1, 11)


def test_report_masks_come_from_the_dissection_upsampling_bilinear_with_half_pixel_centres():
    ramp = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])  # value = 2 * row + column
    out = upsample(ramp, (4, 4))[0, 0].numpy()
    # output pixel centres map to -0.25, 0.25, 0.75, 1.25 -> clamped 0, .25, .75, 1
    axis = np.array([0.0, 0.25, 0.75, 1.0])
    np.testing.assert_allclose(out, 2 * axis[:, None] + axis[None, :])


def test_overlay_dims_outside_and_outlines_the_mask():
    image = np.full((6, 6, 3), 200, dtype=np.uint8)
    mask = np.zeros((6, 6), dtype=bool)
    mask[1:5, 1:5] = True
    out = report.overlay(image, mask, dim=0.25, edge=(1, 2, 3))
    assert (out[0, 0] == 50).all() and (out[5, 5] == 50).all()
    assert (out[2:4, 2:4] == 200).all()  # interior untouched
    assert out[1, 1].tolist() == [1, 2, 3] and out[4, 2].tolist() == [1, 2, 3]


def test_the_outline_is_every_mask_pixel_with_a_4_neighbour_outside_the_mask():
    """The definition the report had before scikit-image drew it, on random masks with edges
    that touch the image border (where a pixel has no neighbour outside the image)."""
    rng = np.random.default_rng(0)
    image = np.full((9, 11, 3), 100, dtype=np.uint8)
    for _ in range(50):
        mask = rng.random((9, 11)) < 0.5
        inner = mask.copy()
        inner[1:] &= mask[:-1]
        inner[:-1] &= mask[1:]
        inner[:, 1:] &= mask[:, :-1]
        inner[:, :-1] &= mask[:, 1:]
        out = report.overlay(image, mask, dim=1.0, edge=(1, 2, 3))
        np.testing.assert_array_equal((out == [1, 2, 3]).all(axis=2), mask & ~inner)


def test_to_rgb_accepts_arrays_and_pil_images():
    gray = np.linspace(0, 1, 16).reshape(4, 4)
    rgb = report.to_rgb(gray, 4)
    assert rgb.shape == (4, 4, 3) and rgb[3, 3].tolist() == [255, 255, 255]
    assert report.to_rgb(Image.new("RGB", (9, 7), (10, 20, 30)), 5)[2, 2].tolist() == [10, 20, 30]


def _units(interpretable, concepts, ious, threshold=0.5):
    return pd.DataFrame(
        dict(
            unit=range(len(concepts)),
            threshold=threshold,
            concept=concepts,
            category=["object"] * len(concepts),
            iou=ious,
            interpretable=interpretable,
            interpretable_fraction=np.asarray(interpretable, dtype=float),
            same_concept_fraction=1.0,
            alive=True,
        )
    )


def test_concept_fate_and_counts():
    base = _units([True, True, True, False, False], ["a", "b", "c", "d", "e"], [0.1] * 5)
    other = _units([True, True, False, True, False], ["a", "x", "c", "d", "e"], [0.1] * 5)
    fates = [report.concept_fate(base.iloc[i], other.iloc[i]) for i in range(5)]
    assert fates == ["kept", "changed", "lost", "gained", "none"]
    assert report.fate_counts(base, other) == {
        "kept": 1,
        "changed": 1,
        "lost": 1,
        "gained": 1,
        "none": 1,
    }


N_IMAGES, TILE, TOP = 8, 24, 3


def _images():
    rng = np.random.default_rng(1)
    return [(rng.random((16, 16, 3)) * 255).astype(np.uint8) for _ in range(N_IMAGES)]


def _activations(shift):
    """Unit u fires hardest on images (u + shift), (u + shift + 1), ... in decreasing order."""
    acts = np.zeros((N_IMAGES, 4, 4, 4), dtype=np.float16)
    for unit in range(4):
        for rank in range(N_IMAGES):
            acts[(unit + shift + rank) % N_IMAGES, unit, 1, 1] = N_IMAGES - rank
    return acts


LEVEL0_UNITS = _units(
    [True, True, False, True], ["dog", "sky", "red", "car"], [0.1, 0.3, 0.02, 0.2]
)


def _report(level_units=None, **kwargs):
    images = _images()
    level0 = report.LevelData(
        method="dense",
        level=0,
        units=LEVEL0_UNITS,
        activations=_activations(0),
    )
    level3 = report.LevelData(
        method="lottery",
        level=3,
        units=(
            level_units
            if level_units is not None
            else _units(
                [True, False, True, True], ["dog", "sky", "red", "bus"], [0.2, 0.01, 0.06, 0.1]
            )
        ),
        activations=_activations(2),
    )
    args = dict(
        trial=1,
        layers={"layer3": [level0, level3]},
        load_image=lambda i: images[i],
        n_units=3,
        top_k=TOP,
        densities={("dense", 0): 1.0, ("lottery", 3): 0.512},
        tile=TILE,
        image_format="png",
    )
    return report.build_unit_report(**{**args, **kwargs})


def test_unit_report_rows_labels_images_and_badges():
    html = _report()
    assert html == _report()  # deterministic
    rows = re.findall(r'<tr id="layer3-unit(\d+)">(.*?)</tr>', html)
    assert [int(u) for u, _ in rows] == [1, 3, 0]  # level-0 IoU 0.3, 0.2, 0.1; unit 2 left out
    expected_badges = {1: "lost", 3: "changed", 0: "kept"}
    for unit, row in rows:
        cells = re.findall(r"<td>(.*?)</td>", row)
        assert cells[0] == f"unit {unit}"
        assert re.findall(r">(kept|changed|lost|gained|none)</span>", row) == [
            expected_badges[int(unit)]
        ]
        # top images: level 0 starts at image u, level 3 at image u + 2 (see _activations)
        alts = re.findall(r'alt="top images ([\d, ]+)"', row)
        assert alts == [
            ", ".join(str((int(unit) + s + r) % N_IMAGES) for r in range(TOP)) for s in (0, 2)
        ]
        for payload in re.findall(r'src="data:image/png;base64,([^"]+)"', row):
            with Image.open(io.BytesIO(base64.b64decode(payload))) as strip:
                assert strip.size == (TOP * TILE + (TOP - 1) * 4, TILE)
    assert html.count("data:image/png;base64,") == 3 * 2
    assert "IoU 0.300" in html and "bus" in html
    assert (
        "<tr><th>unit</th><th>level 0 (dense)</th><th>lottery, level 3 (51.2% of weights)</th>"
        in html
    )
    # fate counts over all four units at level 3: dog kept, car->bus changed, sky lost, red gained
    assert "<td>lottery, level 3</td><td>1</td><td>1</td><td>1</td><td>1</td><td>0</td>" in html


def test_unit_report_places_two_methods_side_by_side_at_one_level():
    images = _images()
    level0 = report.LevelData(
        method="dense", level=0, units=LEVEL0_UNITS, activations=_activations(0)
    )
    # lottery: dog kept, sky lost, red gained, car -> bus changed
    lottery = report.LevelData(
        method="lottery",
        level=3,
        units=_units(
            [True, False, True, True], ["dog", "sky", "red", "bus"], [0.2, 0.01, 0.06, 0.1]
        ),
        activations=_activations(2),
    )
    # oneshot: dog and sky kept, red still not interpretable, car lost
    oneshot = report.LevelData(
        method="oneshot",
        level=3,
        units=_units(
            [True, True, False, False], ["dog", "sky", "red", "car"], [0.2, 0.2, 0.0, 0.0]
        ),
        activations=_activations(5),
    )
    html = report.build_unit_report(
        trial=0,
        layers={"layer3": [level0, lottery, oneshot]},
        load_image=lambda i: images[i],
        n_units=3,
        top_k=TOP,
        densities={("lottery", 3): 0.512, ("oneshot", 3): 0.512},
        tile=TILE,
        image_format="png",
    )
    assert (
        "<tr><th>unit</th><th>level 0 (dense)</th><th>lottery, level 3 (51.2% of weights)</th>"
        "<th>oneshot, level 3 (51.2% of weights)</th></tr>"
    ) in html
    assert "Columns: level 0 (dense); lottery, level 3 (51.2% of weights); oneshot" in html
    rows = dict(re.findall(r'<tr id="layer3-unit(\d+)">(.*?)</tr>', html))
    badges = {
        int(unit): re.findall(r">(kept|changed|lost|gained|none)</span>", row)
        for unit, row in rows.items()
    }
    # each column against level 0: (lottery, oneshot)
    assert badges == {1: ["lost", "kept"], 3: ["changed", "lost"], 0: ["kept", "kept"]}
    for unit, row in rows.items():  # each column's own top images (see _activations)
        alts = re.findall(r'alt="top images ([\d, ]+)"', row)
        assert [int(a.split(",")[0]) for a in alts] == [
            (int(unit) + shift) % N_IMAGES for shift in (0, 2, 5)
        ]
    assert "<td>lottery, level 3</td><td>1</td><td>1</td><td>1</td><td>1</td><td>0</td>" in html
    assert "<td>oneshot, level 3</td><td>2</td><td>0</td><td>1</td><td>0</td><td>1</td>" in html


def test_unit_report_masks_show_where_the_unit_fires():
    html = _report(n_units=1, top_k=1, image_format="png")
    payload = re.findall(r'src="data:image/png;base64,([^"]+)"', html)[0]
    strip = np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))))
    # the unit fires only at map cell (1, 1) of a 4x4 map: the bright region sits there
    image = report.to_rgb(_images()[1], TILE).astype(float)
    kept = np.isclose(strip.astype(float), image, atol=1).all(axis=2)
    rows, cols = np.nonzero(kept)
    cell = TILE // 4
    assert rows.min() >= cell - 2 and rows.max() <= 2 * cell + 2
    assert cols.min() >= cell - 2 and cols.max() <= 2 * cell + 2
    assert kept.sum() > 0


def test_unit_report_rejects_mismatched_inputs():
    with pytest.raises(report.ReportError, match="dissected units differ from level 0"):
        _report(level_units=_units([True], ["dog"], [0.2]))
    images = _images()
    level3 = report.LevelData(
        method="lottery", level=3, units=_units([True], ["a"], [0.1]), activations=_activations(0)
    )
    with pytest.raises(report.ReportError, match="first checkpoint given must be level 0"):
        report.build_unit_report(
            trial=0, layers={"layer3": [level3]}, load_image=lambda i: images[i], n_units=1, top_k=1
        )
    level0 = report.LevelData(
        method="dense", level=0, units=level3.units, activations=_activations(0)
    )
    with pytest.raises(report.ReportError, match=r"\('lottery', 3\) is given twice"):
        report.build_unit_report(
            trial=0,
            layers={"layer3": [level0, level3, level3]},
            load_image=lambda i: images[i],
            n_units=1,
            top_k=1,
        )


def test_load_level_reads_files(tmp_path):
    units = _units([True, False], ["dog", "sky"], [0.2, 0.01])
    units.to_parquet(tmp_path / "units.parquet")
    np.save(tmp_path / "activations.npy", _activations(0)[:, :2])
    data = report.load_level(
        method="oneshot",
        level=2,
        units_path=tmp_path / "units.parquet",
        activations_path=tmp_path / "activations.npy",
    )
    assert isinstance(data.activations, np.memmap) and data.activations.shape == (8, 2, 4, 4)
    assert (data.method, data.level, data.name) == ("oneshot", 2, "oneshot, level 2")
    units.drop(columns=["iou"]).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(report.ReportError, match=r"lacks columns \['iou'\]"):
        report.load_level(
            method="oneshot",
            level=2,
            units_path=tmp_path / "bad.parquet",
            activations_path=tmp_path / "activations.npy",
        )


# ------------------------------------------------------------------ the rules, end to end

CONCEPTS = [("red", "color"), ("dog", "object"), ("sky", "scene"), ("wood", "material")]
K_UNITS, MAP = 6, 4


def _write_study(root, *, trials, levels, methods):
    """The files training and dissection leave behind, for a tiny synthetic study: level 0 once
    under dense/, the pruned levels under each method's directory."""
    rng = np.random.default_rng(0)
    probe = root / "resources/concepts/probe"
    labels = [LabelSpec(i + 1, name, category) for i, (name, category) in enumerate(CONCEPTS)]
    writer = BrodenWriter(root=probe, labels=labels)
    for i in range(N_IMAGES):
        image = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
        seg = np.zeros((8, 8), dtype=np.int32)
        seg[: 2 + i % 4] = 2
        writer.add(f"img{i}", image=image, pixel={"object": [seg]}, image_level={"scene": [3]})
    writer.close()
    checkpoints = [("dense", trial, 0) for trial in range(trials)] + [
        (method, trial, level)
        for method in methods
        for trial in range(trials)
        for level in range(1, levels + 1)
    ]
    # the untrained networks: dissected, never trained
    checkpoints += [("init", trial, 0) for trial in range(trials)]
    for method, trial, level in checkpoints:
        density = 0.8**level
        train = root / f"results/train/{method}/trial{trial}/level{level}"
        train.mkdir(parents=True)
        (train / "metrics.json").write_text(
            json.dumps(
                dict(
                    trial=trial,
                    level=level,
                    density=density,
                    params_remaining=round(1000 * density),
                    params_total=1000,
                    top1=0.9 - 0.05 * level - 0.01 * (method == "oneshot"),
                    top5=0.99,
                    loss=0.4,
                    epochs=1,
                    wall_time_s=1.0,
                    seed=trial,
                )
            )
        )
        dissect = root / f"results/dissect/{method}/trial{trial}/level{level}/layer3"
        dissect.mkdir(parents=True)
        np.save(
            dissect / "activations.npy",
            rng.random((N_IMAGES, K_UNITS, MAP, MAP)).astype(np.float16),
        )
        write_checksum(dissect / "activations.npy")  # as extract_activations does
        picks = [(u + level * (u % 2)) % len(CONCEPTS) for u in range(K_UNITS)]
        ious = 0.1 - 0.03 * level + 0.01 * np.arange(K_UNITS) / K_UNITS
        pd.DataFrame(
            dict(
                unit=range(K_UNITS),
                threshold=0.8,
                concept=[CONCEPTS[p][0] for p in picks],
                category=[CONCEPTS[p][1] for p in picks],
                iou=ious,
                interpretable=ious > 0.05,
                interpretable_fraction=(ious > 0.05).astype(float),
                same_concept_fraction=1.0,
                alive=True,
            )
        ).to_parquet(dissect / "units.parquet")
        found = [(u, *CONCEPTS[p]) for u, p in enumerate(picks) if ious[u] > 0.05]
        pd.DataFrame(
            [
                dict(replicate=b, unit=u, concept=c, category=g, iou=0.1)
                for b in range(REPLICATES)
                for u, c, g in found
                if (u + b) % 3  # each replicate misses a third of the units
            ],
            columns=["replicate", "unit", "concept", "category", "iou"],
        ).to_parquet(dissect / "replicates.parquet")
        tally = pd.DataFrame(
            [
                dict(unit=u, concept=c, category=g, intersection=1, union=2, iou=0.5)
                for u in range(K_UNITS)
                for c, g in CONCEPTS
            ]
        )
        tally.to_parquet(dissect / "tally.parquet")


STUDY_TABLES = ("accuracy", "units", "summary", "consistency", "bootstrap", "intervals", "verdict")
REPLICATES = 20
TARGETS = [
    *(f"results/tables/{name}.parquet" for name in STUDY_TABLES),
    *(
        f"results/figures/{fig}.{ext}"
        for fig in (
            "fig1_accuracy",
            "fig2_interpretability",
            "fig3_categories",
            "fig4_consistency",
            "fig5_overview",
        )
        for ext in ("png", "pdf")
    ),
    "results/report/units_trial0.html",
    "results/report/verdict.md",
    "results/report/verdict.html",
]


@pytest.mark.slow
def test_rules_build_tables_figures_and_report(tmp_path):
    trials, levels, methods = 2, 2, ["lottery", "oneshot"]
    _write_study(tmp_path, trials=trials, levels=levels, methods=methods)
    config = {
        "methods": [{"name": name, "kind": name} for name in methods],
        "trials": trials,
        "pruning": {"levels": levels},
        "dissection": {"layers": ["layer3"]},
        "report": {"units": 4, "top_images": 2, "trial": 0},
        "bootstrap": {"replicates": REPLICATES},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    rules = REPO / "workflow" / "rules"
    (tmp_path / "Snakefile").write_text(
        'configfile: "config.yaml"\n'
        + "".join(
            f'include: "{rules / name}.smk"\n' for name in ("common", "tables", "plots", "report")
        )
    )
    run_snakemake("--cores", "2", *TARGETS, cwd=tmp_path)

    frames = {
        name: tables.read_table(tmp_path / f"results/tables/{name}.parquet", table=name)
        for name in STUDY_TABLES
    }
    assert tables.check_tables(frames) == []
    # level 0 is listed under every method
    assert len(frames["accuracy"]) == len(methods) * trials * (levels + 1)
    assert len(frames["units"]) == len(methods) * trials * (levels + 1) * K_UNITS
    assert sorted(frames["summary"]["method"].unique()) == methods
    assert set(frames["summary"]["category"]) == {"all", "color", "material", "object", "scene"}
    level0 = frames["consistency"].query("level == 0")
    assert level0["still_interpretable"].tolist() == [1.0] * len(methods) * trials
    for target in TARGETS:
        path = tmp_path / target
        assert path.stat().st_size > 0, target
        if path.suffix == ".png":
            with Image.open(path) as image:
                image.verify()
        if path.suffix == ".pdf":
            assert path.read_bytes().startswith(b"%PDF-")
    html = (tmp_path / "results/report/units_trial0.html").read_text()
    assert html.count('<tr id="layer3-unit') == 4
    # level 0 and the last level of both methods side by side
    assert html.count("data:image/jpeg;base64,") == 4 * 3
    assert re.search(
        r"<th>level 0 \(dense\)</th><th>lottery, level 2 \(64% of weights\)</th>"
        r"<th>oneshot, level 2 \(64% of weights\)</th>",
        html,
    )
    for rule in (
        "gather_accuracy",
        "gather_units",
        "summarise",
        "consistency",
        "plot_overview",
        "unit_report",
    ):
        (log,) = (tmp_path / "logs" / rule).glob("*.log")
        text = log.read_text()
        assert "wrote" in text or "drew" in text, rule

    # Changing the trial of figure 3 reruns figure 3 only; nothing else is out of date.
    config["report"]["trial"] = 1
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(config))
    dry = run_snakemake(
        "-n", "--cores", "1", "--configfile", "other.yaml", "--",
        *(t for t in TARGETS if "units_trial0" not in t), cwd=tmp_path,
    )  # fmt: skip
    jobs = re.findall(r"^rule (\w+):", dry.stdout, flags=re.M)
    assert jobs == ["plot_categories"], dry.stdout

    proc = run_snakemake("--report", "report.html", "--", *TARGETS, cwd=tmp_path)
    assert (tmp_path / "report.html").stat().st_size > 0, proc.stderr
