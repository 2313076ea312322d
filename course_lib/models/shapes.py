"""Shape checks shared by the recurrent layers, with errors that say which shape was expected."""

from __future__ import annotations

import torch


def check_shape(name: str, tensor: torch.Tensor, shape: tuple[int, ...], meaning: str) -> None:
    """Raise ``ValueError`` unless ``tensor`` has ``shape``; ``meaning`` names the axes, e.g. "(B, H)"."""
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name} must have shape {meaning} = {shape}, got {tuple(tensor.shape)}")


def check_input(x: torch.Tensor, input_size: int, time_major: bool) -> None:
    """Raise ``ValueError`` unless ``x`` is (T, B, D) (``time_major``) or (B, D), with D = ``input_size``."""
    if time_major and x.dim() != 3:
        raise ValueError(f"expected a time-major input of shape (T, B, D), got {tuple(x.shape)}")
    if not time_major and x.dim() != 2:
        raise ValueError(f"expected an input of shape (B, D), got {tuple(x.shape)}")
    if x.shape[-1] != input_size:
        raise ValueError(f"expected inputs of size D = {input_size}, got {x.shape[-1]}")
