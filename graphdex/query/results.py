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
    # Where in its document the chunk is, when the file told (converted files, Markdown headings); chunks indexed
    # before graphdex kept structure have none.
    section: str | None = None
    page: int | None = None  # PDF page, or slide number, the chunk starts on
    page_end: int | None = None  # the last page, when the chunk runs onto a later one

    def location(self) -> str:
        return describe_location(self.section, self.page, self.page_end)


def describe_location(section: str | None, page: int | None, page_end: int | None) -> str:
    """A section and pages as a person reads them ("Results, p. 3-4"), or "" when neither is known."""
    pages = (f"p. {page}" + (f"-{page_end}" if page_end else "")) if page is not None else ""
    return ", ".join(part for part in (section or "", pages) if part)


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
    # every node the retrieval scored, not only the top ``nodes``: what tells which nodes led to each passage
    # (Index.passage_links); internal, left out of ``to_dict``
    node_scores: dict[str, float] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        del out["node_scores"]
        return out
