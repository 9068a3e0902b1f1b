"""Crash points: named places in the write paths where the fault-injection tests kill the process.

When ``GRAPHDEX_CRASH_AT`` is ``<point>`` or ``<point>:<n>``, the process sends itself SIGKILL the n-th time (default
the first) it reaches that point, as a power cut or the OOM killer would: no cleanup, no flush. Unset (always, outside
the tests), a crash point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

ENV = "GRAPHDEX_CRASH_AT"

_reached: Counter = Counter()
_lock = threading.Lock()


def crash_point(name: str) -> None:
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    with _lock:
        _reached[name] += 1
        if _reached[name] == int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)
