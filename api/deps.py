"""What the routes need, reached through FastAPI dependencies instead of a closure.

The service's parts (workspace, job queue, ingestion worker, settings, query slots) are opened once in the app's
lifespan and kept in one typed `ServiceState` on ``app.state``; a route asks for the part it uses, so it can be read
and tested on its own, and a test can override any dependency.
"""

from __future__ import annotations

import secrets
import threading
import unicodedata
from collections.abc import Callable, Coroutine, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.routing import APIRoute

from graphdex.api.jobs import JobQueue
from graphdex.api.service import IngestionService
from graphdex.api.workspace import Workspace
from graphdex.common.settings import Settings


@dataclass(frozen=True)
class ServiceState:
    """The running service: one index, its only writer, and the cap on queries computed at once."""

    settings: Settings
    workspace: Workspace
    jobs: JobQueue
    service: IngestionService
    query_slots: threading.BoundedSemaphore


@contextmanager
def running_service(app: FastAPI, settings: Settings, workspace: Workspace | None = None) -> Iterator[ServiceState]:
    """Opens the index for serving, puts its state on ``app.state`` for the dependencies below, and closes
    everything, in reverse order, when the service stops."""
    with ExitStack() as stack:
        ws = workspace or Workspace(settings)
        stack.callback(ws.close)
        # the service is this index's only writer for as long as it runs
        stack.enter_context(ws.store.lock())
        jobs = JobQueue(ws.data_dir / "queue" / _queue_name(settings))
        stack.callback(jobs.close)
        service = IngestionService(ws, jobs, settings.ingest_batch_documents)
        ws.indexer  # load the extractor and repair the vectors before the first request
        ws.warm()  # and build the PageRank projection before the first query
        service.start()
        stack.callback(service.stop)
        state = ServiceState(settings, ws, jobs, service, threading.BoundedSemaphore(settings.max_concurrent_queries))
        app.state.graphdex = state
        try:
            yield state
        finally:
            del app.state.graphdex


def _queue_name(settings: Settings) -> str:
    """One queue per graph: the embedded store's, or one Neo4j workspace's."""
    return "jobs.sqlite" if settings.store == "embedded" else f"jobs-neo4j-{settings.neo4j_workspace}.sqlite"


# The getters are async because they only read attributes: FastAPI runs sync dependencies in its thread pool, which
# queries waiting for a slot may already be filling.

async def get_settings(request: Request) -> Settings:
    return _state(request).settings


async def get_workspace(request: Request) -> Workspace:
    return _state(request).workspace


async def get_jobs(request: Request) -> JobQueue:
    return _state(request).jobs


async def get_query_slots(request: Request) -> threading.BoundedSemaphore:
    return _state(request).query_slots


def _state(request: Request) -> ServiceState:
    return request.app.state.graphdex


# what a route declares, e.g. `def route(jobs: JobsDep) -> ...`
SettingsDep = Annotated[Settings, Depends(get_settings)]
WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]
JobsDep = Annotated[JobQueue, Depends(get_jobs)]
QuerySlotsDep = Annotated[threading.BoundedSemaphore, Depends(get_query_slots)]


async def require_write_key(request: Request, settings: SettingsDep) -> None:
    """Writes need the API key whenever one is set."""
    _check_key(request, settings, for_reads=False)


async def require_read_key(request: Request, settings: SettingsDep) -> None:
    """Reads need the API key only when GRAPHDEX_API_KEY_FOR_READS says so."""
    _check_key(request, settings, for_reads=True)


def _check_key(request: Request, settings: Settings, for_reads: bool) -> None:
    if not settings.api_key or (for_reads and not settings.api_key_for_reads):
        return
    # Starlette decodes header values as latin-1, which maps bytes one to one: encoding back gives the bytes sent,
    # so a key with non-ASCII characters, sent as UTF-8, matches the UTF-8 bytes of the configured one
    given = request.headers.get("x-api-key", "").encode("latin-1")
    if not secrets.compare_digest(given, settings.api_key.encode("utf-8")):
        raise HTTPException(401, "missing or wrong API key: send it in the X-API-Key header")


class InvalidApiKey(ValueError):
    """GRAPHDEX_API_KEY is set to something no client could send in a header."""


def check_api_key(key: str | None) -> None:
    """Refuses at start-up a key that could never match, instead of a service that answers 401 (or 500) to all.

    Any UTF-8 text works, non-ASCII included; what cannot work is a key with bytes that are not UTF-8 (the
    environment hands those over as lone surrogates), control characters (not allowed in a header) or spaces at
    either end (HTTP strips them from header values)."""
    if not key:
        return
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidApiKey("GRAPHDEX_API_KEY is not valid UTF-8 text; set it to a UTF-8 string") from None
    if any(unicodedata.category(c) == "Cc" for c in key):
        raise InvalidApiKey("GRAPHDEX_API_KEY contains control characters, which an HTTP header cannot carry")
    if key != key.strip():
        raise InvalidApiKey("GRAPHDEX_API_KEY starts or ends with whitespace, which HTTP strips from headers; remove it")


class KeyCheckedFirst(APIRoute):
    """A route that checks its API key before FastAPI reads and validates the request.

    FastAPI parses a JSON body before it runs any dependency, so with the key only in a dependency, a caller
    without the key would learn from a 422 what the body should be. Routes declare their access as before
    (``dependencies=[Depends(require_write_key)]``); this class runs that same check first."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        declared = {d.dependency for d in self.dependencies}
        for_reads = require_read_key in declared and require_write_key not in declared
        if not declared & {require_read_key, require_write_key}:
            return handler

        async def key_checked(request: Request) -> Response:
            _check_key(request, _state(request).settings, for_reads)
            return await handler(request)

        return key_checked
