"""Routing one process's diagnostics into one log file (used by the workflow's rule scripts)."""

from __future__ import annotations

import logging
import os
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_to_file(path: str | os.PathLike[str], *, name: str, append: bool = False) -> logging.Logger:
    """Send logging, warnings and stderr of this process to ``path``; return logger ``name``.

    stderr is redirected too, so an uncaught exception's traceback and tqdm progress bars land
    in the same file (Snakemake points the user at it when a job fails). ``append`` keeps the
    previous content, e.g. for a resumed training job continuing an earlier attempt's log.
    """
    stream = open(path, "a" if append else "w", buffering=1)  # noqa: SIM115 (lives as stderr)
    sys.stderr = stream
    logging.basicConfig(stream=stream, level=logging.INFO, format=FORMAT, force=True)
    logging.captureWarnings(True)
    return logging.getLogger(name)
