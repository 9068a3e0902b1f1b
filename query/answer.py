"""Answers written by a chat model from the retrieved context, citing it inline as [1], [2]...

Each numbered source is one returned chunk; the citations in the answer are mapped back to those chunks (document id,
title, chunk id), and a number the context does not have is dropped rather than shown as a broken reference.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterator

from graphdex.common.llm import LLM, Messages
from graphdex.query.results import ChunkHit

ANSWER_PROMPT = """Answer the question using only the numbered sources below. After each statement, cite the sources
that support it in square brackets, like [1] or [2][3]. If the sources do not contain the answer, say so plainly
instead of guessing. Be concise.

Sources:
{sources}

Question: {question}"""

_CITATION = re.compile(r"\[(\d{1,3})\]")


@dataclass
class Citation:
    number: int
    chunk_id: str
    doc_id: str
    title: str
    source: str


@dataclass
class Answer:
    text: str
    citations: list[Citation] = field(default_factory=list)


def answer_messages(question: str, hits: list[ChunkHit]) -> Messages:
    sources = "\n\n".join(f"[{n}] {hit.title}\n{hit.text}" for n, hit in enumerate(hits, start=1))
    return [{"role": "user", "content": ANSWER_PROMPT.format(sources=sources, question=question)}]


def citations_in(text: str, hits: list[ChunkHit]) -> list[Citation]:
    """The sources an answer cites, in order of first citation; numbers outside the context are ignored."""
    seen: list[int] = []
    for match in _CITATION.finditer(text):
        number = int(match.group(1))
        if 1 <= number <= len(hits) and number not in seen:
            seen.append(number)
    return [Citation(n, hits[n - 1].chunk_id, hits[n - 1].doc_id, hits[n - 1].title, hits[n - 1].source) for n in seen]


class Answerer:
    def __init__(self, llm: LLM) -> None:
        self.llm = llm

    def answer(self, question: str, hits: list[ChunkHit]) -> Answer:
        text = self.llm.complete(answer_messages(question, hits)).strip()
        return Answer(text, citations_in(text, hits))

    def stream(self, question: str, hits: list[ChunkHit]) -> Iterator[str]:
        yield from self.llm.stream(answer_messages(question, hits))
