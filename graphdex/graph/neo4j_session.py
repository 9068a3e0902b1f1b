"""One connection to a Neo4j server for one workspace: reads, managed write transactions and schema statements, each
through the circuit breaker, with the driver's errors turned into the store's.

The graph store and the vector indexes on Neo4j share it, so they share one driver, one breaker (an outage seen by
either fails the other at once) and one rule for what counts as the server being unreachable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from graphdex.graph.breaker import CircuitBreaker
from graphdex.graph.store import StoreError, StoreUnavailable

# how long one unreachable-server call may take (connecting, then the driver's own retries), and how long after it
# calls fail at once (the circuit breaker) before one of them tries the server again
CONNECT_SECONDS = 5.0
RETRY_SECONDS = 5.0


class Neo4jSession:
    """The driver of one server, the database and the workspace every query is scoped to (``$ws``)."""

    def __init__(self, uri: str, user: str, password: str, database: str, workspace: str) -> None:
        import neo4j
        from neo4j.exceptions import AuthError, ServiceUnavailable

        self.database = database
        self.workspace = workspace
        self._breaker = CircuitBreaker(RETRY_SECONDS)
        try:
            # "unknown label/property" notices are expected on a new, empty database: not worth a warning each
            self.driver = neo4j.GraphDatabase.driver(uri, auth=(user, password) if password else None,
                                                     notifications_disabled_classifications=["UNRECOGNIZED"],
                                                     connection_timeout=CONNECT_SECONDS, max_transaction_retry_time=CONNECT_SECONDS)
            self.driver.verify_connectivity()
        except ServiceUnavailable as error:
            reason = " ".join(str(error).split())
            raise StoreError(f"cannot reach Neo4j at {uri}: {reason} Start it (scripts/neo4j.sh start) or check GRAPHDEX_NEO4J_URI") from error
        except AuthError as error:
            raise StoreError(f"Neo4j at {uri} refused the credentials of user {user!r}: check GRAPHDEX_NEO4J_USER / GRAPHDEX_NEO4J_PASSWORD") from error

    def read(self, query: str, **params: Any) -> list[dict[str, Any]]:
        """The rows of one read transaction, with ``$ws`` bound to the workspace."""
        def work(tx):
            return [record.data() for record in tx.run(query, ws=self.workspace, **params)]

        from neo4j.exceptions import DriverError, Neo4jError

        with self.reachable("read"):
            try:
                with self.driver.session(database=self.database) as session:
                    return session.execute_read(work)
            except (DriverError, Neo4jError) as error:
                if _unreachable(error):
                    raise
                raise StoreError(f"Neo4j read failed: {error}") from error

    def write(self, work: Callable[[Any], None]) -> None:
        """One managed transaction: the driver retries it on transient errors (deadlocks, leader switches)."""
        from neo4j.exceptions import DriverError, Neo4jError

        with self.reachable("write"):
            try:
                with self.driver.session(database=self.database) as session:
                    session.execute_write(work)
            except Neo4jError as error:
                raise StoreError(f"Neo4j rejected a write (nothing was written): {error.message}") from error
            except DriverError as error:
                if _unreachable(error):
                    raise
                raise StoreError(f"Neo4j write failed (nothing was written): {error}") from error

    def schema(self, statement: str, **params: Any) -> None:
        """A schema statement or procedure (auto-commit: Neo4j runs schema changes outside managed transactions)."""
        with self.reachable("schema"), self.driver.session(database=self.database) as session:
            session.run(statement, **params).consume()

    @contextmanager
    def reachable(self, action: str) -> Iterator[None]:
        """Every call to the server passes the circuit breaker, and tells it whether the server answered."""
        from neo4j.exceptions import ServiceUnavailable, SessionExpired

        self._breaker.before_call()
        try:
            yield
        except (ServiceUnavailable, SessionExpired) as error:
            reason = f"Neo4j is unreachable: {' '.join(str(error).split())}"
            self._breaker.failed(reason)
            detail = " (nothing was written)" if action == "write" else ""
            raise StoreUnavailable(reason + detail, retry_after=RETRY_SECONDS) from error
        except BaseException:
            self._breaker.succeeded()  # the server answered, if only with an error
            raise
        self._breaker.succeeded()

    def close(self) -> None:
        self.driver.close()


def _unreachable(error: Exception) -> bool:
    """The driver could not reach the server (as opposed to the server refusing the query)."""
    from neo4j.exceptions import ServiceUnavailable, SessionExpired

    return isinstance(error, (ServiceUnavailable, SessionExpired))
