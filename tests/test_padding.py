"""Tests of course_lib.data.padding (padding, masks, batch samplers) and the masked loss.

Oracles: loops over positions written out by hand, torch.nn.functional.cross_entropy with
ignore_index, and the sentence lengths of the course grammar for the bucketing comparison.
"""

import math
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from course_lib.data.grammar import grammar_corpus
from course_lib.data.padding import (
    BucketBatchSampler,
    RandomBatchSampler,
    length_mask,
    pad_sequences,
    padding_fraction,
)
from course_lib.metrics import cross_entropy, masked_cross_entropy


@pytest.fixture(scope="module")
def grammar_lengths() -> list[int]:
    return [len(tokens) for tokens in grammar_corpus(4000, seed=0)]


def test_pad_sequences():
    tokens, lengths = pad_sequences([[5, 6, 7], [8], [9, 10]], pad_id=0)
    assert tokens.dtype == torch.long and lengths.dtype == torch.long
    assert tokens.tolist() == [[5, 8, 9], [6, 0, 10], [7, 0, 0]]
    assert lengths.tolist() == [3, 1, 2]
    with pytest.raises(ValueError, match="empty list"):
        pad_sequences([], 0)
    with pytest.raises(ValueError, match=r"\[1\] are empty"):
        pad_sequences([[1], []], 0)


def test_length_mask():
    lengths = torch.tensor([3, 1, 4])
    mask = length_mask(lengths)
    assert mask.dtype == torch.bool and mask.shape == (4, 3)
    assert mask.tolist() == [[t < n for n in lengths.tolist()] for t in range(4)]
    assert length_mask(lengths, 6)[4:].sum() == 0
    assert length_mask([2, 2], 2).all()
    with pytest.raises(ValueError, match="max_len"):
        length_mask(lengths, 3)
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        length_mask(torch.ones(2, 2, dtype=torch.long))


def test_padding_fraction():
    lengths = [2, 4, 4, 1, 3]
    batches = [[0, 1], [2, 3, 4]]
    padded = 2 * 4 + 3 * 4
    assert padding_fraction(batches, lengths) == pytest.approx(1 - sum(lengths) / padded)
    assert padding_fraction([[1, 2], [0], [4]], lengths) == 0
    with pytest.raises(ValueError, match="no batches"):
        padding_fraction([], lengths)


def epoch_is_a_partition(batches: list[list[int]], n: int) -> bool:
    return sorted(i for batch in batches for i in batch) == list(range(n))


@pytest.mark.parametrize("drop_last", [False, True])
def test_random_batch_sampler(drop_last):
    sampler = RandomBatchSampler(103, 10, seed=1, drop_last=drop_last)
    epochs = [list(sampler) for _ in range(3)]
    assert all(len(batches) == len(sampler) for batches in epochs)
    if drop_last:
        assert len(sampler) == 10 and all(len(b) == 10 for b in epochs[0])
    else:
        assert len(sampler) == 11 and all(epoch_is_a_partition(batches, 103) for batches in epochs)
    assert epochs[0] != epochs[1]
    assert [list(range(10 * k, min(10 * k + 10, 103))) for k in range(11)] == list(
        RandomBatchSampler(103, 10, shuffle=False)
    )


@pytest.mark.parametrize("pool_batches", [1, 3, 50])
def test_bucket_sampler_yields_every_index_once_per_epoch(grammar_lengths, pool_batches):
    lengths = grammar_lengths[:1003]
    sampler = BucketBatchSampler(lengths, 16, seed=0, pool_batches=pool_batches)
    for _ in range(3):
        batches = list(sampler)
        assert len(batches) == len(sampler)
        assert epoch_is_a_partition(batches, len(lengths))
        assert all(1 <= len(batch) <= 16 for batch in batches)


def test_bucket_sampler_drop_last_and_no_shuffle(grammar_lengths):
    lengths = grammar_lengths[:1003]
    dropped = list(BucketBatchSampler(lengths, 16, seed=0, pool_batches=10, drop_last=True))
    assert all(len(batch) == 16 for batch in dropped)
    assert len(dropped) == len(BucketBatchSampler(lengths, 16, pool_batches=10, drop_last=True))
    assert len({i for batch in dropped for i in batch}) == 16 * len(dropped) >= 1003 - 2 * 16
    ordered = list(BucketBatchSampler(lengths, 16, shuffle=False))
    flat = [i for batch in ordered for i in batch]
    assert flat == sorted(range(len(lengths)), key=lambda i: lengths[i])


def test_bucket_sampler_is_deterministic_and_reshuffles_every_epoch(grammar_lengths):
    first, second = (BucketBatchSampler(grammar_lengths, 32, seed=7) for _ in range(2))
    epochs = [list(first) for _ in range(2)]
    assert epochs == [list(second) for _ in range(2)]
    assert epochs[0] != epochs[1]
    assert epochs[0] != list(BucketBatchSampler(grammar_lengths, 32, seed=8))


