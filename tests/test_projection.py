"""The PageRank projection follows writes by the columns they touch, and always equals one built from the whole graph.

Random histories of writes and deletes (every node and edge type, documents "about" entities) are applied to the
embedded store; after each, the projection it keeps on disk, a reopened store's, and one following the change log
must give every node the same transition column as ``build_projection`` reading the whole graph."""

from __future__ import annotations

import random

import numpy as np
import pytest

from graphdex.graph import sqlite_projection
from graphdex.graph.model import EDGE_ENDS, Edge, EdgeType, Node, NodeType
from graphdex.graph.projection import GraphProjection, TransitionMatrix, weights_column
from graphdex.graph.projection_keeper import FollowingProjection, build_projection
from graphdex.graph.sqlite_store import SqliteGraphStore
from graphdex.graph.store import ChangeSet, StoreError

PREFIX = {NodeType.DOCUMENT: "d", NodeType.CHUNK: "c", NodeType.ENTITY: "e", NodeType.RELATION: "r", NodeType.COMMUNITY: "k"}


def columns(projection: GraphProjection | tuple, ids: list[str]) -> dict[str, dict[str, float]]:
    """Each node's transition column, by ids: what a walk standing there does, whatever the row numbering."""
    if isinstance(projection, tuple):
        matrix, rows = projection[0], projection[1]
    else:
        matrix, rows = projection.matrix, projection.rows
    row_of = rows.rows_of(ids)
    out = {}
    for node_id in ids:
        column = matrix.column(row_of[node_id])
        targets = rows.nodes_at(column.rows.tolist())
        out[node_id] = {targets[int(r)][0]: float(p) for r, p in zip(column.rows, column.probabilities) if int(r) in targets}
    return out


def assert_same_columns(left: dict, right: dict) -> None:
    assert left.keys() == right.keys()
    for node_id, column in left.items():
        assert column.keys() == right[node_id].keys(), node_id
        np.testing.assert_allclose([column[k] for k in column], [right[node_id][k] for k in column], rtol=1e-5, err_msg=node_id)


def random_write(rng: random.Random, store: SqliteGraphStore) -> None:
    existing = {t: sorted(store.node_ids(t)) for t in NodeType}
    choice = rng.random()
    if choice < 0.2 and any(existing.values()):
        victims = rng.sample([i for ids in existing.values() for i in ids], k=min(3, sum(map(len, existing.values()))))
        store.write(delete_nodes=victims)
        return
    if choice < 0.3:
        edges = list(store.iter_edges(contributions=False))
        if edges:
            store.write(delete_edges=[e.key for e in rng.sample(edges, k=min(4, len(edges)))])
            return
    nodes = []
    for type_ in NodeType:
        for _ in range(rng.randint(0, 3)):
            node_id = f"{PREFIX[type_]}{rng.randint(0, 25)}"
            props = {"name": node_id}
            if type_ == NodeType.DOCUMENT and rng.random() < 0.7:
                props["about"] = f"e{rng.randint(0, 25)}"
            nodes.append(Node(node_id, type_, props, {f"c{rng.randint(0, 25)}": {}}))
    known = {t: sorted(set(existing[t]) | {n.id for n in nodes if n.type == t}) for t in NodeType}
    edges = []
    for edge_type, (source_type, target_type) in EDGE_ENDS.items():
        for _ in range(rng.randint(0, 6)):
            if known[source_type] and known[target_type]:
                edges.append(Edge(rng.choice(known[source_type]), edge_type, rng.choice(known[target_type]), {"weight": rng.randint(1, 9)}, {}))
    store.write(nodes, edges)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_projection_kept_with_the_graph_equals_one_built_from_the_whole_graph(tmp_path, monkeypatch, seed):
    monkeypatch.setattr(sqlite_projection, "FOLD_FLOOR", 40)  # fold often: the base and overlay must agree across folds
    rng = random.Random(seed)
    store = SqliteGraphStore(tmp_path / "graph")
    following = FollowingProjection(store, spacing=0.0)
    following.get()
    generations = set()
    for _ in range(60):
        random_write(rng, store)
        ids = sorted(i for t in NodeType for i in store.node_ids(t))
        matrix, rows, _ = build_projection(store)
        expected = columns((matrix, rows), ids)
        kept = store.projection()
        assert kept.version == store.version
        assert_same_columns(columns(kept, ids), expected)
        assert_weights_kept_exactly(store)
        following.refresh()
        following.wait(10)
        assert following.get().version == store.version
        assert_same_columns(columns(following.get(), ids), expected)
        generations.add(store._projection._generation)
    assert len(generations) > 3, "the overlay must have been folded into new generations along the way"
    reopened = SqliteGraphStore(tmp_path / "graph")
    assert_same_columns(columns(reopened.projection(), ids), expected)
    following.close()


