"""The ingest path: documents -> chunks -> extractions -> merged elements -> vectors and one graph write per batch.

Order of a write: extract -> merge contributions with what is stored -> derive properties -> embed only the nodes
whose text changed -> add vectors -> one atomic graph write. Vectors are saved as one generation at the end of each
operation (and every few thousand chunks); after a crash ``Maintenance.recover`` brings them in line with the graph.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from graphdex.common.faults import crash_point
from graphdex.common.ids import chunk_id, content_hash, document_id
from graphdex.common.llm import Usage
from graphdex.common.memory import release_free_memory
from graphdex.common.resolution import find_acronyms
from graphdex.graph.model import Edge, EdgeKey, Node
from graphdex.graph.store import StoreError, StoreUnavailable
from graphdex.ingest.chunking import Chunker
from graphdex.ingest.documents import SourceDocument
from graphdex.ingest.extraction import ChunkExtraction, ChunkInput, Extractor
from graphdex.ingest.maintenance import Maintenance
from graphdex.ingest.merge import BatchGraph, MergedBatch, PreparedDocument, batch_graph, merge_with_stored
from graphdex.ingest.target import IndexTarget, NodeVectors

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
T = TypeVar("T")

SAVE_EVERY_CHUNKS = 5000


@dataclass
class IngestReport:
    documents_added: int = 0
    documents_replaced: int = 0
    documents_unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    words: int = 0
    entities: int = 0  # distinct entities the new documents mention
    relations: int = 0  # distinct relations they support
    seconds: float = 0.0
    problem_chunks: int = 0  # chunks whose extraction went partly wrong (marked on the chunk, see its extraction_problems)
    llm_usage: dict[str, int] = field(default_factory=dict)  # model calls and tokens spent by this ingest
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    #: CPU time of the thread that ran each stage: what the single writer costs per word, apart from waiting
    stage_cpu_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    document_ids: list[str] = field(default_factory=list)

    def timed(self, stage: str, work: Callable[[], T]) -> T:
        began, began_cpu = time.perf_counter(), time.thread_time()
        try:
            return work()
        finally:
            self.stage_seconds[stage] += time.perf_counter() - began
            self.stage_cpu_seconds[stage] += time.thread_time() - began_cpu


class PipelinedWriter:
    """Writes batch i (vectors + store) on a second thread while batch i+1 is merged and embedded.

    The merge of batch i+1 must see batch i's elements even before they are stored, so reads of stored elements go
    through the in-flight batch first (the overlay): the result never depends on where batch boundaries fall.
    """

    def __init__(self, target: IndexTarget, report: IngestReport) -> None:
        self._target = target
        self._report = report
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphdex-write")
        self._in_flight: Future | None = None
        self._overlay: tuple[dict[str, Node], dict[EdgeKey, Edge]] = ({}, {})

    def stored_nodes(self, ids: Iterable[str]) -> dict[str, Node]:
        overlay = self._overlay[0]
        ids = list(ids)
        found = self._target.store.get_nodes((i for i in ids if i not in overlay), contributions=False)
        return {**found, **{i: overlay[i] for i in ids if i in overlay}}

    def stored_edges(self, keys: Iterable[EdgeKey]) -> dict[EdgeKey, Edge]:
        overlay = self._overlay[1]
        keys = list(keys)
        found = self._target.store.get_edges((k for k in keys if k not in overlay), contributions=False)
        return {**found, **{k: overlay[k] for k in keys if k in overlay}}

    def submit(self, merged: MergedBatch, vectors: NodeVectors) -> None:
        self.wait()
        self._overlay = (merged.nodes, merged.edges)
        nodes, edges = list(merged.nodes.values()), list(merged.edges.values())
        self._in_flight = self._pool.submit(self._report.timed, "store_write", lambda: self._write(vectors, nodes, edges))

    def _write(self, vectors: NodeVectors, nodes: list[Node], edges: list[Edge]) -> None:
        self._target.apply(vectors, nodes, edges)
        crash_point("ingest.batch_written")
        # the batches' parsed rows and extraction results are garbage by now (not after every batch: the pages a trim
        # hands back are faulted in again by the next batches, which cost 7% of a build's CPU at one trim a second)
        release_free_memory(30.0)

    def wait(self) -> None:
        """Until the batch in flight is stored (re-raising its error, if it failed)."""
        if self._in_flight is not None:
            self._report.timed("write_wait", self._in_flight.result)
            self._in_flight = None

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._overlay = ({}, {})
            self._pool.shutdown()


class Indexer:
    """The single writer of a graph store and its vector indexes on the ingest path."""

    def __init__(self, *, target: IndexTarget, extractor: Extractor, chunker: Chunker, maintenance: Maintenance, llm_usage: Usage | None = None,
                 write_batch_chunks: int = 256) -> None:
        self.target = target
        self.write_batch_chunks = write_batch_chunks
        self.extractor = extractor
        self.chunker = chunker
        self.maintenance = maintenance  # replaced documents are removed first; communities are refreshed after
        self.llm_usage = llm_usage

    def ingest(self, documents: Iterable[SourceDocument], progress: Progress | None = None, *, settle: bool = True) -> IngestReport:
        """Indexes new and changed documents. When the store refuses a write batch (not an outage, which is raised:
        the same call can succeed later), its documents are written again one at a time, so that only the documents
        the store refuses fail, each with the store's reason.

        ``settle=False`` leaves the community refresh and the closing vector save to a later ``settle()`` (or the
        next settling ingest, delete or start): a caller with more batches waiting pays the refresh once for all
        of them. On a large index the refresh, not the batch, is most of a small write's cost."""
        try:
            return self._ingest(documents, progress, settle)
        finally:
            self.target.end_operation()  # vectors recycled from replaced documents are this operation's only

    def settle(self) -> float:
        """The community refresh and closing save that ingests with ``settle=False`` left; returns its seconds."""
        began = time.perf_counter()
        if self.target.changes or self.target.vectors.dirty:
            self.extractor.release_workers()
            self.maintenance.finish()
        return time.perf_counter() - began

    def _ingest(self, documents: Iterable[SourceDocument], progress: Progress | None, settle: bool = True) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        usage_before = self.llm_usage.snapshot() if self.llm_usage else {}
        prepared = self._prepare(documents, report)
        touched: tuple[set[str], set[str]] = (set(), set())
        try:
            self._write(prepared, report, touched, progress)
        except StoreUnavailable:
            raise
        except StoreError as error:
            if len(prepared) < 2:
                raise
            log.warning("the graph store refused a write (%s); writing the %d documents one at a time", error, len(prepared))
            self._write_one_by_one(prepared, report, touched)
        # the communities these writes touched (``target.changes``) are clustered again; an earlier operation that
        # stopped before its closing save (a store outage) is finished here too, its touches still recorded
        if settle and (prepared or self.target.vectors.dirty):
            crash_point("ingest.before_communities")
            self.extractor.release_workers()  # the refresh and the save are the operation's peak of memory
            report.timed("communities", self.maintenance.refresh_communities)
            release_free_memory(0)
            crash_point("ingest.communities_written")
            report.timed("vector_save", lambda: self.target.vectors.save(complete=True))
        report.entities = len(touched[0])
        report.relations = len(touched[1])
        report.seconds = time.perf_counter() - started
        if self.llm_usage:
            report.llm_usage = {k: v - usage_before[k] for k, v in self.llm_usage.snapshot().items()}
        return report

    def _write(self, prepared: list[PreparedDocument], report: IngestReport, touched: tuple[set[str], set[str]], progress: Progress | None = None) -> None:
        """Extracts, merges, embeds and writes the documents batch by batch; ``touched`` collects the entity and
        relation ids their batches merged."""
        total_chunks = sum(len(p.chunks) for p in prepared)
        if progress:
            progress(0, total_chunks)
        done = since_save = 0
        now = datetime.now(UTC).isoformat(timespec="seconds")
        writer = PipelinedWriter(self.target, report)
        try:
            for batch in self._extracted_batches(prepared, report):
                graph, merged = report.timed("merge", lambda: self._merged(batch, now, writer))  # noqa: B023 (called at once)
                vectors = report.timed("embedding", lambda: self.target.embed(merged.to_embed))  # noqa: B023 (called at once)
                writer.submit(merged, vectors)
                written = sum(len(p.chunks) for p, _ in batch)
                report.chunks += written
                report.words += graph.words
                report.problem_chunks += graph.problem_chunks
                touched[0].update(merged.entities)
                touched[1].update(merged.relations)
                done += written
                since_save += written
                if since_save >= SAVE_EVERY_CHUNKS:
                    writer.wait()
                    report.timed("vector_save", self.target.vectors.save)
                    crash_point("ingest.saved_midway")
                    since_save = 0
                if progress:
                    progress(done, total_chunks)
        finally:
            writer.close()

    def _merged(self, batch: list[tuple[PreparedDocument, list[ChunkExtraction]]], now: str, writer: PipelinedWriter) -> tuple[BatchGraph, MergedBatch]:
        graph = batch_graph(batch, now)
        stored_nodes = writer.stored_nodes([*graph.entities, *graph.relations])
        return graph, merge_with_stored(graph, stored_nodes, writer.stored_edges(graph.stored_edge_keys()), self.maintenance.derivation)

    def _write_one_by_one(self, prepared: list[PreparedDocument], report: IngestReport, touched: tuple[set[str], set[str]]) -> None:
        """After a refused batch: each document alone. The documents an earlier batch of the failed attempt stored
        are counted, not written again (a write adds its contributions to the summaries stored), so the counts
        simply start over."""
        report.chunks = report.words = report.problem_chunks = 0
        stored = self.target.store.get_nodes([item.doc_id for item in prepared], contributions=False)
        for item in prepared:
            done = stored.get(item.doc_id)
            if done is not None and done.props.get("content_hash") == item.hash:
                report.chunks += len(item.chunks)
                report.words += int(done.props.get("words", 0))
                continue
            try:
                self._write([item], report, touched)
            except StoreUnavailable:
                raise
            except StoreError as error:
                log.error("the graph store refused document %s: %s", item.doc.source, error)
                report.failed.append((item.doc.source, f"the graph store refused it: {error}"))
                report.document_ids.remove(item.doc_id)
                if item.replaces_stored:
                    report.documents_replaced -= 1
                else:
                    report.documents_added -= 1

    def _prepare(self, documents: Iterable[SourceDocument], report: IngestReport) -> list[PreparedDocument]:
        """New and changed documents, chunked; unchanged ones are counted and skipped, changed ones removed first."""
        latest: dict[str, SourceDocument] = {}
        for doc in documents:
            latest[doc.source] = doc  # the same source twice in one call: the last version wins
        prepared: list[PreparedDocument] = []
        ids = {source: document_id(source) for source in latest}
        stored = self.target.store.get_nodes(ids.values())
        for source, doc in latest.items():
            doc_id = ids[source]
            if not doc.text.strip():
                report.failed.append((source, "document has no text"))
                continue
            digest = content_hash(doc.title + "\x00" + doc.text)
            previous = stored.get(doc_id)
            if previous is not None and previous.props.get("content_hash") == digest:
                report.documents_unchanged += 1
                report.document_ids.append(doc_id)
                continue
            chunks = report.timed("chunking", lambda: self.chunker.split(doc.text, doc.layout.boundaries()))  # noqa: B023 (called at once)
            if not chunks:
                report.failed.append((source, "document has no text"))
                continue
            if previous is not None:
                self.maintenance.remove_document(doc_id, recycle=True)
                crash_point("ingest.replaced_removed")
                report.documents_replaced += 1
            else:
                report.documents_added += 1
            report.document_ids.append(doc_id)
            prepared.append(PreparedDocument(doc, doc_id, digest, chunks, replaces_stored=previous is not None))
        return prepared

    def _extracted_batches(self, prepared: list[PreparedDocument], report: IngestReport) -> Iterator[list[tuple[PreparedDocument, list[ChunkExtraction]]]]:
        """Documents with their extractions, grouped into write batches, streamed as extraction proceeds."""

        def inputs() -> Iterator[ChunkInput]:
            for item in prepared:
                acronyms = find_acronyms(item.doc.text)
                for chunk in item.chunks:
                    yield ChunkInput(chunk_id(item.doc_id, chunk.index), chunk.text, acronyms, item.doc.title, chunk.index == 0)

        stream = self.extractor.extract(inputs())
        batch: list[tuple[PreparedDocument, list[ChunkExtraction]]] = []
        batch_chunks = 0
        for item in prepared:
            extractions = report.timed("extraction_wait", lambda: [next(stream) for _ in item.chunks])  # noqa: B023 (called at once)
            batch.append((item, extractions))
            batch_chunks += len(item.chunks)
            if batch_chunks >= self.write_batch_chunks:
                yield batch
                batch, batch_chunks = [], 0
        if batch:
            yield batch

    def close(self) -> None:
        self.extractor.close()
