"""Browsing the graph: entity search, an entity's neighbours, the subgraph around it, a community, any node with its
supporting chunks, and the nodes that led a query to each passage.

Reads of one store, shaped for people and agents (ids, types, readable names); the REST routes, the MCP tools and
the web UI all show these. They take no lock: the caller holds the read side of its workspace's (api/index.py), so
an answer never mixes the graph before and after an ingestion batch.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from graphdex.common.errors import NotFound
from graphdex.graph.model import Edge, EdgeKey, EdgeType, Node, NodeType, entity_label
from graphdex.graph.store import GraphStore

#: The most nodes one subgraph answer holds: a hub's neighbourhood runs into thousands
MAX_SUBGRAPH_NODES = 500

#: The links along which a node is expanded in a graph view. An entity's chunks are not among them: a much-mentioned
#: entity has thousands, so they are listed as its supporting chunks (strongest first) instead of drawn.
EXPANSION_EDGES: dict[NodeType, tuple[EdgeType, ...]] = {
    NodeType.ENTITY: (EdgeType.RELATED_TO, EdgeType.IN_COMMUNITY),
    NodeType.RELATION: (EdgeType.CONNECTS,),
    NodeType.COMMUNITY: (EdgeType.IN_COMMUNITY,),
    NodeType.DOCUMENT: (EdgeType.HAS_CHUNK,),
    NodeType.CHUNK: (EdgeType.HAS_CHUNK, EdgeType.MENTIONS),
}


def node_summary(node: Node) -> dict[str, Any]:
    """Id, type and the most readable name a node has; for an entity also the label of its kind ("Person"), which
    the Neo4j Browser style and the web UI colour it by."""
    props = node.props
    name = props.get("name") or props.get("label") or props.get("title") or node.id
    summary = {"id": node.id, "type": str(node.type), "name": name}
    if node.type == NodeType.ENTITY:
        summary["label"] = entity_label(props.get("type", ""))
    return summary


def find_entities(store: GraphStore, text: str, limit: int) -> list[dict[str, Any]]:
    """Entities whose name or alias contains the text."""
    return [{**node_summary(n), "entity_type": n.props.get("type"), "support": n.props.get("support")} for n in store.find_entities(text, limit)]


def entity_neighbourhood(store: GraphStore, entity_id: str, limit: int) -> dict[str, Any]:
    """An entity with its properties and its ``limit`` strongest neighbours (by the weight of their link)."""
    node = _typed(store, entity_id, NodeType.ENTITY)
    edges = sorted(store.edges_of(entity_id, [EdgeType.RELATED_TO]), key=_strongest_first)[:limit]
    others = store.get_nodes(_other_end(e, entity_id) for e in edges)
    neighbours = []
    for edge in edges:
        other = others.get(_other_end(edge, entity_id))
        if other is not None:
            neighbours.append({**node_summary(other), "keywords": edge.props.get("keywords", []), "weight": edge.props.get("weight", 1)})
    return {"entity": {"id": node.id, **node.props}, "neighbours": neighbours}


def subgraph(store: GraphStore, entity_id: str, depth: int, limit: int) -> dict[str, Any]:
    """The entities within ``depth`` links of an entity and the links between them, at most ``limit`` nodes: breadth
    first, the strongest relations first, so a hub's answer holds its closest ties rather than an arbitrary few."""
    _typed(store, entity_id, NodeType.ENTITY)
    seen = {entity_id: 0}
    edges: dict[EdgeKey, dict[str, Any]] = {}
    frontier = deque([entity_id])
    for level in range(1, depth + 1):
        by_node = store.edges_of_many(list(frontier), [EdgeType.RELATED_TO], contributions=False)
        frontier = deque()
        for node_id, node_edges in by_node.items():
            for edge in sorted(node_edges, key=_strongest_first):
                other = _other_end(edge, node_id)
                if other not in seen and len(seen) < limit:
                    seen[other] = level
                    frontier.append(other)
                if other in seen:
                    edges[edge.key] = _edge_summary(edge)
    nodes = store.get_nodes(seen, contributions=False)
    return {"nodes": [{**node_summary(nodes[i]), "depth": d} for i, d in seen.items() if i in nodes], "edges": list(edges.values())}


