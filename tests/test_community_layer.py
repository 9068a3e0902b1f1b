"""The community layer is updated, never rebuilt: a refresh clusters again only the communities the writes touched
(and reads nothing else), keeps a community's id when a few members move, re-describes a community that lost a
deleted member, leaves a valid layer after deletes, and a first build gives exactly the layer a refresh from scratch
gives."""

import numpy as np
import pytest

from graphdex.graph.model import Edge, EdgeType, Node, NodeType
from graphdex.ingest.community_layer import CommunityPolicy, plan_communities
from graphdex.ingest.target import CommunityChanges
from tests.conftest import FILM_DOCS, as_documents
from tests.helpers import assert_same, assert_valid_communities, snapshot


def _entity(i: int) -> Node:
    return Node(f"e{i}", NodeType.ENTITY, {"name": f"entity {i}", "type": "PERSON", "chunks": [f"d{i}:00000"]}, {})


def _clique(members: list[int], support: int = 1) -> list[Edge]:
    return [Edge(f"e{a}", EdgeType.RELATED_TO, f"e{b}", {"support": support, "keywords": ["knows"]}, {}) for a in members for b in members if a < b]


def _write(workspace, nodes=(), edges=(), delete_nodes=(), delete_edges=()) -> None:
    """A graph write through the writer's target, as ingest and delete make them (so that it is recorded)."""
    target = workspace.maintenance.target
    target.apply(target.embed(list(nodes)), nodes, edges, delete_nodes=delete_nodes, delete_edges=delete_edges,
                 delete_vectors={NodeType.ENTITY: list(delete_nodes)})


def _memberships(workspace) -> set[tuple[str, str]]:
    return {(e.source, e.target) for e in workspace.store.iter_edges([EdgeType.IN_COMMUNITY])}


def _communities(workspace) -> dict[str, dict]:
    return {n.id: n.props for n in workspace.store.iter_nodes(NodeType.COMMUNITY)}


def test_a_community_keeps_its_id_when_a_member_leaves(make_workspace):
    first, second = [0, 1, 2, 3, 4], [5, 6, 7, 8]
    workspace = make_workspace()
    _write(workspace, [_entity(i) for i in first + second], _clique(first) + _clique(second))
    workspace.maintenance.refresh_communities()
    before = _memberships(workspace)
    assert len(workspace.store.node_ids(NodeType.COMMUNITY)) == 2 and len(before) == 9

    _write(workspace, delete_nodes=["e4"])  # the last member of the first community leaves the graph
    workspace.maintenance.refresh_communities()
    after = _memberships(workspace)
    assert after == before - {(m, c) for m, c in before if m == "e4"}, "the other memberships, and both ids, stay"

    fresh = make_workspace("fresh")
    _write(fresh, [_entity(i) for i in [0, 1, 2, 3] + second], _clique([0, 1, 2, 3]) + _clique(second))
    fresh.maintenance.refresh_communities()
    assert _memberships(fresh) == after
    assert _communities(workspace) == _communities(fresh)
    assert {c: p["size"] for c, p in _communities(workspace).items()} == {c: 4 for _, c in after}


def test_a_member_that_moves_leaves_its_old_community(make_workspace):
    workspace = make_workspace()
    _write(workspace, [_entity(i) for i in range(9)], _clique([0, 1, 2, 3]) + _clique([4, 5, 6, 7]) + [
        Edge("e0", EdgeType.RELATED_TO, "e8", {"support": 1}, {}), Edge("e1", EdgeType.RELATED_TO, "e8", {"support": 1}, {})])
    workspace.maintenance.refresh_communities()
    assert {m for m, c in _memberships(workspace) if m == "e8"} == {"e8"}

    # e8 now belongs with the second group: its old edges go, and it has one membership, in the other community
    _write(workspace, edges=[Edge(f"e{i}", EdgeType.RELATED_TO, "e8", {"support": 3}, {}) for i in (4, 5, 6, 7)],
           delete_edges=[("e0", EdgeType.RELATED_TO, "e8"), ("e1", EdgeType.RELATED_TO, "e8")])
    workspace.maintenance.refresh_communities()
    memberships = _memberships(workspace)
    community_of = dict(memberships)
    assert [m for m, _ in memberships].count("e8") == 1
    assert community_of["e8"] == community_of["e4"] != community_of["e0"]
    assert_valid_communities(snapshot(workspace))


