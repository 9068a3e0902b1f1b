"""Removing one whole workspace from a Neo4j database, for the deletion of a workspace.

Apart from the store because it is not a graph operation: it does not read the workspace (whatever graph schema
wrote it, it goes), and it must run when no store for it is open. Only nodes whose ``workspace`` property is the
given one are matched, label by label through the (workspace, id) indexes; their relationships go with them (an edge
only ever joins two nodes of one workspace). The change log's nodes go with them, and the GraphdexMeta node, which
holds the writer lease, goes last.
"""

from __future__ import annotations

import os
import socket
import uuid

from graphdex.graph.model import NodeType
from graphdex.graph.neo4j_store import CHANGE_LABEL, LEASE_MILLISECONDS
from graphdex.graph.store import StoreError, StoreUnavailable

# nodes deleted per transaction: a large workspace never needs one transaction holding all of it in memory
DELETE_BATCH = 5000


def drop_workspace(uri: str, user: str, password: str, database: str, workspace: str) -> int:
    """Deletes every node of ``workspace`` with its relationships; returns how many nodes went.

    Takes the workspace's writer lease first, so it refuses while another graphdex process writes to the workspace,
    and no graphdex writer starts while it deletes. Idempotent: a drop interrupted half-way is finished by the next."""
    import neo4j
    from neo4j.exceptions import DriverError, Neo4jError, ServiceUnavailable, SessionExpired

    token = f"{socket.gethostname()}:{os.getpid()}:drop-{uuid.uuid4().hex[:8]}"
    try:
        with neo4j.GraphDatabase.driver(uri, auth=(user, password) if password else None) as driver:
            with driver.session(database=database) as session:
                _take_lease(session, workspace, token)
                removed = 0
                for label in [t.value for t in NodeType] + [CHANGE_LABEL]:
                    removed += session.run(
                        f"MATCH (n:{label} {{workspace: $ws}}) CALL (n) {{ DETACH DELETE n }} IN TRANSACTIONS OF {DELETE_BATCH} ROWS",
                        ws=workspace).consume().counters.nodes_deleted
                    _take_lease(session, workspace, token)  # renewed between labels: a long drop keeps it
                session.run("MATCH (m:GraphdexMeta {workspace: $ws}) DELETE m", ws=workspace).consume()
                return removed
    except (ServiceUnavailable, SessionExpired) as error:
        raise StoreUnavailable(f"Neo4j is unreachable: {error}") from error
    except (DriverError, Neo4jError) as error:
        raise StoreError(f"removing Neo4j workspace {workspace!r} failed: {error}") from error


def _take_lease(session, workspace: str, token: str) -> None:
    row = session.run(
        "MERGE (m:GraphdexMeta {workspace: $ws}) WITH m "
        "WHERE m.writer IS NULL OR coalesce(m.writer_until, 0) < timestamp() OR m.writer = $token "
        "SET m.writer = $token, m.writer_until = timestamp() + $ttl RETURN m.writer AS writer",
        ws=workspace, token=token, ttl=LEASE_MILLISECONDS).single()
    if row is None:
        raise StoreError(f"another graphdex process is writing to Neo4j workspace {workspace!r}; stop it, then delete again "
                         f"(a crashed writer releases it within {LEASE_MILLISECONDS // 1000} s)")