def test_bucket_batches_are_sorted_within_and_random_across(grammar_lengths):
    batches = list(BucketBatchSampler(grammar_lengths, 32, seed=0))
    spread = [max(grammar_lengths[i] for i in b) - min(grammar_lengths[i] for i in b) for b in batches]
    random_batches = list(RandomBatchSampler(len(grammar_lengths), 32, seed=0))
    random_spread = [
        max(grammar_lengths[i] for i in b) - min(grammar_lengths[i] for i in b) for b in random_batches
    ]
    assert sum(spread) / len(spread) < 0.2 * sum(random_spread) / len(random_spread)
    # Batch order is random: the batches' longest lengths are not sorted.
    longest = [max(grammar_lengths[i] for i in b) for b in batches]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)


def test_bucketing_pads_less_than_random_batching(grammar_lengths):
    bucket = padding_fraction(BucketBatchSampler(grammar_lengths, 32, seed=0), grammar_lengths)
    random = padding_fraction(RandomBatchSampler(len(grammar_lengths), 32, seed=0), grammar_lengths)
    # Measured on these 4000 sentences: about 0.03 with buckets, 0.43 with random batches.
    assert random > 0.35
    assert bucket < 0.05
    assert bucket < random / 5


def test_sampler_plugs_into_a_data_loader():
    data = [torch.full((n,), n) for n in (3, 1, 2, 3, 1, 2, 5)]
    loader = DataLoader(
        data,
        batch_sampler=BucketBatchSampler([len(x) for x in data], 2, seed=0),
        collate_fn=lambda batch: pad_sequences([x.tolist() for x in batch], 0),
    )
    seen = Counter()
    for tokens, lengths in loader:
        assert tokens.shape == (int(lengths.max()), len(lengths))
        seen.update(lengths.tolist())
    assert seen == Counter(len(x) for x in data)


def test_samplers_reject_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        BucketBatchSampler([1, 2], 0)
    with pytest.raises(ValueError, match="pool_batches"):
        BucketBatchSampler([1, 2], 2, pool_batches=0)
    with pytest.raises(ValueError, match=r"shape \(N,\)"):
        BucketBatchSampler([[1, 2]], 2)
    with pytest.raises(ValueError, match="batch_size"):
        RandomBatchSampler(5, 0)


def manual_masked_loss(logits: torch.Tensor, targets: torch.Tensor, lengths: list[int]) -> float:
    """J = Σ_{real (t, b)} −log softmax(z_{t,b})[y_{t,b}] / (number of real positions), one term at a time."""
    total, count = 0.0, 0
    for b, n in enumerate(lengths):
        for t in range(n):
            z = logits[t, b].tolist()
            log_norm = math.log(sum(math.exp(v) for v in z))
            total += log_norm - z[targets[t, b]]
            count += 1
    return total / count


def test_masked_cross_entropy_matches_a_loop_and_ignore_index():
    torch.manual_seed(0)
    T, B, C = 5, 4, 7
    lengths = [5, 2, 1, 4]
    logits = torch.randn(T, B, C, dtype=torch.float64)
    targets = torch.randint(0, C, (T, B))
    loss = masked_cross_entropy(logits, targets, torch.tensor(lengths))
    assert abs(loss.item() - manual_masked_loss(logits, targets, lengths)) < 1e-12
    mask = length_mask(torch.tensor(lengths), T)
    assert masked_cross_entropy(logits, targets, mask=mask).item() == pytest.approx(loss.item(), abs=1e-15)
    ignored = targets.masked_fill(~mask, -1)
    assert abs(loss - F.cross_entropy(logits.reshape(-1, C), ignored.reshape(-1), ignore_index=-1)) < 1e-12
    assert abs(loss - cross_entropy(logits, ignored, ignore_index=-1)) < 1e-12
    full = masked_cross_entropy(logits, targets, torch.full((B,), T))
    assert abs(full - F.cross_entropy(logits.reshape(-1, C), targets.reshape(-1))) < 1e-12


def test_masked_cross_entropy_ignores_padded_positions():
    torch.manual_seed(1)
    logits = torch.randn(4, 3, 5, requires_grad=True)
    targets = torch.randint(0, 5, (4, 3))
    lengths = torch.tensor([4, 1, 2])
    masked_cross_entropy(logits, targets, lengths).backward()
    mask = length_mask(lengths, 4)
    assert logits.grad[~mask].abs().sum() == 0
    assert (logits.grad[mask].abs().sum(-1) > 0).all()
    changed = torch.where(mask, targets, (targets + 1) % 5)
    assert masked_cross_entropy(logits, changed, lengths) == masked_cross_entropy(logits, targets, lengths)


def test_masked_cross_entropy_rejects_bad_input():
    logits, targets = torch.zeros(3, 2, 4), torch.zeros(3, 2, dtype=torch.long)
    with pytest.raises(ValueError, match="exactly one"):
        masked_cross_entropy(logits, targets)
    with pytest.raises(ValueError, match="exactly one"):
        masked_cross_entropy(logits, targets, torch.tensor([1, 2]), mask=torch.ones(3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="one length per sequence"):
        masked_cross_entropy(logits, targets, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="max_len"):
        masked_cross_entropy(logits, targets, torch.tensor([1, 4]))
    with pytest.raises(ValueError, match="BoolTensor"):
        masked_cross_entropy(logits, targets, mask=torch.ones(3, 2))
    with pytest.raises(ValueError, match="no real position"):
        masked_cross_entropy(logits, targets, mask=torch.zeros(3, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"\(T, B, C\)"):
        masked_cross_entropy(logits[0], targets[0], torch.tensor([1, 1]))
