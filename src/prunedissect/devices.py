"""Choosing the torch device from the ``device`` config value, without global state."""

from __future__ import annotations

import torch


class DeviceUnavailableError(RuntimeError):
    """The configuration demands a device this machine does not have."""


def resolve_device(choice: str = "auto") -> torch.device:
    """Map ``auto`` / ``cpu`` / ``cuda`` (or ``cuda:N``) to a :class:`torch.device`.

    ``auto`` picks the first CUDA device when one is visible, else the CPU. ``cuda`` fails with
    :class:`DeviceUnavailableError` on a machine without a visible GPU, instead of silently
    training on the CPU for days.
    """
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                f"device: {choice!r} was requested but no CUDA device is visible "
                "(torch.cuda.is_available() is False). On a cluster, check that the job asked for "
                "a GPU (the rule's gpu resource, see profiles/README.md) and landed on a GPU "
                "node; to run on the CPU instead set `device: auto` or `device: cpu`."
            )
        return torch.device(choice)
    raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {choice!r}")
