"""Rule encode_probe_labels: the probe's segmentations as concept codes, once per probe set."""


from prunedissect.data.broden import Broden
from prunedissect.dissection import encode_probe_labels
from prunedissect.logs import log_to_file

log = log_to_file(snakemake.log[0], name="encode_probe_labels")

broden = Broden(snakemake.input.probe)
log.info("encoding %r", broden)
encode_probe_labels(broden, directory=snakemake.output.labels, logger=log)
