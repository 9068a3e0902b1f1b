"""Workspaces: isolated corpora served side by side, each with its own graph, vectors and queue.

Creating and deleting needs the admin key; listing shows the workspaces the caller's key may read. A workspace's own
routes are the usual ones under /workspaces/{workspace}/ (app.py mounts them).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from graphdex.api.deps import (
    IndexDep,
    KeyCheckedFirst,
    ListingGrantDep,
    QueueDep,
    RegistryDep,
    WorkspaceName,
    require_admin_key,
    require_read_key,
)
from graphdex.api.index import Index
from graphdex.api.lifecycle import UnknownWorkspace
from graphdex.api.registry import WorkspaceBusy, WorkspaceRegistry
from graphdex.api.schemas import WorkspaceIn
from graphdex.graph.store import StoreError

router = APIRouter(route_class=KeyCheckedFirst, prefix="/workspaces", tags=["workspaces"])


@router.post("", status_code=201, dependencies=[Depends(require_admin_key)], summary="Create an empty workspace (409 if it exists)")
def create_workspace(body: WorkspaceIn, registry: RegistryDep) -> dict[str, Any]:
    registry.create(body.name)
    return {"name": body.name, "url": f"/workspaces/{body.name}"}


@router.get("", summary="Every workspace the key may read, with its document counts")
def list_workspaces(registry: RegistryDep, grant: ListingGrantDep) -> dict[str, Any]:
    return {"workspaces": [_summary(registry, name) for name in registry.names() if grant.covers(name)]}


def _summary(registry: WorkspaceRegistry, name: str) -> dict[str, Any]:
    """Name and counts; a workspace that cannot be opened (its store unreachable) says why instead of failing the list."""
    try:
        served = registry.acquire(name)
    except (UnknownWorkspace, WorkspaceBusy, StoreError) as error:  # deleted meanwhile, or its store unavailable
        return {"name": name, "error": str(error)}
    try:
        return {"name": name, "documents": served.index.document_count(), "queue": served.queue_counts()}
    except StoreError as error:
        return {"name": name, "error": str(error)}
    finally:
        served.leave()


@router.get("/{workspace}", dependencies=[Depends(require_read_key)], summary="A workspace: counts per node type, edge type and vector index, queue")
def workspace_stats(workspace: WorkspaceName, index: IndexDep, queue: QueueDep) -> dict[str, Any]:
    return {"name": workspace, **_neo4j_name(index), **index.stats(), "queue": queue.counts() if queue is not None else None}


def _neo4j_name(index: Index) -> dict[str, str]:
    """On Neo4j, the `workspace` property its nodes carry: the $workspace parameter of the Browser queries."""
    return {"neo4j_workspace": index.settings.neo4j_workspace} if index.settings.store == "neo4j" else {}


@router.delete("/{workspace}", dependencies=[Depends(require_admin_key)],
               summary="Delete a workspace with its graph, vectors and queue (the default workspace cannot be deleted: 409)")
def delete_workspace(workspace: WorkspaceName, registry: RegistryDep) -> dict[str, Any]:
    registry.delete(workspace)
    return {"name": workspace, "deleted": True}
