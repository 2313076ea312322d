"""A vocabulary: the mapping between tokens and integer ids.

Ids are assigned to the special tokens first, then to the other tokens by
decreasing frequency (ties broken alphabetically), so the same corpus always
gives the same ids.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from itertools import chain
from pathlib import Path

UNK = "<unk>"
BOS = "<s>"
EOS = "</s>"
PAD = "<pad>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)


class Vocabulary:
    """Bidirectional token ↔ id mapping with special tokens.

    Args:
        tokens: the ordinary tokens, in id order (after the specials).
        specials: special tokens, given the first ids. Leave ``<unk>`` out to get a
            vocabulary that refuses unknown tokens instead of mapping them to ``<unk>``.
    """

    def __init__(self, tokens: Iterable[str] = (), specials: Sequence[str] = SPECIAL_TOKENS):
        self.specials = tuple(specials)
        self.id_to_token: list[str] = []
        self.token_to_id: dict[str, int] = {}
        for token in (*self.specials, *tokens):
            if token in self.token_to_id:
                raise ValueError(f"token {token!r} appears twice in the vocabulary")
            self.token_to_id[token] = len(self.id_to_token)
            self.id_to_token.append(token)

    @classmethod
    def build(
        cls,
        sequences: Iterable[Sequence[str]],
        min_freq: int = 1,
        max_size: int | None = None,
        specials: Sequence[str] = SPECIAL_TOKENS,
    ) -> Vocabulary:
        """Build a vocabulary from tokenized sequences (sentences, documents, ...).

        Tokens seen fewer than ``min_freq`` times are left out (they will map to
        ``<unk>``); ``max_size`` caps the number of ordinary tokens, keeping the most
        frequent.
        """
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        sequences = list(sequences)
        if any(isinstance(sequence, str) for sequence in sequences):
            raise TypeError(
                "Vocabulary.build expects a list of token lists, got a string; "
                "tokenize first, e.g. [word_tokenize(s) for s in sentences]"
            )
        counts = Counter(chain.from_iterable(sequences))
        if not counts:
            raise ValueError("cannot build a vocabulary from an empty corpus: no tokens were given")
        kept = sorted(
            (token for token, count in counts.items() if count >= min_freq and token not in specials),
            key=lambda token: (-counts[token], token),
        )
        if max_size is not None:
            kept = kept[:max_size]
        return cls(kept, specials)

    def __len__(self) -> int:
        return len(self.id_to_token)

    def __contains__(self, token: str) -> bool:
        return token in self.token_to_id

    def __repr__(self) -> str:
        return f"Vocabulary(size={len(self)}, specials={self.specials})"

    @property
    def unk_id(self) -> int | None:
        """Id of ``<unk>``, or ``None`` when this vocabulary has no unknown token."""
        return self.token_to_id.get(UNK)

    def lookup(self, token: str) -> int:
        """Id of ``token``; unknown tokens map to ``<unk>`` when the vocabulary has one."""
        token_id = self.token_to_id.get(token)
        if token_id is not None:
            return token_id
        if self.unk_id is None:
            raise KeyError(
                f"token {token!r} is not in the vocabulary and the vocabulary has no {UNK!r} token; "
                f"build it with {UNK!r} among the specials, or add the token"
            )
        return self.unk_id

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Map tokens to ids."""
        return [self.lookup(token) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Map ids back to tokens."""
        try:
            return [self.id_to_token[int(i)] for i in ids]
        except IndexError:
            bad = [int(i) for i in ids if not 0 <= int(i) < len(self)]
            raise IndexError(f"ids {bad[:5]} are outside the vocabulary (size {len(self)})") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as JSON (atomically: a failed write leaves no file)."""
        path = Path(path)
        data = {"specials": list(self.specials), "tokens": self.id_to_token[len(self.specials) :]}
        tmp = path.with_name(path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        """Read a vocabulary written by :meth:`save`."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not {"specials", "tokens"} <= data.keys():
            raise ValueError(f"{path} is not a vocabulary file written by Vocabulary.save")
        return cls(data["tokens"], data["specials"])
