"""Rule encode_probe_labels: the probe's segmentations as concept codes, once per probe set."""


from prunedissect.logs import log_to_file
from prunedissect.data.broden import Broden
from prunedissect.dissection import encode_probe_labels

log = log_to_file(snakemake.log[0], name="encode_probe_labels")  # noqa: F821

broden = Broden(snakemake.input.probe)  # noqa: F821
log.info("encoding %r", broden)
encode_probe_labels(broden, directory=snakemake.output.labels, logger=log)  # noqa: F821
