"""What an extractor produces, and the interface every extractor (spaCy, LLM) implements."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol


@dataclass
class ChunkInput:
    chunk_id: str
    text: str
    acronyms: dict[str, str] = field(default_factory=dict)  # defined anywhere in the chunk's document
    title: str = ""  # the document's title: where the text names it, it is the document's main entity
    first: bool = False  # the document's first chunk, which carries the title entity even if the text never names it


@dataclass
class EntityMention:
    key: str  # resolution key: mentions with equal keys are one entity
    surface: str
    type: str
    sentence: str


@dataclass
class RelationMention:
    source_key: str
    target_key: str
    source_surface: str
    target_surface: str
    keywords: list[str]  # the predicate ("directed by"); empty for bare co-occurrence
    sentence: str
    kind: str  # "dependency" | "cooccurrence" | "llm"
    strength: int | None = None  # 1-10, when the extractor rates it (the LLM does)


@dataclass
class ChunkExtraction:
    chunk_id: str
    entities: list[EntityMention] = field(default_factory=list)
    relations: list[RelationMention] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what went wrong extracting this chunk (kept, not fatal)


class Extractor(Protocol):
    def extract(self, chunks: Iterable[ChunkInput]) -> Iterator[ChunkExtraction]:
        """One extraction per input chunk, in input order; may work ahead in other processes."""
        ...

    def release_workers(self) -> None:
        """Stops the helper processes this machine runs for extraction, if any; the next ``extract`` starts them
        again. Called before an operation's closing community refresh and save, so that the index's largest moment of
        memory does not also hold idle extraction workers."""
        ...

    def close(self) -> None: ...
