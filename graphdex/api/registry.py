"""The workspaces a running service serves: opened on first use, kept open, closed when the service stops.

Each served workspace is a whole index with its only writer: its Workspace (graph store, vectors, query engine),
its durable job queue and its own IngestionService thread, holding the workspace's writer lock for as long as it is
open. Only the heavy parts are shared: every named workspace borrows the default workspace's embedder, spaCy model,
language model and extractor.

A workspace being deleted stops taking requests, waits for the ones in flight, stops its worker, and only then goes.
"""

from __future__ import annotations

import logging
import threading
import time
from contextlib import ExitStack

from graphdex.api.index import Index
from graphdex.api.jobs import JobQueue
from graphdex.api.layout import DEFAULT_WORKSPACE, Layout, check_name, queue_path
from graphdex.api.lifecycle import check_deletable, create_workspace, delete_workspace, finish_interrupted_removals, unknown
from graphdex.api.replica import not_the_writer
from graphdex.api.service import IngestionService
from graphdex.api.workspace import Workspace
from graphdex.common.errors import Conflict
from graphdex.graph.store import StoreError

log = logging.getLogger(__name__)

# how long closing a workspace (to delete it, or at shutdown) waits for the requests using it before closing anyway
DRAIN_SECONDS = 30.0


class WorkspaceBusy(Conflict):
    """The workspace is being deleted (a 409: try again once the delete has finished)."""


class ServedWorkspace:
    """One open workspace: index, queue, writer thread, and the count of requests using it. On a query replica
    (GRAPHDEX_INGEST=false) only the index: no queue, no writer thread, no writer lease."""

    def __init__(self, name: str, workspace: Workspace, batch_documents: int) -> None:
        self.name = name
        self.workspace = workspace
        self.index = Index(workspace)  # what the transports ask of it
        self._users = 0
        self._closing = False
        self._idle = threading.Condition()
        self.queue: JobQueue | None = None
        self.service: IngestionService | None = None
        with ExitStack() as stack:
            stack.callback(workspace.close)
            if workspace.settings.ingest:
                # the service is this index's only writer for as long as it serves it
                stack.enter_context(workspace.store.lock())
                self.queue = JobQueue(queue_path(workspace.settings))
                stack.callback(self.queue.close)
                self.service = IngestionService(self.index, self.queue, batch_documents)
                _ = workspace.indexer  # load the extractor and repair the vectors before the first request
            workspace.warm()  # and build the PageRank projection before the first query
            if self.service is not None:
                self.service.start()
                stack.callback(self.service.stop)
            self._resources = stack.pop_all()

    @property
    def jobs(self) -> JobQueue:
        """The ingestion queue; NotTheWriter on a query replica, which has none."""
        if self.queue is None:
            raise not_the_writer(self.workspace, "documents are submitted, followed and deleted")
        return self.queue

    def queue_counts(self) -> dict[str, int] | None:
        """Queued documents per status; None on a query replica (the writer knows them)."""
        return self.queue.counts() if self.queue is not None else None

    def enter(self) -> bool:
        """A request starts using the workspace; False once it is closing."""
        with self._idle:
            if self._closing:
                return False
            self._users += 1
            return True

    def leave(self) -> None:
        with self._idle:
            self._users -= 1
            self._idle.notify_all()

    def close(self, writer_seconds: float | None = 30.0) -> None:
        """Refuses new requests, waits (a bounded time) for those in flight, stops the writer (waiting at most
        ``writer_seconds`` for the batch it is writing; None: as long as it takes), closes the index."""
        with self._idle:
            self._closing = True
            if not self._idle.wait_for(lambda: self._users == 0, DRAIN_SECONDS):
                log.warning("closing workspace %s with %d request(s) still using it", self.name, self._users)
        if self.service is not None:
            self.service.stop(writer_seconds)
        self._resources.close()


