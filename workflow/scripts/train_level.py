"""Rules train_dense and train_pruned: one level of one method and trial.

Translates snakemake.input/output/params into prunedissect.training.run_level; the resume
checkpoints live beside the outputs (results/train/{method}/trial{t}/level{l}/resume.pt and
resume.prev.pt), and so does attempt.log, the log of an attempt that has not finished yet:
Snakemake deletes a failed job's log before rerunning it, so a resumed level copies the killed
attempt's lines from there.
"""

from pathlib import Path

import torch

from prunedissect.devices import resolve_device
from prunedissect.logs import finish_attempts, log_to_file
from prunedissect.reproducibility import job_threads, kernel_report
from prunedissect.training import (
    LevelJob,
    LevelOutputs,
    PreviousLevel,
    PruningConfig,
    TrainingConfig,
    run_level,
)

sm = snakemake
attempts = Path(sm.output.model).with_name("attempt.log")
log = log_to_file(sm.log[0], name="train_level", attempts=attempts)
params = sm.params
torch.set_num_threads(job_threads(sm.threads))
job = LevelJob(
    trial=params.trial,
    level=params.level,
    seed=params.seed,
    arch=params.model["arch"],
    model_kwargs={k: v for k, v in params.model.items() if k != "arch"},
    images=Path(sm.input.images),
    image_size=params.data["image_size"],
    mean=tuple(params.data["mean"]),
    std=tuple(params.data["std"]),
    training=TrainingConfig.from_config(params.training),
    pruning=PruningConfig.from_config(params.pruning),
)
outputs = LevelOutputs(
    model=Path(sm.output.model),
    mask=Path(sm.output.mask),
    metrics=Path(sm.output.metrics),
    rewind=Path(sm.output.rewind) if job.level == 0 else None,
)
previous = None
if job.level > 0 and "mask" in sm.input.keys():  # a reduced level starts from nothing
    # the inputs the arm's kind needs (common.smk, pruned_inputs): mask always, model and
    # rewind only where the kind reads them
    previous = PreviousLevel(
        mask=Path(sm.input.mask),
        **{name: Path(sm.input[name]) for name in ("model", "rewind") if name in sm.input.keys()},
    )
device = resolve_device(params.device)
log.info("device %s; %s", device, kernel_report())
run_level(job, outputs=outputs, previous=previous, device=device, logger=log)
finish_attempts(attempts)
