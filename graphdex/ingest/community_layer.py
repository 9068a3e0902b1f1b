"""The community layer: Leiden communities over the entity graph, as Community nodes with a label and keywords.

Writes update the layer, they do not rebuild it. After an ingest or delete only the entities the write touched
(``IndexTarget.changes``: entities written, ends of RELATED_TO edges written or deleted, neighbours of deleted
entities) move between communities; every other entity stays where it is, and the communities around the touched
ones take part in the clustering as single vertices (``ingest/community_update.py``). So a write re-clusters, reads
and rewrites in proportion to what it touched, whatever the size of the communities it touched. A refresh from
scratch (``touched=None``: after a crash, when what was touched is unknown) clusters every entity, from singletons,
by the modularity of the whole graph (graph/leiden.py); a first build, where everything is touched and no community
exists yet, gives exactly its result.

So the layer depends on the history of writes, not only on the graph: after a delete it is *valid* (each entity in
at most one community, each community of at least ``min_size`` and at most ``max_size`` existing members and
described from its members on the current graph, each membership carrying its member's current strength) rather
than the layer a build without the document would have. The other layers stay exact.

Each membership edge carries its member's strength (the summed support of the member's relations) as its support,
and each Community node the sum over its members: that is what the update needs to weigh a community it does not
read. A community keeps its id while it gains and loses members; only the memberships that changed are written,
and only communities whose text changed are re-embedded.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

from graphdex.common.ids import community_id
from graphdex.graph.leiden import local_communities, merge_edges
from graphdex.graph.model import Edge, EdgeType, Node, NodeType
from graphdex.graph.store import GraphStore
from graphdex.ingest.community_description import describe_communities
from graphdex.ingest.derive import embedding_text
from graphdex.ingest.target import CommunityChanges, IndexTarget

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommunityPolicy:
    resolution: float = 1.0  # Leiden's modularity resolution: higher gives more, smaller communities
    min_size: int = 3  # smaller groups get no Community node
    max_size: int = 1000  # larger groups are split (graph/leiden.py): what a refresh re-clusters stays bounded; 0: no limit


@dataclass
class CommunityPlan:
    """What a refresh leaves, for the part of the layer it concerns."""

    members: dict[str, list[str]]  # the communities it leaves there: id -> sorted members
    strength: dict[str, int]  # the strength of each of their members
    before: dict[tuple[str, str], int]  # the stored memberships it may change: (member, community) -> support
    existing: dict[str, Node]  # the stored Community nodes it concerns (each kept, rewritten or removed)
    wanted: dict[str, Node]  # the Community nodes it leaves
    clustered: int  # entities clustered again
    from_scratch: bool


def plan_communities(store: GraphStore, policy: CommunityPolicy, touched: CommunityChanges | None = None) -> CommunityPlan:
    """The layer's part that ``touched`` concerns, clustered again and described (reads only; ``touched=None``:
    every community, from scratch)."""
    # with no community yet (a first build) every entity is clustered anyway: from scratch, reading every edge at
    # once, gives exactly what an update would, without naming every entity in its reads
    if touched is not None and not touched.everything and store.counts()["nodes"][NodeType.COMMUNITY]:
        from graphdex.ingest.community_update import plan_update

        plan = plan_update(store, policy, touched)
        if plan is not None:
            return plan
        log.warning("the community layer was written by an earlier version (no strengths): refreshing every community once")
    return _plan_from_scratch(store, policy)


def _plan_from_scratch(store: GraphStore, policy: CommunityPolicy) -> CommunityPlan:
    weights = store.edge_weights(EdgeType.RELATED_TO)
    strength: Counter = Counter()
    for source, target, support in weights:
        if source != target:
            strength[source] += support
            strength[target] += support
    merged = merge_edges((s, t, float(w)) for s, t, w in weights)
    del weights
    total = store.total_support(EdgeType.RELATED_TO)
    groups = local_communities(strength, merged, strength, total, policy.resolution, None, policy.min_size, max_size=policy.max_size)
    del merged
    members = {community_id(group[0]): group for group in groups}  # groups are disjoint and sorted: unique names
    existing = store.get_nodes(sorted(store.node_ids(NodeType.COMMUNITY)), contributions=False)
    before = {(member, community): support for member, community, support in store.edge_weights(EdgeType.IN_COMMUNITY)}
    wanted = describe_communities(store, members, strength)
    return CommunityPlan(members, dict(strength), before, existing, dict(sorted(wanted.items())), len(strength), True)


def refresh_communities(target: IndexTarget, policy: CommunityPolicy, touched: CommunityChanges | None = None) -> int:
    """Cluster again the part of the layer ``touched`` concerns (None: all of it, from scratch) and write the
    difference in one write; returns how many Community nodes and membership edges were written or removed."""
    plan = plan_communities(target.store, policy, touched)
    wanted, existing = plan.wanted, plan.existing
    removed = sorted(set(existing) - set(wanted))
    gone = set(removed)
    changed = [node for cid, node in sorted(wanted.items()) if cid not in existing or existing[cid].props != node.props]
    links = {(member, cid): plan.strength[member] for cid, group in plan.members.items() for member in group}
    # a membership that is new or whose member's strength changed (an entity deleted and created again, by a
    # replaced document, lost its edge while its community kept its id: it is new here too)
    new_edges = [Edge(member, EdgeType.IN_COMMUNITY, cid, {"support": support}) for (member, cid), support in sorted(links.items())
                 if plan.before.get((member, cid)) != support]
    # a member that left a community that stays (the edges of removed communities go with them)
    left = [(member, EdgeType.IN_COMMUNITY, cid) for member, cid in sorted(plan.before) if (member, cid) not in links and cid not in gone]
    re_embed = [n for n in changed if n.id not in existing or embedding_text(existing[n.id]) != embedding_text(n)]
    if changed or removed or new_edges or left:
        target.apply(target.embed(re_embed), changed, new_edges, delete_nodes=removed, delete_edges=left,
                     delete_vectors={NodeType.COMMUNITY: removed}, touches=False)
    log.info("communities (%s): %d entities re-clustered, %d communities concerned, %d left; %d written, %d removed; %d memberships written, %d removed",
             "from scratch" if plan.from_scratch else "touched", plan.clustered, len(existing), len(wanted), len(changed), len(removed),
             len(new_edges), len(left))
    return len(changed) + len(removed) + len(new_edges) + len(left)