def assert_weights_kept_exactly(store: SqliteGraphStore) -> None:
    """The edge weights the store keeps for each column (what the next write patches) are those its edges give now,
    to the bit: patching never drifts from reading."""
    db = store._writer
    rows = [row for (row,) in db.execute("SELECT row FROM nodes")]
    generation = db.execute("SELECT value FROM meta WHERE key = 'projection_generation'").fetchone()
    generation = generation[0] if generation else None
    kept = store._projection._kept_weights(db, rows, generation, store._projection._open_weights(generation))
    read = sqlite_projection._weights_from_edges(db, rows)
    for row in rows:
        expected = weights_column(read[row])
        assert kept[row] is not None
        np.testing.assert_array_equal(kept[row].rows, expected.rows)
        np.testing.assert_array_equal(kept[row].probabilities, expected.probabilities)


def forget_weights(store: SqliteGraphStore) -> None:
    """Make the index look written by a graphdex that kept no edge weights beside the projection."""
    store._writer.execute("DELETE FROM projection_weights")
    generation = store._writer.execute("SELECT value FROM meta WHERE key = 'projection_generation'").fetchone()
    if generation:
        for name in sqlite_projection._WEIGHT_ARRAYS:
            (store._projection._dir / generation[0] / f"{name}.npy").unlink()


def test_an_index_written_without_edge_weights_is_read_whole_where_needed_and_gains_them_at_the_next_fold(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_projection, "FOLD_FLOOR", 40)
    rng = random.Random(7)
    store = SqliteGraphStore(tmp_path / "graph")
    for step in range(40):
        if step in (5, 25):
            forget_weights(store)
        random_write(rng, store)
        ids = sorted(i for t in NodeType for i in store.node_ids(t))
        matrix, rows, _ = build_projection(store)
        assert_same_columns(columns(store.projection(), ids), columns((matrix, rows), ids))
    assert_weights_kept_exactly(store)


def test_a_node_written_with_another_type_has_its_columns_read_whole(tmp_path):
    store = SqliteGraphStore(tmp_path / "graph")
    store.write([Node("x", NodeType.CHUNK), Node("e", NodeType.ENTITY)], [Edge("x", EdgeType.MENTIONS, "e", {"weight": 4})])
    store.write([Node("x", NodeType.RELATION)], [Edge("x", EdgeType.CONNECTS, "e")])
    matrix, rows, _ = build_projection(store)
    assert_same_columns(columns(store.projection(), ["x", "e"]), columns((matrix, rows), ["x", "e"]))
    assert columns(store.projection(), ["e"])["e"] == {"x": 1.0}


def test_adding_an_edge_to_a_node_costs_the_same_whatever_its_degree(tmp_path):
    """The projection follows a write by the pairs it changed: a hub of 3,000 edges is not re-read (counted in
    SQLite virtual-machine steps over the whole write)."""
    steps = {}
    for degree in (30, 3000):
        store = SqliteGraphStore(tmp_path / f"graph-{degree}")
        store.write([Node("e", NodeType.ENTITY)] + [Node(f"c{i}", NodeType.CHUNK) for i in range(degree)],
                    [Edge(f"c{i}", EdgeType.MENTIONS, "e") for i in range(degree)])
        counted = [0]

        def count(counted: list[int] = counted) -> int:
            counted[0] += 1
            return 0

        store._writer.set_progress_handler(count, 100)
        store.write([Node("new", NodeType.CHUNK)], [Edge("new", EdgeType.MENTIONS, "e")])
        store._writer.set_progress_handler(None, 100)
        steps[degree] = counted[0]
        assert columns(store.projection(), ["e"])["e"]["new"] == pytest.approx(1 / (degree + 1))
    assert steps[3000] < 1.5 * steps[30], steps


