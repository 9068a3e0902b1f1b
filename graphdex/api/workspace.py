"""Opens the stores, embedder and engines named by the settings: the one place where the pieces are wired."""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, cast

from graphdex.common.embedder import Embedder, OnnxEmbedder, make_embedder
from graphdex.common.llm import LiteLLMChat, make_llm
from graphdex.common.rwlock import ReadWriteLock
from graphdex.common.settings import Settings
from graphdex.common.tokens import TokenCounter, token_counter
from graphdex.graph.model import SEARCHABLE_TYPES
from graphdex.graph.projection_keeper import FollowingProjection, StoredProjection
from graphdex.graph.sqlite_store import SqliteGraphStore
from graphdex.graph.store import GraphStore
from graphdex.graph.vector_index import VectorIndexSet
from graphdex.graph.vectors import VectorIndexes

if TYPE_CHECKING:  # the write side and the query side are imported by what opens them: `stats` needs neither
    from graphdex.common.ray_cluster import RayCluster
    from graphdex.graph.neo4j_store import Neo4jGraphStore
    from graphdex.ingest.extraction import Extractor
    from graphdex.ingest.maintenance import Maintenance
    from graphdex.ingest.pipeline import Indexer
    from graphdex.query.answer import Answerer
    from graphdex.query.engine import QueryEngine

log = logging.getLogger(__name__)


