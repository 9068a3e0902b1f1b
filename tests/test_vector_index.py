import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from graphdex.graph.hnsw_index import HnswVectorIndex
from graphdex.graph.model import Node, NodeType
from graphdex.graph.store import StoreError
from graphdex.graph.vector_index import VectorIndexSet
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


def test_a_vector_replaced_while_deleted_slots_are_free_leaves_no_old_copy_even_after_a_reload(tmp_path):
    # a deleted slot before the replaced id's own: hnswlib's slot reuse used to take the new vector there and leave
    # the old element under the same label, which a reload then mapped the id to (issue 23's stale Community vectors)
    index = HnswVectorIndex(16)
    old = unit(3)
    index.add(["a", "b", "c"], old, ["1", "2", "3"])
    index.delete(["a"])
    new = unit(1, seed=5)
    index.add(["c"], new, ["9"])
    assert all(score < 0.9 for node, score in index.search(old[2], 3) if node == "c")
    assert len(index) == 2 and index.shadowed == 0
    index.save(tmp_path / "i.bin", tmp_path / "i.ids.json")
    back = HnswVectorIndex.load(tmp_path / "i.bin", tmp_path / "i.ids.json", 16, 16, 200, 64)
    np.testing.assert_allclose(back.get(["c"]), new, atol=1e-6)
    assert back.search(new[0], 1)[0][0] == "c"
    assert all(score < 0.9 for node, score in back.search(old[2], 3) if node == "c")


def test_an_index_holding_an_id_twice_names_it_and_is_rebuilt_without_it():
    # what the replace of an older graphdex did: the new vector into a free deleted slot, the old one left under the label
    index = HnswVectorIndex(16)
    old = unit(3)
    index.add(["a", "b", "c"], old, ["1", "2", "3"])
    index.delete(["a"])
    index._index.add_items(unit(1, seed=5), [index._label_of["c"]], replace_deleted=True)
    assert index.shadowed == 1 and index.shadowed_ids() == ["c"]
    assert any(node == "c" and score > 0.99 for node, score in index.search(old[2], 3)), "the old copy answers searches"
    rebuilt = index.without(["c"])
    assert rebuilt.shadowed == 0 and rebuilt.shadowed_ids() == [] and rebuilt.ids() == {"b"}
    assert rebuilt.digests() == {"b": "2"} and rebuilt.delta_size is None, "saved whole next time"
    np.testing.assert_allclose(rebuilt.get(["b"]), old[1:2], atol=1e-6)
    assert [node for node, _ in rebuilt.search(old[2], 3)] == ["b"]


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


def test_ids_digests_and_deletions_survive_a_save_and_a_map_of_the_earlier_format_still_loads(tmp_path):
    index = HnswVectorIndex(16, capacity=4)
    vectors = unit(6)
    index.add([f"n{i}" for i in range(6)], vectors, [f"{i:016x}" for i in range(6)])
    index.delete(["n2"])
    index.add(["n4", "long"], vectors[:2], ["replaced", "a digest wider than sixteen bytes"])
    expected = {"n0": f"{0:016x}", "n1": f"{1:016x}", "n3": f"{3:016x}", "n4": "replaced", "n5": f"{5:016x}",
                "long": "a digest wider than sixteen bytes"}
    assert index.digests() == expected
    index.save(tmp_path / "x.bin", tmp_path / "x.ids.json")
    loaded = HnswVectorIndex.load(tmp_path / "x.bin", tmp_path / "x.ids.json", 16, 16, 200, 64)
    assert loaded.digests() == expected and loaded.ids() == set(expected)
    assert loaded.search(vectors[0], 1)[0][0] in {"n0", "n4"} and "n2" not in {n for n, _ in loaded.search(vectors[2], 6)}
    current = json.loads((tmp_path / "x.ids.json").read_text())
    # digests as a list by label (as one earlier commit wrote them)
    (tmp_path / "x.ids.json").write_text(json.dumps({**current, "digests": [expected.get(n, "") if n else "" for n in current["ids"]]}))
    assert HnswVectorIndex.load(tmp_path / "x.bin", tmp_path / "x.ids.json", 16, 16, 200, 64).digests() == expected
    # the map as written before it was kept by label: {"labels": {id: label}, "digests": {id: digest}, "next_label"}
    earlier = {"labels": {node_id: label for label, node_id in enumerate(current["ids"]) if node_id is not None},
               "digests": expected,
               "next_label": len(current["ids"]), "capacity": current["capacity"]}
    (tmp_path / "x.ids.json").write_text(json.dumps(earlier))
    old = HnswVectorIndex.load(tmp_path / "x.bin", tmp_path / "x.ids.json", 16, 16, 200, 64)
    assert old.digests() == expected
    old.add(["new"], vectors[2:3], ["d"])  # a label after every one the earlier map handed out
    assert old.search(vectors[2], 1)[0][0] == "new" and len(old) == 7


