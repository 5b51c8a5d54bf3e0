"""Rule unit_report: one trial's dissected levels + probe images -> per-unit HTML report."""

from pathlib import Path

from prunedissect import report, tables
from prunedissect.checkpoints import verify_all
from prunedissect.data.broden import Broden
from prunedissect.logs import log_to_file

log = log_to_file(snakemake.log[0], name="unit_report")

verify_all(snakemake.input.activations)
layers = {}
# the rule passes each file pair's (trial, level, layer) in input order: no path is parsed
inputs = zip(
    snakemake.params.ids, snakemake.input.units, snakemake.input.activations, strict=True
)
for (_, level, layer), units_path, activations_path in inputs:
    data = report.load_level(
        level=level, units_path=units_path, activations_path=activations_path
    )
    layers.setdefault(layer, []).append(data)
layers = {name: sorted(datas, key=lambda d: d.level) for name, datas in layers.items()}
metrics = tables.read_metrics(snakemake.input.metrics)
densities = dict(zip(metrics["level"], metrics["density"]))
probe = Broden(snakemake.input.probe)
html = report.build_unit_report(
    trial=snakemake.params.trial,
    layers=layers,
    load_image=probe.load_image,
    n_units=snakemake.params.units,
    top_k=snakemake.params.top_images,
    densities=densities,
)
Path(snakemake.output[0]).parent.mkdir(parents=True, exist_ok=True)
Path(snakemake.output[0]).write_text(html, encoding="utf-8")
log.info(
    "wrote %s: layers %s, levels %s, %d bytes",
    snakemake.output[0],
    list(layers),
    sorted(densities),
    len(html),
)
