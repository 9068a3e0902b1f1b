"""What writes cost on a large index: batches of documents added to a copy of an index a growth run kept, then
deletes, each timed by stage (CPU seconds of the thread that ran it, too).

The documents added are corpus documents under new sources (``<source>#<tag>``): they name the entities the corpus
names, hub entities included, which is what a write into a grown index meets. Deletes take documents of the
corpus, spread over it, other than those bench/growth.py's delete phase removed from the kept index. Run it in two checkouts on copies of the same index
to compare a change with the code before it in one run: the first batch of each run is reported apart, since it
pays any one-time upgrade of an index written by earlier code.

    python bench/growth.py --sizes 20 --workdir /work/growth-20x --keep          # once: the index to copy
    python bench/write_cost.py --index /work/growth-20x/index-20x --size 20 --copy /tmp/wc --batches 1,200,32,32 \
        --deletes 5 --out bench/results/write-cost-20x.json
"""

from __future__ import annotations

import _checkout  # noqa: F401  # isort: skip  (first: this checkout's graphdex, not the installed one)

import argparse
import dataclasses
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import growth

from harness import REPO, BenchError, Timer, console, machine, print_table, scratch_settings, write_json


def _git_commit() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()


def _sample(args: argparse.Namespace) -> tuple[list, list]:
    """The documents each batch adds (disjoint, spread over the corpus) and those the deletes remove."""
    spec = argparse.Namespace(size=args.size, scale=1.0, holdout=0.01, delete_max=args.deletes)
    base = growth._base(spec, growth._corpus(spec).documents)
    wanted = max(1, sum(args.batches))
    step = max(1, len(base) // wanted)
    picked = base[::step][:wanted]
    batches, start = [], 0
    for number, size in enumerate(args.batches):
        batches.append([dataclasses.replace(d, source=f"{d.source}#{args.tag}{number}") for d in picked[start : start + size]])
        start += size
    gone = {d.source for d in growth._delete_sample(argparse.Namespace(size=args.size, scale=1.0, holdout=0.01, delete_max=10**9), base)}
    stored = [d for d in base if d.source not in gone]  # growth.py's delete phase removed its sample from the kept index
    return batches, stored[len(stored) // (2 * max(1, args.deletes)) :: max(1, len(stored) // max(1, args.deletes))][: args.deletes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="a data directory bench/growth.py kept (--keep); it is copied, never changed")
    parser.add_argument("--size", type=int, required=True, help="the corpus size it was built from (multiples of wiki-passages)")
    parser.add_argument("--copy", type=Path, required=True, help="where the copy goes (replaced)")
    parser.add_argument("--batches", default="1,200,32,32", help="documents per ingest, one ingest after the other (default: %(default)s)")
    parser.add_argument("--deletes", type=int, default=5, help="corpus documents deleted one at a time afterwards (default: %(default)s)")
    parser.add_argument("--tag", default="wc", help="suffix of the added documents' sources (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    args.batches = [int(b) for b in args.batches.split(",") if b.strip()]
    if not args.index.is_dir():
        raise BenchError(f"{args.index}: no such index directory (keep one with bench/growth.py --keep)")
    logging.basicConfig(level=logging.WARNING)
    batches, doomed = _sample(args)
    shutil.rmtree(args.copy, ignore_errors=True)
    with Timer() as copying:
        shutil.copytree(args.index, args.copy)
    from graphdex.api.workspace import Workspace

    workspace = Workspace(scratch_settings(args.copy))
    workspace.embedder.embed(["warm-up"])
    ingests: list[dict[str, Any]] = []
    for batch in batches:
        report = workspace.indexer.ingest(batch)
        ingests.append({"documents": len(batch), "words": report.words, "seconds": report.seconds, "stage_seconds": dict(report.stage_seconds),
                        "stage_cpu_seconds": dict(report.stage_cpu_seconds)})
        console.print(f"ingest of {len(batch)} documents: {report.seconds:.1f} s")
    maintenance = workspace.maintenance
    deletes: list[dict[str, float]] = []
    for document in doomed:
        with Timer() as remove:
            maintenance.remove_document(maintenance.resolve_document(document.source))
        with Timer() as communities:
            maintenance.refresh_communities()
        with Timer() as save:
            workspace.vectors.save(complete=True)
        deletes.append({"remove": remove.seconds, "communities": communities.seconds, "vector_save": save.seconds,
                        "seconds": remove.seconds + communities.seconds + save.seconds})
    workspace.close()
    print_table("Writes", ["write", "documents", "seconds", "merge", "store writes", "communities", "writer CPU s"],
                [[f"ingest {i + 1}", r["documents"], r["seconds"], r["stage_seconds"].get("merge", 0), r["stage_seconds"].get("store_write", 0),
                  r["stage_seconds"].get("communities", 0), sum(r["stage_cpu_seconds"].get(s, 0) for s in ("merge", "store_write", "communities"))]
                 for i, r in enumerate(ingests)]
                + [[f"delete {i + 1}", 1, d["seconds"], "", d["remove"], d["communities"], ""] for i, d in enumerate(deletes)])
    write_json(args.out, {"benchmark": "write_cost", "machine": machine(), "commit": _git_commit(), "parameters": {
        "index": str(args.index), "size": args.size, "batches": args.batches, "deletes": args.deletes, "tag": args.tag},
        "copy_seconds": copying.seconds, "ingests": ingests, "deletes": deletes,
        "delete_seconds_per_document": sum(d["seconds"] for d in deletes) / max(1, len(deletes))})


if __name__ == "__main__":
    main()
