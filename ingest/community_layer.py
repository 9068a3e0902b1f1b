"""The community layer: Leiden communities over the entity graph, as Community nodes with a label and keywords.

Writes update the layer, they do not rebuild it: after an ingest or delete only the communities the write touched
are clustered again (``IndexTarget.changes`` records them: entities written, ends of RELATED_TO edges written or
deleted, communities that lost a deleted member). Those communities and the touched entities are re-clustered
together, starting from the communities they are in, by the modularity of the whole graph (graph/leiden.py): the
whole graph's strengths and total support, so that a small part is not split finer than the whole would be. The
rest of the layer is not read. A refresh from scratch (``touched=None``: after a crash, when what was touched is
unknown) clusters every entity, from singletons, by the same code; a first build, where everything is touched and
no community exists yet, gives exactly its result.

So the layer depends on the history of writes, not only on the graph: after a delete it is *valid* (each entity in
at most one community, each community of at least ``min_size`` and at most ``max_size`` existing members and described from its members on
the current graph) rather than the layer a build without the document would have. The other layers stay exact.

What is written stays proportional to what changed: a community is named by its first member, so one that gains or
loses a few members keeps its id and only those members' edges are written; only communities whose members or text
changed are rewritten and re-embedded.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable, Iterator, Mapping

from graphdex.common.ids import community_id
from graphdex.graph.leiden import local_communities, merge_edges
from graphdex.graph.model import Edge, EdgeKey, EdgeType, Node, NodeType
from graphdex.graph.store import GraphStore
from graphdex.ingest.derive import embedding_text
from graphdex.ingest.target import CommunityChanges, IndexTarget

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class CommunityPolicy:
    resolution: float = 1.0  # Leiden's modularity resolution: higher gives more, smaller communities
    min_size: int = 3  # smaller groups get no Community node
    max_size: int = 1000  # larger groups are split (graph/leiden.py): what a refresh re-clusters stays bounded; 0: no limit


LABEL_MEMBERS = 3
KEYWORDS = 8
CHUNKS_PER_COMMUNITY = 20
#: Members a community's description reads (describe_community): the label, member list, keywords and chunks of a
#: community come from its best-connected members, whose order the rest barely moves.
DESCRIBED_MEMBERS = 200


def describe_community(members: list[str], entities: Mapping[str, Node], internal: Iterable[Edge],
                       degree: Mapping[str, int] | None = None) -> dict:
    """A Community node's props: from its (sorted) members and the RELATED_TO edges between them.

    A community is described by its core: its ``DESCRIBED_MEMBERS`` members of highest internal support (ties by
    id), with the edges among them; its size counts every member. So describing a community of thousands reads the
    props of a few hundred, and a refresh that touches one member of it costs the same at any corpus size.
    ``entities`` needs only the core's props and ``internal`` only the core's edges when ``degree`` (each member's
    summed support over every internal edge) is given; without it, it is computed from ``internal``."""
    internal = list(internal)
    if degree is None:
        degree = internal_degree((e.source, e.target, _support(e)) for e in internal)
    core = described_core(members, degree)
    ranked = sorted(core, key=lambda m: (-degree.get(m, 0), entities[m].props["name"]))
    within = set(core)
    keywords: Counter = Counter()
    for edge in internal:
        if edge.source in within and edge.target in within:
            for keyword in edge.props.get("keywords", ()):
                keywords[keyword] += 1
    types = Counter(entities[m].props["type"] for m in core)
    chunk_counts: Counter = Counter(c for m in core for c in entities[m].props["chunks"])
    top_chunks = sorted(chunk_counts, key=lambda c: (-chunk_counts[c], c))[:CHUNKS_PER_COMMUNITY]
    ordered_keywords = [k for k, _ in sorted(keywords.items(), key=lambda i: (-i[1], i[0]))][:KEYWORDS]
    return {
        "label": ", ".join(entities[m].props["name"] for m in ranked[:LABEL_MEMBERS]),
        "keywords": ordered_keywords + [t.lower() for t, _ in sorted(types.items(), key=lambda i: (-i[1], i[0]))][:2],
        "size": len(members),
        "members": [entities[m].props["name"] for m in ranked[:20]],
        "chunks": top_chunks,
        "documents": sorted({c.rsplit(":", 1)[0] for c in top_chunks}),
    }


def internal_degree(edges: Iterable[tuple[str, str, int]]) -> Counter:
    """Each end's summed support over ``edges`` (a self-loop counts for its node twice, as an edge's two ends)."""
    degree: Counter = Counter()
    for source, target, support in edges:
        degree[source] += support
        degree[target] += support
    return degree


def described_core(members: Iterable[str], degree: Mapping[str, int]) -> list[str]:
    """The members a description reads: the ``DESCRIBED_MEMBERS`` of highest internal support, ties by id."""
    return sorted(members, key=lambda m: (-degree.get(m, 0), m))[:DESCRIBED_MEMBERS]


def _support(edge: Edge) -> int:
    """How many chunks support the edge (derived into its props, so the contributions need not be read)."""
    return int(edge.props.get("support") or len(edge.contrib))


@dataclass
class Scope:
    """The part of the entity graph a refresh clusters again, and the communities its result replaces."""

    entities: list[str]  # sorted; each has a RELATED_TO edge
    weights: list[tuple[str, str, int]]  # (source, target, support) of every RELATED_TO edge with an end among them
    communities: list[str]  # sorted: the communities replaced
    links: set[tuple[str, str]]  # their memberships: (entity, community)
    initial: dict[str, str] | None  # the community each entity starts in; None: every entity alone (from scratch)


def whole_scope(store: GraphStore) -> Scope:
    """Every entity with a RELATED_TO edge, every community, no starting communities: a refresh from scratch."""
    weights = store.edge_weights(EdgeType.RELATED_TO)
    entities = sorted({end for source, target, _ in weights if source != target for end in (source, target)})
    communities = sorted(store.node_ids(NodeType.COMMUNITY))
    return Scope(entities, weights, communities, _links(store, communities), None)


def touched_scope(store: GraphStore, touched: CommunityChanges) -> Scope:
    """The touched entities (those that still exist) and every member of their communities and of the communities
    that lost a deleted member, each starting in its current community; read through those entities and
    communities, never by a pass over the graph."""
    touched_ids = sorted(touched.entities)
    communities = set(touched.communities) | {community for _, community, _ in store.edge_weights(EdgeType.IN_COMMUNITY, touched_ids)}
    ordered = sorted(communities)
    links = _links(store, ordered)
    candidates = {member for member, _ in links} | set(touched_ids)
    weights = store.edge_weights(EdgeType.RELATED_TO, sorted(candidates))
    entities = sorted({end for source, target, _ in weights if source != target for end in (source, target)} & candidates)
    in_scope = set(entities)
    return Scope(entities, weights, ordered, links, {member: community for member, community in links if member in in_scope})


def _links(store: GraphStore, communities: list[str]) -> set[tuple[str, str]]:
    """The memberships of ``communities``, read through the communities (not by a scan of every edge)."""
    wanted = set(communities)
    return {(member, community) for member, community, _ in store.edge_weights(EdgeType.IN_COMMUNITY, communities) if community in wanted}


@dataclass
class CommunityPlan:
    """What a refresh writes: the scope's communities replaced by ``wanted``."""

    scope: Scope
    groups: list[list[str]]
    wanted: dict[str, Node]  # the Community nodes of the groups of at least min_size
    existing: dict[str, Node]  # the scope's communities as stored
    from_scratch: bool


