"""Counting tokens, one way for the whole service: chunk sizes and query context budgets use the same counter.

The count that matters is the embedder's (a chunk must fit its window), so its own tokenizer counts when it has one;
a provider embedder has none at hand, and then a word-piece estimate stands in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

TokenCounter = Callable[[Sequence[str]], list[int]]

_WORD_PIECE = re.compile(r"\w+|[^\w\s]")


def approximate_token_counts(texts: Sequence[str]) -> list[int]:
    """Words and punctuation, plus a fifth for the word pieces a subword tokenizer splits long words into."""
    return [int(len(_WORD_PIECE.findall(text)) * 1.2) for text in texts]


def token_counter(embedder: object) -> TokenCounter:
    """The embedder's own token count when it has a local tokenizer, else the estimate."""
    count = getattr(embedder, "count_tokens", None)
    return count if callable(count) else approximate_token_counts
