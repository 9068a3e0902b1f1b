"""Cost and fidelity of graph mode's PageRank walk per tolerance (GRAPHDEX_PPR_TOLERANCE), on an existing index.

The same random seed sets (entities and chunks, as a query's vector hits give them) are walked once per tolerance;
per tolerance: the walk's p50 time, how many rows it reached, and the share of the exact walk's top 200 rows it
keeps (the first tolerance given is the reference; give 0 first for the exact walk).

    python bench/ppr_walk.py --index bench/results/index-qa-2wiki-dev --tolerances 0,1e-6,1e-5,1e-4
"""

from __future__ import annotations

import _checkout  # noqa: F401  # isort: skip  (first: this checkout's graphdex, not the installed one)

import argparse
import random
import statistics
import time
from pathlib import Path

import numpy as np

from graphdex.graph.model import NodeType
from graphdex.graph.sqlite_store import SqliteGraphStore
from harness import BenchError, machine, print_table, write_json  # first: it puts the repository on sys.path

TOP = 200


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="an embedded-store data directory (holding graph/)")
    parser.add_argument("--tolerances", default="0,1e-6,1e-5,1e-4", help="comma-separated, the first is the reference")
    parser.add_argument("--walks", type=int, default=60, help="seed sets walked per tolerance (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=6, help="entity seeds and chunk seeds per walk, each (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=0.3)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    if not (args.index / "graph").is_dir():
        raise BenchError(f"{args.index} holds no embedded graph (graph/): build one first, e.g. with bench/retrieval_eval.py")

    store = SqliteGraphStore(args.index / "graph")
    projection = store.projection()
    ids = {kind: sorted(store.node_ids(kind)) for kind in (NodeType.ENTITY, NodeType.CHUNK)}
    rng = random.Random(7)
    walks = [{node_id: rng.random() for kind in ids for node_id in rng.sample(ids[kind], args.seeds)} for _ in range(args.walks)]
    results, reference = [], None
    for tolerance in (float(t) for t in args.tolerances.split(",")):
        seconds, tops, reached = [], [], []
        for seeds in walks:
            began = time.perf_counter()
            scores = projection.personalized_pagerank(seeds, args.alpha, args.iterations, tolerance)
            seconds.append(time.perf_counter() - began)
            tops.append(set(np.argsort(-scores, kind="stable")[:TOP].tolist()))
            reached.append(int(np.count_nonzero(scores)))
        reference = reference or tops
        results.append({"tolerance": tolerance, "walk_p50_ms": 1000 * statistics.median(seconds), "reached_p50": statistics.median(reached),
                        f"top{TOP}_kept": statistics.fmean(len(a & b) / TOP for a, b in zip(tops, reference))})
    print_table(f"PageRank walk on {projection.size:,} rows", ["tolerance", "walk p50 ms", "rows reached p50", f"top {TOP} kept"],
                [(f"{r['tolerance']:g}", f"{r['walk_p50_ms']:.2f}", f"{r['reached_p50']:,.0f}", f"{r[f'top{TOP}_kept']:.3f}") for r in results])
    write_json(args.out, {"benchmark": "ppr_walk", "machine": machine(), "index": str(args.index), "rows": projection.size,
                          "walks": args.walks, "seeds": args.seeds, "results": results})


if __name__ == "__main__":
    main()
