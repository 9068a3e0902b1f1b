"""Request and response bodies of the REST API.

They live apart from the routes so that a client, a test or another route can use them without importing FastAPI's
wiring. Enumerations and defaults come from where they are defined (the query engine's modes, the job statuses, the
settings), so that a new mode or a changed default cannot leave the API behind.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator

from graphdex.api.layout import NAME_PATTERN, NAME_RULE, check_name
from graphdex.common.settings import Settings
from graphdex.ingest.documents import MAX_SOURCE_CHARS, MAX_TITLE_CHARS, text_problem
from graphdex.query.engine import DEFAULT_MODE
from graphdex.query.modes import Mode

MAX_DOCUMENTS_PER_REQUEST = 10_000


class DocumentIn(BaseModel):
    """One document of a JSON submission; its limits are the ones files and uploads are held to (ingest/documents.py)."""

    title: str = Field("", max_length=MAX_TITLE_CHARS)
    text: str = Field(..., min_length=1)
    source: str | None = Field(None, max_length=MAX_SOURCE_CHARS, description="Identifies the document across submissions: the same source with new text "
                                                                              "replaces it. Default: a hash of the title and text.")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("text")
    @classmethod
    def _indexable(cls, value: str) -> str:
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class DocumentsIn(BaseModel):
    documents: list[DocumentIn] = Field(..., min_length=1, max_length=MAX_DOCUMENTS_PER_REQUEST)


class QueryIn(BaseModel):
    query: str = Field(..., min_length=1, max_length=4000)
    mode: Mode = DEFAULT_MODE
    top_k: int = Field(Settings.model_fields["top_k"].default, ge=1, le=200, description="Chunks to return; default: the service's GRAPHDEX_TOP_K.")
    max_context_tokens: int | None = Field(None, ge=1, le=1_000_000, description="Stop adding chunks to the results once their tokens would pass this budget.")
    answer: bool | None = Field(None, description="Write an answer from the results (needs GRAPHDEX_LLM_MODEL); default: yes when a model is configured.")

    def chunks_wanted(self, configured: int) -> int:
        """``top_k`` as sent, else the service's GRAPHDEX_TOP_K: the schema can only show that setting's own default,
        while the running service may have been configured otherwise."""
        return self.top_k if "top_k" in self.model_fields_set else configured


class LinkedNode(BaseModel):
    id: str
    type: str
    name: str


class QueryHit(BaseModel):
    text: str
    doc_id: str
    title: str
    chunk_id: str
    score: float
    source: str
    section: str | None = Field(None, description="The heading the chunk falls under (Markdown, Word and HTML headings, slide titles, sheet names), "
                                                  "when known.")
    page: int | None = Field(None, description="The PDF page (or slide number) the chunk starts on, when known.")
    page_end: int | None = Field(None, description="The last page, when the chunk runs onto a later one.")
    via: list[LinkedNode] = Field(default_factory=list, description="The query's scored graph nodes that lead to this passage (entities it mentions, "
                                                                   "relations it evidences, nodes that cite it), best first.")


class CitationOut(BaseModel):
    number: int
    chunk_id: str
    doc_id: str
    title: str
    source: str
    section: str | None = None
    page: int | None = None
    page_end: int | None = None


class QueryOut(BaseModel):
    query: str
    mode: str
    results: list[QueryHit]
    nodes: list[dict[str, Any]]
    keywords: dict[str, list[str]]
    answer: str | None
    citations: list[CitationOut] = Field(default_factory=list, description="The results the answer cites, by their [n] in the answer (n = rank in results).")
    llm_usage: dict[str, int] = Field(default_factory=dict, description="Model calls and tokens this query cost.")
    seconds: float


class WorkspaceIn(BaseModel):
    name: str = Field(..., description=f"The new workspace's name: {NAME_RULE}.", json_schema_extra={"pattern": NAME_PATTERN})

    @field_validator("name")
    @classmethod
    def _valid(cls, value: str) -> str:
        return check_name(value)  # its ValueError says what names look like
