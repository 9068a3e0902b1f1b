"""Do a service's stored vectors stand for their nodes' current text? Issue 23's reproduction, re-runnable.

A fault probe built 300 wiki passages through the service in 10 submissions of 30 and found 2-6 Community nodes whose
stored vector was not the embedding of their text (a CLI build of the same documents was clean). This builds the same
way (the REST app in-process, each submission posted a couple of seconds after the previous one, then the queue
drained), closes the workspace, opens it again as a restart does, re-embeds every node's embedding text and compares
it with the stored vector: a node whose cosine is below 0.999 is stale. It also counts *shadowed* elements: old
copies of replaced vectors that hnswlib kept under a label another element took (the cause found; whether a reload
then gives the old vector depends on which of the two slots comes first, so stale vectors need not show in every run).

    python bench/service_vectors.py --passages 300 --batches 10 --out bench/results/service-vectors.json
"""

from __future__ import annotations

import _checkout  # noqa: F401  # isort: skip  (first: this checkout's graphdex, not the installed one)

import argparse
import logging
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from graphdex.graph.model import SEARCHABLE_TYPES
from graphdex.ingest.derive import embedding_text
from harness import SHARED_DATA, console, load_passages, machine, scratch_settings, write_json

STALE_BELOW = 0.999  # cosine between a stored vector and a fresh embedding of the same text (int8 noise is ~1e-6)


def build_through_the_service(data_dir: Path, documents: list, batches: int, pause: float) -> float:
    from fastapi.testclient import TestClient

    from graphdex.api.app import create_app
    from graphdex.api.workspace import Workspace

    began = time.perf_counter()
    workspace = Workspace(scratch_settings(data_dir))
    size = -(-len(documents) // batches)
    with TestClient(create_app(workspace=workspace)) as client:
        ids: list[str] = []
        for start in range(0, len(documents), size):
            body = {"documents": [{"title": d.title, "text": d.text, "source": d.source} for d in documents[start : start + size]]}
            response = client.post("/documents", json=body)
            response.raise_for_status()
            ids += [d["id"] for d in response.json()["documents"]]
            time.sleep(pause)
        while any(client.get(f"/documents/{i}").json()["status"] not in ("done", "failed") for i in ids):
            time.sleep(0.5)
        client.get("/health")
    workspace.close()
    return time.perf_counter() - began


def stale_vectors(data_dir: Path) -> dict[str, dict]:
    """Per searchable type: nodes, and those whose stored vector is not their text's embedding (after a reopen)."""
    from graphdex.api.workspace import Workspace

    workspace = Workspace(scratch_settings(data_dir))
    try:
        report = {}
        for type_ in SEARCHABLE_TYPES:
            index = workspace.vectors[type_]
            ids = sorted(index.ids())
            nodes = workspace.store.get_nodes(ids, contributions=False)
            stale: dict[str, float] = {}
            for start in range(0, len(ids), 512):
                part = [i for i in ids[start : start + 512] if i in nodes]
                fresh = workspace.embedder.embed([embedding_text(nodes[i]) for i in part])
                cosines = np.sum(index.get(part) * fresh, axis=1)
                stale.update({i: round(float(c), 4) for i, c in zip(part, cosines) if c < STALE_BELOW})
            report[str(type_)] = {"vectors": len(ids), "stale": len(stale), "shadowed": index.shadowed,
                                  "stale_cosines": dict(sorted(stale.items())[:20])}
        return report
    finally:
        workspace.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=int, default=300, help="wiki passages to build from (default: %(default)s)")
    parser.add_argument("--batches", type=int, default=10, help="submissions they are sent in (default: %(default)s)")
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between submissions (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the index is built (default: a temporary directory, removed)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    documents = load_passages(SHARED_DATA / "wiki-passages")[: args.passages]
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="graphdex-service-vectors-"))
    try:
        seconds = build_through_the_service(workdir / "index", documents, args.batches, args.pause)
        report = stale_vectors(workdir / "index")
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    for type_, counts in report.items():
        console.print(f"{type_}: {counts['stale']} of {counts['vectors']} vectors stale, {counts['shadowed']} shadowed elements "
                      f"{counts['stale_cosines'] or ''}")
    write_json(args.out, {"benchmark": "service_vectors", "machine": machine(), "passages": len(documents), "batches": args.batches,
                          "build_seconds": round(seconds, 1), "types": report})


if __name__ == "__main__":
    main()
