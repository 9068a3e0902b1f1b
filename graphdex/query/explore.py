"""Browsing the graph: entity search, an entity's neighbours, the subgraph around it, a community.

Reads of one store, shaped for people and agents (ids, types, readable names); the REST routes, the MCP tools and
the web UI all show these. They take no lock: the caller holds the read side of its workspace's (api/index.py), so
an answer never mixes the graph before and after an ingestion batch.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from graphdex.common.errors import NotFound
from graphdex.graph.model import Edge, EdgeKey, EdgeType, Node, NodeType
from graphdex.graph.store import GraphStore

#: The most nodes one subgraph answer holds: a hub's neighbourhood runs into thousands
MAX_SUBGRAPH_NODES = 500


def node_summary(node: Node) -> dict[str, Any]:
    """Id, type and the most readable name a node has."""
    props = node.props
    name = props.get("name") or props.get("label") or props.get("title") or node.id
    return {"id": node.id, "type": str(node.type), "name": name}


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
                    edges[edge.key] = {"source": edge.source, "target": edge.target, "type": str(edge.type),
                                       "keywords": edge.props.get("keywords", []), "weight": edge.props.get("weight", 1)}
    nodes = store.get_nodes(seen, contributions=False)
    return {"nodes": [{**node_summary(nodes[i]), "depth": d} for i, d in seen.items() if i in nodes], "edges": list(edges.values())}


def community(store: GraphStore, community_id: str) -> dict[str, Any]:
    """A community's stored description: label, keywords, size, its members' strongest names."""
    node = _typed(store, community_id, NodeType.COMMUNITY)
    return {"id": node.id, **node.props}


def _typed(store: GraphStore, node_id: str, type_: NodeType) -> Node:
    node = store.get_nodes([node_id], contributions=False).get(node_id)
    if node is None or node.type != type_:
        raise NotFound(f"no {type_.value.lower()} {node_id!r}")
    return node


def _strongest_first(edge: Edge) -> float:
    return -float(edge.props.get("weight", 1))


def _other_end(edge: Edge, node_id: str) -> str:
    return edge.target if edge.source == node_id else edge.source
