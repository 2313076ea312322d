"""Choosing where tensors live, and making runs reproducible.

Every chapter starts with::

    from course_lib.device import get_device, seed_everything
    device = get_device()
    seed_everything(0)
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

DEVICE_ENV_VAR = "COURSE_LIB_DEVICE"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def get_device(preferred: str | None = None) -> torch.device:
    """Return the device the course runs on.

    The order of preference is CUDA, then Apple's MPS, then the CPU. Set the
    environment variable ``COURSE_LIB_DEVICE`` (for example ``cpu`` or ``cuda:1``),
    or pass ``preferred``, to override the choice.
    """
    name = preferred or os.environ.get(DEVICE_ENV_VAR)
    if name:
        try:
            device = torch.device(name)
        except RuntimeError as error:
            raise ValueError(
                f"{DEVICE_ENV_VAR}={name!r} is not a device name; use 'cpu', 'cuda', 'cuda:0' or 'mps'"
            ) from error
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"device {name!r} was asked for but this PyTorch build sees no CUDA GPU; "
                f"unset {DEVICE_ENV_VAR} or set it to 'cpu'"
            )
        if device.type == "mps" and not _mps_available():
            raise ValueError(
                f"device {name!r} was asked for but MPS is not available; "
                f"unset {DEVICE_ENV_VAR} or set it to 'cpu'"
            )
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and all GPUs)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
