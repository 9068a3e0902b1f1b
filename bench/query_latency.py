"""Retrieval-only query latency per mode (p50/p95/p99) over the questions of a QA set.

Each query is timed through ``QueryEngine.retrieve``: question parsing, question embedding, vector searches, graph
work and citation lookup — everything but an LLM answer. The graph projection is built once before timing (as a
running service does at start-up); its build time is reported on its own.

Target (issue 2): p50 <= 50 ms and p99 <= 250 ms in every mode.

    python bench/query_latency.py --out bench/results/query_latency.json

On Neo4j, ``--neo4j-vectors neo4j,local`` compares where the vectors live on one and the same build: the index is
built with its vectors in Neo4j (what query replicas need), then those very vectors are copied into local hnswlib
files and the same graph is queried again with them (GRAPHDEX_NEO4J_VECTORS=local). ``--limit`` indexes only the
first N passages of the set (the questions stay the same: this measures latency, not recall).

    python bench/query_latency.py --data ../shared/data/qa-2wiki-dev --store neo4j --neo4j-vectors neo4j,local --limit 1000
"""

from __future__ import annotations

import _checkout  # noqa: F401  # isort: skip  (first: this checkout's graphdex, not the installed one)

import argparse
import logging
import statistics
import time
from pathlib import Path

from graphdex.api.workspace import Workspace
from graphdex.common.memory import freeze_startup_heap
from graphdex.graph.model import SEARCHABLE_TYPES
from graphdex.graph.vector_index import VectorIndexSet
from graphdex.query.engine import MODES
from harness import DEV_QA, REPO, BenchError, load_passages, load_questions, machine, open_index, percentile, print_table, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEV_QA, help="QA-set directory: passages.jsonl + questions.jsonl (default: %(default)s)")
    parser.add_argument("--index", type=Path, default=None, help="index directory, reused when it already holds the passages "
                                                                 "(default: bench/results/index-<set name>-<store>)")
    parser.add_argument("--store", default="embedded", help="graph store(s), comma-separated: "
                                                            "embedded, neo4j (the server of GRAPHDEX_NEO4J_URI), or embedded,neo4j side by side")
    parser.add_argument("--modes", default=",".join(MODES), help="comma-separated modes (default: all)")
    parser.add_argument("--top-k", type=int, default=10, help="chunks per query (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="passes over the questions per mode (default: %(default)s)")
    parser.add_argument("--neo4j-vectors", default="neo4j", help="with --store neo4j: where vectors live, comma-separated: "
                                                                 "neo4j, local, or neo4j,local on one build (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=None, help="index only the first N passages of the set (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise BenchError(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    if args.repeat < 1:
        raise BenchError("--repeat must be at least 1")

    stores = [x.strip() for x in args.store.split(",") if x.strip()]
    if not stores or any(x not in ("embedded", "neo4j") for x in stores):
        raise BenchError("--store takes embedded, neo4j or embedded,neo4j")
    vector_homes = [x.strip() for x in args.neo4j_vectors.split(",") if x.strip()]
    if not vector_homes or any(x not in ("neo4j", "local") for x in vector_homes):
        raise BenchError("--neo4j-vectors takes neo4j, local or neo4j,local")
    questions = load_questions(args.data)
    passages = load_passages(args.data)[: args.limit]
    suffix = f"-{args.limit}" if args.limit else ""
    report: dict[str, dict] = {}
    for store in stores:
        index_dir = args.index or REPO / "bench" / "results" / f"index-{args.data.resolve().name}-{store}{suffix}"
        if store == "embedded":
            report[store] = measure(open_index(index_dir, passages, store), questions, modes, args.top_k, args.repeat)
            continue
        # one build, its vectors in Neo4j; the local variant gets those same vectors as hnswlib files
        workspace = open_index(index_dir, passages, store, neo4j_workspace=f"bench-qa{suffix}", neo4j_vectors="neo4j")
        if "local" in vector_homes:
            copy_vectors_to_local(workspace)
        if "neo4j" in vector_homes:
            report["neo4j+vectors-in-neo4j"] = measure(workspace, questions, modes, args.top_k, args.repeat)
        else:
            workspace.close()
        if "local" in vector_homes:
            local = Workspace(workspace.settings.model_copy(update={"neo4j_vectors": "local"}))
            report["neo4j+local-hnswlib"] = measure(local, questions, modes, args.top_k, args.repeat)
    for name, result in report.items():
        rows = [[m, r["p50_ms"], r["p95_ms"], r["p99_ms"], r["mean_ms"], r["max_ms"], r["meets_target"]] for m, r in result["modes"].items()]
        print_table(f"Query latency, {len(questions)} questions x {args.repeat}, top-k {args.top_k}, {name} "
                    f"(projection built once in {result['projection_seconds']:.2f}s)",
                    ["mode", "p50 ms", "p95 ms", "p99 ms", "mean ms", "max ms", "p50<=50 & p99<=250"], rows)
    if len(report) > 1:
        print_table("Side by side (p50 / p99 ms)", ["mode", *report],
                    [[m, *[f"{r['modes'][m]['p50_ms']:.1f} / {r['modes'][m]['p99_ms']:.1f}" for r in report.values()]] for m in modes])
    write_json(args.out, {"benchmark": "query_latency", "data": str(args.data), "passages": len(passages), "stores": stores,
                          "neo4j_vectors": vector_homes, "machine": machine(), "top_k": args.top_k, "repeat": args.repeat, "results": report})


def copy_vectors_to_local(workspace: Workspace) -> None:
    """The Neo4j workspace's vectors, as they are, into the hnswlib files GRAPHDEX_NEO4J_VECTORS=local reads."""
    s = workspace.settings
    local = VectorIndexSet(workspace.data_dir / f"vectors-neo4j-{s.neo4j_workspace}", workspace.vectors.dim, workspace.vectors.model_name,
                           s.hnsw_m, s.hnsw_ef_construction, s.hnsw_ef_search)
    for type_ in SEARCHABLE_TYPES:
        source, target = workspace.vectors[type_], local[type_]
        target.delete(target.ids())
        digests = source.digests()
        ids = sorted(digests)
        for start in range(0, len(ids), 1000):
            part = ids[start : start + 1000]
            target.add(part, source.get(part), [digests[i] for i in part])
    local.save(complete=True)


def measure(workspace, questions, modes: list[str], top_k: int, repeat: int) -> dict:
    engine = workspace.engine
    began = time.perf_counter()
    engine.projections.get()
    projection_seconds = time.perf_counter() - began
    workspace.warm()  # what the service does once it has opened a workspace
    engine.retrieve(questions[0].question, "graph", top_k)  # warms spaCy and the embedder
    freeze_startup_heap()  # as the service does once it is open
    results = {}
    for mode in modes:
        samples = []
        for _ in range(repeat):
            for question in questions:
                began = time.perf_counter()
                engine.retrieve(question.question, mode, top_k)
                samples.append((time.perf_counter() - began) * 1000)
        results[mode] = {
            "queries": len(samples), "p50_ms": percentile(samples, 50), "p95_ms": percentile(samples, 95), "p99_ms": percentile(samples, 99),
            "mean_ms": statistics.fmean(samples), "max_ms": max(samples),
            "meets_target": percentile(samples, 50) <= 50 and percentile(samples, 99) <= 250,
        }
    counts = workspace.stats()
    workspace.close()
    return {"projection_seconds": projection_seconds, "index": counts, "modes": results}


if __name__ == "__main__":
    main()
