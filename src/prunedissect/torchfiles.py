"""torch files with checksums: saving, verified loading, and resume points that cannot wedge.

- :func:`save_torch`: ``torch.save`` through memory, an atomic rename and a ``.sha256``
  sidecar (:mod:`prunedissect.checkpoints`).
- :func:`read_torch`: ``torch.load`` (weights only) that turns any failure into a
  :class:`~prunedissect.checkpoints.CorruptFileError` naming the file, instead of torch's
  traceback; :func:`load_verified` checks the sidecar first.
- :class:`ResumePoints`: a training level's two newest epoch checkpoints, ``resume.pt`` and
  ``resume.prev.pt``. A corrupt one is moved aside (``resume.pt.corrupt-<UTC time>``) with a
  warning and the older one is tried, then a fresh start; a bad resume point never fails a job.
"""

from __future__ import annotations

import io
import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from prunedissect.checkpoints import CorruptFileError, sidecar, verify, write_verified


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` through memory, an atomic rename (fixed archive name: same bytes) and a
    checksum sidecar."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_verified(path, buffer.getvalue())


def read_torch(path: str | os.PathLike) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; unreadable files raise
    CorruptFileError (a ValueError) naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, pickle errors, EOFError, OSError...
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CorruptFileError(
            path,
            f"not a readable torch checkpoint ({type(error).__name__}: {first[:200]}); "
            "the file is truncated, corrupt or not written by torch.save",
        ) from None


def load_verified(path: str | os.PathLike) -> Any:
    """Check ``path`` against its sidecar, then :func:`read_torch` it."""
    verify(path)
    return read_torch(path)


def move_aside(path: Path) -> Path:
    """Rename ``path`` (and its sidecar) to ``<name>.corrupt-<UTC time>``; return the new path."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = path.with_name(f"{path.name}.corrupt-{stamp}")
    os.replace(path, target)
    if sidecar(path).exists():
        os.replace(sidecar(path), sidecar(target))
    return target


class ResumePoints:
    """The two newest epoch checkpoints of one training level: ``path`` and its ``.prev``."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.previous = self.path.with_name(f"{self.path.stem}.prev{self.path.suffix}")

    def save(self, state: Any) -> None:
        """Keep the current point as the previous one, then write ``state`` as the newest."""
        if self.path.exists():
            if sidecar(self.path).exists():
                os.replace(sidecar(self.path), sidecar(self.previous))
            os.replace(self.path, self.previous)
        save_torch(state, self.path)

    def load(self, logger: logging.Logger) -> Any | None:
        """The newest resume point that passes its checksum and loads; None when there is none.

        Unusable points are moved aside with a warning naming the file and the reason.
        """
        for candidate in (self.path, self.previous):
            if not candidate.exists():
                continue
            try:
                return load_verified(candidate)
            except CorruptFileError as error:
                aside = move_aside(candidate)
                fallback = (
                    f"trying {self.previous.name}"
                    if candidate == self.path and self.previous.exists()
                    else "training this level from its start"
                )
                logger.warning(
                    "resume point unusable: %s; moved it to %s; %s", error, aside.name, fallback
                )
        return None

    def clear(self) -> None:
        """Remove both points and their sidecars (the level finished)."""
        for path in (self.path, self.previous):
            path.unlink(missing_ok=True)
            sidecar(path).unlink(missing_ok=True)
