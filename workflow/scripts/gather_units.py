"""Rule gather_units: every dissected units.parquet + accuracy -> results/tables/units.parquet."""

import logging

from prunedissect import tables

logging.basicConfig(
    filename=snakemake.log[0],
    filemode="w",
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    force=True,
)
log = logging.getLogger("gather_units")

try:
    accuracy = tables.read_table(snakemake.input.accuracy, table="accuracy")
    units = tables.units_table(tables.read_dissection_units(snakemake.input.units), accuracy)
    tables.write_table(units, snakemake.output[0], table="units")
    log.info(
        "wrote %d units of %d dissected layers to %s",
        len(units),
        len(snakemake.input.units),
        snakemake.output[0],
    )
except Exception:
    log.exception("gather_units failed")
    raise
