"""Rule consistency: results/tables/units.parquet -> results/tables/consistency.parquet."""

import logging

from prunedissect import tables

logging.basicConfig(
    filename=snakemake.log[0],
    filemode="w",
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    force=True,
)
log = logging.getLogger("consistency")

try:
    units = tables.read_table(snakemake.input.units, table="units")
    consistency = tables.consistency_table(units)
    tables.write_table(consistency, snakemake.output[0], table="consistency")
    log.info("wrote %d rows to %s", len(consistency), snakemake.output[0])
except Exception:
    log.exception("consistency failed")
    raise
