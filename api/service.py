"""The ingestion worker of the service: one thread that indexes queued documents, batch by batch.

One writer per index is the rule (the indexer is not reentrant, and the embedded store is one process's memory), so
every mutation goes through this object: queued documents in the background, deletes on request. Queries do not
wait for it: they only take the read side of the workspace's lock, which the indexer holds just while it writes.
"""

from __future__ import annotations

import logging
import threading

from graphdex.api.jobs import JobQueue
from graphdex.api.workspace import Workspace
from graphdex.graph.model import NodeType
from graphdex.ingest.maintenance import DeleteReport

log = logging.getLogger(__name__)


class ServiceBusy(RuntimeError):
    """The indexer stayed busy longer than the caller may wait; retrying later will work."""


class IngestionService:
    def __init__(self, workspace: Workspace, jobs: JobQueue, batch_documents: int) -> None:
        self.workspace = workspace
        self.jobs = jobs
        self.batch_documents = batch_documents
        self._indexer_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="graphdex-ingest", daemon=True)
        self.batches = 0

    def start(self) -> None:
        resumed = self.jobs.resume_interrupted()
        if resumed:
            log.warning("resuming %d document(s) that were being indexed when the service last stopped", resumed)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self.jobs.wakeup.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self.jobs.claim(self.batch_documents)
            if not batch:
                self.jobs.wakeup.wait(1.0)
                self.jobs.wakeup.clear()
                continue
            self._index(batch)

    def _index(self, batch) -> None:
        documents = [doc for _, doc in batch]
        try:
            with self._indexer_lock:
                report = self.workspace.indexer.ingest(documents)
            self.workspace.graph_changed()
        except Exception as error:  # the batch failed as a whole (store unreachable, disk full...): say so on each document
            log.exception("indexing a batch of %d documents failed", len(batch))
            for job, _ in batch:
                self.jobs.finish(job.id, error=f"{type(error).__name__}: {error}")
            return
        self.batches += 1
        failed = dict(report.failed)
        with self.workspace.guard.read():
            stored = self.workspace.store.get_nodes(job.id for job, _ in batch)
        for job, doc in batch:
            if doc.source in failed:
                self.jobs.finish(job.id, error=failed[doc.source])
                continue
            node = stored.get(job.id)
            result = {"chunks": node.props.get("chunk_count", 0), "words": node.props.get("words", 0)} if node else {}
            self.jobs.finish(job.id, result=result)

    def delete(self, doc_id: str, wait: float = 60.0) -> DeleteReport:
        """Delete an indexed document now (between two ingestion batches)."""
        if not self._indexer_lock.acquire(timeout=wait):
            raise ServiceBusy(f"the indexer is busy with a batch; retry the delete of {doc_id} in a moment")
        try:
            report = self.workspace.maintenance.delete_document(doc_id)
            self.workspace.graph_changed()
            return report
        finally:
            self._indexer_lock.release()

    def is_indexed(self, doc_id: str) -> bool:
        with self.workspace.guard.read():
            node = self.workspace.store.get_nodes([doc_id]).get(doc_id)
        return node is not None and node.type == NodeType.DOCUMENT
