"""Rule gather_units: every dissected units.parquet + accuracy -> results/tables/units.parquet."""


from prunedissect import tables
from prunedissect.logs import log_to_file

log = log_to_file(snakemake.log[0], name="gather_units")

accuracy = tables.read_table(snakemake.input.accuracy, table="accuracy")
dissected = tables.read_dissection_units(snakemake.input.units, snakemake.params.ids)
units = tables.units_table(dissected, accuracy)
tables.write_table(units, snakemake.output[0], table="units")
log.info(
    "wrote %d units of %d dissected layers to %s",
    len(units),
    len(snakemake.input.units),
    snakemake.output[0],
)
