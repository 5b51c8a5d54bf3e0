"""Rule prepare_cifar10: download CIFAR-10 (MD5-verified) and write it as ImageFolder PNGs."""

import logging
import sys

from prunedissect.data.cifar import prepare_cifar10

sys.stderr = open(snakemake.log[0], "w", buffering=1)  # noqa: F821 (tracebacks, progress bar)
logging.basicConfig(
    stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
)

prepare_cifar10(
    snakemake.output.images,  # noqa: F821
    url=snakemake.params.url,  # noqa: F821
    md5=snakemake.params.md5,  # noqa: F821
)
