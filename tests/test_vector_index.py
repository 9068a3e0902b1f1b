import json
import uuid

import numpy as np
import pytest

from graphdex.graph.model import Node, NodeType
from graphdex.graph.store import StoreError
from graphdex.graph.vector_index import HnswVectorIndex, VectorIndexSet
from tests.conftest import drop_neo4j_workspace


def unit(rows: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_add_search_replace_delete_and_grow():
    index = HnswVectorIndex(16, capacity=4)
    vectors = unit(50)
    index.add([f"n{i}" for i in range(50)], vectors)  # grows past the initial capacity
    assert len(index) == 50
    hits = index.search(vectors[7], 3)
    assert hits[0][0] == "n7" and abs(hits[0][1] - 1.0) < 1e-4
    index.add(["n7"], vectors[8:9])  # replacing keeps one entry per id
    assert len(index) == 50
    assert index.search(vectors[8], 2)[0][0] in {"n7", "n8"}
    index.delete(["n8", "n7", "unknown"])
    assert len(index) == 48
    assert all(node not in {"n7", "n8"} for node, _ in index.search(vectors[8], 10))
    index.add(["fresh"], vectors[8:9])  # reuses a deleted slot
    assert index.search(vectors[8], 1)[0][0] == "fresh"
    assert index.search(vectors[0], 500)  # k larger than the index is clamped


def test_set_saves_atomically_by_generation(tmp_path):
    indexes = VectorIndexSet(tmp_path, 16, "test-model")
    vectors = unit(10)
    indexes[NodeType.ENTITY].add([f"e{i}" for i in range(10)], vectors)
    indexes.save()
    indexes[NodeType.ENTITY].delete(["e0"])
    indexes.save()
    assert json.loads((tmp_path / "current.json").read_text())["generation"] == 2
    assert not list(tmp_path.glob("*.1.*")), "the previous generation is removed once the new one is in place"
    loaded = VectorIndexSet(tmp_path, 16, "test-model")
    assert loaded[NodeType.ENTITY].ids() == {f"e{i}" for i in range(1, 10)}
    np.testing.assert_allclose(loaded[NodeType.ENTITY].get(["e3"])[0], vectors[3], atol=1e-6)


def test_crash_before_pointer_flip_keeps_previous_generation(tmp_path):
    indexes = VectorIndexSet(tmp_path, 16, "test-model")
    indexes[NodeType.CHUNK].add(["c1"], unit(1))
    indexes.save()
    # a later save that died after writing its files but before flipping current.json
    (tmp_path / "chunk.2.bin").write_bytes(b"partial garbage")
    loaded = VectorIndexSet(tmp_path, 16, "test-model")
    assert loaded[NodeType.CHUNK].ids() == {"c1"}


def test_refuses_vectors_of_another_model(tmp_path):
    VectorIndexSet(tmp_path, 16, "model-a").save()
    try:
        VectorIndexSet(tmp_path, 32, "model-b")
    except Exception as error:
        assert "model-a" in str(error) and "GRAPHDEX_DATA_DIR" in str(error)
    else:
        raise AssertionError("a dimension mismatch must be refused")


# Neo4j's native vector indexes (GRAPHDEX_NEO4J_VECTORS=neo4j) ------------------------------------------------------
# The database's vector indexes have one dimension for every workspace: these tests use the bundled model's (384).

DIM = 384


@pytest.fixture
def neo4j_vectors(neo4j_server):
    """Opens Neo4jVectorIndexes on fresh workspaces of the test server; drops them afterwards."""
    from graphdex.graph.neo4j_store import Neo4jGraphStore
    from graphdex.graph.neo4j_vectors import Neo4jVectorIndexes

    opened: list[tuple[Neo4jGraphStore, str]] = []
    run_id = uuid.uuid4().hex[:8]

    def make(name: str = "vectors", model: str = "test-model") -> Neo4jVectorIndexes:
        workspace = f"test-{run_id}-{name}"
        store = Neo4jGraphStore(neo4j_server["uri"], neo4j_server["user"], neo4j_server["password"], workspace=workspace)
        opened.append((store, workspace))
        return Neo4jVectorIndexes(store, DIM, model)

    yield make
    for store, workspace in opened:
        store.close()
        drop_neo4j_workspace(neo4j_server, workspace)


def entities(vectors, ids: list[str]) -> None:
    """Vectors in Neo4j belong to nodes: write the nodes first."""
    vectors._store.write([Node(i, NodeType.ENTITY, {"name": i}, {}) for i in ids])


def test_neo4j_index_adds_searches_replaces_and_deletes(neo4j_vectors):
    vectors = neo4j_vectors()
    index = vectors[NodeType.ENTITY]
    rows = unit(50, DIM)
    ids = [f"n{i}" for i in range(50)]
    entities(vectors, ids)
    index.add(ids, rows, [f"d{i}" for i in range(50)])
    assert len(index) == 50 and "n3" in index and "nope" not in index
    hits = index.search(rows[7], 3)
    assert hits[0][0] == "n7" and abs(hits[0][1] - 1.0) < 1e-4
    np.testing.assert_allclose(index.get(["n3", "n9"]), rows[[3, 9]], atol=1e-6)
    assert index.digests()["n4"] == "d4"
    index.add(["n7"], rows[8:9], ["d8"])  # replacing keeps one vector per id
    assert len(index) == 50 and index.digests()["n7"] == "d8"
    index.delete(["n8", "n7", "unknown"])
    assert len(index) == 48 and index.ids() == set(ids) - {"n7", "n8"}
    assert all(node not in {"n7", "n8"} for node, _ in index.search(rows[8], 10))
    assert len(index.search(rows[0], 500)) == 48  # k larger than the index gives all it has
    assert vectors.counts()[str(NodeType.ENTITY)] == 48 and vectors.counts()[str(NodeType.CHUNK)] == 0


def test_neo4j_index_gives_the_ids_scores_and_order_of_hnswlib(neo4j_vectors):
    local, remote = HnswVectorIndex(DIM), neo4j_vectors()[NodeType.ENTITY]
    rows = unit(200, DIM, seed=1)
    ids = [f"e{i}" for i in range(200)]
    remote._store.write([Node(i, NodeType.ENTITY, {"name": i}, {}) for i in ids])
    local.add(ids, rows)
    remote.add(ids, rows)
    for query in unit(5, DIM, seed=2):
        expected, found = local.search(query, 10), remote.search(query, 10)
        assert [i for i, _ in found] == [i for i, _ in expected]
        np.testing.assert_allclose([s for _, s in found], [s for _, s in expected], atol=1e-5)
        wanted = ids[:30] + ["missing"]
        expected, found = local.similarities(wanted, query), remote.similarities(wanted, query)
        assert found.keys() == expected.keys() == set(ids[:30])
        np.testing.assert_allclose([found[i] for i in ids[:30]], [expected[i] for i in ids[:30]], atol=1e-5)


def test_neo4j_workspaces_never_see_each_others_vectors(neo4j_vectors):
    small, large = neo4j_vectors("small"), neo4j_vectors("large")
    rows = unit(300, DIM, seed=3)
    entities(large, [f"l{i}" for i in range(300)])
    large[NodeType.ENTITY].add([f"l{i}" for i in range(300)], rows)
    entities(small, ["s0", "s1"])
    small[NodeType.ENTITY].add(["s0", "s1"], -rows[:2])  # far from the query below
    # the shared index answers the large workspace's nodes first: the small one still gets its own two
    assert {i for i, _ in small[NodeType.ENTITY].search(rows[0], 5)} == {"s0", "s1"}
    assert all(i.startswith("l") for i, _ in large[NodeType.ENTITY].search(rows[0], 20))
    assert small[NodeType.ENTITY].ids() == {"s0", "s1"} and len(large[NodeType.ENTITY]) == 300


def test_neo4j_graph_writes_keep_vectors_and_the_dirty_mark_lives_in_the_database(neo4j_vectors):
    vectors = neo4j_vectors()
    store = vectors._store
    entities(vectors, ["a"])
    vectors[NodeType.ENTITY].add(["a"], unit(1, DIM), ["da"])
    store.write([Node("a", NodeType.ENTITY, {"name": "a", "description": "changed"}, {})])  # no new vector: the old one stays
    assert vectors[NodeType.ENTITY].digests() == {"a": "da"}
    assert not vectors.dirty
    vectors.mark_dirty()
    assert vectors.dirty
    vectors.save(complete=True)
    assert not vectors.dirty
    store.write(delete_nodes=["a"])  # a node's vector goes with it
    assert len(vectors[NodeType.ENTITY]) == 0
    with pytest.raises(StoreError, match="belong to no stored"):  # a vector cannot outlive or precede its node
        vectors[NodeType.ENTITY].add(["stray"], unit(1, DIM))


def test_neo4j_vectors_of_another_model_are_refused(neo4j_vectors):
    vectors = neo4j_vectors("model")
    vectors.mark_dirty()  # the first write records the model
    with pytest.raises(StoreError, match="model-b"):
        type(vectors)(vectors._store, DIM, "model-b")
