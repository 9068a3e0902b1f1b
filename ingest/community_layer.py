"""The community layer: Leiden communities over the entity graph, as Community nodes with a label and keywords.

Communities are recomputed from the whole RELATED_TO graph after each ingest or delete: a function of the graph, so
that a delete leaves exactly the communities a build without the document would have. That recomputation is the part
of every write that grows with the index (docs/scaling.md). What is written stays proportional to what changed: a
community is named by one of its members, so one that gains or loses a few members keeps its id and only those
members' edges are written; only communities whose members or text changed are rewritten and re-embedded.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass

from graphdex.common.ids import community_id
from graphdex.graph.leiden import detect_communities
from graphdex.graph.model import Edge, EdgeType, Node, NodeType
from graphdex.ingest.derive import embedding_text
from graphdex.ingest.target import IndexTarget

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class CommunityPolicy:
    resolution: float = 1.0  # Leiden's modularity resolution: higher gives more, smaller communities
    min_size: int = 3  # smaller groups get no Community node


LABEL_MEMBERS = 3
KEYWORDS = 8
CHUNKS_PER_COMMUNITY = 20


def _describe(members: list[str], entities: dict[str, Node], internal: list[Edge], degree: Counter) -> dict:
    ranked = sorted(members, key=lambda m: (-degree[m], entities[m].props["name"]))
    keywords: Counter = Counter()
    for edge in internal:
        for keyword in edge.props.get("keywords", ()):
            keywords[keyword] += 1
    types = Counter(entities[m].props["type"] for m in members)
    chunk_counts: Counter = Counter(c for m in members for c in entities[m].props["chunks"])
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


def _support(edge: Edge) -> int:
    """How many chunks support the edge (derived into its props, so the contributions need not be read)."""
    return int(edge.props.get("support") or len(edge.contrib))


def refresh_communities(target: IndexTarget, policy: CommunityPolicy) -> int:
    """Recompute communities and write the difference; returns how many Community nodes and membership edges were
    written or removed."""
    store = target.store
    related = list(store.iter_edges([EdgeType.RELATED_TO], contributions=False))
    groups = detect_communities(((e.source, e.target, float(_support(e))) for e in related), policy.resolution, policy.min_size)
    membership = {m: i for i, group in enumerate(groups) for m in group}
    entities = store.get_nodes(membership)
    degree: Counter = Counter()
    internal: dict[int, list[Edge]] = defaultdict(list)
    for edge in related:
        a, b = membership.get(edge.source), membership.get(edge.target)
        if a is not None and a == b:
            internal[a].append(edge)
            degree[edge.source] += _support(edge)
            degree[edge.target] += _support(edge)
    wanted: dict[str, Node] = {}
    members_of: dict[str, list[str]] = {}
    for i, group in enumerate(groups):
        cid = community_id(group[0])  # named by its first member (groups are sorted), see community_id
        members_of[cid] = group
        wanted[cid] = Node(cid, NodeType.COMMUNITY, _describe(group, entities, internal[i], degree))
    existing = store.get_nodes(store.node_ids(NodeType.COMMUNITY))
    removed = sorted(set(existing) - set(wanted))
    changed = [node for cid, node in wanted.items() if cid not in existing or existing[cid].props != node.props]
    # the membership edges of the communities that stay: read through the communities, not by a scan of every edge
    kept = sorted(set(existing) & set(wanted))
    linked = {(e.source, e.target) for edges in store.edges_of_many(kept, [EdgeType.IN_COMMUNITY], contributions=False).values() for e in edges}
    wanted_links = {(member, cid) for cid, members in members_of.items() for member in members}
    # every member's edge, not only those of new communities: an entity deleted and created again (a replaced
    # document) lost its edge, while its community kept its id
    new_edges = [Edge(member, EdgeType.IN_COMMUNITY, cid) for member, cid in sorted(wanted_links - linked)]
    # a member that left a community that stays (the edges of removed communities go with them)
    left = [(member, EdgeType.IN_COMMUNITY, cid) for member, cid in sorted(linked - wanted_links)]
    re_embed = [n for n in changed if n.id not in existing or embedding_text(existing[n.id]) != embedding_text(n)]
    target.apply(target.embed(re_embed), changed, new_edges, delete_nodes=removed, delete_edges=left, delete_vectors={NodeType.COMMUNITY: removed})
    log.info("communities: %d in all, %d written, %d removed; %d memberships added, %d removed", len(wanted), len(changed), len(removed),
             len(new_edges), len(left))
    return len(changed) + len(removed) + len(new_edges) + len(left)