def test_crash_before_pointer_flip_keeps_previous_generation(tmp_path):
    indexes = VectorIndexSet(tmp_path, 16, "test-model")
    indexes[NodeType.CHUNK].add(["c1"], unit(1))
    indexes.save()
    # a later save that died after writing its files but before flipping current.json
    (tmp_path / "chunk.2.bin").write_bytes(b"partial garbage")
    loaded = VectorIndexSet(tmp_path, 16, "test-model")
    assert loaded[NodeType.CHUNK].ids() == {"c1"}


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """The index files ``HnswVectorIndex.load`` reads, in order."""
    seen: list[str] = []
    original = HnswVectorIndex.load.__func__

    def load(cls, path, *args, **kwargs):
        seen.append(path.name)
        return original(cls, path, *args, **kwargs)

    monkeypatch.setattr(HnswVectorIndex, "load", classmethod(load))
    return seen


def saved_set(directory) -> VectorIndexSet:
    """A set of 10 entities and 3 chunks, saved as generation 1."""
    indexes = VectorIndexSet(directory, 16, "test-model")
    indexes[NodeType.ENTITY].add([f"e{i}" for i in range(10)], unit(10))
    indexes[NodeType.CHUNK].add(["c0", "c1", "c2"], unit(3, seed=1))
    indexes.save(complete=True)
    return indexes


def test_opening_loads_nothing_and_counts_come_from_the_pointer(tmp_path, loads):
    saved_set(tmp_path)
    assert json.loads((tmp_path / "current.json").read_text())["counts"] == {"Chunk": 3, "Entity": 10, "Relation": 0, "Community": 0}
    loads.clear()
    reopened = VectorIndexSet(tmp_path, 16, "test-model")
    assert reopened.counts() == {"Chunk": 3, "Entity": 10, "Relation": 0, "Community": 0}
    assert loads == [], "neither opening nor counting loads an index"
    assert reopened[NodeType.ENTITY].search(unit(10)[4], 1)[0][0] == "e4"
    assert reopened[NodeType.ENTITY] is reopened[NodeType.ENTITY]
    assert loads == ["entity.1.bin"], "the first use loads that type only, once"
    reopened[NodeType.ENTITY].delete(["e0"])
    assert reopened.counts()["Entity"] == 9, "a loaded index counts itself"


def test_a_save_writes_only_the_changed_indexes_and_carries_the_others_unread(tmp_path, loads):
    saved_set(tmp_path)
    reopened = VectorIndexSet(tmp_path, 16, "test-model", delta_limit=0)  # changed indexes are saved whole
    carried = {name: (tmp_path / name).stat().st_ino for name in ("chunk.1.bin", "chunk.1.ids.json", "relation.1.bin")}
    rewritten = (tmp_path / "entity.1.bin").stat().st_ino
    loads.clear()
    reopened[NodeType.ENTITY].delete(["e0"])
    reopened[NodeType.CHUNK].search(unit(1)[0], 1)  # read, not changed
    reopened.save(complete=True)
    assert loads == ["entity.1.bin", "chunk.1.bin"]
    for name, inode in carried.items():
        assert (tmp_path / name.replace(".1.", ".2.")).stat().st_ino == inode, f"{name} is carried as it is"
    assert (tmp_path / "entity.2.bin").stat().st_ino != rewritten
    assert not list(tmp_path.glob("*.1.*"))
    loads.clear()
    again = VectorIndexSet(tmp_path, 16, "test-model")
    assert again.counts() == {"Chunk": 3, "Entity": 9, "Relation": 0, "Community": 0} and loads == []
    assert again[NodeType.ENTITY].ids() == {f"e{i}" for i in range(1, 10)}
    assert again[NodeType.CHUNK].ids() == {"c0", "c1", "c2"}
    np.testing.assert_allclose(again[NodeType.CHUNK].get(["c1"])[0], unit(3, seed=1)[1], atol=1e-6)
    again.save()  # nothing changed: every file is carried
    assert json.loads((tmp_path / "current.json").read_text())["generation"] == 3
    assert VectorIndexSet(tmp_path, 16, "test-model")[NodeType.ENTITY].ids() == {f"e{i}" for i in range(1, 10)}


