"""Rule gather_bootstrap: every dissected layer's replicates.parquet and units.parquet (pruned
levels, level 0 and the untrained network) -> results/tables/bootstrap.parquet (counts per
replicate) and results/tables/intervals.parquet (full-sample counts with their intervals)."""

from prunedissect import tables, uncertainty
from prunedissect.logs import log_to_file

sm = snakemake
log = log_to_file(sm.log[0], name="gather_bootstrap")
params = sm.params

accuracy = tables.read_table(sm.input.accuracy, table="accuracy")
categories = tables.read_categories(sm.input.tally)
units = tables.read_dissection_units(sm.input.units, params.ids)
replicates = uncertainty.read_replicates(sm.input.replicates, params.ids)
bootstrap = uncertainty.bootstrap_table(
    replicates,
    uncertainty.checkpoint_densities(params.ids, accuracy),
    layers=params.layers,
    categories=categories,
    n_replicates=params.replicates,
)
tables.write_table(bootstrap, sm.output.bootstrap, table="bootstrap")
intervals = uncertainty.intervals_table(
    units, bootstrap, layers=params.layers, categories=categories, confidence=params.confidence
)
tables.write_table(intervals, sm.output.intervals, table="intervals")
log.info("wrote %d replicate rows and %d interval rows", len(bootstrap), len(intervals))
