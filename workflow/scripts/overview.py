"""Rule overview: the study tables -> results/report/summary.md (the numbers the README quotes)."""

from pathlib import Path

from prunedissect import tables
from prunedissect.logs import log_to_file
from prunedissect.overview import overview_markdown

log = log_to_file(snakemake.log[0], name="overview")

frames = {name: tables.read_table(path, table=name) for name, path in snakemake.input.items()}
text = overview_markdown(
    frames["accuracy"],
    frames["summary"],
    frames["consistency"],
    methods=snakemake.params.methods,  # config order: the order of each quantity's rows
)
Path(snakemake.output[0]).write_text(text)
log.info("wrote %s", snakemake.output[0])
