"""Answers written by a chat model from the retrieved context, citing it inline as [1], [2]...

Each numbered source is one returned chunk; the citations in the answer are mapped back to those chunks (document id,
title, chunk id), and a number the context does not have is dropped rather than shown as a broken reference. So is a
number the model copied from the prompt: a small model (Gemma 3 270M) answers by repeating the prompt, whose source
list would otherwise read as citations of every source.
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
COPY_WINDOW = 30  # characters beside a citation that, found with it in the prompt, show it was copied
MIN_COPY = 10  # fewer characters than this beside it (the answer's start or end) show nothing


@dataclass
class Citation:
    number: int
    chunk_id: str
    doc_id: str
    title: str
    source: str
    section: str | None = None
    page: int | None = None
    page_end: int | None = None


@dataclass
class Answer:
    text: str
    citations: list[Citation] = field(default_factory=list)


def answer_messages(question: str, hits: list[ChunkHit]) -> Messages:
    # the section and page let the model say where a fact is ("the report, p. 3"); unknown, the label is the title alone
    sources = "\n\n".join(f"[{n}] {hit.title}{f' ({hit.location()})' if hit.location() else ''}\n{hit.text}"
                          for n, hit in enumerate(hits, start=1))
    return [{"role": "user", "content": ANSWER_PROMPT.format(sources=sources, question=question)}]


def _flat(text: str) -> str:
    return " ".join(text.split())


def citations_in(text: str, question: str, hits: list[ChunkHit]) -> list[Citation]:
    """The sources an answer cites, in order of first citation; numbers outside the context, and numbers that stand
    in text copied from the prompt (its source list, its "[1] or [2][3]" example), are ignored."""
    prompt = _flat(answer_messages(question, hits)[-1]["content"])

    def copied(before: str, citation: str, after: str) -> bool:
        # one side is enough: a model repeating the source list drifts from it between two sources
        return ((len(_flat(before)) >= MIN_COPY and _flat(before + citation) in prompt)
                or (len(_flat(after)) >= MIN_COPY and _flat(citation + after) in prompt)
                or _flat(before + citation + after) in prompt)

    seen: list[int] = []
    for match in _CITATION.finditer(text):
        number = int(match.group(1))
        before, after = text[max(0, match.start() - COPY_WINDOW) : match.start()], text[match.end() : match.end() + COPY_WINDOW]
        if 1 <= number <= len(hits) and number not in seen and not copied(before, match.group(0), after):
            seen.append(number)
    return [Citation(n, hit.chunk_id, hit.doc_id, hit.title, hit.source, hit.section, hit.page, hit.page_end)
            for n, hit in ((n, hits[n - 1]) for n in seen)]


class Answerer:
    def __init__(self, llm: LLM) -> None:
        self.llm = llm

    def answer(self, question: str, hits: list[ChunkHit]) -> Answer:
        text = self.llm.complete(answer_messages(question, hits)).strip()
        return Answer(text, citations_in(text, question, hits))

    def stream(self, question: str, hits: list[ChunkHit]) -> Iterator[str]:
        yield from self.llm.stream(answer_messages(question, hits))
