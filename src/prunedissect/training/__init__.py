"""Training with masks, lottery-ticket rewinding and resumable checkpoints.

One job per module, each usable on its own:

- :mod:`~prunedissect.training.settings`: :class:`TrainingConfig` / :class:`PruningConfig`,
  typed views of the ``training`` and ``pruning`` config sections.
- :mod:`~prunedissect.training.schedule`: :func:`learning_rate` (step, cosine or constant,
  optional linear warm-up) as a pure function of the iteration.
- :mod:`~prunedissect.training.loop`: :func:`train` / :func:`evaluate`, SGD with the mask
  enforced after every step; top-1, top-5 and loss.
- :mod:`~prunedissect.training.resume`: where a run stands (:class:`TrainResult`) and its epoch
  resume points.
- :mod:`~prunedissect.training.level`: :func:`run_level`, one level of iterative magnitude
  pruning, as :func:`load_level_data`, :func:`train_level` and :func:`write_level`;
  :func:`untrained_model`, a trial's level-0 initialisation (the untrained floor).

The image splits come from :mod:`prunedissect.data.images` (:func:`load_split`) and the seeds
from :mod:`prunedissect.seeds`. Randomness comes only from seeds derived from the trial seed
(model init, data order, augmentation), never from the global RNG state, and every epoch's
randomness depends only on (seed, epoch), so a run resumed from an epoch checkpoint continues
exactly like an uninterrupted one. On the CPU the same inputs give byte-identical model and mask
files.
"""

from prunedissect.data.images import InMemoryImages, StreamingImages, load_split
from prunedissect.seeds import derive_seed
from prunedissect.training.level import (
    LevelJob,
    LevelOutputs,
    PreviousLevel,
    load_level_data,
    prepare_level,
    run_level,
    train_level,
    untrained_model,
    write_level,
)
from prunedissect.training.loop import Evaluation, evaluate, train
from prunedissect.training.resume import TrainResult, state_dict_cpu
from prunedissect.training.schedule import learning_rate
from prunedissect.training.settings import PruningConfig, TrainingConfig

__all__ = [
    "Evaluation",
    "InMemoryImages",
    "LevelJob",
    "LevelOutputs",
    "PreviousLevel",
    "PruningConfig",
    "StreamingImages",
    "TrainResult",
    "TrainingConfig",
    "derive_seed",
    "evaluate",
    "learning_rate",
    "load_level_data",
    "load_split",
    "prepare_level",
    "run_level",
    "state_dict_cpu",
    "train",
    "train_level",
    "untrained_model",
    "write_level",
]
