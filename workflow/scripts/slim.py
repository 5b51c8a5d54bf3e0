"""Rule slim: a structured arm's checkpoint -> the physically slim network (.pt2, loads with
torch.export.load alone) and check.json (its outputs against the masked network's)."""

import json

from prunedissect import slimming
from prunedissect.checkpoints import verify
from prunedissect.dissection import build_model, load_state_dict
from prunedissect.files import write_bytes_atomic
from prunedissect.logs import log_to_file
from prunedissect.speed import count_macs, network_kwargs

log = log_to_file(snakemake.log[0], name="slim")

params = snakemake.params
verify(snakemake.input.model)
state = load_state_dict(snakemake.input.model)
kwargs = network_kwargs(params.arch, state, params.model_kwargs)
masked = build_model(params.arch, state, model_kwargs=kwargs).eval()
example = slimming.example_input(params.image_size)
slim = slimming.slim(masked, example)
check = {
    "max_abs_difference_float64": slimming.check_slim(masked, slim, example),
    "max_abs_difference_float32": slimming.max_output_difference(masked, slim, example),
    "tolerance": slimming.TOLERANCE,
    "params_masked": slimming.count_parameters(masked),
    "params_slim": slimming.count_parameters(slim),
    "macs_masked": count_macs(masked, params.image_size)[0],
    "macs_slim": count_macs(slim, params.image_size)[0],
}
slimming.save_slim(slim, snakemake.output.model, example)
write_bytes_atomic(snakemake.output.check, (json.dumps(check, indent=2) + "\n").encode())
log.info("slimmed %s: %s", snakemake.input.model, check)
