"""Rule encode_probe_labels: the probe's segmentations as concept codes, once per probe set."""

import logging

from prunedissect.data.broden import Broden
from prunedissect.dissection import encode_probe_labels

logging.basicConfig(
    filename=snakemake.log[0],  # noqa: F821
    filemode="w",
    level=logging.INFO,
    format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    force=True,
)
log = logging.getLogger("encode_probe_labels")

try:
    broden = Broden(snakemake.input.probe)  # noqa: F821
    log.info("encoding %r", broden)
    encode_probe_labels(broden, directory=snakemake.output.labels, logger=log)  # noqa: F821
except Exception:
    log.exception("encode_probe_labels failed")
    raise
