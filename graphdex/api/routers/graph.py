"""Browsing the graph: counts, entity search, an entity's neighbours, the subgraph around it, communities, any node
with its supporting chunks (what the web UI's explorer opens).

The reads are the workspace's (api/index.py), which holds its lock while it reads: a page never mixes the graph
before and after an ingestion batch.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query

from graphdex.api import actions
from graphdex.api.deps import IndexDep, KeyCheckedFirst, QueueDep, require_read_key
from graphdex.query.explore import MAX_SUBGRAPH_NODES

router = APIRouter(route_class=KeyCheckedFirst, prefix="/graph", tags=["graph"], dependencies=[Depends(require_read_key)])


@router.get("/stats", summary="Counts per node type, edge type and vector index")
def graph_stats(index: IndexDep, queue: QueueDep) -> dict[str, Any]:
    return actions.graph_stats(index, queue.counts() if queue is not None else None)


@router.get("/entities", summary="Entities whose name or alias contains the text")
def search_entities(index: IndexDep, q: str = Query(..., min_length=1, max_length=200), limit: int = Query(20, ge=1, le=200)) -> dict[str, Any]:
    return {"entities": index.find_entities(q, limit)}


@router.get("/entities/{entity_id}", summary="An entity with its strongest neighbours")
def get_entity(entity_id: str, index: IndexDep, limit: int = Query(25, ge=1, le=500)) -> dict[str, Any]:
    return index.entity(entity_id, limit)


@router.get("/subgraph", summary="The entities and relations around an entity")
def subgraph(index: IndexDep, entity: str = Query(..., min_length=1), depth: int = Query(1, ge=1, le=3),
             limit: int = Query(100, ge=1, le=MAX_SUBGRAPH_NODES)) -> dict[str, Any]:
    return index.subgraph(entity, depth, limit)


@router.get("/communities/{community_id}", summary="A community: label, keywords, members, chunks")
def get_community(community_id: str, index: IndexDep) -> dict[str, Any]:
    return index.community(community_id)


@router.get("/nodes/{node_id:path}", summary="Any node: its properties, its strongest links and the chunks that support it (with citations)")
def get_node(node_id: str, index: IndexDep, neighbours: int = Query(25, ge=0, le=MAX_SUBGRAPH_NODES), chunks: int = Query(5, ge=0, le=50)) -> dict[str, Any]:
    return index.node(node_id, neighbours, chunks)
