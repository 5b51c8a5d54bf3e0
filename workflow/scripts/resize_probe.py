"""Rule resize_probe: copy a Broden-format probe set resized to {size} px."""

import logging
import sys

from prunedissect.data.resize import resize_probe

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821 (tracebacks)
logging.basicConfig(
    stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)

resize_probe(
    snakemake.input.probe,  # noqa: F821
    snakemake.output.probe,  # noqa: F821
    size=int(snakemake.wildcards.size),  # noqa: F821
    workers=snakemake.threads,  # noqa: F821
)
