"""Rule check_probe: decode every probe image and label PNG once, before any training job."""

from pathlib import Path

from prunedissect.data.probe_check import check_probe_files
from prunedissect.logs import log_to_file

log = log_to_file(snakemake.log[0], name="check_probe")

probe = snakemake.input.probe
log.info("decoding every file of the probe set %s", probe)
counts = check_probe_files(probe, workers=snakemake.threads)
summary = (
    f"probe set {probe}: {counts['images']} images and {counts['label_files']} label files "
    f"decoded, {counts['labels']} labels; no problem found\n"
)
Path(snakemake.output.report).write_text(summary)
log.info(summary.strip())