def test_a_failed_write_leaves_the_projection_as_it_was(tmp_path):
    store = SqliteGraphStore(tmp_path / "graph")
    store.write([Node("e0", NodeType.ENTITY), Node("e1", NodeType.ENTITY)], [Edge("e0", EdgeType.RELATED_TO, "e1")])
    before = columns(store.projection(), ["e0", "e1"])
    with pytest.raises(StoreError):
        store.write([Node("e2", NodeType.ENTITY)], [Edge("e0", EdgeType.RELATED_TO, "e2"), Edge("e0", EdgeType.RELATED_TO, "missing")])
    assert columns(SqliteGraphStore(tmp_path / "graph").projection(), ["e0", "e1"]) == before


def test_a_fresh_store_memory_maps_the_projection_instead_of_building_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_projection, "FOLD_FLOOR", 0)
    store = SqliteGraphStore(tmp_path / "graph")
    store.write([Node(f"e{i}", NodeType.ENTITY) for i in range(50)], [Edge(f"e{i}", EdgeType.RELATED_TO, f"e{i + 1}") for i in range(49)])
    fresh = SqliteGraphStore(tmp_path / "graph").projection()
    assert isinstance(fresh.matrix.indices.base, np.memmap) and not fresh.matrix.overlay  # a view of the mapped file
    assert isinstance(fresh.matrix, TransitionMatrix) and fresh.matrix.base_entries == 2 * 49


def test_a_projection_following_neo4j_by_change_equals_a_whole_build(neo4j_server):
    """A query replica on Neo4j follows the writer through the change log written by each write's transaction."""
    import uuid

    from graphdex.graph.neo4j_store import Neo4jGraphStore
    from tests.conftest import drop_neo4j_workspace

    workspace = f"test-follow-{uuid.uuid4().hex[:8]}"
    store = Neo4jGraphStore(neo4j_server["uri"], neo4j_server["user"], neo4j_server["password"], workspace=workspace)
    try:
        rng = random.Random(5)
        following = FollowingProjection(store, spacing=0.0)
        following.get()
        for _ in range(12):
            random_write(rng, store)
            following.refresh()
            following.wait(30)
            followed = following.get()
            assert followed.version == store.version
            ids = sorted(i for t in NodeType for i in store.node_ids(t))
            matrix, rows, _ = build_projection(store)
            assert_same_columns(columns(followed, ids), columns((matrix, rows), ids))
        assert following.get().matrix.overlay, "followed by change, not rebuilt"
        changes = store.changes_since(store.version - 2)
        assert changes is not None and changes.version == store.version and changes.nodes
        assert store.changes_since(-5) is None, "a log that does not reach back that far says so"
        following.close()
    finally:
        store.close()
        drop_neo4j_workspace(neo4j_server, workspace)


def test_the_change_log_of_the_embedded_store(tmp_path):
    store = SqliteGraphStore(tmp_path / "graph")
    assert store.changes_since(0) == ChangeSet(0, frozenset())
    store.write([Node("e0", NodeType.ENTITY), Node("e1", NodeType.ENTITY)], [Edge("e0", EdgeType.RELATED_TO, "e1")])
    store.write([Node("d0", NodeType.DOCUMENT, {"about": "e1"}), Node("c0", NodeType.CHUNK)], [Edge("d0", EdgeType.HAS_CHUNK, "c0")])
    store.write(delete_nodes=["e0"])
    assert store.changes_since(2).nodes == {"e0", "e1"}, "a deleted node and its neighbour"
    assert store.changes_since(1).nodes == {"d0", "c0", "e1", "e0"}, "the entity a new document is about"
    assert store.changes_since(3).nodes == frozenset() and store.changes_since(3).version == 3
