"""Rule gather_accuracy: every checkpoint's metrics.json -> results/tables/accuracy.parquet."""

import logging

from prunedissect import tables

logging.basicConfig(
    filename=snakemake.log[0],
    filemode="w",
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    force=True,
)
log = logging.getLogger("gather_accuracy")

try:
    accuracy = tables.accuracy_table(tables.read_metrics(snakemake.input.metrics))
    tables.write_table(accuracy, snakemake.output[0], table="accuracy")
    log.info("wrote %d checkpoints to %s", len(accuracy), snakemake.output[0])
except Exception:
    log.exception("gather_accuracy failed")
    raise