class CountingStore:
    """The real store, recording every id a read names and refusing the reads of a whole type."""

    def __init__(self, store) -> None:
        self._store = store
        self.read: set[str] = set()
        self.written: list[tuple] = []
        self.whole_reads = 0

    def __getattr__(self, name):
        return getattr(self._store, name)

    def get_nodes(self, ids, contributions=True):
        ids = list(ids)
        self.read.update(ids)
        return self._store.get_nodes(ids, contributions)

    def edges_of_many(self, node_ids, types=None, contributions=True):
        node_ids = list(node_ids)
        self.read.update(node_ids)
        found = self._store.edges_of_many(node_ids, types, contributions)
        self.read.update(end for edges in found.values() for e in edges for end in (e.source, e.target))
        return found

    def edge_weights(self, edge_type, node_ids=None, within=False):
        if node_ids is None:
            self.whole_reads += 1
        else:
            node_ids = list(node_ids)
            self.read.update(node_ids)
        found = self._store.edge_weights(edge_type, node_ids, within)
        self.read.update(end for source, target, _ in found for end in (source, target))
        return found

    def iter_edges(self, types=None, contributions=True):
        self.whole_reads += 1
        return self._store.iter_edges(types, contributions)

    def node_ids(self, type_):
        self.whole_reads += 1
        return self._store.node_ids(type_)

    def write(self, nodes=(), edges=(), delete_nodes=(), delete_edges=(), vectors=None):
        self.written.append((list(nodes), list(edges), list(delete_nodes), list(delete_edges)))
        self._store.write(nodes, edges, delete_nodes, delete_edges, vectors=vectors)

    def reset(self) -> None:
        self.read, self.written, self.whole_reads = set(), [], 0


def test_a_refresh_reads_and_writes_only_the_communities_a_write_touched(make_workspace):
    """Three separate groups; a write inside the first: the refresh reads the first group and its community, never
    the far ones (nor anything whole), and writes only there."""
    groups = [list(range(0, 5)), list(range(5, 10)), list(range(10, 15))]
    workspace = make_workspace()
    workspace.__dict__["store"] = counting = CountingStore(workspace.store)
    _write(workspace, [_entity(i) for i in range(15)], [e for g in groups for e in _clique(g)])
    workspace.maintenance.refresh_communities()
    community_of = dict(_memberships(workspace))
    far = {f"e{i}" for g in groups[1:] for i in g} | {community_of[f"e{i}"] for g in groups[1:] for i in g}
    before = snapshot(workspace)

    _write(workspace, [_entity(15)], [Edge(f"e{i}", EdgeType.RELATED_TO, "e15", {"support": 2, "keywords": ["joins"]}, {}) for i in (0, 1, 2)])
    assert workspace.maintenance.target.changes.entities == {"e0", "e1", "e2", "e15"}
    counting.reset()
    assert workspace.maintenance.refresh_communities() > 0
    assert counting.whole_reads == 0
    assert counting.read & far == set(), "a far community and its members are not read"
    assert counting.read >= {f"e{i}" for i in range(16)} - far
    written_ids = {i for nodes, edges, deletes, edge_deletes in counting.written
                   for i in [*(n.id for n in nodes), *(x for e in edges for x in (e.source, e.target)), *deletes,
                             *(x for k in edge_deletes for x in (k[0], k[2]))]}
    assert written_ids & far == set(), "nothing far is written"
    # the new member, its community, and the members whose strength the new edges raised (kept on their memberships)
    assert written_ids == {"e15", "e0", "e1", "e2", community_of["e0"]}
    assert not workspace.maintenance.target.changes, "the record starts afresh"
    after = snapshot(workspace)
    for node_id in far:
        assert after["nodes"][node_id] == before["nodes"][node_id]
    assert dict(_memberships(workspace))["e15"] == community_of["e0"]
    assert_valid_communities(after)


