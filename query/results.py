"""What a query returns: ranked chunks with their citations, and ranked graph nodes."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ChunkHit:
    chunk_id: str
    doc_id: str
    title: str
    source: str
    text: str
    score: float


@dataclass
class NodeHit:
    id: str
    type: str
    name: str
    score: float
    description: str = ""
    chunks: list[str] = field(default_factory=list)  # citations: the chunks that support the node


@dataclass
class QueryResult:
    query: str
    mode: str
    chunks: list[ChunkHit]
    nodes: list[NodeHit]
    keywords: dict[str, list[str]]
    seconds: float
    answer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
