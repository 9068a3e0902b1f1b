"""The ingestion worker of the service: one thread that indexes queued documents, batch by batch.

One writer per index is the rule (the indexer is not reentrant, and the embedded store is one process's memory), so
every mutation goes through this thread: queued documents, and the deletes the queue has marked, carried out
between two batches. Requests never wait for it: they only mark work in the queue, and queries only take the read
side of the workspace's lock, which the indexer holds just while it writes.
"""

from __future__ import annotations

import logging
import threading
import time

from graphdex.api.index import Index
from graphdex.api.jobs import Job, JobQueue
from graphdex.common.ray_cluster import ClusterError
from graphdex.graph.store import StoreUnavailable
from graphdex.ingest.documents import SourceDocument

log = logging.getLogger(__name__)

# after a delete failed (the store unreachable...), wait this long before trying again rather than spin
RETRY_DELETES_AFTER_SECONDS = 1.0
# the longest wait between two attempts while the store is unavailable (the wait doubles from 1 s up to it). An
# attempt during an outage costs little (the store's circuit breaker fails it at once), so the cap is short and the
# queue resumes within seconds of the store's return
MAX_OUTAGE_PAUSE_SECONDS = 8.0
# how long a batch that empties the queue waits for graph mode's projection to take it in before its documents are
# reported done (a Neo4j projection follows the store's changes over Bolt: seconds); past it they are reported anyway
PROJECTION_WAIT_SECONDS = 30.0


class IngestionService:
    def __init__(self, index: Index, jobs: JobQueue, batch_documents: int) -> None:
        self.index = index
        self.workspace = workspace = index.workspace
        self.jobs = jobs
        self.batch_documents = batch_documents
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="graphdex-ingest", daemon=True)
        self.batches = 0
        self._outage_pause = 0.0  # grows while the store stays unavailable, back to 0 after a batch goes through
        # the community layer and the closing vector save follow the batches at most this often while more wait
        self.settle_seconds = workspace.settings.community_refresh_seconds
        self._settled_at = time.monotonic()
        self._unsettled = False
        self.settles = 0

    def start(self) -> None:
        resumed = self.jobs.resume_interrupted()
        if resumed:
            log.warning("resuming %d document(s) that were being indexed when the service last stopped", resumed)
        self._thread.start()

    def stop(self, timeout: float | None = 30.0) -> None:
        self._stop.set()
        self.jobs.wakeup.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.jobs.wakeup.clear()  # before looking: work queued from here on wakes the wait below
            self._carry_out_deletes()
            batch = self.jobs.claim(self.batch_documents)
            if batch:
                self._index(batch)
            elif self._unsettled:
                self._settle()
            else:
                self.jobs.wakeup.wait(1.0)
        if self._unsettled:
            self._settle()

    def _settle(self) -> None:
        """The community refresh and vector save that batches left while more documents waited."""
        try:
            seconds = self.workspace.indexer.settle()
        except Exception:  # left recorded: the next batch, delete or start settles it
            log.exception("refreshing the community layer after the last batches failed; trying again later")
            self._stop.wait(RETRY_DELETES_AFTER_SECONDS)
            return
        self._unsettled, self._settled_at = False, time.monotonic()
        self.settles += 1
        self.workspace.graph_changed()
        log.info("community layer refreshed after the last batches (%.1f s)", seconds)

    def _index(self, batch: list[tuple[Job, SourceDocument]]) -> None:
        documents = [doc for _, doc in batch]
        # with more documents waiting, the community refresh (on a large index most of a small batch's cost) is
        # left to the last of them, or to the first batch after settle_seconds
        settle = not self.jobs.has_pending() or time.monotonic() - self._settled_at >= self.settle_seconds
        self._unsettled = self._unsettled or not settle  # also when the ingest fails: what it wrote still needs the refresh
        try:
            report = self.workspace.indexer.ingest(documents, settle=settle)
            if settle:
                self._unsettled, self._settled_at = False, time.monotonic()
                self.settles += 1
            # when nothing else waits, the documents are reported done once graph mode can find them
            self.workspace.graph_changed(wait=0.0 if self.jobs.has_pending() else PROJECTION_WAIT_SECONDS)
        except (StoreUnavailable, ClusterError) as error:  # an outage, not the documents' fault: they wait in the queue
            self.jobs.release([job.id for job, _ in batch])
            self._outage_pause = min(MAX_OUTAGE_PAUSE_SECONDS, self._outage_pause * 2 or 1.0)
            log.warning("%s; %d document(s) back in the queue, retrying in %.0f s", error, len(batch), self._outage_pause)
            self._stop.wait(self._outage_pause)
            return
        except Exception as error:  # the batch failed as a whole (disk full, a bug...): say so on each document
            log.exception("indexing a batch of %d documents failed", len(batch))
            for job, _ in batch:
                self.jobs.finish(job.id, error=f"{type(error).__name__}: {error}")
            return
        self._outage_pause = 0.0
        self.batches += 1
        failed = dict(report.failed)
        stored = self.index.documents([job.id for job, _ in batch])
        for job, doc in batch:
            if doc.source in failed:
                self.jobs.finish(job.id, error=failed[doc.source])
                continue
            node = stored.get(job.id)
            result = {"chunks": node.props.get("chunk_count", 0), "words": node.props.get("words", 0)} if node else {}
            self.jobs.finish(job.id, result=result)

    def _carry_out_deletes(self) -> None:
        """Every delete the queue has acknowledged, out of the graph before the next batch is claimed. A document
        submitted again meanwhile keeps its row (pending): only the version the delete saw is removed."""
        while not self._stop.is_set():
            doc_ids = self.jobs.deleting(self.batch_documents)
            if not doc_ids:
                return
            try:
                self._remove(doc_ids)
            except Exception:  # the rows stay `deleting`: tried again, after a pause, until the store takes it
                log.exception("deleting %d document(s) failed; trying again", len(doc_ids))
                self._stop.wait(RETRY_DELETES_AFTER_SECONDS)
                return
            for doc_id in doc_ids:
                self.jobs.finish_delete(doc_id)

    def _remove(self, doc_ids: list[str]) -> None:
        """Documents out of the graph and vectors, with one community refresh for them all."""
        indexed = [doc_id for doc_id in doc_ids if self.is_indexed(doc_id)]  # a cancelled submission never was
        if not indexed:
            return
        maintenance = self.workspace.maintenance
        for doc_id in indexed:
            maintenance.remove_document(doc_id)
        maintenance.finish()  # the refresh any batch left, too
        self._unsettled, self._settled_at = False, time.monotonic()
        self.workspace.graph_changed()

    def is_indexed(self, doc_id: str) -> bool:
        return self.index.document(doc_id) is not None
