"""Plotting helpers shared by the chapters (matplotlib).

Every plot in the course has labelled axes with units, so the helpers require them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.axes import Axes


def _require_labels(xlabel: str, ylabel: str) -> None:
    if not xlabel or not ylabel:
        raise ValueError("plots need both axis labels (with units), e.g. xlabel='n-gram order n'")


def line_plot(
    x: Sequence[float],
    series: Mapping[str, Sequence[float]],
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    logx: bool = False,
    logy: bool = False,
    markers: bool = True,
    ax: Axes | None = None,
) -> Axes:
    """Draw one line per entry of ``series`` (legend label → y values) against ``x``."""
    _require_labels(xlabel, ylabel)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    for label, y in series.items():
        if len(y) != len(x):
            raise ValueError(f"series {label!r} has {len(y)} values for {len(x)} x positions")
        ax.plot(x, y, marker="o" if markers else None, label=label)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    ax.grid(True, alpha=0.3)
    ax.figure.tight_layout()
    return ax


def bar_plot(
    labels: Sequence[str],
    values: Sequence[float],
    xlabel: str,
    ylabel: str,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw one bar per label."""
    _require_labels(xlabel, ylabel)
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.6))
    ax.bar(list(labels), list(values))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.figure.tight_layout()
    return ax
