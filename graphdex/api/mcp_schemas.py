"""The typed results of graphdex's MCP tools.

An agent gets each tool's output schema from these models, and the structured result it receives validates against
them: the same fields the REST API returns, named for a reader that knows nothing of HTTP. Fields the REST API adds
for people browsing (an entity's chunk ids, which can run into thousands) are left out.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from graphdex.api.jobs import JobStatus
from graphdex.api.schemas import Mode, QueryHit


class SearchResult(BaseModel):
    workspace: str
    query: str
    mode: Mode
    passages: list[QueryHit] = Field(description="The best passages first, each with its citation: document id, title, source, chunk id, "
                                                 "score, and section and pages when the document tells.")
    seconds: float


class EntityMatch(BaseModel):
    id: str = Field(description="The entity's id, for entity_neighbourhood and subgraph.")
    name: str
    entity_type: str | None = Field(None, description="PERSON, ORG, GPE... as the extractor typed it.")
    support: int | None = Field(None, description="How many chunks mention it.")


class EntityMatches(BaseModel):
    workspace: str
    entities: list[EntityMatch]


class Entity(BaseModel):
    id: str
    name: str
    entity_type: str | None = None
    aliases: list[str] = Field(default_factory=list)
    description: str = Field("", description="What the text says about it: its sentences, or a model's summary of them.")
    support: int | None = Field(None, description="How many chunks mention it.")
    documents: list[str] = Field(default_factory=list, description="Ids of the documents that mention it.")

    @classmethod
    def from_props(cls, props: dict[str, Any]) -> Entity:
        return cls(id=props["id"], name=props.get("name", props["id"]), entity_type=props.get("type"), aliases=props.get("aliases", []),
                   description=props.get("description", ""), support=props.get("support"), documents=props.get("documents", []))


class Neighbour(BaseModel):
    id: str
    type: str
    name: str
    keywords: list[str] = Field(default_factory=list, description="What links it to the entity (\"directed\", \"born in\"...).")
    weight: float = Field(description="How strongly: the number of statements and co-occurrences behind the link.")


class EntityNeighbourhood(BaseModel):
    workspace: str
    entity: Entity
    neighbours: list[Neighbour] = Field(description="The strongest first.")


class SubgraphNode(BaseModel):
    id: str
    type: str
    name: str
    depth: int = Field(description="Links from the starting entity.")


class SubgraphEdge(BaseModel):
    source: str
    target: str
    type: str
    keywords: list[str] = Field(default_factory=list)
    weight: float


class Subgraph(BaseModel):
    workspace: str
    nodes: list[SubgraphNode]
    edges: list[SubgraphEdge]


class SubmittedDocument(BaseModel):
    id: str = Field(description="The document's id, for document_status and delete_document.")
    status: JobStatus
    source: str
    title: str


class Submission(BaseModel):
    workspace: str
    documents: list[SubmittedDocument] = Field(description="In the order given; indexing happens in the background: poll document_status.")


class DocumentStatus(BaseModel):
    workspace: str
    id: str
    status: JobStatus = Field(description="pending, processing, done, failed (see error) or deleting.")
    source: str | None = None
    title: str | None = None
    error: str | None = None
    chunks: int | None = Field(None, description="Chunks indexed, once done.")
    words: int | None = None

    @classmethod
    def from_dict(cls, workspace: str, status: dict[str, Any]) -> DocumentStatus:
        fields: dict[str, Any] = {name: status.get(name) for name in cls.model_fields if name != "workspace"}
        return cls(workspace=workspace, **fields)


class Deletion(BaseModel):
    workspace: str
    id: str
    status: JobStatus = Field(description="`deleting`: the delete is acknowledged and final; document_status then says the id is unknown.")
    was: str = Field(description="The status the document had.")

    @classmethod
    def from_marked(cls, workspace: str, job: dict[str, Any]) -> Deletion:
        return cls(workspace=workspace, id=job["id"], status=job["status"], was=job["was"])


class GraphStats(BaseModel):
    workspace: str
    store: str
    nodes: dict[str, int] = Field(description="Nodes per type: Document, Chunk, Entity, Relation, Community.")
    edges: dict[str, int] = Field(description="Edges per type.")
    vectors: dict[str, int] = Field(description="Vectors per index.")
    queue: dict[str, int] | None = Field(description="Submitted documents per status (null on a query replica: the writer holds the queue).")
