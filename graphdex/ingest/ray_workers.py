"""spaCy extraction on a Ray cluster: the Extractor the Indexer uses when GRAPHDEX_RAY_ADDRESS is set.

The chunks stream out in batches to spaCy actors spread over the cluster's nodes, each of which loads the pipeline
once; the extractions stream back in input order, so the single writer merges exactly what a local run would.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

from graphdex.common.ray_cluster import ActorPlace, RayCluster, actor_place
from graphdex.ingest.extraction import ChunkExtraction, ChunkInput
from graphdex.ingest.spacy_extractor import SpacyConfig, extract_batch, load_spacy


def extraction_libraries(config: SpacyConfig) -> tuple[str, ...]:
    """The packages besides graphdex whose versions decide an extraction: driver and actors must agree on them."""
    return ("spacy", "thinc", config.model)


class SpacyActor:
    """One spaCy pipeline for the actor's life: loading it takes seconds, a batch of chunks far less."""

    def __init__(self, config: SpacyConfig) -> None:
        self._config = config
        self._nlp = load_spacy(config.model)

    def describe(self) -> ActorPlace:
        return actor_place(extraction_libraries(self._config))

    def extract(self, batch: list[ChunkInput]) -> list[ChunkExtraction]:
        return extract_batch(self._nlp, batch, self._config)


class RayExtractor:
    """Extractor whose spaCy runs in actors on a Ray cluster (``actors``: how many; None = one per cluster CPU)."""

    def __init__(self, cluster: RayCluster, config: SpacyConfig, actors: int | None = None, batch_size: int = 64) -> None:
        self.batch_size = batch_size
        count = actors or max(1, int(cluster.cpus()))
        self._pool = cluster.pool(SpacyActor, (config,), count, label="spaCy extraction", count_setting="GRAPHDEX_RAY_EXTRACT_ACTORS",
                                  distributions=extraction_libraries(config))

    def extract(self, chunks: Iterable[ChunkInput]) -> Iterator[ChunkExtraction]:
        for extractions in self._pool.map("extract", _batches(chunks, self.batch_size)):
            yield from extractions

    def release_workers(self) -> None:
        """The actors run on the cluster's nodes, not beside the writer: they stay up for the next operation."""

    def close(self) -> None:
        self._pool.close()


def _batches(chunks: Iterable[ChunkInput], size: int) -> Iterator[list[ChunkInput]]:
    """Drawn lazily, so that only the batches in flight are ever held."""
    source = iter(chunks)
    while batch := list(islice(source, size)):
        yield batch
