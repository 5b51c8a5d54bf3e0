"""Rule verdict_report: results/tables/verdict.parquet -> results/report/verdict.md and
verdict.html, the one-page answer (prunedissect.verdict_page)."""

import os
from pathlib import Path

from prunedissect import tables
from prunedissect.logs import log_to_file
from prunedissect.verdict_page import to_html, to_markdown, verdict_blocks

sm = snakemake
log = log_to_file(sm.log[0], name="verdict_report")
page = Path(sm.output.markdown).parent
blocks = verdict_blocks(
    tables.read_table(sm.input.verdict, table="verdict"),
    confidence=sm.params.confidence,
    accuracy_drop=sm.params.accuracy_drop,
    replicates=sm.params.replicates,
    # links relative to the page, so the results folder can be moved or archived
    figures={Path(f).stem: os.path.relpath(f, page) for f in sm.params.figures},
    methods=sm.params.methods,
)
Path(sm.output.markdown).write_text(to_markdown(blocks))
Path(sm.output.html).write_text(to_html(blocks))
log.info("wrote %s and %s", sm.output.markdown, sm.output.html)
