"""Rule extract_activations: every dissected layer's maps for every probe image, in one forward
pass over the probe set -> one float16 .npy per layer."""


import torch

from prunedissect.checkpoints import verify
from prunedissect.data.broden import Broden
from prunedissect.devices import resolve_device
from prunedissect.dissection import build_model, extract_activations, load_state_dict, probe_loader
from prunedissect.logs import log_to_file
from prunedissect.models import kwargs_for_state_dict
from prunedissect.reproducibility import job_threads, kernel_report

log = log_to_file(snakemake.log[0], name="extract_activations")

params = snakemake.params
torch.set_num_threads(job_threads(snakemake.threads))
log.info(kernel_report())
device = resolve_device(params.device)
# The number of classes is read from the checkpoint itself (its fc layer), the one source
# that cannot disagree with the weights being loaded.
verify(snakemake.input.model)
state_dict = load_state_dict(snakemake.input.model)
# a reduced arm's level is a narrower network: its widths come from its own tensor shapes
model_kwargs = (
    kwargs_for_state_dict(params.arch, state_dict, params.model_kwargs)
    if params.reduced
    else params.model_kwargs
)
model = build_model(params.arch, state_dict, model_kwargs=model_kwargs)
broden = Broden(snakemake.input.probe)
loader = probe_loader(
    broden,
    image_size=params.image_size,
    mean=params.mean,
    std=params.std,
    batch_size=params.batch_size,
)
outputs = dict(zip(params.layers, snakemake.output.activations, strict=True))
log.info("extracting %s of %s on %s from %r", ", ".join(outputs), params.arch, device, broden)
shapes = extract_activations(
    model,
    loader,
    n_images=len(broden),
    outputs=outputs,
    device=device,
    logger=log,
)
for layer, path in outputs.items():
    log.info("wrote %s of shape %s (float16)", path, shapes[layer])
