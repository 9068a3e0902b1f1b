"""Passage retrieval quality per mode, next to BM25 (bm25s) and dense-only retrieval with the same embedder.

Reads any QA set in the format of ../shared/data/README.md (a directory with passages.jsonl and questions.jsonl).
Every passage is indexed as its own document; each mode's ranked chunks are mapped back to passages (first
occurrence wins). Scores: passage recall@2/5/10 = |supporting ∩ top-k| / |supporting| averaged over questions, and
MRR of the first supporting passage within the top 20.

    python bench/retrieval_eval.py --data ../shared/data/qa-wiki-directors-dev --out bench/results/retrieval_eval.json
"""

from __future__ import annotations

import _checkout  # noqa: F401  # isort: skip  (first: this checkout's graphdex, not the installed one)

import argparse
import hashlib
import logging
from pathlib import Path

import numpy as np

from graphdex.graph.model import NodeType
from graphdex.query.engine import MODES
from harness import REPO, BenchError, Question, console, load_passages, load_questions, machine, open_index, passage_id_of_source, print_table, write_json

KS = (2, 5, 10)
MRR_DEPTH = 20
CHUNKS_PER_QUERY = 40  # enough chunks that, after folding chunks into passages, at least MRR_DEPTH passages remain


def score(ranked: list[str], supporting: list[str]) -> dict[str, float]:
    wanted = set(supporting)
    result = {f"recall@{k}": len(wanted & set(ranked[:k])) / len(wanted) for k in KS}
    first = next((rank for rank, pid in enumerate(ranked[:MRR_DEPTH], start=1) if pid in wanted), None)
    result["mrr"] = 1.0 / first if first else 0.0
    return result


def average(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.mean([row[key] for row in rows])) for key in rows[0]}


def bm25_rankings(passages, questions: list[Question]) -> list[list[str]]:
    import bm25s

    corpus = [f"{p.title}\n{p.text}" for p in passages]
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)
    hits, _ = retriever.retrieve(bm25s.tokenize([q.question for q in questions], stopwords="en", show_progress=False),
                                 k=min(MRR_DEPTH, len(corpus)), show_progress=False)
    ids = [p.metadata["id"] for p in passages]
    return [[ids[i] for i in row] for row in hits]


def dense_rankings(passages, questions: list[Question], embedder, cache_dir: Path) -> list[list[str]]:
    """Exact (brute-force) cosine over whole passages: the dense baseline, with no chunking and no graph."""
    corpus = [f"{p.title}\n{p.text}" for p in passages]
    digest = hashlib.sha256("\x00".join([embedder.name, *corpus]).encode()).hexdigest()[:16]
    cache = cache_dir / f"dense-{digest}.npy"
    if cache.exists():
        matrix = np.load(cache)
    else:
        with console.status(f"embedding {len(corpus):,} passages for the dense baseline"):
            matrix = embedder.embed(corpus)
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.save(cache, matrix)
    queries = embedder.embed([q.question for q in questions])
    top = np.argsort(-(queries @ matrix.T), axis=1)[:, :MRR_DEPTH]
    ids = [p.metadata["id"] for p in passages]
    return [[ids[i] for i in row] for row in top]


def mode_rankings(engine, questions: list[Question], mode: str) -> list[list[str]]:
    rankings = []
    for question in questions:
        result = engine.retrieve(question.question, mode, CHUNKS_PER_QUERY)
        ranked: list[str] = []
        for hit in result.chunks:
            pid = passage_id_of_source(hit.source)
            if pid not in ranked:
                ranked.append(pid)
        rankings.append(ranked)
    return rankings


