"""Rule download_broden: download, verify (MD5) and unpack one Broden variant."""

import logging
import sys

from prunedissect.data.download import download_broden

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821 (tracebacks, progress bar)
logging.basicConfig(
    stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)

download_broden(
    snakemake.wildcards.name,  # noqa: F821
    snakemake.output.probe,  # noqa: F821
    url=snakemake.params.url,  # noqa: F821
    md5=snakemake.params.md5,  # noqa: F821
)
