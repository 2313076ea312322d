"""Checks for the assignments' visible tests, with failures a student can act on.

A failed check raises :class:`CheckFailed` (an ``AssertionError``) whose message says what was
checked, what was expected and what came back: the type, the shape, or the first positions
where the values differ::

    rnn_step_forward on the worked example: 2 of 2 values differ (largest difference 0.31,
    tolerance 1e-08 + 1e-05·|expected|)
      at [0, 0]: expected 0.921669, got 0.604368
      at [0, 1]: expected -0.861723, got -0.5

Arrays, tensors (on any device, with or without gradients), Python numbers and nested lists
are compared as arrays; anything else (strings, tuples of strings, dictionaries) by ``==``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = [
    "CheckFailed", "check_close", "check_equal", "check_raises", "check_shape", "check_that", "describe",
]

# How many differing positions a message lists.
SHOWN_DIFFERENCES = 3
# Arrays of different shapes are shown whole when they have at most this many values.
SHOWN_VALUES = 20
# How long the repr of a value may be in a message.
REPR_LIMIT = 200


class CheckFailed(AssertionError):
    """A visible test found a wrong answer; the message says what, expected and got."""


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= REPR_LIMIT else text[: REPR_LIMIT - 5] + " ...)"


def describe(value: object) -> str:
    """A value in words for a message: the type and shape of arrays and tensors, else its repr.

    A list or tuple that holds arrays or tensors is summed up by its items' kinds, e.g.
    ``"a list of 5: tensor of shape (3, 6)"``.
    """
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)} ({value.dtype})"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} ({value.dtype})"
    if value is None:
        return "None (does the function end with `return`?)"
    arrays = (torch.Tensor, np.ndarray)
    if isinstance(value, (list, tuple)) and any(isinstance(item, arrays) for item in value):
        kinds = sorted({(f"{'tensor' if isinstance(item, torch.Tensor) else 'array'} of shape "
                         f"{tuple(item.shape)}") if isinstance(item, arrays) else type(item).__name__
                        for item in value})
        return f"a {type(value).__name__} of {len(value)}: {', '.join(kinds)}"
    return f"{type(value).__name__} {_short(value)}"


def _is_numeric(value: object) -> bool:
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        return True
    if isinstance(value, (int, float)):
        return True
    if isinstance(value, (list, tuple)) and value:
        try:
            return np.asarray(value).dtype.kind in "biuf"
        except (ValueError, TypeError, RuntimeError):  # ragged, or tensors that need .detach()
            return False
    return False


def _as_array(value: object) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _position(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def _format_number(value: object, digits: int = 6) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (np.integer, int)):
        return str(int(value))
    return f"{float(value):.{digits}g}"


def _format_pair(expected: object, got: object) -> tuple[str, str]:
    """``expected`` and ``got`` as text, with as many digits as it takes to see them differ."""
    for digits in (6, 9, 12, 17):
        shown = _format_number(expected, digits), _format_number(got, digits)
        if shown[0] != shown[1]:
            break
    return shown


def _compare_as_arrays(got: object, expected: object, what: str, atol: float, rtol: float,
                       exact: bool) -> None:
    if not _is_numeric(got):
        raise CheckFailed(f"{what}: expected {describe(_as_array(expected))}, got {describe(got)}")
    got_array, expected_array = _as_array(got), _as_array(expected)
    if got_array.shape != expected_array.shape:
        message = f"{what}: expected shape {expected_array.shape}, got shape {got_array.shape}"
        if max(got_array.size, expected_array.size) <= SHOWN_VALUES:
            message += f"\n  expected {expected_array.tolist()}\n  got      {got_array.tolist()}"
        raise CheckFailed(message)
    if exact:
        differs = got_array != expected_array
        tolerance = "exact"
    else:
        got_float, expected_float = got_array.astype(np.float64), expected_array.astype(np.float64)
        differs = ~np.isclose(got_float, expected_float, atol=atol, rtol=rtol, equal_nan=True)
        tolerance = f"tolerance {atol:g} + {rtol:g}·|expected|"
    differs = np.atleast_1d(differs)
    if not differs.any():
        return
    positions = np.argwhere(differs)
    got_flat, expected_flat = np.atleast_1d(got_array), np.atleast_1d(expected_array)
    summary = f"{len(positions)} of {differs.size} values differ"
    if not exact and got_array.dtype.kind in "biuf":
        largest = np.nanmax(np.abs(got_flat.astype(np.float64) - expected_flat.astype(np.float64)))
        summary += f" (largest difference {largest:.3g}, {tolerance})"
    lines = [f"{what}: {summary}"]
    for index in positions[:SHOWN_DIFFERENCES]:
        index = tuple(index)
        where = f"at {_position(index)}" if got_array.ndim else "value"
        expected_text, got_text = _format_pair(expected_flat[index], got_flat[index])
        lines.append(f"  {where}: expected {expected_text}, got {got_text}")
    if len(positions) > SHOWN_DIFFERENCES:
        lines.append(f"  … and {len(positions) - SHOWN_DIFFERENCES} more")
    raise CheckFailed("\n".join(lines))


def check_close(got: object, expected: object, what: str, *, atol: float = 1e-8, rtol: float = 1e-5) -> None:
    """Check that ``got`` has the shape of ``expected`` and |got - expected| ≤ atol + rtol·|expected|.

    ``what`` names the check in the message, e.g. ``"rnn_forward on the worked example"``.
    """
    _compare_as_arrays(got, expected, what, atol, rtol, exact=False)


def check_equal(got: object, expected: object, what: str) -> None:
    """Check that ``got`` equals ``expected`` exactly (arrays element by element, with their shape)."""
    if _is_numeric(expected):
        _compare_as_arrays(got, expected, what, 0.0, 0.0, exact=True)
    elif got != expected:
        raise CheckFailed(f"{what}: expected {_short(expected)}, got {describe(got)}")


def check_shape(got: object, shape: tuple[int, ...], what: str) -> None:
    """Check that ``got`` is an array or tensor of shape ``shape``."""
    if not isinstance(got, (torch.Tensor, np.ndarray)):
        raise CheckFailed(f"{what}: expected an array or tensor of shape {tuple(shape)}, got {describe(got)}")
    if tuple(got.shape) != tuple(shape):
        raise CheckFailed(f"{what}: expected shape {tuple(shape)}, got shape {tuple(got.shape)}")


def check_that(condition: bool, what: str, *, expected: str, got: object) -> None:
    """Check a property that is not a comparison of values: ``expected`` says it in words.

    Example: ``check_that(loss.requires_grad, "teacher_forcing_loss", expected="a loss autograd can
    differentiate", got="a tensor with requires_grad=False")``.
    """
    if not condition:
        shown = got if isinstance(got, str) else describe(got)
        raise CheckFailed(f"{what}: expected {expected}, got {shown}")


def check_raises(exception: type[BaseException], function: Callable[..., Any], *args: Any, what: str,
                 **kwargs: Any) -> None:
    """Check that ``function(*args, **kwargs)`` raises ``exception`` (bad input must not pass silently)."""
    try:
        result = function(*args, **kwargs)
    except exception:
        return
    except Exception as error:  # the wrong kind of error
        got = f"{type(error).__name__}: {error}"
        raise CheckFailed(f"{what}: expected {exception.__name__}, got {got}") from error
    raise CheckFailed(f"{what}: expected {exception.__name__}, got no error (it returned {describe(result)})")
