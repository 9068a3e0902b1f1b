"""Updating the community layer after a write: only the touched entities move.

The touched entities (and the entities around them that belong to no community) are clustered again; every other
entity stays in its community. Each community next to them takes part as one vertex, weighted by the strength of its
members that stay, so Leiden weighs joining it by the modularity of the whole graph without reading its members:
that strength is kept on the Community node, and each member's on its membership edge. Reading, clustering and
writing then follow what the write touched, not the size of the communities it touched (which a hub entity, touched
by most writes and related to thousands, makes large).

After the clustering each group is named by the community most of it comes from: a community keeps its id while it
gains and loses members, two communities a write joined keep the id of the larger, and a group of new entities is
named by its first member whose name is free. A group under the minimum size gets no community; a cluster over the
maximum is split at a higher resolution among its vertices, each community counted by the members it keeps
(graph/leiden.py), so the limit holds without reading the members of the communities it concerns.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from graphdex.common.ids import community_id
from graphdex.graph.leiden import local_communities, merge_edges
from graphdex.graph.model import EdgeType, Node, NodeType
from graphdex.graph.store import GraphStore
from graphdex.ingest.community_description import describe_communities
from graphdex.ingest.community_layer import CommunityPlan, CommunityPolicy
from graphdex.ingest.target import CommunityChanges


@dataclass
class Neighbourhood:
    """The entities clustered again, their relations, and where their neighbours are."""

    free: list[str]  # sorted: the entities that may move
    edges: dict[tuple[str, str], int]  # every RELATED_TO edge of a free entity (self-loops left out)
    membership: dict[str, tuple[str, int]]  # entity -> (community, support) for the free entities and their neighbours
    strength: Counter = field(default_factory=Counter)  # each free entity's strength, from its edges

    def __post_init__(self) -> None:
        free = set(self.free)
        for (source, target), support in self.edges.items():
            for end in (source, target):
                if end in free:
                    self.strength[end] += support


def read_neighbourhood(store: GraphStore, touched: Iterable[str]) -> Neighbourhood:
    """The touched entities that still exist, with the neighbours of theirs that belong to no community (a group
    too small to be one, which the write may complete), their edges, and the communities of every neighbour."""
    touched_ids = sorted(set(touched))
    edges = _edges(store, touched_ids)
    ends = {end for pair in edges for end in pair}
    membership = _memberships(store, sorted(ends | set(touched_ids)))
    loose = sorted(ends - set(touched_ids) - membership.keys())
    if loose:
        more = _edges(store, loose)
        edges.update(more)
        further = {end for pair in more for end in pair} - ends - set(touched_ids)
        ends |= further
        membership.update(_memberships(store, sorted(further)))
    free = sorted((set(touched_ids) | set(loose)) & (ends | membership.keys()))
    return Neighbourhood(free, edges, membership)


def _edges(store: GraphStore, ids: list[str]) -> dict[tuple[str, str], int]:
    return {(s, t): w for s, t, w in store.edge_weights(EdgeType.RELATED_TO, ids) if s != t}


def _memberships(store: GraphStore, entities: list[str]) -> dict[str, tuple[str, int]]:
    asked = set(entities)
    return {member: (community, support) for member, community, support in store.edge_weights(EdgeType.IN_COMMUNITY, entities)
            if member in asked}


def _members(store: GraphStore, communities: Iterable[str]) -> dict[str, dict[str, int]]:
    """Each community's members with their kept strength, read through the communities."""
    wanted = sorted(set(communities))
    found: dict[str, dict[str, int]] = {c: {} for c in wanted}
    asked = set(wanted)
    for member, community, support in store.edge_weights(EdgeType.IN_COMMUNITY, wanted):
        if community in asked:
            found[community][member] = support
    return found


