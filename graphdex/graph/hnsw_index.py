"""One HNSW vector index (hnswlib) with the map between graphdex's string ids and hnswlib's integer labels, and the
digest of the text each vector was made from. ``VectorIndexSet`` (graph/vector_index.py) keeps one per searchable
node type and saves them by generation."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import hnswlib
import numpy as np
import orjson


class HnswVectorIndex:
    """One hnswlib index plus the map between our string ids and hnswlib's integer labels.

    Each vector also keeps a digest of the text it was made from, so recovery can tell a vector that is stale (the
    node's text changed and the crash came before the vectors were saved) from one that is current, without
    embedding anything again.

    Labels are handed out in order and never reused, so the way back from a label (its id, its digest) is a list
    and a fixed-width byte array indexed by label rather than two more dictionaries: at 10x the corpus (350k vectors)
    that keeps the maps at about 170 bytes per vector instead of about 310."""

    def __init__(self, dim: int, m: int = 16, ef_construction: int = 200, ef_search: int = 64, capacity: int = 1024) -> None:
        self.dim = dim
        self._params = (m, ef_construction, ef_search)
        self._index = hnswlib.Index(space="ip", dim=dim)
        self._index.init_index(max_elements=capacity, M=m, ef_construction=ef_construction, allow_replace_deleted=True)
        self._index.set_ef(ef_search)
        self._label_of: dict[str, int] = {}
        self._id_at: list[str | None] = []  # by label: the id it stands for, None once deleted
        self._digest_at = np.zeros(0, dtype="S16")  # by label: the digest of its text (b"" when unknown)
        # the ids added, replaced or deleted since the index was last saved whole (tracked only once it has been: a
        # delta needs full files to apply to)
        self._based = False
        self._touched: set[str] = set()
        self._changes = 0  # moves with every add and every deletion: a save writes an index only when it moved since the last
        self._lock = threading.RLock()

    @property
    def changes(self) -> int:
        """A count that moves with every add and every deletion in this process (compared, never interpreted)."""
        return self._changes

    @property
    def delta_size(self) -> int | None:
        """How many ids a delta save would write (None: never saved whole, so only a full save will do)."""
        return len(self._touched) if self._based else None

    @property
    def shadowed(self) -> int:
        """Elements of the hnswlib graph whose label another element took: what replacing a vector through a free
        deleted slot left before that was fixed (issue 23). Such an element still answers searches with its old
        vector, and a reload maps the label to whichever of the two comes later."""
        with self._lock:
            return self._index.get_current_count() - len(self._index.get_ids_list())

    def shadowed_ids(self) -> list[str]:
        """The ids whose label a shadowed element also holds: which of its two vectors is current cannot be told
        without embedding its text again. Read from hnswlib's own serialised state (what pickling it gives), which is
        the one place that says which label each element was stored under."""
        with self._lock:
            if not self.shadowed:
                return []
            state = self._index.__getstate__()[0]
            count, size, offset = state["cur_element_count"], state["size_data_per_element"], state["label_offset"]
            rows = np.asarray(state["data_level0"], dtype=np.uint8)[: count * size].reshape(count, size)
            labels = rows[:, offset : offset + 8].copy().view("<u8").ravel()
            referenced = np.zeros(count, dtype=bool)
            referenced[np.asarray(state["label_lookup_internal"], dtype=np.int64)] = True
            held = {int(label) for label in labels[~referenced] if label < len(self._id_at)}
            return sorted(node_id for label in held if (node_id := self._id_at[label]) is not None)

    def without(self, ids: Iterable[str]) -> HnswVectorIndex:
        """A new index built afresh from this one's vectors but ``ids``'s: it holds no shadowed element (nor any
        deleted slot), and is saved whole next time (its labels are new)."""
        dropped = set(ids)
        with self._lock:
            keep = sorted(node_id for node_id in self._label_of if node_id not in dropped)
            fresh = HnswVectorIndex(self.dim, *self._params, capacity=max(len(keep), 1))
            digests = [self._digest_at[self._label_of[node_id]].decode() for node_id in keep]
            fresh.add(keep, self.get(keep), digests)
            return fresh

    @classmethod
    def load(cls, path: Path, id_path: Path, dim: int, m: int, ef_construction: int, ef_search: int,
             delta: tuple[Path, Path] | None = None) -> HnswVectorIndex:
        """The index saved whole at ``path``/``id_path``, with the ``delta`` written since (if any) replayed."""
        payload = orjson.loads(id_path.read_bytes())
        self = cls(dim, m, ef_construction, ef_search, capacity=1)
        self._index = hnswlib.Index(space="ip", dim=dim)
        self._index.load_index(str(path), max_elements=max(payload["capacity"], 1), allow_replace_deleted=True)
        self._index.set_ef(ef_search)
        if "ids" in payload:
            self._id_at = payload["ids"]
            digests = payload.pop("digests")
            if isinstance(digests, str):  # fixed-width digests in one string (latin-1: a byte per character)
                self._digest_at = np.frombuffer(digests.encode("latin-1"), dtype=f"S{payload['digest_width']}").copy()
            else:  # a list by label, as commit 247f6b3 wrote them
                self._digest_at = _digest_array(digests)
        else:  # written before the maps were kept by label: {"labels": {id: label}, "digests": {id: digest}}
            self._id_at = [None] * payload["next_label"]
            for node_id, label in payload["labels"].items():
                self._id_at[label] = node_id
            by_id = payload.get("digests", {})
            self._digest_at = _digest_array([by_id.get(node_id, "") if node_id is not None else "" for node_id in self._id_at])
        self._label_of = {node_id: label for label, node_id in enumerate(self._id_at) if node_id is not None}
        self._based = True
        if delta is not None:
            self._replay(*delta)
        return self

    def save(self, path: Path, id_path: Path) -> int:
        """Writes the whole index and its id map; returns ``changes`` as saved."""
        with self._lock:
            self._index.save_index(str(path))
            packed = self._digest_at[: len(self._id_at)].tobytes().decode("latin-1")
            id_path.write_bytes(orjson.dumps({"ids": self._id_at, "digests": packed, "digest_width": self._digest_at.itemsize,
                                              "capacity": self._index.get_max_elements()}))
            self._based = True
            self._touched.clear()
            return self._changes

    def save_delta(self, id_path: Path, vector_path: Path) -> int:
        """Writes what changed since the last full save: the ids present now with their vectors and digests, and the
        ids gone (some may never have been in the full files: deleting them again is harmless). Returns ``changes``."""
        with self._lock:
            if not self._based:
                raise RuntimeError("a delta needs an index saved whole first")
            present = sorted(i for i in self._touched if i in self._label_of)
            gone = sorted(i for i in self._touched if i not in self._label_of)
            with open(vector_path, "wb") as handle:
                np.save(handle, self.get(present))
            digests = [self._digest_at[self._label_of[i]].decode() for i in present]
            id_path.write_bytes(orjson.dumps({"ids": present, "digests": digests, "deleted": gone}))
            return self._changes

    def _replay(self, id_path: Path, vector_path: Path) -> None:
        payload = orjson.loads(id_path.read_bytes())
        with open(vector_path, "rb") as handle:
            vectors = np.load(handle)
        self.delete(payload["deleted"])
        self.add(payload["ids"], vectors, payload["digests"])

    def _ensure_capacity(self, extra: int) -> None:
        needed = self._index.get_current_count() + extra
        capacity = self._index.get_max_elements()
        if needed > capacity:
            self._index.resize_index(max(needed, capacity * 2))

    def add(self, ids: Sequence[str], vectors: np.ndarray, digests: Sequence[str] | None = None) -> None:
        """Insert or replace the vectors of ``ids``; ``digests`` name the texts they were made from."""
        if len(ids) == 0:
            return
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"expected {len(ids)} vectors of dimension {self.dim}, got shape {vectors.shape}")
        with self._lock:
            self._changes += 1
            if self._based:
                self._touched.update(ids)
            labels = np.empty(len(ids), dtype=np.int64)
            replaced = np.zeros(len(ids), dtype=bool)  # rows whose id already has a vector here
            for row, node_id in enumerate(ids):
                label = self._label_of.get(node_id)
                if label is None:
                    label = len(self._id_at)
                    self._label_of[node_id] = label
                    self._id_at.append(node_id)
                else:
                    replaced[row] = True
                labels[row] = label
            encoded = _digest_array(digests if digests is not None else [""] * len(ids))
            if len(self._digest_at) < len(self._id_at) or encoded.itemsize > self._digest_at.itemsize:
                width = max(encoded.itemsize, self._digest_at.itemsize)
                grown = np.zeros(max(len(self._id_at), 2 * len(self._digest_at)), dtype=f"S{width}")
                grown[: len(self._digest_at)] = self._digest_at
                self._digest_at = grown
            self._digest_at[labels] = encoded
            self._ensure_capacity(int((~replaced).sum()))
            # one thread: on the write path extraction and embedding already keep every core busy, and the writer's
            # own cost stays in its thread's CPU time (what bench/index_throughput.py reports per word).
            # A replaced vector is updated where it is: hnswlib's replace_deleted would put it in a deleted element's
            # slot and leave the old element, with the same label and the old vector, in the graph: searchable, and
            # the one a reload maps the label to when its slot comes later (stale Community vectors after a service's
            # second batch, issue 23)
            if replaced.any():
                self._index.add_items(vectors[replaced], labels[replaced], num_threads=1, replace_deleted=False)
            if not replaced.all():
                self._index.add_items(vectors[~replaced], labels[~replaced], num_threads=1, replace_deleted=True)

    def delete(self, ids: Iterable[str]) -> None:
        with self._lock:
            for node_id in ids:
                if self._based:
                    self._touched.add(node_id)
                label = self._label_of.pop(node_id, None)
                if label is not None:
                    self._id_at[label] = None
                    self._digest_at[label] = b""
                    self._index.mark_deleted(label)
                    self._changes += 1

    def search(self, vector: np.ndarray, k: int) -> list[tuple[str, float]]:
        with self._lock:
            k = min(k, len(self._label_of))
            if k <= 0:
                return []
            query = np.asarray(vector, dtype=np.float32).reshape(1, -1)
            while True:
                try:
                    labels, distances = self._index.knn_query(query, k=k)
                    break
                except RuntimeError:  # fewer reachable live elements than k (many deletions): ask for fewer
                    if k == 1:
                        return []
                    k = max(1, k // 2)
            found = [(self._id_at[label], float(1.0 - d)) for label, d in zip(labels[0].tolist(), distances[0].tolist())]
            return [(node_id, similarity) for node_id, similarity in found if node_id is not None]

    def get(self, ids: Sequence[str]) -> np.ndarray:
        with self._lock:
            if not ids:
                return np.zeros((0, self.dim), dtype=np.float32)
            return np.asarray(self._index.get_items([self._label_of[i] for i in ids]), dtype=np.float32)

    def similarities(self, ids: Sequence[str], vector: np.ndarray) -> dict[str, float]:
        with self._lock:
            present = [i for i in ids if i in self._label_of]
            return dict(zip(present, (self.get(present) @ np.asarray(vector, dtype=np.float32)).tolist())) if present else {}

    def ids(self) -> set[str]:
        return set(self._label_of)

    def digests(self) -> dict[str, str]:
        """Node id -> digest of the text its vector was made from ("" when unknown)."""
        with self._lock:
            return {node_id: self._digest_at[label].decode() for node_id, label in self._label_of.items()}

    def __len__(self) -> int:
        return len(self._label_of)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._label_of


def _digest_array(digests: Sequence[str]) -> np.ndarray:
    """Digests as fixed-width bytes (ours are 16 hex digits; a longer one makes the array wider)."""
    encoded = [d.encode() for d in digests]
    return np.array(encoded, dtype=f"S{max([16, *map(len, encoded)])}")
