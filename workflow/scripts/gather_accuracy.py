"""Rule gather_accuracy: every checkpoint's metrics.json -> results/tables/accuracy.parquet."""


from prunedissect import tables
from prunedissect.logs import log_to_file

log = log_to_file(snakemake.log[0], name="gather_accuracy")

metrics = tables.read_metrics(snakemake.input.metrics, snakemake.params.methods)
accuracy = tables.accuracy_table(metrics)
tables.write_table(accuracy, snakemake.output[0], table="accuracy")
log.info("wrote %d checkpoints to %s", len(accuracy), snakemake.output[0])
