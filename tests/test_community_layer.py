"""The community layer's write: a community keeps its id when a few members move, only those memberships change, and
the result is still the one a refresh of the final graph from scratch gives."""

from graphdex.graph.model import Edge, EdgeType, Node, NodeType


def _entity(i: int) -> Node:
    return Node(f"e{i}", NodeType.ENTITY, {"name": f"entity {i}", "type": "PERSON", "chunks": []}, {})


def _clique(members: list[int]) -> list[Edge]:
    return [Edge(f"e{a}", EdgeType.RELATED_TO, f"e{b}", {"support": 1, "keywords": ["knows"]}, {}) for a in members for b in members if a < b]


def _memberships(workspace) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in workspace.store.iter_edges([EdgeType.IN_COMMUNITY])}


def test_a_community_keeps_its_id_when_a_member_leaves(make_workspace):
    first, second = [0, 1, 2, 3, 4], [5, 6, 7, 8]
    workspace = make_workspace()
    workspace.store.write([_entity(i) for i in first + second], _clique(first) + _clique(second))
    workspace.maintenance.refresh_communities()
    before = _memberships(workspace)
    assert len(workspace.store.node_ids(NodeType.COMMUNITY)) == 2 and len(before) == 9

    workspace.store.write(delete_nodes=["e4"])  # the last member of the first community leaves the graph
    workspace.maintenance.refresh_communities()
    after = _memberships(workspace)
    assert after == before - {(m, c) for m, c in before if m == "e4"}, "the other memberships, and both ids, stay"

    fresh = make_workspace("fresh")
    fresh.store.write([_entity(i) for i in [0, 1, 2, 3] + second], _clique([0, 1, 2, 3]) + _clique(second))
    fresh.maintenance.refresh_communities()
    assert _memberships(fresh) == after
    sizes = {n.id: n.props["size"] for n in workspace.store.iter_nodes(NodeType.COMMUNITY)}
    assert sizes == {n.id: n.props["size"] for n in fresh.store.iter_nodes(NodeType.COMMUNITY)} == {c: 4 for _, c in after}


def test_a_member_that_moves_leaves_its_old_community(make_workspace):
    workspace = make_workspace()
    workspace.store.write([_entity(i) for i in range(9)], _clique([0, 1, 2, 3]) + _clique([4, 5, 6, 7]) + [
        Edge("e8", EdgeType.RELATED_TO, "e0", {"support": 1}, {}), Edge("e8", EdgeType.RELATED_TO, "e1", {"support": 1}, {})])
    workspace.maintenance.refresh_communities()
    assert {m for m, c in _memberships(workspace) if m == "e8"} == {"e8"}

    # e8 now belongs with the second group: its old edges go, and it has one membership, in the other community
    workspace.store.write(edges=[Edge("e8", EdgeType.RELATED_TO, f"e{i}", {"support": 3}, {}) for i in (4, 5, 6, 7)],
                          delete_edges=[("e8", EdgeType.RELATED_TO, "e0"), ("e8", EdgeType.RELATED_TO, "e1")])
    workspace.maintenance.refresh_communities()
    memberships = _memberships(workspace)
    community_of = dict(memberships)
    assert [m for m, _ in memberships].count("e8") == 1
    assert community_of["e8"] == community_of["e4"] != community_of["e0"]
