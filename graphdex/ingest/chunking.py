"""Token-aware chunking with overlap, on sentence boundaries where possible."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from graphdex.common.tokens import TokenCounter

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n\s*\n")

@dataclass
class Chunk:
    index: int
    text: str
    start: int  # character offsets into the document text
    end: int
    tokens: int


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    spans = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        if text[start : match.start()].strip():
            spans.append((start, match.start()))
        start = match.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    out = []
    for begin, end in spans:  # trim whitespace so offsets point at text
        while begin < end and text[begin].isspace():
            begin += 1
        while end > begin and text[end - 1].isspace():
            end -= 1
        out.append((begin, end))
    return out


class Chunker:
    """Packs whole sentences into chunks of at most ``max_tokens``; each chunk repeats up to ``overlap`` tokens of
    trailing sentences from the previous one, so a fact split across a boundary is still seen whole once."""

    def __init__(self, count_tokens: TokenCounter, max_tokens: int = 200, overlap: int = 40) -> None:
        if overlap >= max_tokens:
            raise ValueError("overlap must be smaller than max_tokens")
        self._count = count_tokens
        self.max_tokens = max_tokens
        self.overlap = overlap

    def _split_long(self, text: str, begin: int, end: int, tokens: int) -> list[tuple[int, int, int]]:
        """A sentence longer than a chunk, cut on word boundaries into pieces that fit."""
        words = [(m.start() + begin, m.end() + begin) for m in re.finditer(r"\S+", text[begin:end])]
        per_piece = max(1, int(len(words) * self.max_tokens / max(tokens, 1) * 0.9))
        pieces = []
        for i in range(0, len(words), per_piece):
            group = words[i : i + per_piece]
            pieces.append((group[0][0], group[-1][1]))
        counts = self._count([text[a:b] for a, b in pieces])
        out: list[tuple[int, int, int]] = []
        for (a, b), count in zip(pieces, counts):
            if count > self.max_tokens and b - a < end - begin:
                out += self._split_long(text, a, b, count)
            else:
                out.append((a, b, count))
        return out

    def split(self, text: str, boundaries: Sequence[int] = ()) -> list[Chunk]:
        """The chunks of ``text``. No chunk crosses an offset in ``boundaries`` (where a section of the document
        begins), and none repeats text from before one as overlap: each chunk belongs to one section."""
        cuts = sorted({0, len(text), *(b for b in boundaries if 0 < b < len(text))})
        spans = [(a + begin, b + begin) for begin, end in zip(cuts, cuts[1:]) for a, b in _sentence_spans(text[begin:end])]
        if not spans:
            return []
        counts = self._count([text[a:b] for a, b in spans])
        sentences: list[tuple[int, int, int]] = []
        for (a, b), tokens in zip(spans, counts):
            sentences += self._split_long(text, a, b, tokens) if tokens > self.max_tokens else [(a, b, tokens)]
        chunks: list[Chunk] = []
        current: list[tuple[int, int, int]] = []
        fresh = 0  # sentences in `current` not already emitted in an earlier chunk
        section_ends = iter(cuts[1:])
        section_end = next(section_ends)

        def emit() -> None:
            start, end = current[0][0], current[-1][1]
            chunks.append(Chunk(len(chunks), text[start:end], start, end, sum(s[2] for s in current)))

        for sentence in sentences:
            if sentence[0] >= section_end:  # a new section: what came before is neither packed with it nor carried
                while sentence[0] >= section_end:
                    section_end = next(section_ends)
                if current and fresh:
                    emit()
                current, fresh = [], 0
            if current and fresh and sum(s[2] for s in current) + sentence[2] > self.max_tokens:
                emit()
                carried: list[tuple[int, int, int]] = []
                for previous in reversed(current):
                    if sum(s[2] for s in carried) + previous[2] > self.overlap:
                        break
                    carried.insert(0, previous)
                while carried and sum(s[2] for s in carried) + sentence[2] > self.max_tokens:
                    carried.pop(0)
                current, fresh = carried, 0
            current.append(sentence)
            fresh += 1
        if current and fresh:
            emit()
        return chunks
