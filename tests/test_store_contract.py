"""The GraphStore contract, run against both stores: the embedded one and a real Neo4j server."""

import uuid

import pytest

from graphdex.graph.model import Edge, EdgeType, Node, NodeType
from graphdex.graph.sqlite_store import SqliteGraphStore
from graphdex.graph.store import StoreError
from tests.conftest import drop_neo4j_workspace


@pytest.fixture
def open_store(request, tmp_path, store_kind):
    """Opens a store on this test's graph; opening it again gives a second handle on the same data (a 'reopen')."""
    opened = []
    workspace = f"test-contract-{uuid.uuid4().hex[:8]}"

    def open_():
        if store_kind == "embedded":
            store = SqliteGraphStore(tmp_path / "graph")
        else:
            from graphdex.graph.neo4j_store import Neo4jGraphStore

            server = request.getfixturevalue("neo4j_server")
            store = Neo4jGraphStore(server["uri"], server["user"], server["password"], workspace=workspace)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()
    if store_kind == "neo4j":
        drop_neo4j_workspace(request.getfixturevalue("neo4j_server"), workspace)


def doc(node_id: str) -> Node:
    return Node(node_id, NodeType.DOCUMENT, {"title": node_id, "source": f"{node_id}.txt"})


def chunk(node_id: str, text: str = "text") -> Node:
    return Node(node_id, NodeType.CHUNK, {"text": text, "document_id": node_id.split(":")[0]})


def entity(node_id: str, name: str, chunks: list[str], type_: str = "PERSON") -> Node:
    return Node(node_id, NodeType.ENTITY, {"name": name, "aliases": [name], "type": type_, "meta": {"nested": [1, 2]}},
                {c: {"names": {name: 1}, "types": {"PERSON": 1}, "sentence": "sentence"} for c in chunks})


def mentions(chunk_id: str, entity_id: str) -> Edge:
    return Edge(chunk_id, EdgeType.MENTIONS, entity_id, {"weight": 1}, {chunk_id: {"count": 1}})


def small_graph() -> tuple[list[Node], list[Edge]]:
    """Two documents; d1:0 mentions Oslo and Bergen, d2:0 mentions Bergen; Oslo and Bergen are related in d1:0."""
    nodes = [doc("d1"), doc("d2"), chunk("d1:0", "Oslo and Bergen"), chunk("d2:0", "Bergen"),
             entity("e1", "Oslo", ["d1:0"], "GPE"), entity("e2", "Bergen", ["d1:0", "d2:0"], "GPE")]
    edges = [Edge("d1", EdgeType.HAS_CHUNK, "d1:0", {"index": 0}), Edge("d2", EdgeType.HAS_CHUNK, "d2:0", {"index": 0}),
             mentions("d1:0", "e1"), mentions("d1:0", "e2"), mentions("d2:0", "e2"),
             Edge("e1", EdgeType.RELATED_TO, "e2", {"weight": 1, "keywords": ["near"]}, {"d1:0": {"keywords": ["near"]}})]
    return nodes, edges


def test_write_then_read_back_exactly_after_reopen(open_store):
    store = open_store()
    nodes, edges = small_graph()
    store.write(nodes, edges)
    version = store.version
    assert version >= 1
    again = open_store()
    assert again.version == version
    found = again.get_nodes(["e1", "e2", "missing"])
    assert set(found) == {"e1", "e2"}
    assert found["e2"].props == entity("e2", "Bergen", ["d1:0", "d2:0"], "GPE").props  # nested values survive
    assert found["e2"].support == {"d1:0", "d2:0"}
    assert again.get_edges([("e1", "RELATED_TO", "e2"), ("e2", "RELATED_TO", "e1")]).keys() == {("e1", "RELATED_TO", "e2")}
    counts = again.counts()
    assert counts["nodes"] == {"Document": 2, "Chunk": 2, "Entity": 2, "Relation": 0, "Community": 0}
    assert counts["edges"] == {"HAS_CHUNK": 2, "MENTIONS": 3, "EVIDENCES": 0, "RELATED_TO": 1, "CONNECTS": 0, "IN_COMMUNITY": 0}
    assert again.node_ids(NodeType.ENTITY) == {"e1", "e2"}
    assert [n.id for n in again.iter_nodes(NodeType.CHUNK)] == ["d1:0", "d2:0"]
    assert {e.key for e in again.iter_edges([EdgeType.MENTIONS])} == {("d1:0", "MENTIONS", "e1"), ("d1:0", "MENTIONS", "e2"), ("d2:0", "MENTIONS", "e2")}
    whole = {e.key: e.props for e in again.iter_edges()}
    light = {e.key: e.props for e in again.iter_edges(contributions=False)}
    assert light == whole and all(e.contrib for e in again.iter_edges([EdgeType.MENTIONS]))