class Workspace:
    """Everything one index needs, created lazily so that `stats` does not load spaCy or the model.

    ``shared``: another workspace whose heavy parts (embedder, spaCy model, language model, extractor) this one uses
    instead of loading its own; the service's named workspaces all borrow the default one's. A workspace closes only
    what it owns."""

    def __init__(self, settings: Settings, shared: Workspace | None = None) -> None:
        self.settings = settings
        self.guard = ReadWriteLock()  # queries read under it; the indexer's mutations take it exclusively
        self._shared = shared

    @cached_property
    def data_dir(self) -> Path:
        path = self.settings.data_dir.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @cached_property
    def store(self) -> GraphStore:
        s = self.settings
        if s.store == "neo4j":
            from graphdex.graph.neo4j_store import Neo4jGraphStore

            return Neo4jGraphStore(s.neo4j_uri, s.neo4j_user, s.neo4j_password, s.neo4j_database, s.neo4j_workspace)
        return SqliteGraphStore(self.data_dir / "graph")

    @cached_property
    def embedder(self) -> Embedder:
        return self._shared.embedder if self._shared else make_embedder(self.settings)

    @cached_property
    def cluster(self) -> RayCluster | None:
        """The Ray cluster of GRAPHDEX_RAY_ADDRESS, connected (or a ClusterError saying what to do); None without it,
        and then Ray is never imported. Borrowed, with its actors, like the other heavy parts."""
        if self._shared:
            return self._shared.cluster
        s = self.settings
        if not s.ray_address:
            return None
        from graphdex.common.ray_cluster import RayCluster

        return RayCluster(s.ray_address, s.ray_actor_cpus, s.ray_start_timeout)

    @cached_property
    def write_embedder(self) -> Embedder:
        """The embedder of the write path (ingest, delete, repair): the bundled model's actors on the Ray cluster
        when there is one. Queries keep ``embedder``: one short text, which a round trip would only slow down."""
        if self._shared:
            return self._shared.write_embedder
        s = self.settings
        if self.cluster is None or s.embedder != "local":
            return self.embedder
        from graphdex.common.ray_embedder import RayEmbedder

        local = cast(OnnxEmbedder, self.embedder)
        return RayEmbedder(self.cluster, local.tokenizer, local.calibration, model=s.local_model, model_path=s.onnx_model_path,
                           tokenizer_path=s.tokenizer_path, arithmetic=s.local_embedder_arithmetic, cache_dir=s.model_cache_dir,
                           maven_repository=s.maven_repository, threads=s.embed_threads, actors=s.ray_embed_actors)

    def _embedding_space(self) -> tuple[int, str]:
        """The dimension and name of the embedder, which the stored vectors are checked against. The bundled model's
        are known without loading it (`stats` never loads it); a litellm model's
        dimension is learnt by loading it (a probe call)."""
        if "embedder" not in self.__dict__ and self.settings.embedder == "local":
            return OnnxEmbedder.dim, OnnxEmbedder.name_for(self.settings.local_model, self.settings.local_embedder_arithmetic)
        return self.embedder.dim, self.embedder.name

    @cached_property
    def vectors(self) -> VectorIndexes:
        s = self.settings
        dim, model = self._embedding_space()
        if s.store == "neo4j" and s.neo4j_vectors == "neo4j":
            from graphdex.graph.neo4j_vectors import Neo4jVectorIndexes

            return Neo4jVectorIndexes(cast("Neo4jGraphStore", self.store), dim, model, s.hnsw_m, s.hnsw_ef_construction)
        # vectors belong to one graph: the embedded store's, or one Neo4j workspace's
        folder = "vectors" if s.store == "embedded" else f"vectors-neo4j-{s.neo4j_workspace}"
        return VectorIndexSet(self.data_dir / folder, dim, model, s.hnsw_m, s.hnsw_ef_construction, s.hnsw_ef_search, s.vector_delta_limit)

    @cached_property
    def nlp(self):
        from graphdex.ingest.spacy_extractor import load_spacy

        return self._shared.nlp if self._shared else load_spacy(self.settings.spacy_model)

    def token_counter(self) -> TokenCounter:
        return token_counter(self.embedder)

    @cached_property
    def llm(self) -> LiteLLMChat | None:
        """The chat model of GRAPHDEX_LLM_MODEL, or None: then everything runs on spaCy and no answers are written."""
        return self._shared.llm if self._shared else make_llm(self.settings, self.data_dir)

    @cached_property
    def extractor(self) -> Extractor:
        """spaCy worker processes or the model's call pool: one for every workspace that borrows from this one."""
        if self._shared:
            return self._shared.extractor
        from graphdex.ingest.llm_extractor import LLMExtractor
        from graphdex.ingest.shared_extractor import SharedExtractor
        from graphdex.ingest.spacy_extractor import SpacyConfig, SpacyExtractor

        s = self.settings
        spacy_config = SpacyConfig(s.spacy_model, tuple(s.excluded_entity_types), s.max_cooccurrence_window)
        if s.extractor == "llm":
            if self.llm is None:  # the settings refuse this, but a model must be there to extract with
                raise ValueError("GRAPHDEX_EXTRACTOR=llm needs GRAPHDEX_LLM_MODEL")
            fallback = SpacyExtractor(spacy_config, workers=0) if s.llm_extraction_fallback == "spacy" else None
            return SharedExtractor(LLMExtractor(self.llm, s.llm_entity_types, s.llm_gleaning, s.llm_concurrency, fallback))
        if self.cluster is not None:
            from graphdex.ingest.ray_workers import RayExtractor

            return SharedExtractor(RayExtractor(self.cluster, spacy_config, s.ray_extract_actors, s.extract_batch_chunks))
        workers = s.extract_workers if s.extract_workers is not None else max(1, (os.cpu_count() or 2) - 1)
        return SharedExtractor(SpacyExtractor(spacy_config, workers, s.extract_batch_chunks))

    @cached_property
    def maintenance(self) -> Maintenance:
        """Delete, repair and communities; opening it repairs any vector an interrupted run left out of step."""
        from graphdex.ingest.community_layer import CommunityPolicy
        from graphdex.ingest.derive import Derivation
        from graphdex.ingest.llm_extractor import make_summarizer
        from graphdex.ingest.maintenance import Maintenance
        from graphdex.ingest.target import IndexTarget

        s = self.settings
        llm = self.llm
        target = IndexTarget(store=self.store, vectors=self.vectors, embedder=self.write_embedder, exclusive=self.guard.write)
        maintenance = Maintenance(target=target, derivation=Derivation(make_summarizer(llm) if llm else None, s.llm_summary_threshold),
                                  communities=CommunityPolicy(s.community_resolution, s.community_min_size, s.community_max_size))
        maintenance.recover()
        return maintenance

    @cached_property
    def indexer(self) -> Indexer:
        from graphdex.ingest.chunking import Chunker
        from graphdex.ingest.pipeline import Indexer

        s = self.settings
        maintenance = self.maintenance
        return Indexer(target=maintenance.target, extractor=self.extractor, chunker=Chunker(self.token_counter(), s.chunk_tokens, s.chunk_overlap),
                       maintenance=maintenance, llm_usage=self.llm.usage if self.llm else None, write_batch_chunks=s.write_batch_chunks)

    @cached_property
    def engine(self) -> QueryEngine:
        from graphdex.query.analysis import QueryAnalyzer, SpacyQueryAnalyzer
        from graphdex.query.engine import QueryEngine
        from graphdex.query.llm_keywords import LLMQueryAnalyzer

        # the embedding model loads on another thread while spaCy loads on this one: the ONNX session (0.3 s) is built
        # in native code, so on two cores it costs no wall time beside spaCy (1 s), which is Python
        with ThreadPoolExecutor(1, thread_name_prefix="graphdex-embedder") as loader:
            loading = loader.submit(lambda: self.embedder)
            analyzer: QueryAnalyzer = SpacyQueryAnalyzer(self.nlp, self.settings.excluded_entity_types)
            embedder = loading.result()
        if self.llm is not None and self.settings.llm_keywords:
            analyzer = LLMQueryAnalyzer(self.llm, analyzer)
        # the embedded store keeps its projection on disk, written with the graph; a Neo4j projection is followed by
        # change in the background, and Neo4j's transactions show it only committed writes, so it runs beside the writer
        store = self.store
        projections = StoredProjection(store) if isinstance(store, SqliteGraphStore) else FollowingProjection(store, nullcontext)
        return QueryEngine(store, self.vectors, embedder, analyzer, self.settings.ppr_alpha, self.settings.ppr_iterations,
                           self.settings.ppr_tolerance, shared=self.guard.read, projections=projections,
                           feedback_passages=self.settings.feedback_passages)

    def prepare_query(self, mode: str) -> None:
        """Starts loading what a query in ``mode`` reads (its vector indexes and, on the embedded store, the PageRank
        projection) on a background thread: a fresh `graphdex query` process loads them while this thread loads
        spaCy and the embedding model, instead of after. The query waits for what it needs (each index loads under
        a lock) and loads, and reports, whatever failed here itself."""
        from graphdex.query.modes import MODE_INDEXES, PROJECTION_MODES

        def load() -> None:
            try:
                for type_ in MODE_INDEXES.get(mode, ()):
                    self.vectors[type_]
                if mode in PROJECTION_MODES and isinstance(self.store, SqliteGraphStore):
                    self.store.projection()
            except Exception:  # noqa: BLE001 (the query meets the same error, and reports it)
                log.debug("loading ahead for a %s query failed", mode, exc_info=True)

        threading.Thread(target=load, name="graphdex-prepare-query", daemon=True).start()

    @cached_property
    def answerer(self) -> Answerer | None:
        from graphdex.query.answer import Answerer

        return Answerer(self.llm, self.settings.llm_answer_format) if self.llm is not None else None

    def graph_changed(self, wait: float = 0.0) -> None:
        """After a write: bring the PageRank projection up to date (off the query path), so the next queries find it
        fresh. ``wait``: seconds to wait for it; the service waits when its queue has emptied, so that a document it
        reports done is found by graph mode too (over Bolt, following a write takes seconds)."""
        if "engine" in self.__dict__:
            self.engine.projections.refresh()
            if wait > 0:
                self.engine.projections.wait(wait)

    def warm(self) -> None:
        """Load the query side, with every vector index (each is otherwise loaded by the first query that searches
        it), and its projection before the first query arrives (the service does this)."""
        self.store.warm()
        engine = self.engine
        for type_ in SEARCHABLE_TYPES:
            self.vectors[type_]
        engine.projections.warm()

    def stats(self) -> dict:
        return {"data_dir": str(self.data_dir), "store": self.settings.store, **self.store.counts(), "vectors": self.vectors.counts()}

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.projections.close()
        if "extractor" in self.__dict__ and self._shared is None:  # the indexers only use it
            self.extractor.close()
        cluster = self.__dict__.get("cluster")
        if cluster is not None and self._shared is None:
            cluster.close()  # the actors of the write embedder (the extractor's are gone already)
        if "store" in self.__dict__:
            self.store.close()
