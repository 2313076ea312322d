"""Turning a corpus into batches for language-model training.

A language model reads one long stream of token ids. For training, the stream is cut into
``B`` contiguous columns (``batchify``), and the columns are read ``L`` steps at a time
(``bptt_batches``), so that batch ``i + 1`` continues exactly where batch ``i`` stopped in
every column: a recurrent model can carry its hidden state from one batch to the next.

    stream  a b c d e f g h i j k l      batchify(stream, B=3)  ->  a e i
                                                                      b f j
                                                                      c g k
                                                                      d h l
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

from course_lib.vocab import EOS, Vocabulary


def encode_stream(
    sentences: Sequence[Sequence[str]], vocab: Vocabulary, add_eos: bool = True
) -> torch.Tensor:
    """All sentences as one stream of ids, each followed by ``</s>``; shape ``(N,)``, int64.

    Words not in ``vocab`` map to ``<unk>`` (or raise, for a vocabulary without one).
    """
    if isinstance(sentences, str):
        raise TypeError("encode_stream expects a list of token lists, got a string; tokenize it first")
    if not any(len(sentence) for sentence in sentences):
        raise ValueError("cannot encode an empty corpus: the sentences contain no tokens")
    tokens: list[str] = []
    for sentence in sentences:
        tokens.extend(sentence)
        if add_eos:
            tokens.append(EOS)
    return torch.tensor(vocab.encode(tokens), dtype=torch.long)


def batchify(stream: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a stream of shape ``(N,)`` into ``batch_size`` contiguous columns: shape ``(N // B, B)``.

    The last ``N mod B`` tokens are dropped. Column ``b`` holds ``stream[b·T : (b+1)·T]``.
    """
    if stream.dim() != 1:
        raise ValueError(f"batchify expects a 1-D stream of ids, got shape {tuple(stream.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    steps = stream.numel() // batch_size
    if steps < 2:
        raise ValueError(
            f"a stream of {stream.numel()} tokens is too short for {batch_size} columns: each column "
            "needs at least 2 tokens (an input and its target); use a smaller batch_size"
        )
    return stream[: steps * batch_size].view(batch_size, steps).t().contiguous()


def bptt_batches(data: torch.Tensor, seq_len: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Consecutive ``(inputs, targets)`` chunks of a batchified stream ``(T, B)``.

    ``inputs = data[i : i + L]`` and ``targets = data[i + 1 : i + 1 + L]``, both ``(L, B)``
    (the last chunk may be shorter): the target at each position is the next token.
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be at least 1, got {seq_len}")
    for start in range(0, data.size(0) - 1, seq_len):
        length = min(seq_len, data.size(0) - 1 - start)
        yield data[start : start + length], data[start + 1 : start + 1 + length]


def count_bptt_batches(data: torch.Tensor, seq_len: int) -> int:
    """How many chunks :func:`bptt_batches` yields."""
    return -(-(data.size(0) - 1) // seq_len)
