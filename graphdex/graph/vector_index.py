"""HNSW vector indexes (hnswlib), one per searchable node type, updated in place and saved atomically: the
``VectorIndexes`` of graph/vectors.py for the embedded store (and for Neo4j with GRAPHDEX_NEO4J_VECTORS=local).

Opening reads only ``current.json``: each type's index and id map are loaded on first use (``stats`` loads none, a
query only the types it searches), and the pointer holds every type's vector count, so ``counts()`` loads nothing
either (a pointer written before it held counts: the type is loaded to count it).

Saving makes a new generation: the indexes changed since the last save are written under the new generation
number, the others are carried over unread (their files hard-linked into it, or copied where links are not
possible); then every file of the new generation is fsynced and ``current.json`` flips to it with an atomic rename.
A changed index whose changes since its last full save are few (at most ``delta_limit`` ids) is not rewritten
whole: its full files are carried and a *delta* (the vectors and digests of the ids added or replaced since, and the
ids deleted) is written beside them, and loading replays it. So a delete or a small ingest saves in proportion to
what it changed, not to the index (at 10x the entity index is 400 MB), and opening replays at most ``delta_limit``
inserts.
A crash at any moment leaves the previous generation intact and readable: a save never writes into a file of an
existing generation (leftovers of a save that died before its flip are removed first, so nothing is written through a
link into a file the current generation still uses).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from pathlib import Path

from graphdex.common.embedder import settings_for
from graphdex.common.memory import release_free_memory
from graphdex.graph.durable import fsync_directory
from graphdex.graph.hnsw_index import HnswVectorIndex
from graphdex.graph.model import SEARCHABLE_TYPES, NodeType
from graphdex.graph.store import StoreError

log = logging.getLogger(__name__)


class VectorIndexSet:
    """The per-type indexes of one data directory, saved together as one generation.

    Opening reads the generation pointer only. An index is loaded on first use, once (a query thread that wants it
    meanwhile waits for that load), and stays loaded; ``counts`` answers from the pointer for the indexes not loaded.

    Between the first change after a save and the save that ends an operation, a ``dirty`` marker file exists
    (written durably before the graph is first touched): if the process dies in between, the next start finds it and
    verifies the vectors (and the community layer) against the graph instead of trusting them."""

    def __init__(self, directory: Path, dim: int, model_name: str, m: int = 16, ef_construction: int = 200, ef_search: int = 64,
                 delta_limit: int = 512) -> None:
        self._dir = Path(directory)
        self._delta_limit = delta_limit
        self._dir.mkdir(parents=True, exist_ok=True)
        self._params = (m, ef_construction, ef_search)
        self.dim = dim
        self.model_name = model_name
        self.in_store = False  # files beside the graph: written after its transaction, healed from the dirty marker
        self._loaded: dict[NodeType, HnswVectorIndex] = {}
        # the ``changes`` of each loaded index that the current generation's files hold: it changed since when it differs
        self._saved_changes: dict[NodeType, int] = {}
        self._stored_counts: dict[str, int] = {}  # vectors per type in the current generation, from its pointer
        self._deltas: set[str] = set()  # the types whose files in the current generation include a delta
        self._generation = 0  # 0: nothing saved yet (no pointer)
        # held by a load and by a save's switch to its new generation: a load never reads a generation being removed
        self._lock = threading.Lock()
        self._suspect = False
        # every index of the current generation was written by code that replaces a vector in place (issue 23):
        # true of a new directory; a pointer says so once a start has checked (and repaired) an older one
        self.shadow_free = True
        self._read_pointer()

    def _read_pointer(self) -> None:
        """Takes the generation (and its counts) that ``current.json`` names; none before the first save."""
        pointer = self._dir / "current.json"
        if not pointer.exists():
            return
        current = json.loads(pointer.read_text())
        if current["dim"] != self.dim or current["model"] != self.model_name:
            raise StoreError(
                f"the vectors in {self._dir} were made by {current['model']} (dimension {current['dim']}), "
                f"but the configured embedder is {self.model_name} (dimension {self.dim}): set {settings_for(current['model'])} to read "
                "them, or use a new GRAPHDEX_DATA_DIR"
            )
        self._generation = current["generation"]
        self._stored_counts = {str(t): int(n) for t, n in current.get("counts", {}).items()}  # absent before counts were kept
        self._deltas = set(current.get("deltas", ()))  # absent before deltas were written
        self.shadow_free = bool(current.get("shadow_free", False))

    def _files(self, type_: NodeType, generation: int) -> tuple[Path, Path]:
        stem = f"{type_.lower()}.{generation}"
        return self._dir / f"{stem}.bin", self._dir / f"{stem}.ids.json"

    def _delta_files(self, type_: NodeType, generation: int) -> tuple[Path, Path]:
        stem = f"{type_.lower()}.{generation}"
        return self._dir / f"{stem}.delta.json", self._dir / f"{stem}.delta.npy"

    def __getitem__(self, type_: NodeType) -> HnswVectorIndex:
        index = self._loaded.get(type_)
        if index is not None:
            return index
        if type_ not in SEARCHABLE_TYPES:
            raise KeyError(type_)
        with self._lock:
            index = self._loaded.get(type_)
            if index is None:
                index = self._load(type_) if self._generation else HnswVectorIndex(self.dim, *self._params)
                self._saved_changes[NodeType(type_)] = index.changes
                self._loaded[NodeType(type_)] = index
            return index

    def _load(self, type_: NodeType) -> HnswVectorIndex:
        """The current generation's index of ``type_`` (holding ``_lock``)."""
        while True:
            generation = self._generation
            try:
                delta = self._delta_files(type_, generation) if str(type_) in self._deltas else None
                index = HnswVectorIndex.load(*self._files(type_, generation), self.dim, *self._params, delta=delta)
            except FileNotFoundError:
                # only in a process that is not the writer (a `graphdex query` beside an ingest): the writer saved
                # a newer generation and removed this one since it was read; the pointer names the newer one
                self._read_pointer()
                if self._generation == generation:
                    raise
                log.info("the vectors in %s moved on to generation %d while this process read them", self._dir, self._generation)
                continue
            log.debug("loaded the %s vectors of generation %d (%d)", type_, generation, len(index))
            release_free_memory(0)  # the parsed id map's garbage
            return index

    def replace(self, type_: NodeType, index: HnswVectorIndex) -> None:
        """Put a rebuilt index in place of ``type_``'s: the next save writes it whole."""
        with self._lock:
            self._loaded[NodeType(type_)] = index
            self._saved_changes[NodeType(type_)] = -1  # never equal to a count of changes: it is written

    def drop_shadowed(self) -> list[NodeType] | None:
        """See ``VectorIndexes.drop_shadowed``: every index is loaded and checked, once (the pointer of the next
        save records it)."""
        if self.shadow_free:
            return None
        rebuilt = []
        for type_ in SEARCHABLE_TYPES:
            index = self[type_]
            twice = index.shadowed_ids()
            if twice:
                log.warning("the %s vectors in %s hold %d ids twice (replaced by a graphdex before 2026-12): rebuilding the index "
                            "without them; they are embedded again", type_, self._dir, len(twice))
                self.replace(type_, index.without(twice))
                rebuilt.append(type_)
        self.shadow_free = True
        return rebuilt

    @property
    def dirty(self) -> bool:
        """An operation began changing the graph and vectors and has not ended with a save."""
        return self._marker.exists()

    def mark_dirty(self) -> None:
        if self._marker.exists():
            return
        with open(self._marker, "w") as handle:
            handle.write("an operation is changing the graph and vectors; if this file survives it, the next start verifies them\n")
            handle.flush()
            os.fsync(handle.fileno())
        fsync_directory(self._dir)

    def suspect(self) -> None:
        """The vectors may no longer match the graph (a write failed halfway): keep the marker until a start verifies."""
        self._suspect = True

    @property
    def _marker(self) -> Path:
        return self._dir / "dirty"

    def save(self, complete: bool = False) -> None:
        """Save a new generation; ``complete`` when the operation has ended and graph, vectors and communities agree
        (this clears the dirty marker). Only the indexes changed since the last save are written; the others are
        carried into the new generation as their files are, without being loaded."""
        generation = self._generation + 1
        for path in self._dir.glob(f"*.{generation}.*"):
            path.unlink()  # left by a save that died before its flip: may be links to the current generation's files
        counts: dict[str, int] = {}
        deltas: set[str] = set()
        written: dict[NodeType, int] = {}
        for type_ in SEARCHABLE_TYPES:
            index = self._loaded.get(type_)
            if index is None and (not self._generation or str(type_) not in self._stored_counts):
                index = self[type_]  # nothing saved yet (an empty index), or a pointer without counts (to count it)
            if index is not None and (not self._generation or index.changes != self._saved_changes[type_]):
                pending = index.delta_size
                if self._generation and pending is not None and pending <= self._delta_limit:
                    self._carry(type_, generation, with_delta=False)
                    written[type_] = index.save_delta(*self._delta_files(type_, generation))
                    deltas.add(str(type_))
                else:
                    written[type_] = index.save(*self._files(type_, generation))
            else:
                self._carry(type_, generation, with_delta=True)
                if str(type_) in self._deltas:
                    deltas.add(str(type_))
            counts[str(type_)] = len(index) if index is not None else self._stored_counts[str(type_)]
        for path in self._dir.glob(f"*.{generation}.*"):
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
        pointer_tmp = self._dir / "current.json.tmp"
        pointer_tmp.write_text(json.dumps({"generation": generation, "dim": self.dim, "model": self.model_name, "counts": counts,
                                          "deltas": sorted(deltas), "shadow_free": self.shadow_free}))
        with open(pointer_tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(pointer_tmp, self._dir / "current.json")
        fsync_directory(self._dir)
        with self._lock:
            old = self._generation
            self._generation = generation
            self._stored_counts = counts
            self._deltas = deltas
            self._saved_changes.update(written)
            for path in self._dir.glob(f"*.{old}.*"):
                path.unlink(missing_ok=True)
        if complete and not self._suspect:
            self._marker.unlink(missing_ok=True)
            fsync_directory(self._dir)

    def _carry(self, type_: NodeType, generation: int, with_delta: bool) -> None:
        """The current generation's files of an index, into ``generation`` as they are: a hard link each (nothing
        is read or written), or a copy on a file system without links. ``with_delta``: its delta too (an unchanged
        index); without: its full files only (a new delta follows)."""
        pairs = list(zip(self._files(type_, self._generation), self._files(type_, generation)))
        if with_delta and str(type_) in self._deltas:
            pairs += zip(self._delta_files(type_, self._generation), self._delta_files(type_, generation))
        for current, new in pairs:
            try:
                os.link(current, new)
            except FileNotFoundError:
                raise
            except OSError:
                shutil.copyfile(current, new)

    def counts(self) -> dict[str, int]:
        """Vectors per type: a loaded index counts itself; the others are counted by the pointer (an older pointer
        without counts: the index is loaded)."""
        out: dict[str, int] = {}
        for type_ in SEARCHABLE_TYPES:
            index = self._loaded.get(type_)
            if index is None and (not self._generation or str(type_) in self._stored_counts):
                out[str(type_)] = self._stored_counts.get(str(type_), 0)
            else:
                out[str(type_)] = len(index if index is not None else self[type_])
        return out
