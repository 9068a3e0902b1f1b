"""Liveness for load balancers and `docker compose`: answers only when the store and vector indexes can be read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from graphdex.api.deps import KeyCheckedFirst, QueueDep, SettingsDep, WorkspaceDep

# open even when reads need the API key: the container's health check does not carry one
router = APIRouter(route_class=KeyCheckedFirst, tags=["service"])


@router.get("/health", summary="Store and vector indexes reachable, queue state (null on a query replica)")
def health(ws: WorkspaceDep, queue: QueueDep, settings: SettingsDep) -> dict[str, Any]:
    with ws.guard.read():
        version = ws.store.version
        vectors = ws.vectors.counts()
    return {"status": "ok", "store": settings.store, "store_version": version, "vectors": vectors,
            "ingest": settings.ingest, "queue": queue.counts() if queue is not None else None}
