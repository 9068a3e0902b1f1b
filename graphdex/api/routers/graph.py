"""Browsing the graph: counts, entity search, an entity's neighbours, the subgraph around it, communities.

Every read holds the read side of the workspace's lock, so a page never mixes the graph before and after an
ingestion batch.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query

from graphdex.api import actions
from graphdex.api.actions import MAX_SUBGRAPH_NODES
from graphdex.api.deps import KeyCheckedFirst, QueueDep, WorkspaceDep, require_read_key
from graphdex.graph.model import NodeType

router = APIRouter(route_class=KeyCheckedFirst, prefix="/graph", tags=["graph"], dependencies=[Depends(require_read_key)])


@router.get("/stats", summary="Counts per node type, edge type and vector index")
def graph_stats(ws: WorkspaceDep, queue: QueueDep) -> dict[str, Any]:
    return actions.graph_stats(ws, queue.counts() if queue is not None else None)


@router.get("/entities", summary="Entities whose name or alias contains the text")
def search_entities(ws: WorkspaceDep, q: str = Query(..., min_length=1, max_length=200), limit: int = Query(20, ge=1, le=200)) -> dict[str, Any]:
    return {"entities": actions.find_entities(ws, q, limit)}


@router.get("/entities/{entity_id}", summary="An entity with its strongest neighbours")
def get_entity(entity_id: str, ws: WorkspaceDep, limit: int = Query(25, ge=1, le=500)) -> dict[str, Any]:
    return actions.entity_neighbourhood(ws, entity_id, limit)


@router.get("/subgraph", summary="The entities and relations around an entity")
def subgraph(ws: WorkspaceDep, entity: str = Query(..., min_length=1), depth: int = Query(1, ge=1, le=3),
             limit: int = Query(100, ge=1, le=MAX_SUBGRAPH_NODES)) -> dict[str, Any]:
    return actions.subgraph(ws, entity, depth, limit)


@router.get("/communities/{community_id}", summary="A community: label, keywords, members, chunks")
def get_community(community_id: str, ws: WorkspaceDep) -> dict[str, Any]:
    with ws.guard.read():
        node = ws.store.get_nodes([community_id]).get(community_id)
    if node is None or node.type != NodeType.COMMUNITY:
        raise HTTPException(404, f"no community {community_id!r}")
    return {"id": node.id, **node.props}