def test_edges_of_and_supported_by(open_store):
    store = open_store()
    store.write(*small_graph())
    assert {e.key for e in store.edges_of("e2")} == {("d1:0", "MENTIONS", "e2"), ("d2:0", "MENTIONS", "e2"), ("e1", "RELATED_TO", "e2")}
    assert {e.key for e in store.edges_of("e2", [EdgeType.RELATED_TO])} == {("e1", "RELATED_TO", "e2")}
    many = store.edges_of_many(["e1", "d2:0", "nothing"], [EdgeType.MENTIONS])
    assert {k: {e.key for e in v} for k, v in many.items()} == {"e1": {("d1:0", "MENTIONS", "e1")}, "d2:0": {("d2:0", "MENTIONS", "e2")}}
    light = store.edges_of_many(["e1", "d2:0"], [EdgeType.MENTIONS], contributions=False)
    assert {k: {(e.key, str(e.props)) for e in v} for k, v in light.items()} == {k: {(e.key, str(e.props)) for e in v} for k, v in many.items()}
    assert store.supported_by(["d2:0"]) == ({"e2"}, {("d2:0", "MENTIONS", "e2")})
    assert store.supported_by(["d1:0"]) == ({"e1", "e2"}, {("d1:0", "MENTIONS", "e1"), ("d1:0", "MENTIONS", "e2"), ("e1", "RELATED_TO", "e2")})
    assert store.supported_by([]) == (set(), set())


def test_upsert_replaces_properties_and_summary_and_adds_contributions(open_store):
    store = open_store()
    store.write(*small_graph())
    bergen = entity("e2", "Bergen city", ["d2:0"], "LOC")
    bergen.summary = {"names": {"Bergen city": 1}, "support": 2}
    store.write([bergen], delete_edges=[("e1", "RELATED_TO", "e2")])
    node = open_store().get_nodes(["e2"])["e2"]
    assert node.props["name"] == "Bergen city" and node.props["type"] == "LOC"
    assert node.summary == bergen.summary
    assert node.support == {"d1:0", "d2:0"}, "a write adds contributions, it never drops one"
    assert node.contrib["d2:0"]["names"] == {"Bergen city": 1}, "a chunk's contribution replaces what it said before"
    light = open_store().get_nodes(["e2"], contributions=False)["e2"]
    assert (light.props, light.summary) == (node.props, node.summary)
    edge = mentions("d2:0", "e2")
    edge.summary = {"weight": 1, "support": 1}
    store.write(edges=[edge])
    light_edge = open_store().get_edges([edge.key], contributions=False)[edge.key]
    assert (light_edge.props, light_edge.summary) == (edge.props, edge.summary), "the writer adds a batch's summary to the stored one"
    assert store.supported_by(["d1:0"]) == ({"e1", "e2"}, {("d1:0", "MENTIONS", "e1"), ("d1:0", "MENTIONS", "e2")})


def test_deleting_a_chunk_deletes_its_contributions(open_store):
    store = open_store()
    nodes, edges = small_graph()
    store.write(nodes + [entity("e3", "Trondheim", ["d1:0", "d2:0"])],
                edges + [mentions("d1:0", "e3"), mentions("d2:0", "e3"),
                         Edge("e2", EdgeType.RELATED_TO, "e3", {"support": 2}, {"d1:0": {"keywords": []}, "d2:0": {"keywords": ["x"]}})])
    store.write(delete_nodes=["d1:0"])
    reopened = open_store()
    found = reopened.get_nodes(["e1", "e2", "e3"])
    assert {i: n.support for i, n in found.items()} == {"e1": set(), "e2": {"d2:0"}, "e3": {"d2:0"}}
    assert reopened.get_edges([("e2", "RELATED_TO", "e3")])[("e2", "RELATED_TO", "e3")].contrib == {"d2:0": {"keywords": ["x"]}}
    assert reopened.get_edges([("e1", "RELATED_TO", "e2")])[("e1", "RELATED_TO", "e2")].contrib == {}
    assert reopened.supported_by(["d1:0"]) == (set(), set())


