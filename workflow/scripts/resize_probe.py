"""Rule resize_probe: copy a Broden-format probe set resized to {size} px."""


from prunedissect.logs import log_to_file
from prunedissect.data.resize import resize_probe

log_to_file(snakemake.log[0], name=__name__)  # noqa: F821

resize_probe(
    snakemake.input.probe,  # noqa: F821
    snakemake.output.probe,  # noqa: F821
    size=int(snakemake.wildcards.size),  # noqa: F821
    workers=snakemake.threads,  # noqa: F821
)
