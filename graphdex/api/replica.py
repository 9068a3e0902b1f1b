"""Query replicas (GRAPHDEX_INGEST=false): API processes that answer queries from the Neo4j database they share with
the one writer, and keep nothing of their own.

What a replica has: the graph and the vectors, both read from Neo4j (GRAPHDEX_NEO4J_VECTORS=neo4j), and the PageRank
projection, rebuilt in the background when the store version in the database moves (``ProjectionKeeper``). What it
lacks: the ingestion queue, which is the writer's, with the document statuses it holds. So documents and workspaces
are the writer's business: with GRAPHDEX_WRITER_URL the replica forwards those requests there (api/forward.py),
without it they get a 503 that names the writer.
"""

from __future__ import annotations

from graphdex.api.workspace import Workspace
from graphdex.common.errors import Unavailable
from graphdex.graph.store import StoreError


class NotTheWriter(Unavailable):
    """A request only the writer can serve reached a query replica (a 503 over REST, a tool error over MCP)."""


def not_the_writer(workspace: Workspace, what: str) -> NotTheWriter:
    """The refusal, naming where to go instead: GRAPHDEX_WRITER_URL, else the holder of the writer lease in Neo4j."""
    where = workspace.settings.writer_url
    if where is None:
        try:
            holder = workspace.store.writer()  # type: ignore[attr-defined]  # replicas run on Neo4j only
        except StoreError:
            holder = None
        where = f"the writer process {holder}" if holder else "the writer (none holds the workspace's lease right now)"
    return NotTheWriter(f"this graphdex is a query replica (GRAPHDEX_INGEST=false): {what} on {where}, "
                        "or set GRAPHDEX_WRITER_URL on this replica to have it forward them")
