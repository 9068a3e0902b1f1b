"""What only the embedded store promises: writes append to SQLite's log instead of rewriting the graph, and an index
written in another graph schema is refused."""

import sqlite3

import pytest

from graphdex.graph.model import Node, NodeType
from graphdex.graph.sqlite_store import SqliteGraphStore
from graphdex.graph.store import StoreError


def entity(node_id: str, name: str, chunks: list[str]) -> Node:
    return Node(node_id, NodeType.ENTITY, {"name": name, "aliases": [name]}, {c: {"names": {name: 1}, "types": {"PERSON": 1}, "sentence": ""} for c in chunks})


def test_writes_are_incremental_not_a_rewrite(tmp_path):
    store = SqliteGraphStore(tmp_path)
    store.write([entity(f"e{i}", f"N{i}", ["c"]) for i in range(20_000)])
    db = tmp_path / "graph.sqlite"
    sqlite3.connect(db).execute("PRAGMA wal_checkpoint(TRUNCATE)")
    database_bytes = db.stat().st_size
    store.write([entity("extra", "Extra", ["d"])])
    wal_bytes = (tmp_path / "graph.sqlite-wal").stat().st_size
    # one small transaction appends a few pages to the write-ahead log instead of rewriting the whole graph
    assert 0 < wal_bytes < database_bytes / 10


def test_an_index_of_another_graph_schema_is_refused_with_what_to_do(tmp_path):
    SqliteGraphStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / "graph.sqlite")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="graph schema 1.*re-index your documents into a new GRAPHDEX_DATA_DIR"):
        SqliteGraphStore(tmp_path)
