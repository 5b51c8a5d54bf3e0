"""Routing one process's diagnostics into one log file (used by the workflow's rule scripts)."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
RESUMED_MARKER = "---- resumed after an interrupted attempt (previous lines from that attempt) ----"
THIS_ATTEMPT_MARKER = "---- this attempt ----"


class _Tee:
    """A text stream writing to several streams (the job's log and its attempt log)."""

    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()

    def isatty(self) -> bool:
        return False


def log_to_file(
    path: str | os.PathLike[str],
    *,
    name: str,
    append: bool = False,
    attempts: str | os.PathLike[str] | None = None,
) -> logging.Logger:
    """Send logging, warnings and stderr of this process to ``path``; return logger ``name``.

    stderr is redirected too, so an uncaught exception's traceback and tqdm progress bars land
    in the same file (Snakemake points the user at it when a job fails). ``append`` keeps the
    previous content of ``path``.

    ``attempts`` names a second file, outside Snakemake's care, that receives every line too.
    Snakemake deletes the log of a failed or killed job before rerunning it; when ``attempts``
    still exists from such an attempt, its lines are copied into the new log first, between
    :data:`RESUMED_MARKER` and :data:`THIS_ATTEMPT_MARKER`. The caller removes ``attempts`` once
    the job has succeeded (:func:`finish_attempts`).
    """
    # the stream lives on as stderr: never closed here
    stream: TextIO = open(path, "a" if append else "w", buffering=1)
    if attempts is not None:
        attempts = Path(attempts)
        if attempts.is_file() and attempts.stat().st_size:
            stream.write(f"{RESUMED_MARKER}\n{attempts.read_text(errors='replace')}")
            stream.write(f"{THIS_ATTEMPT_MARKER}\n")
            attempt_stream = open(attempts, "a", buffering=1)
            attempt_stream.write(f"{RESUMED_MARKER}\n")
        else:
            attempts.parent.mkdir(parents=True, exist_ok=True)
            attempt_stream = open(attempts, "w", buffering=1)
        stream = _Tee(stream, attempt_stream)  # type: ignore[assignment]
    sys.stderr = stream
    logging.basicConfig(stream=stream, level=logging.INFO, format=FORMAT, force=True)
    logging.captureWarnings(True)
    return logging.getLogger(name)


def finish_attempts(attempts: str | os.PathLike[str]) -> None:
    """Remove the attempt log of a job that succeeded."""
    Path(attempts).unlink(missing_ok=True)
