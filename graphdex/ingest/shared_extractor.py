"""One extractor for several indexers, each running in its own thread (one per workspace of the service).

Loading an extractor per workspace would multiply its cost (a spaCy model per worker process, or a pool of model
calls), so the service loads one. Extractors are not made for concurrent use, though: the spaCy extractor starts its
process pool lazily and parses in-process with one pipeline, so two threads could start two pools or interleave
inside spaCy. Here each step of an extraction stream runs under one lock: streams of different workspaces
interleave chunk by chunk (neither waits for the other's whole corpus), and never run inside the extractor at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import cast

from graphdex.ingest.extraction import ChunkExtraction, ChunkInput, Extractor

_END = object()


class SharedExtractor:
    """An Extractor that serialises the streams of its callers over one inner extractor."""

    def __init__(self, inner: Extractor) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    def extract(self, chunks: Iterable[ChunkInput]) -> Iterator[ChunkExtraction]:
        with self._lock:
            stream = self._inner.extract(chunks)
        while True:
            with self._lock:
                item = next(stream, _END)
            if item is _END:
                return
            yield cast(ChunkExtraction, item)

    def release_workers(self) -> None:
        with self._lock:
            self._inner.release_workers()

    def close(self) -> None:
        with self._lock:
            self._inner.close()