def plan_update(store: GraphStore, policy: CommunityPolicy, touched: CommunityChanges) -> CommunityPlan | None:
    """The plan of a refresh after a write (``touched``); None when the stored layer keeps no strengths (written by
    an earlier version), which only a refresh from scratch can add."""
    hood = read_neighbourhood(store, touched.entities)
    free = set(hood.free)
    came_from = {entity: hood.membership[entity][0] for entity in hood.free if entity in hood.membership}
    around = {hood.membership[end][0] for pair in hood.edges for end in pair if end not in free and end in hood.membership}
    asked = sorted(around | set(came_from.values()) | set(touched.communities))
    stored = {cid: node for cid, node in store.get_nodes(asked, contributions=False).items() if node.type == NodeType.COMMUNITY}
    if any("strength" not in node.props for node in stored.values()):
        return None
    total = store.total_support(EdgeType.RELATED_TO)
    # a community that lost a deleted member is read whole: the deleted member's strength went with its membership
    members_of = _members(store, set(touched.communities) & stored.keys())
    supers, kept_strength, kept_size = _kept(stored, members_of, hood, free)
    strength = {e: int(hood.strength[e]) for e in hood.free}
    if supers:
        vertex = {e: e for e in hood.free} | {m: c for m, (c, _) in hood.membership.items() if m not in free and c in supers}
        links = merge_edges((vertex[s], vertex[t], float(w)) for (s, t), w in hood.edges.items() if s in vertex and t in vertex)
        weight = {**{e: float(strength[e]) for e in hood.free}, **{c: float(kept_strength[c]) for c in supers}}
        initial = {**came_from, **{c: c for c in supers}}
        # bounded with each community counted by the members it keeps: a cluster over the limit (a hub that drew
        # small communities together) is split at a higher resolution among these vertices, its communities whole
        clusters = local_communities(hood.free + sorted(supers), links, weight, total, policy.resolution, initial, min_size=1,
                                     max_size=policy.max_size, sizes={c: kept_size[c] for c in supers})
        origins = set(came_from.values()) | members_of.keys()
        # a community alone in its cluster, that lost no member, is left as it is
        changed = [c for c in clusters if not (len(c) == 1 and c[0] in supers and c[0] not in origins)]
        members_of |= _members(store, {v for cluster in changed for v in cluster if v in supers} - members_of.keys())
        expanded = (sorted(m for v in cluster for m in ([v] if v in free else [m for m in members_of[v] if m not in free])) for cluster in changed)
        groups = [group for group in expanded if len(group) >= policy.min_size]
        concerned = origins | {v for cluster in changed for v in cluster if v in supers}
    else:
        # nothing around is a community (a first build, or communities all of whose members moved): the clustering
        # from scratch, bounded as it bounds
        weight = {e: float(strength[e]) for e in hood.free}
        links = merge_edges((s, t, float(w)) for (s, t), w in hood.edges.items() if s in free and t in free)
        groups = local_communities(hood.free, links, weight, total, policy.resolution, came_from, policy.min_size, max_size=policy.max_size)
        concerned = set(came_from.values()) | members_of.keys()
    for members in members_of.values():
        strength.update((m, s) for m, s in members.items() if m not in free)
    before = {(m, c): s for c, members in members_of.items() for m, s in members.items()}
    before.update(((e, c), hood.membership[e][1]) for e, c in came_from.items())
    existing = {cid: stored[cid] for cid in sorted(concerned & stored.keys())}
    named = _named(store, groups, came_from | _origin(members_of, free), set(existing))
    wanted = describe_communities(store, named, strength)
    return CommunityPlan(named, strength, before, existing, dict(sorted(wanted.items())), len(free), False)


def _kept(stored: dict[str, Node], members_of: dict[str, dict[str, int]], hood: Neighbourhood,
          free: set[str]) -> tuple[set[str], dict[str, int], dict[str, int]]:
    """The communities that keep members outside the free entities, and those members' summed strength: the stored
    total less the free members' kept strengths (or, for a community read whole, counted from its members), and
    how many they are."""
    size = {cid: int(node.props["size"]) for cid, node in stored.items()}
    kept = {cid: int(node.props["strength"]) for cid, node in stored.items()}
    for cid, members in members_of.items():
        size[cid] = sum(1 for m in members if m not in free)
        kept[cid] = sum(s for m, s in members.items() if m not in free)
    for entity in hood.free:
        if entity in hood.membership:
            community, support = hood.membership[entity]
            if community in stored and community not in members_of:
                size[community] -= 1
                kept[community] -= support
    return {cid for cid, n in size.items() if n > 0}, kept, size


def _origin(members_of: dict[str, dict[str, int]], free: set[str]) -> dict[str, str]:
    return {m: cid for cid, members in members_of.items() for m in members if m not in free}


def _named(store: GraphStore, groups: list[list[str]], origin: dict[str, str], replaced: set[str]) -> dict[str, list[str]]:
    """Each group under the id of the community most of its members come from (each id given once, the most members
    first), or else under its first member whose community name is free: a community keeps its id while it gains
    and loses members, and a first build names every group by its first member, as a refresh from scratch does.
    ``replaced``: the stored communities the plan replaces, whose names are free unless a group keeps them (a
    document replaced by a new version deletes and creates its entities again: their groups find their names)."""
    votes = sorted((-count, cid, i) for i, group in enumerate(groups) for cid, count in Counter(origin[m] for m in group if m in origin).items())
    names: dict[int, str] = {}
    taken: set[str] = set()
    for _, cid, i in votes:
        if i not in names and cid not in taken:
            names[i] = cid
            taken.add(cid)
    unnamed = [i for i in range(len(groups)) if i not in names]
    exists = set(store.get_nodes([community_id(groups[i][0]) for i in unnamed], contributions=False)) - replaced if unnamed else set()
    for i in unnamed:
        candidates = [community_id(m) for m in groups[i]] + [community_id(f"{groups[i][0]}#{n}") for n in range(1, len(groups) + 2)]
        for cid in candidates:
            if cid not in taken and cid not in exists and (cid == candidates[0] or cid in replaced or not store.get_nodes([cid], contributions=False)):
                names[i] = cid
                taken.add(cid)
                break
    return {names[i]: groups[i] for i in sorted(names, key=names.__getitem__)}