def print_misses(systems: dict[str, list[list[str]]], questions: list[Question], passages, modes: list[str], limit: int, k: int = 5) -> None:
    """Questions whose supporting passages are not all in the top k: what was wanted (rank, or - beyond the ranking)
    and what came first instead, by title."""
    titles = {p.metadata["id"]: p.title for p in passages}
    for mode in modes:
        rankings = systems[f"graphdex {mode}"]
        missed = [(q, r) for q, r in zip(questions, rankings) if not set(q.supporting) <= set(r[:k])]
        console.print(f"[bold]graphdex {mode}: {len(missed)} of {len(questions)} questions miss a supporting passage in the top {k}[/bold]")
        for q, ranked in missed[:limit]:
            console.print(f"[cyan]{q.question}[/cyan]" + (f" ({q.type})" if q.type else ""))
            wanted = [f"{titles.get(s, s)} [{ranked.index(s) + 1 if s in ranked else '-'}]" for s in q.supporting]
            console.print("  wanted: " + "; ".join(wanted))
            console.print("  got:    " + "; ".join(f"{titles.get(p, p)}{' *' if p in q.supporting else ''}" for p in ranked[:k]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="QA-set directory holding passages.jsonl and questions.jsonl")
    parser.add_argument("--index", type=Path, default=None, help="index directory, reused when it already holds the passages "
                                                                 "(default: bench/results/index-<set name>)")
    parser.add_argument("--store", choices=["embedded", "neo4j"], default="embedded", help="graph store (neo4j: the server of GRAPHDEX_NEO4J_URI)")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated graphdex modes (default: all)")
    parser.add_argument("--limit", type=int, default=0, help="evaluate only the first N questions (0 = all)")
    parser.add_argument("--misses", type=int, default=0, metavar="N", help="print up to N questions per graphdex mode whose supporting passages "
                                                                           "are not all in the top 5, with what was retrieved instead")
    parser.add_argument("--out", type=Path, default=None, help="write the results (with per-question rankings) as JSON here")
    parser.add_argument("--without-index", action="append", default=[], choices=["entity", "relation", "community"],
                        help="answer every search of this vector index with nothing (repeatable): what the index buys each mode")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("bm25s").setLevel(logging.WARNING)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise BenchError(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")

    questions = load_questions(args.data)
    if args.limit:
        questions = questions[: args.limit]
    passages = load_passages(args.data)
    known = {p.metadata["id"] for p in passages}
    missing = sorted({s for q in questions for s in q.supporting} - known)
    if missing:
        raise BenchError(f"questions cite passages that passages.jsonl lacks: {', '.join(missing[:5])}")
    index_dir = args.index or REPO / "bench" / "results" / f"index-{args.data.resolve().name}-{args.store}"
    workspace = open_index(index_dir, passages, args.store)
    for name in args.without_index:
        workspace.vectors[NodeType[name.upper()]].search = lambda vector, k: []

    systems: dict[str, list[list[str]]] = {}
    with console.status("BM25"):
        systems["bm25 (bm25s)"] = bm25_rankings(passages, questions)
    systems["dense (same embedder)"] = dense_rankings(passages, questions, workspace.embedder, index_dir / "baselines")
    for mode in modes:
        with console.status(f"graphdex {mode}"):
            systems[f"graphdex {mode}"] = mode_rankings(workspace.engine, questions, mode)
    workspace.close()

    results = {name: average([score(r, q.supporting) for r, q in zip(rankings, questions)]) for name, rankings in systems.items()}
    print_table(f"Passage retrieval on {args.data.resolve().name}: {len(questions)} questions, {len(passages):,} passages",
                ["system", *[f"R@{k}" for k in KS], "MRR"],
                [[name, *[r[f"recall@{k}"] for k in KS], r["mrr"]] for name, r in results.items()])
    types = sorted({q.type for q in questions if q.type})
    by_type: dict[str, dict[str, float]] = {}
    if types:
        by_type = {name: {t: average([score(r, q.supporting) for r, q in zip(rankings, questions) if q.type == t])["recall@5"] for t in types}
                   for name, rankings in systems.items()}
        print_table(f"R@5 per question type on {args.data.resolve().name}", ["system", *[f"{t} ({sum(q.type == t for q in questions)})" for t in types]],
                    [[name, *[row[t] for t in types]] for name, row in by_type.items()])
    if args.misses:
        print_misses(systems, questions, passages, modes, args.misses)
    write_json(args.out, {
        "benchmark": "retrieval_eval", "data": str(args.data), "store": args.store, "without_index": args.without_index, "machine": machine(),
        "questions": len(questions),
        "results": results, "by_type_recall@5": by_type,
        "rankings": {name: {q.id: r[:10] for q, r in zip(questions, rankings)} for name, rankings in systems.items()},
    })


if __name__ == "__main__":
    main()
