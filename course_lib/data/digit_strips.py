"""Strips of handwritten digits captioned with number words: ``seven one four``.

The images are the 1,797 handwritten digits that ship with scikit-learn
(``sklearn.datasets.load_digits``: 8 × 8 pixels, 16 grey levels, scanned from forms filled in
by 43 people; no download). A strip puts 1 to ``max_digits`` of them side by side, left to
right, and leaves the remaining slots blank, so that all strips have the same size and fit
in one batch: a grey-scale image (1, 8·scale, 8·scale·max_digits) with values in [0, 1], each
pixel repeated ``scale`` × ``scale`` times. Its caption reads the digits in order, one
number word each.

The 1,797 digit images are split once, at random but deterministically (:func:`digit_split`),
into training and test digits. Training strips are made only of training digits and test
strips only of test digits, so a test strip never shows a digit image seen in training.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT_PIXELS = 8
"""Height and width of one scikit-learn digit, in pixels."""
MAX_GREY = 16.0
"""The largest grey level of the scikit-learn digits."""


@dataclass(frozen=True)
class DigitStrip:
    """A strip: its image (1, 8·scale, 8·scale·max_digits), its caption(s), the digits and their
    indices in ``load_digits()``."""

    image: torch.Tensor
    references: list[str]
    digits: tuple[int, ...]
    indices: tuple[int, ...]


@lru_cache(maxsize=1)
def _load_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return data.images.astype(np.float32) / MAX_GREY, data.target.astype(np.int64)


def digit_split(test_fraction: float = 0.25, seed: int = 0) -> tuple[list[int], list[int]]:
    """Indices of the training and test digit images: a shuffle by ``random.Random(seed)``, cut once."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    n = len(_load_digits()[1])
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_test = round(test_fraction * n)
    return sorted(order[n_test:]), sorted(order[:n_test])


def digits_caption(digits: tuple[int, ...] | list[int]) -> str:
    """The number words of the digits, in order: (7, 1, 4) -> ``seven one four``."""
    return " ".join(DIGIT_WORDS[d] for d in digits)


def digit_strips(
    n: int,
    split: str = "train",
    seed: int = 0,
    max_digits: int = 4,
    scale: int = 2,
    test_fraction: float = 0.25,
) -> list[DigitStrip]:
    """``n`` random strips of 1 … ``max_digits`` digits from one side of :func:`digit_split`.

    Args:
        n: number of strips.
        split: ``"train"`` or ``"test"``: which digit images the strips are made of.
        seed: seeds the ``random.Random`` that picks the number of digits and the digit images
            (the split itself always uses seed 0 and ``test_fraction``).
        max_digits: the number of slots of every strip.
        scale: each pixel becomes a scale × scale block.
        test_fraction: the share of digit images kept for testing.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    if max_digits < 1 or scale < 1:
        raise ValueError(f"max_digits and scale must be at least 1, got {max_digits} and {scale}")
    images, labels = _load_digits()
    train, test = digit_split(test_fraction)
    pool = train if split == "train" else test
    rng = random.Random(seed)
    side = DIGIT_PIXELS * scale
    strips = []
    for _ in range(n):
        indices = tuple(rng.choice(pool) for _ in range(rng.randint(1, max_digits)))
        strip = torch.zeros(1, side, side * max_digits)
        for slot, index in enumerate(indices):
            digit = torch.from_numpy(images[index]).repeat_interleave(scale, 0).repeat_interleave(scale, 1)
            strip[0, :, slot * side : (slot + 1) * side] = digit
        digits = tuple(int(labels[i]) for i in indices)
        strips.append(DigitStrip(strip, [digits_caption(digits)], digits, indices))
    return strips
