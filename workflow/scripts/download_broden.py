"""Rule download_broden: download, verify (MD5) and unpack one Broden variant."""


from prunedissect.data.download import download_broden
from prunedissect.logs import log_to_file

log_to_file(snakemake.log[0], name=__name__)

download_broden(
    snakemake.wildcards.name,
    snakemake.output.probe,
    url=snakemake.params.url,
    md5=snakemake.params.md5,
)