def test_carried_files_are_copied_where_links_are_refused(tmp_path, monkeypatch):
    saved_set(tmp_path)
    reopened = VectorIndexSet(tmp_path, 16, "test-model")

    def refuse(*_):
        raise PermissionError("no hard links on this file system")

    monkeypatch.setattr("graphdex.graph.vector_index.os.link", refuse)
    reopened[NodeType.ENTITY].add(["e10"], unit(1, seed=5))
    reopened.save()
    assert (tmp_path / "chunk.2.bin").stat().st_nlink == 1
    again = VectorIndexSet(tmp_path, 16, "test-model")
    assert again[NodeType.CHUNK].ids() == {"c0", "c1", "c2"} and len(again[NodeType.ENTITY]) == 11


def test_a_pointer_without_counts_is_counted_by_loading(tmp_path, loads):
    """An index saved before the pointer held counts."""
    saved_set(tmp_path)
    pointer = tmp_path / "current.json"
    pointer.write_text(json.dumps({k: v for k, v in json.loads(pointer.read_text()).items() if k != "counts"}))
    loads.clear()
    old = VectorIndexSet(tmp_path, 16, "test-model")
    assert old.counts() == {"Chunk": 3, "Entity": 10, "Relation": 0, "Community": 0}
    assert sorted(loads) == ["chunk.1.bin", "community.1.bin", "entity.1.bin", "relation.1.bin"]
    old.save()
    assert json.loads(pointer.read_text())["counts"] == {"Chunk": 3, "Entity": 10, "Relation": 0, "Community": 0}


@pytest.mark.parametrize("delta_limit", [0, 512], ids=["saved-whole", "saved-as-delta"])
def test_a_save_that_dies_before_its_flip_leaves_the_previous_generation_even_through_leftover_links(tmp_path, monkeypatch, delta_limit):
    """A save that died after carrying an index into generation 2 leaves links to generation 1's files; the next
    save must write its changed index (whole or as a delta) beside them, never into them."""
    saved_set(tmp_path)
    for name in ("chunk.1.bin", "chunk.1.ids.json"):
        os.link(tmp_path / name, tmp_path / name.replace(".1.", ".2."))
    reopened = VectorIndexSet(tmp_path, 16, "test-model", delta_limit=delta_limit)
    reopened[NodeType.CHUNK].delete(["c0", "c1"])
    reopened[NodeType.CHUNK].add(["c9"], unit(1, seed=9))

    def die(*_):
        raise OSError("killed before the flip")

    monkeypatch.setattr("graphdex.graph.vector_index.os.replace", die)
    with pytest.raises(OSError, match="killed"):
        reopened.save()
    monkeypatch.undo()
    survivor = VectorIndexSet(tmp_path, 16, "test-model")
    assert survivor[NodeType.CHUNK].ids() == {"c0", "c1", "c2"}
    np.testing.assert_allclose(survivor[NodeType.CHUNK].get(["c1"])[0], unit(3, seed=1)[1], atol=1e-6)


