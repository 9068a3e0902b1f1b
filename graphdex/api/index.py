"""One workspace's operations, the same whatever transport asks: REST routes, MCP tools and CLI commands call these.

The façade owns the workspace's locking, so that no transport has to know the rule (as datasette's Database owns its
write thread):
- a read (counts, a document, the graph's neighbourhoods, health) holds the read side of the workspace's lock for the
  whole answer, so it never mixes the graph before and after an ingestion batch; a query's engine takes the same
  lock itself, step by step;
- a write from a process that is not the service (the CLI) holds the store's writer lock for the whole operation,
  which makes it the index's only writer across processes (the service's writer thread holds it while it runs).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from graphdex.api.workspace import Workspace
from graphdex.common.settings import Settings
from graphdex.graph.model import Node, NodeType
from graphdex.graph.store import GraphStore
from graphdex.query import explore

#: The most nodes shown as having led a query to one passage
PASSAGE_LINKS = 6

if TYPE_CHECKING:
    from graphdex.ingest.documents import SourceDocument
    from graphdex.ingest.maintenance import DeleteReport
    from graphdex.ingest.pipeline import IngestReport, Progress
    from graphdex.query.answer import Answerer
    from graphdex.query.results import ChunkHit, QueryResult


class Index:
    """A workspace seen through what can be asked of it."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    @property
    def settings(self) -> Settings:
        return self.workspace.settings

    @contextmanager
    def _reading(self) -> Iterator[GraphStore]:
        with self.workspace.guard.read():
            yield self.workspace.store

    # reads -----------------------------------------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts per node type, edge type and vector index."""
        with self._reading():
            return self.workspace.stats()

    def health(self) -> dict[str, Any]:
        """What a liveness check reads: the store's version and the vector counts (both fail when unreachable)."""
        with self._reading() as store:
            return {"store_version": store.version, "vectors": self.workspace.vectors.counts()}

    def document_count(self) -> int:
        with self._reading() as store:
            return store.counts()["nodes"][NodeType.DOCUMENT]

    def documents(self, doc_ids: Sequence[str]) -> dict[str, Node]:
        """The stored Document nodes among these ids (without their chunks)."""
        with self._reading() as store:
            found = store.get_nodes(doc_ids, contributions=False)
        return {i: n for i, n in found.items() if n.type == NodeType.DOCUMENT}

    def document(self, doc_id: str) -> Node | None:
        return self.documents([doc_id]).get(doc_id)

    def find_entities(self, text: str, limit: int) -> list[dict[str, Any]]:
        with self._reading() as store:
            return explore.find_entities(store, text, limit)

    def entity(self, entity_id: str, limit: int) -> dict[str, Any]:
        with self._reading() as store:
            return explore.entity_neighbourhood(store, entity_id, limit)

    def subgraph(self, entity_id: str, depth: int, limit: int) -> dict[str, Any]:
        with self._reading() as store:
            return explore.subgraph(store, entity_id, depth, limit)

    def community(self, community_id: str) -> dict[str, Any]:
        with self._reading() as store:
            return explore.community(store, community_id)

    def node(self, node_id: str, neighbours: int, chunks: int) -> dict[str, Any]:
        with self._reading() as store:
            return explore.node_details(store, node_id, neighbours, chunks)

    def passage_links(self, result: QueryResult, hits: Sequence[ChunkHit]) -> dict[str, list[dict[str, Any]]]:
        """For each hit, the graph nodes that led the query to it (id, type, name), best first."""
        with self._reading() as store:
            return explore.passage_links(store, [h.chunk_id for h in hits], result.node_scores, PASSAGE_LINKS)

    # queries ---------------------------------------------------------------------------------------------------------

    def prepare_query(self, mode: str) -> None:
        """A one-shot process loads what ``mode`` reads while it loads the models (Workspace.prepare_query)."""
        self.workspace.prepare_query(mode)

    def retrieve(self, question: str, mode: str, top_k: int | None = None) -> QueryResult:
        return self.workspace.engine.retrieve(question, mode, top_k or self.settings.top_k)

    def within_budget(self, hits: list[ChunkHit], budget: int) -> list[ChunkHit]:
        """The best hits whose tokens, counted as the chunker counts them, fit the budget."""
        sizes = self.workspace.token_counter()([h.text for h in hits])
        kept, used = [], 0
        for hit, size in zip(hits, sizes):
            if used + size > budget:
                break
            kept.append(hit)
            used += size
        return kept

    @property
    def answerer(self) -> Answerer | None:
        """Writes answers from retrieved passages; None when no model is configured."""
        return self.workspace.answerer

    # writes from a one-shot process ----------------------------------------------------------------------------------

    def ingest(self, documents: list[SourceDocument], progress: Progress | None = None) -> IngestReport:
        with self.workspace.store.lock():
            return self.workspace.indexer.ingest(documents, progress=progress)

    def delete(self, ref: str) -> DeleteReport | None:
        """Deletes the document with this id or source; None when none is indexed (deleting again is no error)."""
        with self.workspace.store.lock():
            maintenance = self.workspace.maintenance  # opening the writer side repairs what an interrupted run left
            return maintenance.delete_document(ref) if maintenance.resolve_document(ref) else None

    def rebuild_communities(self) -> int:
        """The community layer recomputed from scratch; the elements written or removed."""
        with self.workspace.store.lock():
            written = self.workspace.maintenance.refresh_communities(from_scratch=True)
            self.workspace.vectors.save(complete=True)
        return written

    def close(self) -> None:
        self.workspace.close()
