"""Rules plot_*: result tables -> one figure (params.figure) as PNG and PDF."""

from prunedissect import plots, tables
from prunedissect.logs import log_to_file

log = log_to_file(snakemake.log[0], name="plot_figures")


def table(name):
    return tables.read_table(snakemake.input[name], table=name)


figure = snakemake.params.figure
methods = snakemake.params.methods  # config order: fixes each method's colour
if figure == "accuracy":
    fig = plots.plot_accuracy(table("accuracy"), methods=methods)
elif figure == "interpretability":
    fig = plots.plot_interpretability(
        table("summary"),
        methods=methods,
        intervals=table("intervals"),
        confidence=snakemake.params.confidence,
    )
elif figure == "categories":
    fig = plots.plot_categories(table("summary"), trial=snakemake.params.trial, methods=methods)
elif figure == "consistency":
    fig = plots.plot_consistency(table("consistency"), methods=methods)
elif figure == "overview":
    fig = plots.plot_overview(
        table("accuracy"),
        table("summary"),
        table("consistency"),
        methods=methods,
        intervals=table("intervals"),
        confidence=snakemake.params.confidence,
    )
elif figure == "speed":
    fig = plots.plot_speed(table("speed"))
else:
    raise ValueError(f"unknown figure {figure!r}")
plots.save_figure(fig, snakemake.output)
log.info("drew %s into %s", figure, ", ".join(snakemake.output))
