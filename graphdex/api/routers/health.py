"""Liveness for load balancers and `docker compose`: answers only when the store and vector indexes can be read."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from graphdex.api.deps import IndexDep, KeyCheckedFirst, QueueDep, SettingsDep

# open even when reads need the API key: the container's health check does not carry one
router = APIRouter(route_class=KeyCheckedFirst, tags=["service"])


@router.get("/health", summary="Store and vector indexes reachable, queue state (null on a query replica)")
def health(index: IndexDep, queue: QueueDep, settings: SettingsDep) -> dict[str, Any]:
    return {"status": "ok", "store": settings.store, **index.health(),
            "ingest": settings.ingest, "queue": queue.counts() if queue is not None else None}
