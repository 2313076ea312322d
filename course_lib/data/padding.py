"""Batches of sequences of different lengths: padding, masks, and batching by length.

A batch of B sentences of lengths n_1 … n_B becomes one time-major tensor of shape (T, B)
with T = max_b n_b; sentence b fills rows 0 … n_b − 1 of column b and the remaining rows hold
the padding id. The lengths travel with the batch, and everything computed at a padded
position must be ignored: the mask m_{t,b} = [t < n_b] says which positions are real.

Padding costs time (a recurrent layer steps through all T rows of every column) and nothing
else, so batches should hold sentences of similar lengths. :class:`BucketBatchSampler` does
this: it shuffles the data, sorts it by length within pools of many batches, cuts each pool
into batches and shuffles the order of the batches. :class:`RandomBatchSampler` is the plain
random batching to compare with, and :func:`padding_fraction` measures the waste:

    padding fraction = 1 − Σ_b n_b / Σ_batches (B · T)   over all batches of an epoch.

Both samplers yield lists of indices, so they plug into ``torch.utils.data.DataLoader`` as a
``batch_sampler``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

import torch
from torch.utils.data import Sampler


def pad_sequences(seqs: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token-id lists into one time-major batch.

    Args:
        seqs: B non-empty sequences of token ids.
        pad_id: the id written at padded positions (usually the id of ``<pad>``).

    Returns:
        ``(tokens, lengths)``: a LongTensor of shape (T, B), T = the longest length, with
        ``tokens[t, b] = seqs[b][t]`` for t < n_b and ``pad_id`` after; and the lengths n_b,
        a LongTensor of shape (B,).
    """
    if len(seqs) == 0:
        raise ValueError("cannot pad an empty list of sequences")
    lengths = torch.tensor([len(seq) for seq in seqs], dtype=torch.long)
    if lengths.min() < 1:
        empty = [b for b, seq in enumerate(seqs) if len(seq) == 0]
        raise ValueError(f"every sequence needs at least one token; sequences {empty} are empty")
    tokens = torch.full((int(lengths.max()), len(seqs)), pad_id, dtype=torch.long)
    for b, seq in enumerate(seqs):
        tokens[: len(seq), b] = torch.as_tensor(seq, dtype=torch.long)
    return tokens, lengths


def length_mask(lengths: torch.Tensor | Sequence[int], max_len: int | None = None) -> torch.Tensor:
    """The mask of real positions, m_{t,b} = [t < n_b].

    Args:
        lengths: the lengths n_b, shape (B,).
        max_len: T, the number of rows; the longest length when ``None``.

    Returns:
        a BoolTensor of shape (T, B), on the device of ``lengths``.
    """
    lengths = torch.as_tensor(lengths)
    if lengths.dim() != 1:
        raise ValueError(f"lengths must have shape (B,), got {tuple(lengths.shape)}")
    if max_len is None:
        max_len = int(lengths.max()) if len(lengths) else 0
    if len(lengths) and (lengths.min() < 0 or lengths.max() > max_len):
        raise ValueError(f"lengths must lie between 0 and max_len = {max_len}, got {lengths.tolist()}")
    steps = torch.arange(max_len, device=lengths.device)
    return steps.unsqueeze(1) < lengths.unsqueeze(0)


def padding_fraction(batches: Iterable[Sequence[int]], lengths: Sequence[int] | torch.Tensor) -> float:
    """The share of padded positions: 1 − Σ n_b / Σ_batches (B · T) over the given batches.

    Args:
        batches: lists of indices into ``lengths`` (for example one epoch of a sampler).
        lengths: the length of every item of the data set.
    """
    lengths = torch.as_tensor(lengths)
    real, total = 0, 0
    for batch in batches:
        batch_lengths = lengths[list(batch)]
        real += int(batch_lengths.sum())
        total += int(batch_lengths.max()) * len(batch)
    if total == 0:
        raise ValueError("no batches, or only empty sequences: the padding fraction is undefined")
    return 1.0 - real / total


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")


def _cut(indices: list[int], batch_size: int, drop_last: bool) -> list[list[int]]:
    """Consecutive batches of ``batch_size`` indices; the last, shorter one is dropped if asked."""
    batches = [indices[start : start + batch_size] for start in range(0, len(indices), batch_size)]
    if drop_last and batches and len(batches[-1]) < batch_size:
        batches.pop()
    return batches


