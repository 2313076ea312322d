"""The book's figure style and what each figure's PNG records about its text and its plots."""

import io

import matplotlib
import matplotlib.pyplot as plt
import pytest
from PIL import Image

from course_lib.plotting import (
    COLUMN_INCHES,
    FIGURE_DPI,
    PLOTS_ACROSS_KEY,
    SMALLEST_TEXT_KEY,
    figure_png,
    line_plot,
    plots_across,
    smallest_text_points,
    use_book_style,
)


@pytest.fixture(autouse=True)
def book_style():
    with matplotlib.rc_context():
        use_book_style()
        yield
    plt.close("all")


def test_the_style_draws_for_the_column():
    figure = line_plot([1, 2], {"a": [1, 2]}, "x (steps)", "y (nats)").figure
    assert tuple(figure.get_size_inches()) == pytest.approx((COLUMN_INCHES, 3.6))
    assert figure.dpi == FIGURE_DPI
    figure.canvas.draw()
    assert smallest_text_points(figure) == 10


def test_the_smallest_visible_text_is_found():
    figure, axes = plt.subplots()
    axes.plot([0, 1], [0, 1])
    axes.text(0.5, 0.5, "small", fontsize=7)
    axes.text(0.2, 0.2, "hidden", fontsize=4, visible=False)
    axes.text(0.3, 0.3, "  ", fontsize=3)
    figure.canvas.draw()
    assert smallest_text_points(figure) == 7


def test_plots_across_counts_a_row_of_axes_not_images_or_colour_bars():
    figure, axes = plt.subplots(2, 3)
    assert plots_across(figure) == 3
    for ax in axes[:, 2]:
        ax.axis("off")
    assert plots_across(figure) == 2
    image = axes[0, 0].imshow([[0, 1], [1, 0]])
    figure.colorbar(image, ax=axes[0, 0])
    assert plots_across(figure) == 2
    stacked, _ = plt.subplots(3, 1)
    assert plots_across(stacked) == 1


def test_the_png_records_text_size_plots_and_resolution():
    figure, axes = plt.subplots(1, 2)
    for ax in axes:
        ax.set_xlabel("t (steps)", fontsize=9)
    with Image.open(io.BytesIO(figure_png(figure))) as image:
        assert image.info[SMALLEST_TEXT_KEY] == "9"
        assert image.info[PLOTS_ACROSS_KEY] == "2"
        assert image.info["dpi"][0] == pytest.approx(FIGURE_DPI, abs=0.01)
