"""Rule summarise: results/tables/units.parquet -> results/tables/summary.parquet."""

import logging

from prunedissect import tables

logging.basicConfig(
    filename=snakemake.log[0],
    filemode="w",
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    force=True,
)
log = logging.getLogger("summarise")

try:
    units = tables.read_table(snakemake.input.units, table="units")
    categories = tables.read_categories(snakemake.input.tally)
    summary = tables.summary_table(units, categories=categories)
    tables.write_table(summary, snakemake.output[0], table="summary")
    log.info("categories %s; wrote %d rows to %s", categories, len(summary), snakemake.output[0])
except Exception:
    log.exception("summarise failed")
    raise