class RandomBatchSampler(Sampler[list[int]]):
    """Plain random batching: shuffle all indices, cut them into batches.

    Each epoch (each call of ``iter``) draws a new permutation from a generator seeded once
    with ``seed``, so the sequence of epochs is the same for the same seed.

    Args:
        num_items: N, the size of the data set; indices are 0 … N − 1.
        batch_size: B.
        shuffle: draw a new order every epoch; ``False`` keeps 0 … N − 1.
        seed: seeds the generator.
        drop_last: drop the last batch if it is shorter than B.
    """

    def __init__(
        self, num_items: int, batch_size: int, shuffle: bool = True, seed: int = 0, drop_last: bool = False
    ):
        _check_batch_size(batch_size)
        if num_items < 0:
            raise ValueError(f"num_items must be at least 0, got {num_items}")
        self.num_items = num_items
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[list[int]]:
        if self.shuffle:
            order = torch.randperm(self.num_items, generator=self.generator).tolist()
        else:
            order = list(range(self.num_items))
        return iter(_cut(order, self.batch_size, self.drop_last))

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_items // self.batch_size
        return -(-self.num_items // self.batch_size)


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of sequences of similar length, in random order.

    One epoch: shuffle all indices; split them into pools of ``pool_batches · B`` indices;
    sort each pool by length and cut it into batches of B; shuffle the order of all batches.
    Every index appears exactly once per epoch. Sorting inside pools rather than over the
    whole data set keeps some randomness in which sequences meet in a batch, while the
    lengths inside a batch stay close. With ``shuffle=False`` the whole data set is sorted
    by length (ties keep their order) and the batches come shortest first.

    Args:
        lengths: the length of every item, shape (N,).
        batch_size: B.
        shuffle: randomise each epoch (new draws from a generator seeded once with ``seed``).
        seed: seeds the generator.
        pool_batches: the number of batches per sorted pool.
        drop_last: drop a batch shorter than B (at most one per pool).
    """

    def __init__(
        self,
        lengths: Sequence[int] | torch.Tensor,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        pool_batches: int = 50,
        drop_last: bool = False,
    ):
        _check_batch_size(batch_size)
        if pool_batches < 1:
            raise ValueError(f"pool_batches must be at least 1, got {pool_batches}")
        self.lengths = torch.as_tensor(lengths, dtype=torch.long)
        if self.lengths.dim() != 1:
            raise ValueError(f"lengths must have shape (N,), got {tuple(self.lengths.shape)}")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.pool_batches = pool_batches
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(seed)

    def _pool_size(self) -> int:
        return self.pool_batches * self.batch_size if self.shuffle else max(len(self.lengths), 1)

    def __iter__(self) -> Iterator[list[int]]:
        n = len(self.lengths)
        order = torch.randperm(n, generator=self.generator).tolist() if self.shuffle else list(range(n))
        lengths = self.lengths.tolist()
        batches = []
        for start in range(0, n, self._pool_size()):
            pool = sorted(order[start : start + self._pool_size()], key=lengths.__getitem__)
            batches.extend(_cut(pool, self.batch_size, self.drop_last))
        if self.shuffle:
            permutation = torch.randperm(len(batches), generator=self.generator).tolist()
            batches = [batches[i] for i in permutation]
        return iter(batches)

    def __len__(self) -> int:
        n, pool_size = len(self.lengths), self._pool_size()
        pools = [pool_size] * (n // pool_size) + ([n % pool_size] if n % pool_size else [])
        if self.drop_last:
            return sum(size // self.batch_size for size in pools)
        return sum(-(-size // self.batch_size) for size in pools)


def batch_sampler(
    lengths: Sequence[int], batch_size: int, bucketing: bool, seed: int = 0, shuffle: bool = True
) -> BucketBatchSampler | RandomBatchSampler:
    """Batches of indices of examples with these ``lengths``: of similar lengths (``bucketing``) or random."""
    if bucketing:
        return BucketBatchSampler(lengths, batch_size, shuffle=shuffle, seed=seed)
    return RandomBatchSampler(len(lengths), batch_size, shuffle=shuffle, seed=seed)
