"""Browsing the graph: counts, entity search, an entity's neighbours, the subgraph around it, communities.

Every read holds the read side of the workspace's lock, so a page never mixes the graph before and after an
ingestion batch.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query

from graphdex.api.deps import KeyCheckedFirst, JobsDep, WorkspaceDep, require_read_key
from graphdex.graph.model import EdgeKey, EdgeType, Node, NodeType

MAX_SUBGRAPH_NODES = 500

router = APIRouter(route_class=KeyCheckedFirst, prefix="/graph", tags=["graph"], dependencies=[Depends(require_read_key)])


@router.get("/stats", summary="Counts per node type, edge type and vector index")
def graph_stats(ws: WorkspaceDep, jobs: JobsDep) -> dict[str, Any]:
    with ws.guard.read():
        return {**ws.stats(), "queue": jobs.counts()}


@router.get("/entities", summary="Entities whose name or alias contains the text")
def search_entities(ws: WorkspaceDep, q: str = Query(..., min_length=1, max_length=200), limit: int = Query(20, ge=1, le=200)) -> dict[str, Any]:
    with ws.guard.read():
        found = ws.store.find_entities(q, limit)
    return {"entities": [{**_node_summary(n), "entity_type": n.props.get("type"), "support": n.props.get("support")} for n in found]}


@router.get("/entities/{entity_id}", summary="An entity with its strongest neighbours")
def get_entity(entity_id: str, ws: WorkspaceDep, limit: int = Query(25, ge=1, le=500)) -> dict[str, Any]:
    with ws.guard.read():
        node = ws.store.get_nodes([entity_id]).get(entity_id)
        if node is None or node.type != NodeType.ENTITY:
            raise HTTPException(404, f"no entity {entity_id!r}")
        edges = sorted(ws.store.edges_of(entity_id, [EdgeType.RELATED_TO]), key=lambda e: -float(e.props.get("weight", 1)))[:limit]
        others = ws.store.get_nodes(e.target if e.source == entity_id else e.source for e in edges)
    neighbours = []
    for edge in edges:
        other = others.get(edge.target if edge.source == entity_id else edge.source)
        if other is not None:
            neighbours.append({**_node_summary(other), "keywords": edge.props.get("keywords", []), "weight": edge.props.get("weight", 1)})
    return {"entity": {"id": node.id, **node.props}, "neighbours": neighbours}


@router.get("/subgraph", summary="The entities and relations around an entity")
def subgraph(ws: WorkspaceDep, entity: str = Query(..., min_length=1), depth: int = Query(1, ge=1, le=3),
             limit: int = Query(100, ge=1, le=MAX_SUBGRAPH_NODES)) -> dict[str, Any]:
    # breadth first, strongest relations first, until `limit` nodes: a neighbourhood can run into thousands
    with ws.guard.read():
        store = ws.store
        start = store.get_nodes([entity]).get(entity)
        if start is None or start.type != NodeType.ENTITY:
            raise HTTPException(404, f"no entity {entity!r}")
        seen = {entity: 0}
        edges: dict[EdgeKey, dict[str, Any]] = {}
        frontier = deque([entity])
        for level in range(1, depth + 1):
            by_node = store.edges_of_many(list(frontier), [EdgeType.RELATED_TO], contributions=False)
            frontier = deque()
            for node_id, node_edges in by_node.items():
                for edge in sorted(node_edges, key=lambda e: -float(e.props.get("weight", 1))):
                    other = edge.target if edge.source == node_id else edge.source
                    if other not in seen and len(seen) < limit:
                        seen[other] = level
                        frontier.append(other)
                    if other in seen:
                        edges[edge.key] = {"source": edge.source, "target": edge.target, "type": str(edge.type),
                                           "keywords": edge.props.get("keywords", []), "weight": edge.props.get("weight", 1)}
        nodes = store.get_nodes(seen)
    return {"nodes": [{**_node_summary(nodes[i]), "depth": d} for i, d in seen.items() if i in nodes], "edges": list(edges.values())}


@router.get("/communities/{community_id}", summary="A community: label, keywords, members, chunks")
def get_community(community_id: str, ws: WorkspaceDep) -> dict[str, Any]:
    with ws.guard.read():
        node = ws.store.get_nodes([community_id]).get(community_id)
    if node is None or node.type != NodeType.COMMUNITY:
        raise HTTPException(404, f"no community {community_id!r}")
    return {"id": node.id, **node.props}


def _node_summary(node: Node) -> dict[str, Any]:
    """Id, type and the most readable name a node has."""
    props = node.props
    name = props.get("name") or props.get("label") or props.get("title") or node.id
    return {"id": node.id, "type": str(node.type), "name": name}
