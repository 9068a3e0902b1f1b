"""A circuit breaker in front of a server store, so an outage costs callers milliseconds instead of timeouts.

Without it every request during a Neo4j outage waits out the driver's own connection attempts and retries (tens of
seconds each) before it can answer 503. Once one call has found the server unreachable, the breaker opens: for the
next few seconds every call fails at once, telling the caller when to try again. Then one call at a time is let
through to probe; the first success closes the breaker, a failure opens it for another period.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from graphdex.graph.store import StoreUnavailable


class CircuitBreaker:
    def __init__(self, open_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._open_seconds = open_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until = 0.0  # 0: closed
        self._probing = False
        self._reason = ""

    def before_call(self) -> None:
        """Raises StoreUnavailable at once while the breaker is open, or while another call is probing."""
        with self._lock:
            if not self._open_until:
                return
            now = self._clock()
            if now >= self._open_until and not self._probing:
                self._probing = True  # this call probes; the others keep failing fast until it is back
                return
            wait = max(self._open_until - now, 1.0)
        raise StoreUnavailable(f"{self._reason} (not retried before {math.ceil(wait)} s)", retry_after=wait)

    def succeeded(self) -> None:
        with self._lock:
            self._open_until = 0.0
            self._probing = False

    def failed(self, reason: str) -> None:
        with self._lock:
            self._open_until = self._clock() + self._open_seconds
            self._probing = False
            self._reason = reason

    @property
    def is_open(self) -> bool:
        return bool(self._open_until)