#: Members whose props (and core edges) one read fetches while describing communities: bounds what a refresh from
#: scratch holds at once.
DESCRIBE_BATCH = 5000


def plan_communities(store: GraphStore, policy: CommunityPolicy, touched: CommunityChanges | None = None) -> CommunityPlan:
    """The scope's communities clustered again (reads only; ``touched=None``: from scratch). The clustering reads
    edge weights only; a group is described (its core's props and edges read) only when it is new, its members
    changed, one of them was touched or deleted: otherwise its stored node is what a description would give."""
    from_scratch = touched is None or touched.everything
    scope = whole_scope(store) if from_scratch else touched_scope(store, touched)
    in_scope = set(scope.entities)
    strength: Counter = Counter()  # over every RELATED_TO edge of an entity, inside the scope or not
    for source, target, support in scope.weights:
        if source != target:
            for end in (source, target):
                if end in in_scope:
                    strength[end] += support
    inside = merge_edges((s, t, float(w)) for s, t, w in scope.weights if s in in_scope and t in in_scope)
    total = store.total_support(EdgeType.RELATED_TO) if scope.entities else 0
    groups = local_communities(scope.entities, inside, strength, total, policy.resolution, scope.initial, policy.min_size,
                               max_size=policy.max_size)
    del inside, strength
    membership = {member: i for i, group in enumerate(groups) for member in group}
    internal: dict[int, list[tuple[str, str, int]]] = defaultdict(list)
    for source, target, support in scope.weights:
        group = membership.get(source)
        if group is not None and group == membership.get(target):
            internal[group].append((source, target, support))
    # named by its first member (groups are sorted), see community_id
    names = [community_id(group[0]) for group in groups]
    replaced = set(scope.communities)
    stored = store.get_nodes(sorted(replaced | set(names)), contributions=False)
    existing = {cid: node for cid, node in stored.items() if cid in replaced and node.type == NodeType.COMMUNITY}
    clash = sorted(cid for cid in stored if cid not in replaced)
    if clash and not from_scratch:
        # a community outside the scope already has a new community's name: the layer was not written by these
        # refreshes alone (every community is named by its smallest member); start again from the whole graph
        log.warning("community %s exists outside the refreshed part of the layer: refreshing every community", clash[0])
        return plan_communities(store, policy, None)
    before: dict[str, set[str]] = defaultdict(set)
    for member, cid in scope.links:
        before[cid].add(member)
    touched_entities = set() if from_scratch else set(touched.entities)
    lost_members = set() if from_scratch else set(touched.communities)
    wanted: dict[str, Node] = {}
    stale: list[int] = []
    for i, (cid, group) in enumerate(zip(names, groups)):
        if (from_scratch or cid not in existing or cid in lost_members or before[cid] != set(group)
                or touched_entities.intersection(group)):
            stale.append(i)
        else:
            wanted[cid] = existing[cid]
    for batch in _batches(stale, groups):
        wanted.update(_describe(store, [(names[i], groups[i], internal[i]) for i in batch]))
    return CommunityPlan(scope, groups, dict(sorted(wanted.items())), existing, from_scratch)


