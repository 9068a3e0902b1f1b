import sqlite3

import pytest

from graph.model import Edge, EdgeType, Node, NodeType
from graph.networkx_store import NetworkxGraphStore
from graph.store import StoreError


def entity(node_id: str, name: str, chunks: list[str]) -> Node:
    return Node(node_id, NodeType.ENTITY, {"name": name, "aliases": [name]}, {c: {"n": {name: 1}} for c in chunks})


def test_write_read_and_reload(tmp_path):
    store = NetworkxGraphStore(tmp_path)
    store.write([entity("e1", "Oslo", ["c1"]), entity("e2", "Bergen", ["c1", "c2"])],
                [Edge("e1", EdgeType.RELATED_TO, "e2", {"weight": 1}, {"c1": {}})])
    assert store.version == 1
    store.close()
    reopened = NetworkxGraphStore(tmp_path)
    nodes = reopened.get_nodes(["e1", "e2", "missing"])
    assert set(nodes) == {"e1", "e2"}
    assert nodes["e2"].support == {"c1", "c2"}
    assert reopened.counts()["nodes"]["Entity"] == 2
    assert reopened.counts()["edges"]["RELATED_TO"] == 1
    assert [e.target for e in reopened.edges_of("e1")] == ["e2"]
    assert reopened.supported_by(["c2"]) == ({"e2"}, set())
    assert reopened.supported_by(["c1"]) == ({"e1", "e2"}, {("e1", "RELATED_TO", "e2")})
    assert [n.id for n in reopened.find_entities("osl")] == ["e1"]


def test_deleting_a_node_deletes_its_edges_durably(tmp_path):
    store = NetworkxGraphStore(tmp_path)
    store.write([entity("e1", "A", ["c1"]), entity("e2", "B", ["c1"])], [Edge("e1", EdgeType.RELATED_TO, "e2", {}, {"c1": {}})])
    store.write(delete_nodes=["e2"])
    assert store.edges_of("e1") == []
    assert store.supported_by(["c1"]) == ({"e1"}, set())
    store.close()
    reopened = NetworkxGraphStore(tmp_path)
    assert reopened.counts()["edges"]["RELATED_TO"] == 0
    assert set(reopened.node_ids(NodeType.ENTITY)) == {"e1"}


def test_failed_write_changes_nothing(tmp_path):
    store = NetworkxGraphStore(tmp_path)
    store.write([entity("e1", "A", ["c1"])])
    with pytest.raises(StoreError):
        store.write([entity("e3", "C", ["c3"])], [Edge("e3", EdgeType.RELATED_TO, "ghost", {}, {})])
    assert store.get_nodes(["e3"]) == {}
    store.close()
    assert NetworkxGraphStore(tmp_path).get_nodes(["e3"]) == {}


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


def test_single_writer_lock(tmp_path):
    store = NetworkxGraphStore(tmp_path)
    other = NetworkxGraphStore(tmp_path)
    with store.lock():
        with pytest.raises(StoreError, match="another graphdex process"):
            with other.lock():
                pass
