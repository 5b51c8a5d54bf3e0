"""Rule unit_report: one trial's dissected checkpoints + probe images -> per-unit HTML report."""

from pathlib import Path

from prunedissect import report, tables
from prunedissect.checkpoints import verify_all
from prunedissect.data.broden import Broden
from prunedissect.logs import log_to_file

log = log_to_file(snakemake.log[0], name="unit_report")

verify_all(snakemake.input.activations)
# the rule passes each file pair's (method, trial, level, layer) in input order (level 0, shared
# by every method, as method "dense"): no path is parsed
ids = snakemake.params.ids
method_rank = {method: rank for rank, method in enumerate(dict.fromkeys(m for m, *_ in ids))}
layers = {}
for (method, _, level, layer), units_path, activations_path in zip(
    ids, snakemake.input.units, snakemake.input.activations, strict=True
):
    data = report.load_level(
        method=method, level=level, units_path=units_path, activations_path=activations_path
    )
    layers.setdefault(layer, []).append(data)
# level 0 first, then by level, the methods of one level side by side in the rule's order
layers = {
    name: sorted(datas, key=lambda d: (d.level, method_rank[d.method]))
    for name, datas in layers.items()
}
# params.metrics_ids: the (method, level) of each metrics.json, in input order
metrics_ids = snakemake.params.metrics_ids
metrics = tables.read_metrics(snakemake.input.metrics, [m for m, _ in metrics_ids])
if metrics["level"].tolist() != [int(level) for _, level in metrics_ids]:
    raise ValueError(
        f"unit_report: the metrics files' levels {metrics['level'].tolist()} differ from "
        f"params.metrics_ids {list(metrics_ids)}"
    )
densities = dict(zip(zip(metrics["method"], metrics["level"]), metrics["density"]))
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
    "wrote %s: layers %s, checkpoints %s, %d bytes",
    snakemake.output[0],
    list(layers),
    [(d.method, d.level) for d in next(iter(layers.values()), [])],
    len(html),
)
