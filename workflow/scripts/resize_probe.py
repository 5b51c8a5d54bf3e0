"""Rule resize_probe: copy a Broden-format probe set resized to {size} px."""


from prunedissect.data.resize import resize_probe
from prunedissect.logs import log_to_file

log_to_file(snakemake.log[0], name=__name__)

resize_probe(
    snakemake.input.probe,
    snakemake.output.probe,
    size=int(snakemake.wildcards.size),
    workers=snakemake.threads,
)
