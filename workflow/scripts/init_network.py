"""Rule init_network: a trial's untrained network (its level-0 initialisation, the floor of
interpretability) -> results/train/init/trial{t}/level0/model.pt with its .sha256 sidecar."""

from pathlib import Path

from torchvision.datasets.folder import find_classes

from prunedissect.logs import log_to_file
from prunedissect.torchfiles import save_torch
from prunedissect.training import state_dict_cpu, untrained_model

sm = snakemake
log = log_to_file(sm.log[0], name="init_network")
params = sm.params
classes, _ = find_classes(str(Path(sm.input.images) / "train"))
model = untrained_model(
    params.model["arch"],
    num_classes=len(classes),
    seed=params.seed,
    model_kwargs={k: v for k, v in params.model.items() if k != "arch"},
)
save_torch(state_dict_cpu(model), sm.output.model)
log.info(
    "wrote the untrained %s of seed %d (%d classes)",
    params.model["arch"],
    params.seed,
    len(classes),
)
