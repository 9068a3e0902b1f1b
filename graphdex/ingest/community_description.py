"""What a Community node says: a label, keywords, members and chunks, read from the community's core.

A community is described by its core, the ``DESCRIBED_MEMBERS`` members of highest strength (their summed relation
support in the whole graph, which the layer keeps on each membership edge), so describing a community of a thousand
members reads the props and the edges of a few hundred; its size and strength count every member. Within the core,
members are ranked by their support inside it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence

from graphdex.graph.model import Edge, EdgeKey, EdgeType, Node, NodeType
from graphdex.graph.store import GraphStore

LABEL_MEMBERS = 3
KEYWORDS = 8
CHUNKS_PER_COMMUNITY = 20
#: Members a community's description reads: the label, member list, keywords and chunks of a community come from its
#: strongest members, whose order the rest barely moves.
DESCRIBED_MEMBERS = 200
#: Members whose props (and core edges) one read fetches while describing communities: bounds what a refresh from
#: scratch holds at once.
DESCRIBE_BATCH = 5000


def described_core(members: Iterable[str], strength: Mapping[str, int]) -> list[str]:
    """The members a description reads: the ``DESCRIBED_MEMBERS`` of highest strength, ties by id."""
    return sorted(members, key=lambda m: (-strength.get(m, 0), m))[:DESCRIBED_MEMBERS]


def internal_degree(edges: Iterable[tuple[str, str, int]]) -> Counter:
    """Each end's summed support over ``edges`` (a self-loop counts for its node twice, as an edge's two ends)."""
    degree: Counter = Counter()
    for source, target, support in edges:
        degree[source] += support
        degree[target] += support
    return degree


def describe_community(members: Sequence[str], entities: Mapping[str, Node], internal: Iterable[Edge], strength: Mapping[str, int]) -> dict:
    """A Community node's props, from its (sorted) members, each member's strength, and RELATED_TO edges among them
    (those among the core suffice; others are ignored). ``entities`` needs the core's props only."""
    core = described_core(members, strength)
    within = set(core)
    among = [e for e in internal if e.source in within and e.target in within]
    degree = internal_degree((e.source, e.target, e.support_count) for e in among)
    ranked = sorted(core, key=lambda m: (-degree.get(m, 0), entities[m].props["name"]))
    keywords: Counter = Counter(keyword for edge in among for keyword in edge.props.get("keywords", ()))
    types = Counter(entities[m].props["type"] for m in core)
    chunk_counts: Counter = Counter(c for m in core for c in entities[m].props["chunks"])
    top_chunks = sorted(chunk_counts, key=lambda c: (-chunk_counts[c], c))[:CHUNKS_PER_COMMUNITY]
    ordered_keywords = [k for k, _ in sorted(keywords.items(), key=lambda i: (-i[1], i[0]))][:KEYWORDS]
    return {
        "label": ", ".join(entities[m].props["name"] for m in ranked[:LABEL_MEMBERS]),
        "keywords": ordered_keywords + [t.lower() for t, _ in sorted(types.items(), key=lambda i: (-i[1], i[0]))][:2],
        "size": len(members),
        "strength": sum(strength.get(m, 0) for m in members),
        "members": [entities[m].props["name"] for m in ranked[:20]],
        "chunks": top_chunks,
        "documents": sorted({c.rsplit(":", 1)[0] for c in top_chunks}),
    }


def describe_communities(store: GraphStore, communities: Mapping[str, Sequence[str]], strength: Mapping[str, int]) -> dict[str, Node]:
    """Community nodes for ``communities`` (id -> sorted members), reading only each one's core: per batch of
    about ``DESCRIBE_BATCH`` core members, one read of their props, one of the edges among them and one of those
    edges' props."""
    out: dict[str, Node] = {}
    batch: list[tuple[str, Sequence[str], list[str]]] = []
    held = 0
    for cid, members in communities.items():
        core = described_core(members, strength)
        batch.append((cid, members, core))
        held += len(core)
        if held >= DESCRIBE_BATCH:
            out.update(_describe_batch(store, batch, strength))
            batch, held = [], 0
    if batch:
        out.update(_describe_batch(store, batch, strength))
    return out


def _describe_batch(store: GraphStore, batch: list[tuple[str, Sequence[str], list[str]]], strength: Mapping[str, int]) -> dict[str, Node]:
    community_of = {member: cid for cid, _, core in batch for member in core}
    cores = sorted(community_of)
    support: dict[EdgeKey, int] = {(s, EdgeType.RELATED_TO, t): w for s, t, w in store.edge_weights(EdgeType.RELATED_TO, cores, within=True)
                                   if community_of[s] == community_of[t]}
    entities = store.get_nodes(cores, contributions=False)  # described by their props alone
    by_community: dict[str, list[Edge]] = defaultdict(list)
    # read without contributions (an edge between two hubs has thousands): the support comes from the weights read
    for edge in store.get_edges(support, contributions=False).values():
        weight = support[(edge.source, EdgeType.RELATED_TO, edge.target)]
        by_community[community_of[edge.source]].append(Edge(edge.source, edge.type, edge.target, {**edge.props, "support": weight}))
    return {cid: Node(cid, NodeType.COMMUNITY, describe_community(members, entities, by_community[cid], strength))
            for cid, members, _ in batch}
