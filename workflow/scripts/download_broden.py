"""Rule download_broden: download, verify (MD5) and unpack one Broden variant."""


from prunedissect.logs import log_to_file
from prunedissect.data.download import download_broden

log_to_file(snakemake.log[0], name=__name__)  # noqa: F821

download_broden(
    snakemake.wildcards.name,  # noqa: F821
    snakemake.output.probe,  # noqa: F821
    url=snakemake.params.url,  # noqa: F821
    md5=snakemake.params.md5,  # noqa: F821
)