class WorkspaceRegistry:
    """Owns the served workspaces: opens them lazily, creates and deletes them, closes them all at the end."""

    def __init__(self, primary: Workspace) -> None:
        self.settings = primary.settings
        self.layout = Layout(primary.settings)
        self._primary = primary
        self._served: dict[str, ServedWorkspace] = {}
        self._deleting: set[str] = set()
        self._lock = threading.Lock()  # guards the two collections above
        self._opening = threading.Lock()  # one workspace opened (or deleted) at a time, so never twice

    def start(self) -> None:
        """Finishes deletions a crash interrupted, opens the default workspace, and every named one with queued
        work: documents acknowledged before a restart are indexed without waiting for someone to ask."""
        self._served[DEFAULT_WORKSPACE] = ServedWorkspace(DEFAULT_WORKSPACE, self._primary, self.settings.ingest_batch_documents)
        if not self.settings.ingest:  # a query replica: named workspaces, their queues and removals are the writer's
            return
        finish_interrupted_removals(self.layout)
        for name in self.layout.names()[1:]:
            if self._has_queued_work(name):
                log.warning("resuming the queue of workspace %s", name)
                try:
                    self._open(name)
                except StoreError as error:  # the others are served meanwhile; this one says why on first use
                    log.error("could not open workspace %s: %s", name, error)

    def _has_queued_work(self, name: str) -> bool:
        path = queue_path(self.layout.settings_for(name))
        if not path.exists():
            return False
        queue = JobQueue(path)
        try:
            counts = queue.counts()
        finally:
            queue.close()
        return counts["pending"] + counts["processing"] + counts["deleting"] > 0

    def opened(self, name: str) -> ServedWorkspace | None:
        """The workspace if it is open already (no waiting: safe to call on the event loop)."""
        return self._served.get(name)

    def acquire(self, name: str) -> ServedWorkspace:
        """The workspace, opened if need be, counted as in use until ``leave()``. Raises InvalidWorkspaceName,
        UnknownWorkspace, or WorkspaceBusy while it is being deleted."""
        if not self.settings.ingest and name != DEFAULT_WORKSPACE:
            check_name(name)
            raise not_the_writer(self._primary, f"workspace {name!r} (named workspaces are served by the writer) is served")
        served = self._served.get(name) or self._open(name)
        if not served.enter():
            raise WorkspaceBusy(f"workspace {name!r} is being deleted")
        return served

    def _open(self, name: str) -> ServedWorkspace:
        if not self.layout.exists(name):  # before waiting for another workspace's opening
            raise unknown(name)
        with self._opening:
            with self._lock:
                if name in self._deleting:
                    raise WorkspaceBusy(f"workspace {name!r} is being deleted")
                if name in self._served:
                    return self._served[name]
            if not self.layout.exists(name):
                raise unknown(name)
            started = time.perf_counter()
            served = ServedWorkspace(name, Workspace(self.layout.settings_for(name), shared=self._primary), self.settings.ingest_batch_documents)
            with self._lock:
                self._served[name] = served
        log.info("opened workspace %s in %.2f s", name, time.perf_counter() - started)
        return served

    def names(self) -> list[str]:
        return self.layout.names()

    def create(self, name: str) -> None:
        """Raises InvalidWorkspaceName, WorkspaceExists, or WorkspaceBusy while a workspace of that name is being
        deleted. The new workspace opens on first use."""
        check_name(name)
        if not self.settings.ingest:
            raise not_the_writer(self._primary, "workspaces are created")
        with self._lock:
            if name in self._deleting:
                raise WorkspaceBusy(f"workspace {name!r} is being deleted; create it again once that has finished")
        with self._opening:
            create_workspace(self.layout, name)

    def delete(self, name: str) -> None:
        """Stops and closes the workspace if it is open, then removes it completely (see lifecycle.py). Raises
        DefaultWorkspace, InvalidWorkspaceName, UnknownWorkspace, or WorkspaceBusy when a delete is under way."""
        if not self.settings.ingest:
            raise not_the_writer(self._primary, "workspaces are deleted")
        check_deletable(self.layout, name)
        with self._lock:
            if name in self._deleting:
                raise WorkspaceBusy(f"workspace {name!r} is being deleted already")
            self._deleting.add(name)
        try:
            with self._opening, self._lock:  # after an open under way, never beside it
                served = self._served.pop(name, None)
            if served is not None:
                served.close(writer_seconds=None)  # nothing may still write into a folder about to be removed
            delete_workspace(self.layout, name)
        finally:
            with self._lock:
                self._deleting.discard(name)

    def close(self) -> None:
        """Closes every workspace, the default one last: the others borrow its extractor and models."""
        with self._lock:
            named = [s for n, s in self._served.items() if n != DEFAULT_WORKSPACE]
            default = self._served.get(DEFAULT_WORKSPACE)
            self._served.clear()
        for served in named:
            served.close()
        if default is not None:
            default.close()