def test_a_small_change_is_saved_as_a_delta_beside_the_carried_full_files(tmp_path, loads):
    saved_set(tmp_path)
    full = {name: (tmp_path / name).stat().st_ino for name in ("entity.1.bin", "entity.1.ids.json")}
    writer = VectorIndexSet(tmp_path, 16, "test-model", delta_limit=4)
    entities = writer[NodeType.ENTITY]
    entities.delete(["e0"])
    entities.add(["e3", "new"], unit(2, seed=7), ["d3", "dn"])  # one replaced, one added
    writer.save(complete=True)
    pointer = json.loads((tmp_path / "current.json").read_text())
    assert pointer["deltas"] == ["Entity"] and pointer["counts"]["Entity"] == 10
    for name, inode in full.items():
        assert (tmp_path / name.replace(".1.", ".2.")).stat().st_ino == inode, f"{name} is carried, not rewritten"
    assert json.loads((tmp_path / "entity.2.delta.json").read_text()) == {"ids": ["e3", "new"], "digests": ["d3", "dn"], "deleted": ["e0"]}

    loads.clear()
    reader = VectorIndexSet(tmp_path, 16, "test-model")
    replayed = reader[NodeType.ENTITY]
    assert loads == ["entity.2.bin"]
    assert replayed.ids() == {f"e{i}" for i in range(1, 10)} | {"new"}
    np.testing.assert_allclose(replayed.get(["e3", "new", "e4"]), np.vstack([unit(2, seed=7), unit(10)[4:5]]), atol=1e-6)
    assert replayed.digests()["new"] == "dn" and replayed.search(unit(2, seed=7)[1], 1)[0][0] == "new"

    # the delta is cumulative since the full save; the reader (which replayed it) carries it on when it writes
    replayed.delete(["e9"])
    reader.save()
    assert json.loads((tmp_path / "entity.3.delta.json").read_text())["deleted"] == ["e0", "e9"]
    reader[NodeType.CHUNK].add(["c3"], unit(1, seed=8))  # an untouched entity index carries its delta unread
    reader.save()
    assert json.loads((tmp_path / "current.json").read_text())["deltas"] == ["Chunk", "Entity"]
    assert VectorIndexSet(tmp_path, 16, "test-model")[NodeType.ENTITY].ids() == {f"e{i}" for i in range(1, 9)} | {"new"}

    # past the limit the index is saved whole again, and its delta is gone
    reopened = VectorIndexSet(tmp_path, 16, "test-model", delta_limit=4)
    reopened[NodeType.ENTITY].delete(["e1", "e2"])
    reopened.save()
    pointer = json.loads((tmp_path / "current.json").read_text())
    assert pointer["deltas"] == ["Chunk"] and not list(tmp_path.glob("entity.*.delta.*"))
    final = VectorIndexSet(tmp_path, 16, "test-model")[NodeType.ENTITY]
    assert final.ids() == {f"e{i}" for i in range(3, 9)} | {"new"} and final.digests()["e3"] == "d3"


def test_a_reader_beside_the_writer_follows_a_generation_saved_after_it_opened(tmp_path):
    """Another process (a `graphdex query` beside an ingest) opened generation 1, which the writer's save removed
    before the reader first used an index: it reads the generation the pointer names now."""
    saved_set(tmp_path)
    reader = VectorIndexSet(tmp_path, 16, "test-model")
    writer = VectorIndexSet(tmp_path, 16, "test-model")
    writer[NodeType.CHUNK].delete(["c0"])
    writer.save(complete=True)
    assert reader[NodeType.CHUNK].ids() == {"c1", "c2"}
    assert reader.counts()["Chunk"] == 2 and reader[NodeType.ENTITY].ids() == {f"e{i}" for i in range(10)}


def test_threads_asking_for_an_index_at_once_share_one_load(tmp_path, loads, monkeypatch):
    saved_set(tmp_path)
    reopened = VectorIndexSet(tmp_path, 16, "test-model")
    slow = HnswVectorIndex.load.__func__

    def slow_load(cls, *args, **kwargs):
        time.sleep(0.05)
        return slow(cls, *args, **kwargs)

    monkeypatch.setattr(HnswVectorIndex, "load", classmethod(slow_load))
    loads.clear()
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: reopened[NodeType.ENTITY], range(16)))
    assert all(index is got[0] for index in got) and loads == ["entity.1.bin"]


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
    # a mix of two unit vectors (graph mode's question and its remainder) gives the mix of their similarities
    first, second = unit(2, DIM, seed=4)
    mixed = 0.7 * first + 0.3 * second
    for index in (local, remote):
        apart = (index.similarities(ids[:30], first), index.similarities(ids[:30], second))
        together = index.similarities(ids[:30], mixed)
        np.testing.assert_allclose([together[i] for i in ids[:30]], [0.7 * apart[0][i] + 0.3 * apart[1][i] for i in ids[:30]], atol=1e-5)


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


def test_vectors_of_the_former_default_model_name_the_settings_that_read_them(tmp_path):
    from graphdex.common.embedder import OnnxEmbedder

    VectorIndexSet(tmp_path, 384, OnnxEmbedder.name_for("minilm-l6-v2", "int8")).save()
    with pytest.raises(StoreError, match="set GRAPHDEX_EMBEDDER=local GRAPHDEX_LOCAL_MODEL=minilm-l6-v2 to read them"):
        VectorIndexSet(tmp_path, 384, OnnxEmbedder.name_for("bge-small-en-v1.5", "int8"))
    VectorIndexSet(tmp_path / "older", 384, OnnxEmbedder.name_for("minilm-l6-v2", "float")).save()
    with pytest.raises(StoreError, match="GRAPHDEX_LOCAL_EMBEDDER_ARITHMETIC=float"):
        VectorIndexSet(tmp_path / "older", 384, OnnxEmbedder.name_for("bge-small-en-v1.5", "int8"))
