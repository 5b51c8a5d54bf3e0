"""Rule summarise: results/tables/units.parquet -> results/tables/summary.parquet."""


from prunedissect import tables
from prunedissect.logs import log_to_file

log = log_to_file(snakemake.log[0], name="summarise")

units = tables.read_table(snakemake.input.units, table="units")
categories = tables.read_categories(snakemake.input.tally)
summary = tables.summary_table(units, categories=categories)
tables.write_table(summary, snakemake.output[0], table="summary")
log.info("categories %s; wrote %d rows to %s", categories, len(summary), snakemake.output[0])
