"""Rule consistency: results/tables/units.parquet -> results/tables/consistency.parquet."""


from prunedissect import tables
from prunedissect.logs import log_to_file

log = log_to_file(snakemake.log[0], name="consistency")

units = tables.read_table(snakemake.input.units, table="units")
consistency = tables.consistency_table(units)
tables.write_table(consistency, snakemake.output[0], table="consistency")
log.info("wrote %d rows to %s", len(consistency), snakemake.output[0])
