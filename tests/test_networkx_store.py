"""What only the embedded store promises: writes append to SQLite's log instead of rewriting the graph."""

import sqlite3

from graphdex.graph.model import Node, NodeType
from graphdex.graph.networkx_store import NetworkxGraphStore


def entity(node_id: str, name: str, chunks: list[str]) -> Node:
    return Node(node_id, NodeType.ENTITY, {"name": name, "aliases": [name]}, {c: {"n": {name: 1}} for c in chunks})


def test_writes_are_incremental_not_a_rewrite(tmp_path):
    store = NetworkxGraphStore(tmp_path)
    store.write([entity(f"e{i}", f"N{i}", ["c"]) for i in range(2000)])
    db = tmp_path / "graph.sqlite"
    sqlite3.connect(db).execute("PRAGMA wal_checkpoint(TRUNCATE)")
    database_bytes = db.stat().st_size
    store.write([entity("extra", "Extra", ["d"])])
    wal_bytes = (tmp_path / "graph.sqlite-wal").stat().st_size
    # one small transaction appends a few pages to the write-ahead log instead of rewriting the whole graph
    assert 0 < wal_bytes < database_bytes / 10
