"""Rule verdict: accuracy, bootstrap and intervals -> results/tables/verdict.parquet (Frankle &
Bau's hypothesis per method, layer and quantity, prunedissect.uncertainty.verdict_table)."""

from prunedissect import tables
from prunedissect.logs import log_to_file
from prunedissect.uncertainty import verdict_table

sm = snakemake
log = log_to_file(sm.log[0], name="verdict")
frames = {name: tables.read_table(path, table=name) for name, path in sm.input.items()}
verdict = verdict_table(
    frames["accuracy"],
    frames["bootstrap"],
    frames["intervals"],
    confidence=sm.params.confidence,
    accuracy_drop=sm.params.accuracy_drop,
)
tables.write_table(verdict, sm.output[0], table="verdict")
for row in verdict.itertuples():
    log.info("%s %s %s: %s (%s)", row.method, row.layer, row.quantity, row.verdict, row.reason)