def test_deleting_a_node_deletes_its_edges(open_store):
    store = open_store()
    store.write(*small_graph())
    store.write(delete_nodes=["e2"])
    reopened = open_store()
    assert reopened.edges_of("e1") == [e for e in reopened.edges_of("e1") if e.type == EdgeType.MENTIONS]
    assert reopened.counts()["edges"]["RELATED_TO"] == 0
    assert reopened.node_ids(NodeType.ENTITY) == {"e1"}


def test_a_failed_write_changes_nothing(open_store):
    store = open_store()
    nodes, edges = small_graph()
    store.write(nodes, edges)
    version = store.version
    with pytest.raises(StoreError):
        store.write([entity("e3", "Trondheim", ["d2:0"])], [mentions("d2:0", "e3"), Edge("e3", EdgeType.RELATED_TO, "ghost", {}, {})])
    with pytest.raises(StoreError):  # an edge between the wrong node types breaks the schema
        store.write([entity("e4", "Tromsø", ["d2:0"])], [Edge("d2", EdgeType.MENTIONS, "e4", {}, {})])
    reopened = open_store()
    assert reopened.get_nodes(["e3", "e4"]) == {}
    assert reopened.version == version
    assert {e.key for e in reopened.edges_of("d2:0")} == {("d2", "HAS_CHUNK", "d2:0"), ("d2:0", "MENTIONS", "e2")}


def test_total_support_sums_the_support_of_every_edge_of_a_type(open_store):
    store = open_store()
    nodes, edges = small_graph()  # e1 -> e2: no support prop, one contribution
    store.write(nodes + [entity("e3", "Trondheim", ["d2:0"]), entity("e4", "Tromsø", ["d2:0"])],
                edges + [Edge("e2", EdgeType.RELATED_TO, "e3", {"support": 3}, {"d1:0": {}, "d2:0": {}}),  # the prop counts
                         Edge("e3", EdgeType.RELATED_TO, "e4", {"support": 0}, {"d2:0": {}}),  # 0: the contributions count
                         Edge("e4", EdgeType.RELATED_TO, "e1", {"support": 2, "keywords": ["x"]}, {})])
    assert store.total_support(EdgeType.RELATED_TO) == 1 + 3 + 1 + 2
    assert open_store().total_support(EdgeType.RELATED_TO) == 7
    assert store.total_support(EdgeType.MENTIONS) == 3 and store.total_support(EdgeType.IN_COMMUNITY) == 0
    weights = {("e1", "e2", 1), ("e2", "e3", 3), ("e3", "e4", 1), ("e4", "e1", 2)}
    assert sorted(store.edge_weights(EdgeType.RELATED_TO)) == sorted(weights), "every edge once, weighed as total_support weighs it"
    around = store.edge_weights(EdgeType.RELATED_TO, ["e3", "e4", "missing"])
    assert sorted(around) == sorted(weights - {("e1", "e2", 1)}), "an edge between two asked nodes comes once"
    assert store.edge_weights(EdgeType.RELATED_TO, []) == []
    store.write(delete_nodes=["e3"])
    assert store.total_support(EdgeType.RELATED_TO) == 1 + 2
    assert sorted(store.edge_weights(EdgeType.RELATED_TO)) == [("e1", "e2", 1), ("e4", "e1", 2)]


def test_find_entities_by_name_or_alias(open_store):
    store = open_store()
    store.write(*small_graph())
    store.write([entity("e5", "Oslo Airport", ["d1:0"], "FAC")], [mentions("d1:0", "e5")])
    assert [n.id for n in store.find_entities("BERG")] == ["e2"]
    assert [n.id for n in store.find_entities("oslo")] == ["e1", "e5"]  # shortest name first
    assert store.find_entities("   ") == []


def test_single_writer_lock(open_store):
    store, other = open_store(), open_store()
    with store.lock():
        with pytest.raises(StoreError, match="another graphdex process"):
            with other.lock():
                pass
    with other.lock():  # released on exit
        pass


def test_unreachable_or_refusing_neo4j_gives_an_actionable_error(neo4j_server):
    from graphdex.graph.neo4j_store import Neo4jGraphStore

    with pytest.raises(StoreError, match="cannot reach Neo4j .*scripts/neo4j.sh start"):
        Neo4jGraphStore("bolt://127.0.0.1:1", "neo4j", "whatever")
    with pytest.raises(StoreError, match="refused the credentials"):
        Neo4jGraphStore(neo4j_server["uri"], neo4j_server["user"], "wrong-password")