def _batches(indices: list[int], groups: list[list[str]]) -> Iterator[list[int]]:
    """``indices`` in runs whose groups' cores hold about DESCRIBE_BATCH members together."""
    batch: list[int] = []
    size = 0
    for i in indices:
        batch.append(i)
        size += min(len(groups[i]), DESCRIBED_MEMBERS)
        if size >= DESCRIBE_BATCH:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _describe(store: GraphStore, groups: list[tuple[str, list[str], list[tuple[str, str, int]]]]) -> dict[str, Node]:
    """Community nodes for ``(name, members, internal weights)``, reading only each group's core (one read of
    nodes and one of edges for them all)."""
    cores: list[tuple[str, list[str], Counter, list[str]]] = []
    keys: list[EdgeKey] = []
    for cid, members, weights in groups:
        degree = internal_degree(weights)
        core = described_core(members, degree)
        within = set(core)
        keys.extend((s, EdgeType.RELATED_TO, t) for s, t, _ in weights if s in within and t in within)
        cores.append((cid, members, degree, core))
    entities = store.get_nodes([m for _, _, _, core in cores for m in core], contributions=False)  # described by their props alone
    edges = store.get_edges(keys)
    by_end: dict[str, list[Edge]] = defaultdict(list)
    for edge in edges.values():
        by_end[edge.source].append(edge)
    out: dict[str, Node] = {}
    for cid, members, degree, core in cores:
        internal = [edge for m in core for edge in by_end.get(m, ())]
        out[cid] = Node(cid, NodeType.COMMUNITY, describe_community(members, entities, internal, degree))
    return out


def refresh_communities(target: IndexTarget, policy: CommunityPolicy, touched: CommunityChanges | None = None) -> int:
    """Cluster again the communities ``touched`` concerns (None: every community, from scratch) and write the
    difference in one write; returns how many Community nodes and membership edges were written or removed."""
    plan = plan_communities(target.store, policy, touched)
    wanted, existing = plan.wanted, plan.existing
    removed = sorted(set(existing) - set(wanted))
    changed = [node for cid, node in sorted(wanted.items()) if cid not in existing or existing[cid].props != node.props]
    kept = set(existing) & set(wanted)
    linked = {(member, cid) for member, cid in plan.scope.links if cid in kept}
    wanted_links = {(member, cid) for cid, group in ((community_id(group[0]), group) for group in plan.groups) for member in group}
    # every member's edge, not only those of new communities: an entity deleted and created again (a replaced
    # document) lost its edge, while its community kept its id
    new_edges = [Edge(member, EdgeType.IN_COMMUNITY, cid) for member, cid in sorted(wanted_links - linked)]
    # a member that left a community that stays (the edges of removed communities go with them)
    left = [(member, EdgeType.IN_COMMUNITY, cid) for member, cid in sorted(linked - wanted_links)]
    re_embed = [n for n in changed if n.id not in existing or embedding_text(existing[n.id]) != embedding_text(n)]
    if changed or removed or new_edges or left:
        target.apply(target.embed(re_embed), changed, new_edges, delete_nodes=removed, delete_edges=left,
                     delete_vectors={NodeType.COMMUNITY: removed}, touches=False)
    log.info("communities (%s): %d entities and %d communities re-clustered into %d; %d written, %d removed; %d memberships added, %d removed",
             "from scratch" if plan.from_scratch else "touched", len(plan.scope.entities), len(plan.scope.communities), len(wanted), len(changed),
             len(removed), len(new_edges), len(left))
    return len(changed) + len(removed) + len(new_edges) + len(left)
