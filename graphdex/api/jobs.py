"""The durable queue of documents submitted to the service, with each one's status.

Why SQLite: a submitted document must survive a crash or restart of the service until it is indexed, and its status
(pending, processing, done, failed with the error) must be visible at any time. The queue keeps the document's text
until it is indexed (and after a failure, for retry), then drops it: the graph holds the document from then on.

Deletes go through the queue too: a delete marks the document `deleting` (one transaction, whatever its status),
and the ingestion worker, the index's only writer, removes it from the graph after its current batch and only then
drops the row. The mark is the tombstone: a document the worker was indexing when the delete came is still deleted,
right after it is indexed, even across a restart; a submit after the delete wins over it, as it came later.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

from graphdex.ingest.documents import SourceDocument
from graphdex.ingest.layout import Layout

JobStatus = Literal["pending", "processing", "done", "failed", "deleting"]
STATUSES: tuple[str, ...] = get_args(JobStatus)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    payload TEXT,
    result TEXT,
    submitted_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    seq INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, seq);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Job:
    id: str
    source: str
    title: str
    status: str
    error: str | None
    attempts: int
    submitted_at: str
    updated_at: str
    result: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "source": self.source, "title": self.title, "status": self.status, "error": self.error,
                "attempts": self.attempts, "submitted_at": self.submitted_at, "updated_at": self.updated_at, **(self.result or {})}


class JobQueue:
    """Thread-safe: the API threads submit and read, the ingestion thread claims and finishes."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self.wakeup = threading.Event()

    def _row(self, row: tuple) -> Job:
        id_, source, title, status, error, attempts, submitted, updated, result = row
        return Job(id_, source, title, status, error, attempts, submitted, updated, json.loads(result) if result else None)

    _COLUMNS = "id, source, title, status, error, attempts, submitted_at, updated_at, result"

    def resume_interrupted(self) -> int:
        """Documents a previous run was processing when it stopped go back to the queue."""
        with self._lock:
            cursor = self._db.execute("UPDATE jobs SET status='pending', updated_at=? WHERE status='processing'", (_now(),))
        if cursor.rowcount:
            self.wakeup.set()
        return cursor.rowcount

    def release(self, job_ids: list[str]) -> None:
        """Claimed documents go back to the queue untouched (their attempt did not count): the store was down."""
        with self._lock:
            self._db.executemany("UPDATE jobs SET status='pending', attempts=max(attempts - 1, 0), updated_at=? WHERE id=? AND status='processing'",
                                 [(_now(), job_id) for job_id in job_ids])

    def submit(self, items: list[tuple[str, SourceDocument]]) -> list[Job]:
        """Queue documents (id, document). Re-submitting a queued or finished document queues its new text again;
        one being processed right now goes back to pending and is indexed again, with the new text, after it."""
        now = _now()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = self._db.execute("SELECT coalesce(max(seq), 0) FROM jobs").fetchone()[0]
                for offset, (job_id, doc) in enumerate(items, start=1):
                    payload = json.dumps({"source": doc.source, "title": doc.title, "text": doc.text, "metadata": doc.metadata,
                                          "layout": doc.layout.to_json()}, ensure_ascii=False)
                    self._db.execute(
                        "INSERT INTO jobs (id, source, title, status, error, attempts, payload, result, submitted_at, updated_at, seq) "
                        "VALUES (?, ?, ?, 'pending', NULL, 0, ?, NULL, ?, ?, ?) "
                        "ON CONFLICT(id) DO UPDATE SET source=excluded.source, title=excluded.title, status='pending', error=NULL, "
                        "attempts=0, payload=excluded.payload, result=NULL, updated_at=excluded.updated_at, seq=excluded.seq",
                        (job_id, doc.source, doc.title, payload, now, now, seq + offset),
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        self.wakeup.set()
        return [self._submitted(job_id) for job_id, _ in items]

    def _submitted(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job is None:  # only a delete carried out right after the submit drops the row this soon
            raise RuntimeError(f"document {job_id} was deleted while it was being submitted")
        return job

    def claim(self, limit: int) -> list[tuple[Job, SourceDocument]]:
        """The oldest pending documents, now marked processing."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {self._COLUMNS}, payload FROM jobs WHERE status='pending' ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
            now = _now()
            self._db.executemany("UPDATE jobs SET status='processing', attempts=attempts+1, updated_at=? WHERE id=?", [(now, r[0]) for r in rows])
        claimed = []
        for row in rows:
            data = json.loads(row[-1])
            # a converted file keeps its sections and pages through the queue; entries queued before layouts have none
            document = SourceDocument(data["source"], data["title"], data["text"], data["metadata"], Layout.from_json(data.get("layout")))
            claimed.append((self._row(row[:-1]), document))
        return claimed

    def has_pending(self) -> bool:
        """Whether a document waits to be claimed (one look at the status index)."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM jobs WHERE status='pending' LIMIT 1").fetchone() is not None

    def finish(self, job_id: str, error: str | None = None, result: dict[str, Any] | None = None) -> None:
        """Done (the text is dropped) or failed (the text is kept for a retry). A document re-submitted while it was
        being processed stays pending: its newer text is indexed next."""
        with self._lock:
            if error is None:
                self._db.execute("UPDATE jobs SET status='done', error=NULL, payload=NULL, result=?, updated_at=? WHERE id=? AND status='processing'",
                                 (json.dumps(result or {}), _now(), job_id))
            else:
                self._db.execute("UPDATE jobs SET status='failed', error=?, updated_at=? WHERE id=? AND status='processing'", (error, _now(), job_id))

    def retry(self, job_id: str) -> Job | None:
        with self._lock:
            seq = self._db.execute("SELECT coalesce(max(seq), 0) FROM jobs").fetchone()[0]
            cursor = self._db.execute("UPDATE jobs SET status='pending', error=NULL, updated_at=?, seq=? WHERE id=? AND status='failed'",
                                      (_now(), seq + 1, job_id))
        if cursor.rowcount:
            self.wakeup.set()
        return self.get(job_id)

    def request_delete(self, job_id: str, indexed_as: tuple[str, str] | None = None) -> tuple[Job, str] | None:
        """Marks a document `deleting` and returns it with the status it had, or None when there is no job for it.

        ``indexed_as`` (source, title) adds the mark for a document that is in the graph without a job (indexed by
        `graphdex ingest`). The text of a pending document is dropped: once acknowledged, the delete is final."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                was = self._mark_deleting(job_id, indexed_as)
                # read in the same transaction: once committed, the worker may carry out the delete and drop the row
                row = self._db.execute(f"SELECT {self._COLUMNS} FROM jobs WHERE id=?", (job_id,)).fetchone()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if was is None:
            return None
        self.wakeup.set()
        return self._row(row), was

    def _mark_deleting(self, job_id: str, indexed_as: tuple[str, str] | None) -> str | None:
        """Inside a transaction: the status before the mark, or None when there was nothing to mark."""
        row = self._db.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()
        now = _now()
        if row is not None:
            self._db.execute("UPDATE jobs SET status='deleting', error=NULL, payload=NULL, updated_at=? WHERE id=?", (now, job_id))
            return row[0]
        if indexed_as is None:
            return None
        seq = self._db.execute("SELECT coalesce(max(seq), 0) FROM jobs").fetchone()[0]
        self._db.execute("INSERT INTO jobs (id, source, title, status, error, attempts, payload, result, submitted_at, updated_at, seq) "
                         "VALUES (?, ?, ?, 'deleting', NULL, 0, NULL, NULL, ?, ?, ?)", (job_id, *indexed_as, now, now, seq + 1))
        return "done"

    def deleting(self, limit: int) -> list[str]:
        """Documents whose delete was acknowledged and is still to be carried out, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT id FROM jobs WHERE status='deleting' ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [row[0] for row in rows]

    def finish_delete(self, job_id: str) -> bool:
        """The document is out of the graph: its row goes, unless it was submitted again meanwhile (then it stays
        pending, and its new text is indexed)."""
        with self._lock:
            return self._db.execute("DELETE FROM jobs WHERE id=? AND status='deleting'", (job_id,)).rowcount > 0

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            row = self._db.execute(f"SELECT {self._COLUMNS} FROM jobs WHERE id=?", (job_id,)).fetchone()
        return self._row(row) if row else None

    def list(self, status: str | None, limit: int, offset: int) -> tuple[list[Job], int]:
        where, params = ("WHERE status=?", [status]) if status else ("", [])
        with self._lock:
            total = self._db.execute(f"SELECT count(*) FROM jobs {where}", params).fetchone()[0]
            rows = self._db.execute(f"SELECT {self._COLUMNS} FROM jobs {where} ORDER BY seq DESC LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
        return [self._row(r) for r in rows], total

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, count(*) FROM jobs GROUP BY status").fetchall()
        return {status: 0 for status in STATUSES} | dict(rows)

    def close(self) -> None:
        self._db.close()
