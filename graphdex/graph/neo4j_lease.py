"""The Neo4j store's writer lease: one graphdex writer per workspace, across processes and machines.

The lease is a node of the workspace (``GraphdexMeta``) naming its holder until a time the holder keeps moving on on
a heartbeat thread, so it expires LEASE_MILLISECONDS after a holder stops: a writer that crashed on another machine
blocks the workspace for that long at most. A lease whose holder was a process of this machine that no longer exists
is taken over at once, so a restart right after a crash works.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from graphdex.graph.store import StoreError

log = logging.getLogger(__name__)

LEASE_MILLISECONDS = 60 * 1000


class WriterLease:
    """The lease of ``workspace`` in ``database``; ``read`` runs a read query as the store does (its errors mapped)."""

    def __init__(self, driver: Any, database: str, workspace: str, read: Callable[..., list[dict[str, Any]]]) -> None:
        self._driver = driver
        self._database = database
        self._workspace = workspace
        self._read = read

    @contextmanager
    def held(self) -> Iterator[str]:
        """The lease, held until the block ends; yields its token (writes renew the lease with it too)."""
        token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

        def take(tx, stale: str | None) -> bool:
            row = tx.run(
                "MERGE (m:GraphdexMeta {workspace: $ws}) WITH m "
                "WHERE m.writer IS NULL OR coalesce(m.writer_until, 0) < timestamp() OR m.writer = $stale "
                "SET m.writer = $token, m.writer_until = timestamp() + $ttl RETURN m.writer AS writer",
                ws=self._workspace, token=token, ttl=LEASE_MILLISECONDS, stale=stale,
            ).single()
            return row is not None

        with self._driver.session(database=self._database) as session:
            if not session.execute_write(take, None):
                holder = self._read("MATCH (m:GraphdexMeta {workspace: $ws}) RETURN m.writer AS writer")[0]["writer"] or ""
                if not (dead_local_process(holder) and session.execute_write(take, holder)):
                    raise StoreError(f"another graphdex process ({holder}) is writing to Neo4j workspace {self._workspace!r}; wait for it "
                                     f"to finish (a crashed writer on another machine releases it within {LEASE_MILLISECONDS // 1000} s)")
        stop = threading.Event()
        heartbeat = threading.Thread(target=self._renew_lease, args=(token, stop), name="graphdex-neo4j-lease", daemon=True)
        heartbeat.start()
        try:
            yield token
        finally:
            stop.set()
            heartbeat.join()
            with self._driver.session(database=self._database) as session:
                session.execute_write(lambda tx: tx.run(
                    "MATCH (m:GraphdexMeta {workspace: $ws}) WHERE m.writer = $token REMOVE m.writer, m.writer_until",
                    ws=self._workspace, token=token).consume())

    def _renew_lease(self, token: str, stop: threading.Event) -> None:
        from neo4j.exceptions import DriverError, Neo4jError

        while not stop.wait(LEASE_MILLISECONDS / 4000):
            try:
                with self._driver.session(database=self._database) as session:
                    session.execute_write(lambda tx: tx.run(
                        "MATCH (m:GraphdexMeta {workspace: $ws}) WHERE m.writer = $token SET m.writer_until = timestamp() + $ttl",
                        ws=self._workspace, token=token, ttl=LEASE_MILLISECONDS).consume())
            except (DriverError, Neo4jError) as error:  # an outage: the next beat (or write) renews it
                log.warning("could not renew the Neo4j writer lease: %s", error)


def dead_local_process(holder: str) -> bool:
    """The lease holder ("host:pid:nonce") was a process of this machine that has ended."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
