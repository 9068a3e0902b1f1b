"""What the routes need, reached through FastAPI dependencies instead of a closure.

The service's parts (the workspace registry, the API keys, settings, query slots) are opened once in the app's
lifespan and kept in one typed `ServiceState` on ``app.state``; a route asks for the part it uses, so it can be read
and tested on its own, and a test can override any dependency.

Every workspace route exists twice: as it always was (the default workspace) and under /workspaces/{workspace}/.
The route code is the same; the dependencies below resolve the workspace from the path, so a route never knows which
workspace it serves.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from graphdex.api.access import Access, Grant, InvalidApiKey, KeyRing, Refused
from graphdex.api.index import Index
from graphdex.api.jobs import JobQueue
from graphdex.api.json_bodies import StrictJsonRoute
from graphdex.api.layout import DEFAULT_WORKSPACE, NAME_PATTERN, NAME_RULE, check_name
from graphdex.api.registry import ServedWorkspace, WorkspaceRegistry
from graphdex.api.workspace import Workspace
from graphdex.common.memory import freeze_startup_heap
from graphdex.common.settings import Settings

# the CLI and tests import the start-up refusal from here, where the service's keys are wired
__all__ = ["InvalidApiKey"]


@dataclass(frozen=True)
class ServiceState:
    """The running service: its workspaces (each with its only writer), its keys, and the cap on queries computed at
    once, shared by all workspaces as they share the CPU."""

    settings: Settings
    registry: WorkspaceRegistry
    keys: KeyRing
    query_slots: threading.BoundedSemaphore


@contextmanager
def open_service(settings: Settings, keys: KeyRing, workspace: Workspace | None = None) -> Iterator[ServiceState]:
    """Opens the default workspace (and those with queued work) for serving, and closes every workspace when the
    service stops. The REST app and `graphdex mcp` both serve through this."""
    with ExitStack() as stack:
        registry = WorkspaceRegistry(workspace or Workspace(settings))
        stack.callback(registry.close)
        registry.start()
        freeze_startup_heap()
        yield ServiceState(settings, registry, keys, threading.BoundedSemaphore(settings.max_concurrent_queries))


@contextmanager
def running_service(app: FastAPI, settings: Settings, keys: KeyRing, workspace: Workspace | None = None) -> Iterator[ServiceState]:
    """The open service, on ``app.state`` for the dependencies below while the app runs."""
    with open_service(settings, keys, workspace) as state:
        app.state.graphdex = state
        try:
            yield state
        finally:
            del app.state.graphdex


# The getters are async because they only read attributes: FastAPI runs sync dependencies in its thread pool, which
# queries waiting for a slot may already be filling.

async def get_settings(request: Request) -> Settings:
    return _state(request).settings


async def get_registry(request: Request) -> WorkspaceRegistry:
    return _state(request).registry


async def get_query_slots(request: Request) -> threading.BoundedSemaphore:
    return _state(request).query_slots


# the pattern is published for clients; the check itself is check_name's, whose 422 says what names look like
WorkspaceName = Annotated[str, Path(description=f"The workspace: {NAME_RULE}; `default` is the one the unprefixed URLs serve.",
                                    json_schema_extra={"pattern": NAME_PATTERN})]


async def workspace_in_path(workspace: WorkspaceName) -> None:
    """Declares the {workspace} of the /workspaces/{workspace}/... routes, so the OpenAPI schema lists it, and refuses a
    malformed name with a 422 that says what names look like."""
    check_name(workspace)


async def served_workspace(request: Request) -> AsyncIterator[ServedWorkspace]:
    """The workspace the path names (the default one without a prefix), opened on first use, and counted as in use
    until the response is done, so that deleting it waits for this request."""
    registry = _state(request).registry
    name = request.path_params.get("workspace", DEFAULT_WORKSPACE)
    # opening reads an index from disk or the network: not on the event loop
    served = registry.acquire(name) if registry.opened(name) else await run_in_threadpool(registry.acquire, name)
    try:
        yield served
    finally:
        served.leave()


async def get_workspace(served: Annotated[ServedWorkspace, Depends(served_workspace)]) -> Workspace:
    return served.workspace


async def get_index(served: Annotated[ServedWorkspace, Depends(served_workspace)]) -> Index:
    """What a route asks of its workspace: reads under the workspace's lock, queries, answers."""
    return served.index


