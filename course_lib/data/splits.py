"""Deterministic train/validation/test splits."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

Item = TypeVar("Item")


def _check_fractions(fractions: Sequence[float]) -> None:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1) > 1e-9:
        raise ValueError(
            f"fractions must be three non-negative numbers (train, validation, test) summing to 1, "
            f"got {tuple(fractions)}"
        )


def train_val_test_split(
    items: Sequence[Item],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int | None = 0,
) -> tuple[list[Item], list[Item], list[Item]]:
    """Split ``items`` (sentences, documents, examples) into train, validation and test lists.

    With an integer ``seed`` the items are shuffled by ``random.Random(seed)`` first, so the
    split is the same on every machine; with ``seed=None`` the order is kept and the split is
    contiguous (first items train, last items test).
    """
    _check_fractions(fractions)
    if len(items) == 0:
        raise ValueError("cannot split an empty corpus: no items were given")
    order = list(range(len(items)))
    if seed is not None:
        random.Random(seed).shuffle(order)
    n_train = round(fractions[0] * len(items))
    n_val = round(fractions[1] * len(items))
    parts = (order[:n_train], order[n_train : n_train + n_val], order[n_train + n_val :])
    train, val, test = ([items[i] for i in part] for part in parts)
    return train, val, test
