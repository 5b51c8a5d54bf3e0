"""Rule gather_units: every dissected units.parquet + accuracy -> results/tables/units.parquet."""


from prunedissect.logs import log_to_file
from prunedissect import tables

log = log_to_file(snakemake.log[0], name="gather_units")  # noqa: F821

accuracy = tables.read_table(snakemake.input.accuracy, table="accuracy")
units = tables.units_table(tables.read_dissection_units(snakemake.input.units), accuracy)
tables.write_table(units, snakemake.output[0], table="units")
log.info(
    "wrote %d units of %d dissected layers to %s",
    len(units),
    len(snakemake.input.units),
    snakemake.output[0],
)