async def get_jobs(served: Annotated[ServedWorkspace, Depends(served_workspace)]) -> JobQueue:
    """The ingestion queue (NotTheWriter, a 503 naming the writer, on a query replica)."""
    return served.jobs


async def get_queue(served: Annotated[ServedWorkspace, Depends(served_workspace)]) -> JobQueue | None:
    """The ingestion queue, or None on a query replica: for reads that can do without it."""
    return served.queue


def _state(request: Request) -> ServiceState:
    return request.app.state.graphdex


# what a route declares, e.g. `def route(jobs: JobsDep) -> ...`
SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[WorkspaceRegistry, Depends(get_registry)]
WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]
IndexDep = Annotated[Index, Depends(get_index)]
JobsDep = Annotated[JobQueue, Depends(get_jobs)]
QueueDep = Annotated[JobQueue | None, Depends(get_queue)]
QuerySlotsDep = Annotated[threading.BoundedSemaphore, Depends(get_query_slots)]


async def require_write_key(request: Request) -> Grant:
    """Writes to the path's workspace need a key for it whenever a key is set."""
    return _authorize(request, Access.WRITE, _path_workspace(request))


async def require_read_key(request: Request) -> Grant:
    """Reads of the path's workspace need a key for it only when GRAPHDEX_API_KEY_FOR_READS says so."""
    return _authorize(request, Access.READ, _path_workspace(request))


async def require_listing_key(request: Request) -> Grant:
    """Listing workspaces is a read about none in particular; the route shows only those the grant covers."""
    return _authorize(request, Access.READ, None)


async def require_admin_key(request: Request) -> Grant:
    """Creating and deleting workspaces needs the admin key, GRAPHDEX_API_KEY, whenever one is set."""
    return _authorize(request, Access.ADMIN, None)


ListingGrantDep = Annotated[Grant, Depends(require_listing_key)]

# the strongest declared requirement wins (a write route also declares reads when mounted under a workspace)
_REQUIREMENTS: dict[Callable[..., Any], int] = {require_listing_key: 0, require_read_key: 1, require_write_key: 2, require_admin_key: 3}


def _path_workspace(request: Request) -> str:
    return request.path_params.get("workspace", DEFAULT_WORKSPACE)


def _authorize(request: Request, access: Access, workspace: str | None) -> Grant:
    # Starlette decodes header values as latin-1, which maps bytes one to one: encoding back gives the bytes sent,
    # so a key with non-ASCII characters, sent as UTF-8, matches the UTF-8 bytes of the configured one
    given = request.headers.get("x-api-key", "").encode("latin-1")
    try:
        return _state(request).keys.check(given, access, workspace)
    except Refused as refused:
        raise HTTPException(refused.status, str(refused)) from None


class KeyCheckedFirst(StrictJsonRoute):
    """A route that checks its API key before FastAPI reads and validates the request.

    FastAPI parses a JSON body before it runs any dependency, so with the key only in a dependency, a caller
    without the key would learn from a 422 what the body should be (or from a 404 which workspaces exist). Routes
    declare their access as before (``dependencies=[Depends(require_write_key)]``); this class runs that same check
    first. A route under /workspaces/{workspace}/ is at least a read of that workspace, even one open without a
    prefix (health). Its JSON body is then read as StrictJsonRoute reads it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        declared = [d.call for d in self.dependant.dependencies if d.call in _REQUIREMENTS]
        requirement = max(declared, key=_REQUIREMENTS.__getitem__, default=None)

        async def key_checked(request: Request) -> Response:
            if requirement is not None:
                await requirement(request)
            elif "workspace" in request.path_params:
                await require_read_key(request)
            return await handler(request)

        return key_checked
