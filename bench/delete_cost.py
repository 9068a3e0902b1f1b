"""Delete cost on an existing 10x index: growth.py's delete sample, deleted one document at a time as `graphdex
delete` does (removal, community refresh, vector save), each part timed. Run it on copies of one index with two
checkouts to compare them on the same graph (growth.py builds a new index every time).

    cp -a INDEX /tmp/a && python bench/delete_cost.py --index /tmp/a --out /tmp/delete-after.json
"""

from __future__ import annotations

import _checkout  # noqa: F401  # isort: skip  (first: this checkout's graphdex, not the installed one)

import argparse
import os
import statistics
import time
from pathlib import Path

import growth

from harness import _pss_kib, machine, scratch_settings, write_json  # first: it puts the repository on sys.path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True, help="an embedded-store data directory built by growth.py at --size")
    parser.add_argument("--size", type=int, default=10, help="the growth.py size it was built at (default: %(default)s)")
    parser.add_argument("--documents", type=int, default=10, help="documents to delete (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    from graphdex.api.workspace import Workspace

    sample_args = argparse.Namespace(size=args.size, scale=1.0, holdout=0.01, delete_max=args.documents)
    sample = growth._delete_sample(sample_args, growth._base(sample_args, growth._corpus(sample_args).documents))
    workspace = Workspace(scratch_settings(args.index))
    maintenance = workspace.maintenance
    workspace.embedder.embed(["warm-up"])
    parts = {"remove": 0.0, "communities": 0.0, "vector_save": 0.0}
    seconds: list[float] = []
    for document in sample:
        began = time.perf_counter()
        doc_id = maintenance.resolve_document(document.source)
        for name, step in (("remove", lambda doc_id=doc_id: maintenance.remove_document(doc_id)), ("communities", maintenance.refresh_communities),
                           ("vector_save", lambda: workspace.vectors.save(complete=True))):
            start = time.perf_counter()
            step()
            parts[name] += time.perf_counter() - start
        seconds.append(time.perf_counter() - began)
    workspace.close()
    result = {"benchmark": "delete-cost", "machine": machine(), "index": str(args.index), "documents": len(seconds),
              "per_document_seconds": sum(seconds) / len(seconds), "median_seconds": statistics.median(seconds),
              "per_document_part_seconds": {k: v / len(seconds) for k, v in parts.items()}, "pss_mib": _pss_kib(os.getpid()) / 1024}
    print(result)
    write_json(args.out, result)


if __name__ == "__main__":
    main()