def test_a_community_that_loses_a_deleted_member_is_described_again(make_workspace):
    workspace = make_workspace()
    _write(workspace, [_entity(i) for i in range(10)], _clique(list(range(5))) + _clique(list(range(5, 10))))
    workspace.maintenance.refresh_communities()
    community = dict(_memberships(workspace))["e3"]
    assert _communities(workspace)[community]["size"] == 5

    # e4 goes with its edges; no entity is written and no RELATED_TO edge deleted by name: the record of the
    # community it belonged to and of its neighbours (read before the write) says what to refresh
    _write(workspace, delete_nodes=["e4"])
    changes = workspace.maintenance.target.changes
    assert changes.entities == {"e0", "e1", "e2", "e3"} and changes.communities == {community}
    workspace.maintenance.refresh_communities()
    props = _communities(workspace)[community]
    assert props["size"] == 4 and "entity 4" not in props["members"]
    assert_valid_communities(snapshot(workspace))


@pytest.fixture
def documents(sample_records):
    return FILM_DOCS + as_documents(sample_records[:60])


def test_a_first_build_is_exactly_the_layer_from_scratch(make_workspace, documents):
    workspace = make_workspace()
    workspace.indexer.ingest(documents)
    built = snapshot(workspace)
    assert len(_communities(workspace)) >= 5
    plan = plan_communities(workspace.store, CommunityPolicy(), None)
    assert plan.from_scratch and {c: n.props for c, n in plan.wanted.items()} == _communities(workspace)
    assert {(m, c) for c, members in plan.members.items() for m in members} == _memberships(workspace)
    assert workspace.maintenance.refresh_communities(from_scratch=True) == 0, "from scratch finds nothing to change"
    assert_same(built, snapshot(workspace))
    # and ingest in batches of its own: the first refresh sees every entity touched, no community yet
    batches = make_workspace("batches", write_batch_chunks=4)
    batches.indexer.ingest(documents)
    assert_same(built, snapshot(batches))


def _ingest_in_two_then_delete(workspace, documents, deleted) -> dict:
    """Two ingests and single-document deletes, each followed by its incremental refresh; the final snapshot."""
    workspace.indexer.ingest(documents[:40])
    workspace.indexer.ingest(documents[40:])
    for document in deleted:
        workspace.maintenance.delete_document(document.source)
    return snapshot(workspace)


def test_after_ingests_and_deletes_the_layer_is_valid(make_workspace, documents, embedder):
    workspace = make_workspace()
    final = _ingest_in_two_then_delete(workspace, documents, documents[2:60:6])
    assert_valid_communities(final)
    clean = make_workspace("clean")
    clean.indexer.ingest([d for d in documents if d not in documents[2:60:6]])
    assert_same(snapshot(clean), final, communities="valid")
    # each Community vector is the embedding of its node's current text
    from graphdex.ingest.derive import embedding_text

    nodes = list(workspace.store.iter_nodes(NodeType.COMMUNITY))
    stored = workspace.vectors[NodeType.COMMUNITY].get([n.id for n in nodes])
    fresh = embedder.embed([embedding_text(n) for n in nodes])
    assert np.sum(stored * fresh, axis=1).min() > 0.995


def test_after_a_crash_the_refresh_and_the_next_one_are_from_scratch(make_workspace):
    workspace = make_workspace()
    _write(workspace, [_entity(i) for i in range(5)], _clique(list(range(5))))
    workspace.maintenance.refresh_communities()
    workspace.vectors.save(complete=True)
    workspace.vectors.mark_dirty()  # as a process that died mid-operation leaves it
    workspace.maintenance.recover()
    assert workspace.maintenance.target.changes.everything, "the operation run again refreshes from scratch too"
    workspace.maintenance.refresh_communities()
    assert workspace.maintenance.target.changes == CommunityChanges()


