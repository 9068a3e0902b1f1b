"""Retrieval modes over the heterogeneous graph.

- ``naive``: chunk vectors only (the flat-RAG baseline).
- ``local`` (low level): entities matched by name and by vector, their neighbourhood and the chunks that mention them.
- ``global`` (high level): relations and communities matched by vector, their entities and evidence chunks.
- ``hybrid``: local and global scores fused (both levels at once, as LightRAG's hybrid).
- ``graph``: personalized PageRank over the whole heterogeneous graph, seeded by the entry points of all the above.

Every mode ends the same way: chunk scores are blended with the chunk's own similarity to the question, then the
top chunks are returned with their citations.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext

import numpy as np

from graphdex.common.embedder import Embedder
from graphdex.common.ids import entity_id
from graphdex.common.resolution import name_core, normalize_key
from graphdex.graph.model import EdgeType, Node, NodeType
from graphdex.graph.projection import GraphProjection
from graphdex.graph.projection_keeper import FollowingProjection, ProjectionKeeper
from graphdex.graph.store import GraphStore
from graphdex.graph.vectors import VectorIndexes
from graphdex.query.analysis import QueryAnalyzer, QueryKeywords, without_names
from graphdex.query.hits import chunk_hits, node_hits
from graphdex.query.modes import DEFAULT_MODE, MODES, QueryError
from graphdex.query.results import QueryResult

log = logging.getLogger(__name__)

NEIGHBOUR_DECAY = 0.3
NEIGHBOURS_PER_SEED = 25
RESCORED_CHUNKS = 100
SEED_CHUNK_WEIGHT = 0.05
PPR_COMPRESSION = 0.5
RECOGNIZED_RELATIONS = 5  # relations of the named entities kept as the question's likely first hop
RECOGNITION_WEIGHT = 1.0  # seed weight of a recognised relation's far end, relative to the entity it starts from
ANCHORED_RELATIONS_MAX = 400  # relations of the named entities compared with the question at most (hubs have thousands)
FEEDBACK_WEIGHT = 0.1  # seed weight of an entity named by a first-walk passage, relative to the best named entity
FEEDBACK_CANDIDATES = 20  # first-walk chunks among which the feedback passages are chosen
DENSE_CANDIDATES = 10  # graph mode: the question's nearest chunks, ranked beside the walk's by the same blend
DOCUMENT_SHARE = 0.5  # graph mode: share of the walk its document's other chunks received that a chunk adds to its own
REMAINDER_WEIGHT = 0.3  # graph mode: weight of the question without its names in what passages are compared with


def _normalise(scores: dict[str, float]) -> dict[str, float]:
    if not scores:
        return {}
    top = max(scores.values())
    return {k: v / top for k, v in scores.items()} if top > 0 else dict(scores)


def _specificity(entity: Node) -> float:
    """1 for an entity one chunk mentions, falling slowly for hubs: a question naming "Director" or "American"
    says little about which of their hundreds of chunks it wants (the IDF idea, on graph nodes)."""
    return 1.0 / (1.0 + math.log(max(1, int(entity.props.get("support", 1)))))


def _sharpen(hits: list[tuple[str, float]], temperature: float = 0.05) -> list[tuple[str, float]]:
    """Seed weights that fall off steeply below the best hit: a vector search always returns k hits, and the
    weakest of them are usually unrelated; with flat weights they would pull the walk anywhere."""
    if not hits:
        return []
    best = max(score for _, score in hits)
    return [(node_id, best * math.exp((score - best) / temperature)) for node_id, score in hits]


@functools.cache
def _embedding_threads() -> ThreadPoolExecutor:
    """Threads that embed questions while spaCy analyses them: the ONNX model runs in native code without the GIL, so
    the two overlap (about 5 ms of a 15-20 ms pair here). One small pool for the process, however many workspaces
    (its threads start on first use)."""
    return ThreadPoolExecutor(2, thread_name_prefix="graphdex-question-embedding")


def _top_rows(scores: np.ndarray, n: int) -> np.ndarray:
    """Rows of the ``n`` highest scores, best first. A partial selection, then a sort of those n only: sorting every
    row of the graph cost more than the walk itself once the graph had a few hundred thousand nodes."""
    reached = np.flatnonzero(scores > 0)  # a walk from a few seeds reaches a small part of a large graph
    if n >= len(reached):
        return reached[np.lexsort((reached, -scores[reached]))]
    picked = reached[np.argpartition(-scores[reached], n - 1)[:n]]
    return picked[np.lexsort((picked, -scores[picked]))]


class QueryEngine:
    def __init__(self, store: GraphStore, vectors: VectorIndexes, embedder: Embedder, analyzer: QueryAnalyzer,
                 ppr_alpha: float = 0.3, ppr_iterations: int = 10, ppr_tolerance: float = 0.0,
                 shared: Callable[[], AbstractContextManager[None]] = nullcontext, projections: ProjectionKeeper | None = None,
                 feedback_passages: int = 0) -> None:
        """``shared`` is held while a query reads the store and vectors (the read side of the service's
        readers-writer lock), so a query never sees half of a write. ``projections`` keeps the PageRank projection
        (default: following the store's change log in the background, under ``shared``). ``feedback_passages``: how
        many of graph mode's first-walk passages seed a second walk with the entities they name (0: one walk)."""
        self.store = store
        self.vectors = vectors
        self.embedder = embedder
        self.analyzer = analyzer
        self.ppr_alpha = ppr_alpha
        self.ppr_iterations = ppr_iterations
        self.ppr_tolerance = ppr_tolerance
        self.shared = shared
        self.projections: ProjectionKeeper = projections if projections is not None else FollowingProjection(store, shared)
        self.feedback_passages = feedback_passages

    # entry points -----------------------------------------------------------------------------------------------

    def _entity_seeds(self, keywords: QueryKeywords, question_vector: np.ndarray) -> dict[str, float]:
        """Entities the question names: the longest word n-grams that are an entity's resolved name, then, for
        low-level keywords that matched no name exactly, the nearest entity names by vector."""
        seeds: dict[str, float] = {}
        ids = {span: entity_id(normalize_key(span[2])) for span in keywords.spans}
        found = self.store.get_nodes(set(ids.values()), contributions=False)
        covered: set[int] = set()
        for span in keywords.spans:  # longest first
            start, end, _ = span
            if ids[span] in found and not covered.intersection(range(start, end)):
                seeds[ids[span]] = _specificity(found[ids[span]])
                covered.update(range(start, end))
        matched = [normalize_key(found[i].props["name"]) for i in seeds]
        unmatched = [p for p in keywords.low_level if not any(normalize_key(p) in name for name in matched)]
        near: dict[str, float] = {}
        if unmatched:
            for vector in self.embedder.embed(unmatched):
                for node_id, score in self.vectors[NodeType.ENTITY].search(vector, 3):
                    if score >= self.embedder.calibration.same_name_similarity:
                        near[node_id] = max(near.get(node_id, 0.0), score)
        if not seeds and not near:
            near = {i: s for i, s in self.vectors[NodeType.ENTITY].search(question_vector, 5) if s >= self.embedder.calibration.same_name_similarity}
        for node_id, node in self.store.get_nodes(near, contributions=False).items():
            seeds[node_id] = max(seeds.get(node_id, 0.0), near[node_id] * _specificity(node))
        return seeds

    def _recognized_hops(self, named: dict[str, float], qv: np.ndarray) -> dict[str, float]:
        """The relations the question most likely asks about, among those that touch an entity it names ("the
        director of film X" -> "X directed by Y"), as seeds at their far ends: the bridge entity of a two-hop
        question is then a restart point of the walk, not a neighbour among hundreds."""
        if not named or RECOGNIZED_RELATIONS <= 0:
            return {}
        edges = self.store.edges_of_many(named, [EdgeType.CONNECTS], contributions=False)
        anchor_of: dict[str, str] = {}
        for entity in sorted(named, key=lambda e: -named[e]):
            for edge in edges.get(entity, ()):
                anchor_of.setdefault(edge.source, entity)
        # one call, scores only: on Neo4j a presence test per relation was a round trip each, and the vectors themselves
        # crossed the wire (a relation written but not yet embedded is simply left out)
        similarity = self.vectors[NodeType.RELATION].similarities(sorted(anchor_of)[:ANCHORED_RELATIONS_MAX], qv)
        if not similarity:
            return {}
        by_anchor: dict[str, list[tuple[str, float]]] = defaultdict(list)
        for relation, score in sorted(similarity.items()):
            by_anchor[anchor_of[relation]].append((relation, score))
        # each named entity gets its own first hop ("X or Y?" asks about both), ranked among its own relations
        best = {a: _sharpen(sorted(hits, key=lambda item: -item[1])[:RECOGNIZED_RELATIONS]) for a, hits in by_anchor.items()}
        found = self.store.get_nodes((r for hits in best.values() for r, _ in hits), contributions=False)
        seeds: dict[str, float] = {}
        for anchor, hits in best.items():
            for relation, score in hits:
                node = found.get(relation)
                if node is None:
                    continue
                weight = named[anchor] * score * RECOGNITION_WEIGHT
                seeds[relation] = max(seeds.get(relation, 0.0), weight)
                for end in node.props["ends"]:
                    if end != anchor:
                        seeds[end] = max(seeds.get(end, 0.0), weight)
        for end, core in self._qualified_cores(e for e in seeds if e not in found).items():
            seeds[core] = max(seeds.get(core, 0.0), seeds[end])
        return seeds

    def _qualified_cores(self, entities: Iterable[str]) -> dict[str, str]:
        """Entity -> the entity its name qualifies, for names with lowercase words at their edges ("Maharashtra
        state" -> "Maharashtra", "north-west Iowa" -> "Iowa") when that entity is indexed. A passage says "a village
        in Maharashtra state" while the state's own article and other passages say "Maharashtra"; the extractor
        keys the two apart, and joining them at query time depends on nothing but what is indexed."""
        core_of: dict[str, str] = {}
        for entity_id_, node in self.store.get_nodes(entities, contributions=False).items():
            core = name_core(node.props.get("name", ""))
            if core:
                core_of[entity_id_] = entity_id(normalize_key(core))
        present = self.store.get_nodes(set(core_of.values()), contributions=False) if core_of else {}
        return {e: core for e, core in core_of.items() if core in present and core != e}

    # modes ------------------------------------------------------------------------------------------------------

    def _naive(self, qv: np.ndarray, k: int) -> tuple[dict[str, float], dict[str, float]]:
        return dict(self.vectors[NodeType.CHUNK].search(qv, k)), {}

    def _local(self, keywords: QueryKeywords, qv: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
        seeds = self._entity_seeds(keywords, qv)
        nodes = dict(seeds)
        chunks: dict[str, float] = defaultdict(float)
        seed_edges = self.store.edges_of_many(seeds, [EdgeType.MENTIONS, EdgeType.RELATED_TO], contributions=False)
        for entity, score in seeds.items():
            neighbours: list[tuple[float, str]] = []
            for edge in seed_edges.get(entity, ()):
                if edge.type == EdgeType.MENTIONS:
                    chunks[edge.source] += score
                else:
                    other = edge.target if edge.source == entity else edge.source
                    neighbours.append((float(edge.props.get("weight", 1)) + (1.0 if edge.props.get("keywords") else 0.0), other))
            # the strongest links only: a hub's hundreds of neighbours would drown the ones that matter (and be slow)
            for _, other in sorted(neighbours, reverse=True)[:NEIGHBOURS_PER_SEED]:
                nodes[other] = max(nodes.get(other, 0.0), score * NEIGHBOUR_DECAY)
        neighbour_edges = self.store.edges_of_many([n for n in nodes if n not in seeds], [EdgeType.MENTIONS], contributions=False)
        for entity, edges in neighbour_edges.items():
            for edge in edges:
                chunks[edge.source] += nodes[entity]
        return dict(chunks), nodes

    def _global(self, qv: np.ndarray) -> tuple[dict[str, float], dict[str, float]]:
        nodes: dict[str, float] = {}
        chunks: dict[str, float] = defaultdict(float)
        relations = _sharpen(self.vectors[NodeType.RELATION].search(qv, 20))
        communities = _sharpen(self.vectors[NodeType.COMMUNITY].search(qv, 5))
        found = self.store.get_nodes([r for r, _ in relations] + [c for c, _ in communities], contributions=False)
        for node_id, score in relations + communities:
            node = found.get(node_id)
            if node is None:
                continue
            nodes[node_id] = score
            # a node's match is evidence for its passages together, not for each in full: a community lists up to 64
            # passages, and giving each the community's whole score drowned the few passages a relation names
            evidence = node.props.get("chunks", ())
            for chunk in evidence:
                chunks[chunk] += score / len(evidence)
            if node.type == NodeType.RELATION:
                for end in node.props["ends"]:
                    nodes[end] = max(nodes.get(end, 0.0), score * NEIGHBOUR_DECAY)
        return dict(chunks), nodes

    def _graph(self, keywords: QueryKeywords, qv: np.ndarray, k: int,
               remainder_embedding: Future[np.ndarray] | None = None) -> tuple[dict[str, float], dict[str, float]]:
        seeds = self._entity_seeds(keywords, qv)
        named = set(seeds)
        for node_id, weight in self._recognized_hops(dict(seeds), qv).items():
            seeds[node_id] = max(seeds.get(node_id, 0.0), weight)
        # named entities, their relations and the recognised hops lead the walk. Only a question that names nothing
        # starts it from relations, chunks and communities similar to the question: when something is named, those
        # would pull the walk towards whatever resembles the question's wording (other films' directors) and drown
        # the second hop that graph propagation exists to find
        if named:
            hits = self.vectors[NodeType.RELATION].search(qv, 10)
            ends = {i: set(node.props["ends"]) for i, node in self.store.get_nodes((h for h, _ in hits), contributions=False).items()}
            for node_id, score in _sharpen([(h, score) for h, score in hits if ends.get(h, set()) & named]):
                seeds[node_id] = max(seeds.get(node_id, 0.0), score)
        else:
            for index_type, n, weight in ((NodeType.RELATION, 10, 1.0), (NodeType.CHUNK, k, SEED_CHUNK_WEIGHT), (NodeType.COMMUNITY, 3, SEED_CHUNK_WEIGHT)):
                for node_id, score in _sharpen(self.vectors[index_type].search(qv, n)):
                    seeds[node_id] = max(seeds.get(node_id, 0.0), score * weight)
        projection = self.projections.get()
        scores = projection.personalized_pagerank(seeds, self.ppr_alpha, self.ppr_iterations, self.ppr_tolerance)
        feedback = self._feedback_seeds(projection, scores, seeds, _passage_vector(qv, remainder_embedding))
        if feedback:
            scores = projection.pagerank_with_more_seeds(scores, seeds, feedback, self.ppr_alpha, self.ppr_iterations, self.ppr_tolerance)
        top = _top_rows(scores, max(200, 5 * k))
        found = projection.rows.nodes_at(top.tolist())
        walked: dict[str, float] = {}
        nodes: dict[str, float] = {}
        for row in top.tolist():
            if row not in found:  # deleted since this projection's version
                continue
            node_id, type_ = found[row]
            if type_ == NodeType.CHUNK:
                walked[node_id] = float(scores[row])
            elif type_ != NodeType.DOCUMENT:
                nodes[node_id] = float(scores[row])
        return {c: score ** PPR_COMPRESSION for c, score in self._with_document_share(walked).items()}, nodes

    def _with_document_share(self, walked: dict[str, float]) -> dict[str, float]:
        """Each chunk's walk score plus a share of what its document's other chunks received. The walk that reaches
        a document (from the entity it is about, or from its chunks' entities) is split over its chunks, so a long
        article, say the one about the state a question's chain passes through, ranked below a one-chunk passage
        that the walk touched in passing; which of its chunks answers is for the similarity to decide."""
        if DOCUMENT_SHARE <= 0 or not walked:
            return walked
        # the chunks' HAS_CHUNK edges, not the chunks themselves: their texts would cross the wire for nothing (Neo4j)
        document_of = {c: edges[0].source for c, edges in self.store.edges_of_many(walked, [EdgeType.HAS_CHUNK], contributions=False).items()}
        per_document: dict[str, float] = defaultdict(float)
        for chunk, score in walked.items():
            per_document[document_of.get(chunk, chunk)] += score
        return {c: s + DOCUMENT_SHARE * (per_document[document_of.get(c, c)] - s) for c, s in walked.items()}

    def _feedback_seeds(self, projection: GraphProjection, scores: np.ndarray, seeds: dict[str, float], qv: np.ndarray) -> dict[str, float]:
        """Entities named by the first walk's best passages, as weak seeds of a second walk (pseudo-relevance
        feedback on the graph, with no model): in a chain of three or four hops the walk from the question's names
        fades before the last passage, while the passage that states the middle hop ranks high and names the entity
        the next hop starts from ("... died in Prague" for the question about the clock of the city where someone
        died). The passages are picked as the answer ranks them, walk score blended with similarity to the question;
        each entity's weight falls with how many chunks mention it, so a hub adds little."""
        if self.feedback_passages <= 0 or not seeds:
            return {}
        rows = _top_rows(scores, max(200, FEEDBACK_CANDIDATES))
        found = projection.rows.nodes_at(rows.tolist())
        walked = [(found[r][0], float(scores[r])) for r in rows.tolist() if r in found and found[r][1] == NodeType.CHUNK]
        candidates = dict(walked[:FEEDBACK_CANDIDATES])  # _top_rows gives the best first
        if not candidates:
            return {}
        blended = self._with_chunk_similarity(candidates, qv)
        passages = sorted(blended, key=lambda c: (-blended[c], c))[: self.feedback_passages]
        named = {edge.target for edges in self.store.edges_of_many(passages, [EdgeType.MENTIONS], contributions=False).values()
                 for edge in edges} - seeds.keys()
        weight = max(seeds.values()) * FEEDBACK_WEIGHT
        return {node_id: weight * _specificity(node) for node_id, node in self.store.get_nodes(named, contributions=False).items()}

    # orchestration ----------------------------------------------------------------------------------------------

    def _with_chunk_similarity(self, chunks: dict[str, float], qv: np.ndarray, candidates: Iterable[str] = ()) -> dict[str, float]:
        """Blend graph evidence with each chunk's own similarity, so ties among equally connected chunks break sensibly.
        ``candidates`` join with no graph evidence (they rank by similarity alone). The similarity's weight is the
        embedder's (``Calibration``): BGE's cosines lie in a narrow band high up, MiniLM's spread wider and lower."""
        # only the strongest candidates are re-scored: fetching thousands of vectors per query costs more than the rest
        chunks = dict(sorted(chunks.items(), key=lambda item: -item[1])[:RESCORED_CHUNKS])
        for chunk in candidates:
            chunks.setdefault(chunk, 0.0)
        if not chunks:
            return {}
        similarity = self.vectors[NodeType.CHUNK].similarities(list(chunks), qv)
        graph = _normalise(chunks)
        weight = self.embedder.calibration.similarity_weight
        return {c: graph[c] + weight * similarity.get(c, 0.0) for c in chunks}

    def retrieve(self, question: str, mode: str = DEFAULT_MODE, top_k: int = 10) -> QueryResult:
        began = time.perf_counter()
        question = question.strip()
        if not question:
            raise QueryError("the query is empty")
        if mode not in MODES:
            raise QueryError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if top_k < 1:
            raise QueryError("top_k must be at least 1")
        embedding = _embedding_threads().submit(self.embedder.embed, [question])
        keywords = self.analyzer.analyze(question)
        remainder = without_names(question, keywords) if mode == "graph" else ""
        # embedded while the walk runs: only the passages' re-scoring needs it
        remainder_embedding = _embedding_threads().submit(self.embedder.embed, [remainder]) if remainder else None
        qv = embedding.result()[0]
        with self.shared():
            return self._retrieve(question, mode, top_k, keywords, qv, began, remainder_embedding)

    def _retrieve(self, question: str, mode: str, top_k: int, keywords: QueryKeywords, qv: np.ndarray, began: float,
                  remainder_embedding: Future[np.ndarray] | None = None) -> QueryResult:
        if mode == "naive":
            chunks, nodes = self._naive(qv, top_k)
        elif mode == "local":
            chunks, nodes = self._local(keywords, qv)
        elif mode == "global":
            chunks, nodes = self._global(qv)
        elif mode == "graph":
            chunks, nodes = self._graph(keywords, qv, top_k, remainder_embedding)
        else:
            parts = [self._local(keywords, qv), self._global(qv)]
            chunks = defaultdict(float)
            nodes = defaultdict(float)
            for part_chunks, part_nodes in parts:
                for key, value in _normalise(part_chunks).items():
                    chunks[key] += value
                for key, value in _normalise(part_nodes).items():
                    nodes[key] = max(nodes[key], value)
        if mode == "graph":
            # a passage the walk misses may still answer, worded as the question is: the chain's last passage often
            # names none of the entities the walk reaches from the question
            dense = [c for c, _ in self.vectors[NodeType.CHUNK].search(qv, DENSE_CANDIDATES)]
            chunks = self._with_chunk_similarity(chunks, _passage_vector(qv, remainder_embedding), dense)
        elif mode != "naive":
            chunks = self._with_chunk_similarity(chunks, qv)
        ranked = sorted(chunks.items(), key=lambda item: (-item[1], item[0]))[:top_k]
        node_ranked = sorted(nodes.items(), key=lambda item: (-item[1], item[0]))[:top_k]
        return QueryResult(
            query=question,
            mode=mode,
            chunks=chunk_hits(self.store, ranked),
            nodes=node_hits(self.store, node_ranked),
            keywords={"low_level": keywords.low_level, "high_level": keywords.high_level},
            seconds=time.perf_counter() - began,
            node_scores=dict(nodes),
        )


def _passage_vector(qv: np.ndarray, remainder_embedding: Future[np.ndarray] | None) -> np.ndarray:
    """What graph mode compares passages with: the question, mixed with the question without its names (not unit
    length: the similarities are dot products with unit passage vectors, so the mix is a mix of similarities)."""
    if remainder_embedding is None:
        return qv
    return (1.0 - REMAINDER_WEIGHT) * qv + REMAINDER_WEIGHT * remainder_embedding.result()[0]
