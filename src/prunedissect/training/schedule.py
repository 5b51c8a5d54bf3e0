"""The learning-rate schedule as a pure function of the optimiser step.

A resumed or rewound run therefore needs no scheduler state.
"""

from __future__ import annotations

import math

from prunedissect.training.settings import TrainingConfig


def learning_rate(config: TrainingConfig, iteration: int, iterations_per_epoch: int) -> float:
    """The learning rate of optimiser step ``iteration`` (0-based).

    step: ``lr * gamma ** (number of milestones <= current epoch)``; cosine: half-cosine decay
    from ``lr`` to 0 over all iterations; constant: ``lr``. A linear warm-up over
    ``warmup_epochs`` multiplies the result by ``(iteration + 1) / warmup_iterations``.
    """
    total = config.epochs * iterations_per_epoch
    if config.schedule == "step":
        epoch = iteration / iterations_per_epoch
        rate = config.lr * config.gamma ** sum(1 for m in config.milestones if epoch >= m)
    elif config.schedule == "cosine":
        rate = config.lr * 0.5 * (1.0 + math.cos(math.pi * iteration / total))
    else:
        rate = config.lr
    warmup = config.warmup_epochs * iterations_per_epoch
    if warmup and iteration < warmup:
        rate *= (iteration + 1) / warmup
    return rate

