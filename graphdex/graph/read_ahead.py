"""Reading a store's file once so that its pages are in the kernel's cache before queries ask for them.

Why: right after a restart, a query finds the pages it needs on disk and pays a random read for each. On the 20x
index (8.7M words, a 1.9 GB SQLite file) local mode's slowest queries took 230-470 ms until their pages had been
read once, 40-70 ms after; reading the whole file in order takes 2.6 s. ``posix_fadvise(WILLNEED)`` was tried first
and changed nothing here, so the file is read outright, on a background thread, and only when it fits in the memory
that is free (a larger file would push its own first pages out again).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

_BLOCK = 1 << 20


def free_memory_bytes() -> int:
    """Memory no process and no cache holds (a lower bound of what reading a file can use without evicting)."""
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def read_ahead(path: Path, budget: int) -> int:
    """Read ``path`` through to its end, keeping nothing; returns the bytes read (0 when it is larger than
    ``budget`` or gone)."""
    try:
        size = path.stat().st_size
        if size > budget:
            log.info("%s (%d MiB) is larger than the %d MiB free: not read ahead", path, size >> 20, budget >> 20)
            return 0
        began = time.monotonic()
        done = 0
        buffer = bytearray(_BLOCK)
        with path.open("rb", buffering=0) as file:
            while count := file.readinto(buffer):
                done += count
    except OSError as error:  # the file moved away meanwhile: the queries read what they need anyway
        log.info("could not read %s ahead: %s", path, error)
        return 0
    log.info("read %s ahead: %d MiB in %.1f s", path, done >> 20, time.monotonic() - began)
    return done


def read_ahead_in_background(path: Path) -> threading.Thread:
    """``read_ahead`` on a daemon thread, within half of the memory free now."""
    thread = threading.Thread(target=read_ahead, args=(path, free_memory_bytes() // 2), name="graphdex-read-ahead", daemon=True)
    thread.start()
    return thread