def test_a_large_community_is_described_by_its_core(make_workspace, documents, monkeypatch):
    """A description reads only a community's strongest members (DESCRIBED_MEMBERS, 200; 3 here, so that the
    test's communities exceed it): the layer a build and deletes leave is what describe_community gives from every
    member and edge, and its size still counts them all."""
    from graphdex.ingest import community_description

    monkeypatch.setattr(community_description, "DESCRIBED_MEMBERS", 3)
    workspace = make_workspace()
    final = _ingest_in_two_then_delete(workspace, documents, documents[3:60:7])
    assert_valid_communities(final)
    sizes = [props["size"] for props in _communities(workspace).values()]
    assert max(sizes) > 3 and all(len(props["members"]) <= 3 for props in _communities(workspace).values())


class RelationReads(CountingStore):
    """Counts the RELATED_TO edges the clustering reads (by an end: not the edges among a core, which a
    description reads)."""

    def __init__(self, store) -> None:
        super().__init__(store)
        self.related_rows = 0

    def edge_weights(self, edge_type, node_ids=None, within=False):
        found = super().edge_weights(edge_type, node_ids, within)
        if edge_type == EdgeType.RELATED_TO and not within:
            self.related_rows += len(found)
        return found

    def reset(self) -> None:
        super().reset()
        self.related_rows = 0


def test_a_write_into_a_large_community_reads_the_edges_of_what_it_touched_only(make_workspace):
    """Three communities of 40 (780 edges each); a new entity related to two members of one: the refresh reads the
    edges of those three, weighs the rest of the community by the strength it keeps, and leaves a valid layer in
    which the newcomer joined the community under its id."""
    workspace = make_workspace()
    workspace.__dict__["store"] = counting = RelationReads(workspace.store)
    _write(workspace, [_entity(i) for i in range(120)], [e for first in (0, 40, 80) for e in _clique(list(range(first, first + 40)))])
    workspace.maintenance.refresh_communities()
    community = dict(_memberships(workspace))["e0"]

    _write(workspace, [_entity(120)], [Edge(f"e{i}", EdgeType.RELATED_TO, "e120", {"support": 3, "keywords": ["joins"]}, {}) for i in (0, 1)])
    counting.reset()
    workspace.maintenance.refresh_communities()
    assert counting.related_rows <= 2 * 40 + 2, "the edges of e0, e1 and e120, not of the whole community"
    assert dict(_memberships(workspace))["e120"] == community
    assert_valid_communities(snapshot(workspace))


def test_a_community_that_outgrows_the_limit_is_split_and_the_layer_stays_valid(make_workspace):
    """Two cliques of 6 that three edges join, among ten more cliques: at the base resolution the two are one
    community of 12, the limit. An entity related to two members of one clique joins it and takes it over the
    limit: the cluster is split again at a higher resolution, the rest of the community kept whole, so no community
    exceeds the limit and every membership and description is still what the graph gives."""
    workspace = make_workspace(community_max_size=12)
    related = lambda a, b: Edge(f"e{a}", EdgeType.RELATED_TO, f"e{b}", {"support": 3}, {})  # noqa: E731
    cliques = [e for first in range(0, 72, 6) for e in _clique(list(range(first, first + 6)), 3)]
    _write(workspace, [_entity(i) for i in range(72)], cliques + [related(0, 6), related(1, 7), related(2, 8)])
    workspace.maintenance.refresh_communities()
    community_of = dict(_memberships(workspace))
    assert len({community_of[f"e{i}"] for i in range(12)}) == 1, "the two cliques start as one community"

    _write(workspace, [_entity(72)], [related(0, 72), related(1, 72)])
    workspace.maintenance.refresh_communities()
    assert_valid_communities(snapshot(workspace))
    community_of = dict(_memberships(workspace))
    assert len({community_of[f"e{i}"] for i in range(2, 12)}) == 1, "the members the write did not touch stay together"
    assert max(props["size"] for props in _communities(workspace).values()) <= 12
    assert sum(1 for i in [0, 1, 72] if community_of.get(f"e{i}") == community_of["e2"]) < 3, "not all three joined: 13 > 12"