def community(store: GraphStore, community_id: str) -> dict[str, Any]:
    """A community's stored description: label, keywords, size, its members' strongest names."""
    node = _typed(store, community_id, NodeType.COMMUNITY)
    return {"id": node.id, **node.props}


def node_details(store: GraphStore, node_id: str, neighbours: int, chunks: int) -> dict[str, Any]:
    """Any node with its properties, its ``neighbours`` strongest links along ``EXPANSION_EDGES`` (how many it has
    in all too), and up to ``chunks`` chunks that support it, with their citations."""
    node = store.get_nodes([node_id], contributions=False).get(node_id)
    if node is None:
        raise NotFound(f"no node {node_id!r}")
    edges = sorted(store.edges_of(node_id, EXPANSION_EDGES[node.type]), key=_strongest_first)
    others = store.get_nodes((_other_end(e, node_id) for e in edges[:neighbours]), contributions=False)
    linked = []
    for edge in edges[:neighbours]:
        other = others.get(_other_end(edge, node_id))
        if other is not None:
            linked.append({**node_summary(other), "edge": _edge_summary(edge)})
    return {"node": {**node_summary(node), "properties": node.props}, "neighbour_count": len(edges), "neighbours": linked,
            "chunks": _chunk_citations(store, _supporting_chunks(store, node, chunks))}


def passage_links(store: GraphStore, chunk_ids: Sequence[str], scores: Mapping[str, float], per_passage: int) -> dict[str, list[dict[str, Any]]]:
    """For each passage a query returned, the nodes that led the query to it: among the entities it mentions and the
    relations it evidences, those the query scored (``scores``: every node its retrieval weighed), best first."""
    edges = store.edges_of_many(chunk_ids, [EdgeType.MENTIONS, EdgeType.EVIDENCES], contributions=False)
    linked = {c: sorted({_other_end(e, c) for e in edges.get(c, ())} & scores.keys(), key=lambda n: (-scores[n], n))[:per_passage] for c in chunk_ids}
    nodes = store.get_nodes({n for ids in linked.values() for n in ids}, contributions=False)
    return {c: [node_summary(nodes[n]) for n in ids if n in nodes] for c, ids in linked.items()}


def _supporting_chunks(store: GraphStore, node: Node, limit: int) -> list[str]:
    if node.type == NodeType.CHUNK:
        return [node.id]
    if node.props.get("chunks"):  # relations and communities keep the chunks they rest on
        return list(node.props["chunks"])[:limit]
    if node.type == NodeType.DOCUMENT:
        starts = store.get_nodes((e.target for e in store.edges_of(node.id, [EdgeType.HAS_CHUNK])), contributions=False)
        return sorted(starts, key=lambda c: int(starts[c].props.get("index", 0)))[:limit]
    support = EdgeType.EVIDENCES if node.type == NodeType.RELATION else EdgeType.MENTIONS
    return [e.source for e in sorted(store.edges_of(node.id, [support]), key=_strongest_first)[:limit]]


def _chunk_citations(store: GraphStore, chunk_ids: list[str]) -> list[dict[str, Any]]:
    """Chunks as a reader cites them: text, document title, page and section when known."""
    found = store.get_nodes(chunk_ids, contributions=False)
    cited = []
    for chunk_id in chunk_ids:
        chunk = found.get(chunk_id)
        if chunk is not None:
            props = chunk.props
            cited.append({"chunk_id": chunk_id, "doc_id": props.get("document_id"), "title": props.get("title", ""), "text": props.get("text", ""),
                          "page": props.get("page"), "page_end": props.get("page_end"), "section": props.get("section")})
    return cited


def _edge_summary(edge: Edge) -> dict[str, Any]:
    return {"source": edge.source, "target": edge.target, "type": str(edge.type), "keywords": edge.props.get("keywords", []),
            "weight": edge.props.get("weight", 1)}


def _typed(store: GraphStore, node_id: str, type_: NodeType) -> Node:
    node = store.get_nodes([node_id], contributions=False).get(node_id)
    if node is None or node.type != type_:
        raise NotFound(f"no {type_.value.lower()} {node_id!r}")
    return node


def _strongest_first(edge: Edge) -> float:
    return -float(edge.props.get("weight", 1))


def _other_end(edge: Edge, node_id: str) -> str:
    return edge.target if edge.source == node_id else edge.source
