"""Handing memory that Python has freed back to the operating system.

CPython frees objects into glibc's malloc, which keeps the pages for later reuse. A writer that parses and drops
millions of small objects (JSON rows, extraction results, embedding batches) therefore holds far more than it uses:
after a 1,500-passage ingest, 110 MB of the 140 MB the process had grown by were free heap that ``malloc_trim``
handed back. Trimming after each write batch, and after loading a vector index (whose id map is parsed from JSON),
keeps resident memory near what the process really holds. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading
import time

log = logging.getLogger(__name__)


def _malloc_trim() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc: no malloc_trim
        return None


_TRIM = _malloc_trim()
_lock = threading.Lock()
_last = 0.0


def release_free_memory(min_interval: float = 1.0) -> None:
    """Return the free pages of the C heap to the system, at most once per ``min_interval`` seconds (a trim walks
    the heap: milliseconds on a large one)."""
    global _last
    if _TRIM is None:
        return
    with _lock:
        now = time.monotonic()
        if now - _last < min_interval:
            return
        _last = now
        _TRIM(0)
