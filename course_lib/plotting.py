"""Plotting helpers shared by the chapters (matplotlib).

Every plot in the course has labelled axes with units, so the helpers require them.

The book's figures are drawn for its text column: :func:`use_book_style` sets the figure size,
resolution and font sizes, and records in every PNG a notebook shows the smallest text it
holds (in points) and how many plots stand side by side, so that the website's tests can
check that the text is readable at the size the page shows the figure.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import matplotlib
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.text import Text

# The book's column shows a figure up to this wide without scaling it down (pixels); at
# FIGURE_DPI a figure COLUMN_INCHES wide fills it, and 10-point text is 10 · 100/72 ≈ 14 pixels
# high, above 80% of the body text's 16 pixels.
COLUMN_PIXELS = 680
FIGURE_DPI = 100
COLUMN_INCHES = COLUMN_PIXELS / FIGURE_DPI
SMALLEST_FONT_POINTS = 10.0
BOOK_STYLE = {
    "figure.figsize": (COLUMN_INCHES, 3.6),
    "figure.dpi": FIGURE_DPI,
    "savefig.dpi": FIGURE_DPI,
    "font.size": SMALLEST_FONT_POINTS,
    "axes.titlesize": "large",
    "axes.labelsize": "medium",
    "xtick.labelsize": "medium",
    "ytick.labelsize": "medium",
    "legend.fontsize": "medium",
    "legend.title_fontsize": "medium",
    "figure.titlesize": "large",
}
# The keys of the PNG text chunks that record a figure's smallest text and its plots side by side.
SMALLEST_TEXT_KEY = "Smallest text (pt)"
PLOTS_ACROSS_KEY = "Plots across"


def smallest_text_points(figure: Figure) -> float | None:
    """The font size (points) of the smallest visible, non-empty text of a drawn figure."""
    sizes = [text.get_fontsize() for text in figure.findobj(Text)
             if text.get_visible() and text.get_text().strip()]
    return min(sizes) if sizes else None


def plots_across(figure: Figure) -> int:
    """The largest number of plots (axes with their axis drawn; not colour bars) side by side in a row."""
    boxes = [axes.get_position() for axes in figure.axes
             if axes.get_visible() and axes.axison and axes.get_label() != "<colorbar>"]
    return max((sum(other.y0 < box.y1 and box.y0 < other.y1 for other in boxes) for box in boxes), default=0)


def figure_png(figure: Figure) -> bytes:
    """The figure as the PNG a notebook shows, with its smallest text and plots across recorded."""
    figure.canvas.draw()
    smallest = smallest_text_points(figure)
    metadata = {
        SMALLEST_TEXT_KEY: "none" if smallest is None else f"{smallest:g}",
        PLOTS_ACROSS_KEY: str(plots_across(figure)),
    }
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight", metadata=metadata)
    return buffer.getvalue()


def use_book_style() -> None:
    """Size the figures for the book's column, and have the notebook record their text sizes.

    Every chapter calls it in its first cell. Outside IPython only the style is set.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # not in a notebook
        shell = None
    else:
        shell = get_ipython()
    if shell is not None:
        # Load the notebook's backend first: loading it later would set its own figure settings
        # and PNG formatter over these.
        plt.switch_backend(matplotlib.get_backend())
    plt.rcParams.update(BOOK_STYLE)
    if shell is not None:
        shell.display_formatter.formatters["image/png"].for_type(Figure, figure_png)


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
        _, ax = plt.subplots()
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
        _, ax = plt.subplots()
    ax.bar(list(labels), list(values))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.figure.tight_layout()
    return ax
