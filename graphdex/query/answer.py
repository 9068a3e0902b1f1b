"""Answers written by a chat model from the retrieved context, citing it inline as [1], [2]...

Each numbered source is one returned chunk; the citations in the answer are mapped back to those chunks (document id,
title, chunk id), and a number the context does not have is dropped rather than shown as a broken reference. So is a
number the model copied from the prompt: a small model (Gemma 3 270M) answers by repeating the prompt, whose source
list would otherwise read as citations of every source.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from graphdex.common.llm import LLM, Messages
from graphdex.query.cited_json import CitedJsonReader, answer_schema
from graphdex.query.results import ChunkHit

AnswerFormat = Literal["text", "json"]

ANSWER_PROMPT = """Answer the question using only the numbered sources below. After each statement, cite the sources
that support it in square brackets, like [1] or [2][3]. If the sources do not contain the answer, say so plainly
instead of guessing. Be concise.

Sources:
{sources}

Question: {question}"""

JSON_ANSWER_PROMPT = """Answer the question using only the numbered sources below, as a few short statements. Give each
statement the numbers of the sources that support it. If the sources do not contain the answer, write one statement
that says so and give the numbers of the sources that come closest. Reply with JSON only: an object whose
"statements" list holds one object per statement, with the statement in "text" and its source numbers in "sources".

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


def answer_messages(question: str, hits: list[ChunkHit], answer_format: AnswerFormat = "text") -> Messages:
    # the section and page let the model say where a fact is ("the report, p. 3"); unknown, the label is the title alone
    sources = "\n\n".join(f"[{n}] {hit.title}{f' ({hit.location()})' if hit.location() else ''}\n{hit.text}"
                          for n, hit in enumerate(hits, start=1))
    prompt = JSON_ANSWER_PROMPT if answer_format == "json" else ANSWER_PROMPT
    return [{"role": "user", "content": prompt.format(sources=sources, question=question)}]


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
    return _citations(seen, hits)


def _citations(numbers: list[int], hits: list[ChunkHit]) -> list[Citation]:
    return [Citation(n, hit.chunk_id, hit.doc_id, hit.title, hit.source, hit.section, hit.page, hit.page_end)
            for n, hit in ((n, hits[n - 1]) for n in numbers)]


class AnswerStream:
    """An answer's text as the model writes it; once read to the end, its citations."""

    def __init__(self, deltas: Iterator[str], question: str, hits: list[ChunkHit], reader: CitedJsonReader | None) -> None:
        self._deltas, self._question, self._hits, self._reader = deltas, question, hits, reader
        self._parts: list[str] = []

    def __iter__(self) -> Iterator[str]:
        for delta in self._deltas:
            prose = self._reader.feed(delta) if self._reader is not None else delta
            if prose:
                self._parts.append(prose)
                yield prose

    @property
    def text(self) -> str:
        return "".join(self._parts)

    @property
    def citations(self) -> list[Citation]:
        if self._reader is not None:
            return _citations(self._reader.cited, self._hits)
        return citations_in(self.text, self._question, self._hits)


class Answerer:
    """Writes cited answers with a chat model. ``answer_format="json"`` asks for statements with their source numbers
    under a JSON schema the server enforces (see graphdex.query.cited_json); the answer reads as prose either way."""

    def __init__(self, llm: LLM, answer_format: AnswerFormat = "text") -> None:
        self.llm = llm
        self.answer_format = answer_format

    def _schema(self, hits: list[ChunkHit]) -> dict | None:
        return answer_schema(len(hits)) if self.answer_format == "json" else None

    def answer(self, question: str, hits: list[ChunkHit]) -> Answer:
        written = self.llm.complete(answer_messages(question, hits, self.answer_format), json_schema=self._schema(hits))
        stream = self._read(iter([written]), question, hits)
        text = "".join(stream).strip()
        return Answer(text, stream.citations)

    def stream(self, question: str, hits: list[ChunkHit]) -> AnswerStream:
        return self._read(self.llm.stream(answer_messages(question, hits, self.answer_format), json_schema=self._schema(hits)), question, hits)

    def _read(self, deltas: Iterator[str], question: str, hits: list[ChunkHit]) -> AnswerStream:
        return AnswerStream(deltas, question, hits, CitedJsonReader(len(hits)) if self.answer_format == "json" else None)
