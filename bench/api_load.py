"""HTTP load on the REST API: N concurrent clients sending queries, optionally while a batch of documents ingests.

It starts `graphdex serve` on 127.0.0.1 over an existing index (by default the one bench/retrieval_eval.py and
bench/query_latency.py build for the dev QA set), or targets a running server with --url. Every run is bounded by
--duration seconds and --max-requests. With ingestion on, the server works on a copy of the index and is sent
--ingest-documents new documents (the QA passages under new sources) at the start of the run.

    python bench/api_load.py --clients 1,8,32 --ingest both --out bench/results/api_load.json
"""

from __future__ import annotations

import _checkout  # noqa: F401  # isort: skip  (first: this checkout's graphdex, not the installed one)

import argparse
import itertools
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from harness import DEV_QA, REPO, BenchError, console, load_passages, load_questions, machine, percentile, print_table, write_json

GRAPHDEX = str(Path(sys.executable).parent / "graphdex")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def served(index: Path, store: str) -> Iterator[str]:
    port = _free_port()
    log_path = index.parent / f"serve-{port}.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen([GRAPHDEX, "--data-dir", str(index), "serve", "--port", str(port)], cwd=REPO, stdout=log,
                                   stderr=subprocess.STDOUT, env={**os.environ, "GRAPHDEX_STORE": store})
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 300
            while True:
                if process.poll() is not None:
                    raise BenchError(f"graphdex serve exited; see {log_path}")
                try:
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise BenchError(f"graphdex serve did not become healthy; see {log_path}")
                time.sleep(0.5)
            yield url
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()


def run_load(url: str, questions: list[str], clients: int, duration: float, max_requests: int, mode: str, top_k: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = itertools.count()
    stop_at = time.monotonic() + duration

    def client(offset: int) -> None:
        with httpx.Client(base_url=url, timeout=120) as http:
            for i in itertools.count(offset * 7):
                if time.monotonic() >= stop_at or next(counter) >= max_requests:
                    return
                began = time.perf_counter()
                try:
                    response = http.post("/query", json={"query": questions[i % len(questions)], "mode": mode, "top_k": top_k})
                    ok = response.status_code == 200
                    problem = f"HTTP {response.status_code}" if not ok else ""
                except httpx.HTTPError as error:
                    ok, problem = False, type(error).__name__
                elapsed = (time.perf_counter() - began) * 1000
                with lock:
                    if ok:
                        latencies.append(elapsed)
                    else:
                        errors.append(problem)

    began = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    if not latencies:
        raise BenchError(f"no query succeeded ({len(errors)} errors, e.g. {errors[:3]})")
    return {"clients": clients, "requests": len(latencies), "errors": len(errors), "error_kinds": sorted(set(errors)), "seconds": wall,
            "throughput_rps": len(latencies) / wall, "p50_ms": percentile(latencies, 50), "p95_ms": percentile(latencies, 95),
            "p99_ms": percentile(latencies, 99), "mean_ms": statistics.fmean(latencies)}


def submit_ingest(url: str, documents: list, count: int) -> list[str]:
    payload = {"documents": [{"title": d.title, "text": d.text, "source": f"load-test:{d.metadata['id']}"} for d in documents[:count]]}
    response = httpx.post(f"{url}/documents", json=payload, timeout=120)
    response.raise_for_status()
    return [d["id"] for d in response.json()["documents"]]


def ingest_progress(url: str) -> dict[str, int]:
    return httpx.get(f"{url}/documents", params={"limit": 1}, timeout=30).json()["counts"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEV_QA, help="QA-set directory whose questions are sent (default: %(default)s)")
    parser.add_argument("--index", type=Path, default=None, help="index directory to serve (default: bench/results/index-<set name>-<store>)")
    parser.add_argument("--store", choices=["embedded", "neo4j"], default="embedded", help="graph store the served index uses")
    parser.add_argument("--url", default=None, help="load a server that is already running instead (ingestion runs are then skipped)")
    parser.add_argument("--clients", default="1,8,32", help="comma-separated client counts (default: %(default)s)")
    parser.add_argument("--ingest", choices=["off", "on", "both"], default="both", help="run with ingestion going on, without, or both (default: both)")
    parser.add_argument("--ingest-documents", type=int, default=300, help="documents submitted at the start of each ingestion run (default: %(default)s)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run (default: %(default)s)")
    parser.add_argument("--max-requests", type=int, default=5000, help="requests per run at most (default: %(default)s)")
    parser.add_argument("--mode", default="graph", help="query mode (default: %(default)s)")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    try:
        client_counts = [int(c) for c in args.clients.split(",") if c.strip()]
    except ValueError:
        raise BenchError("--clients takes comma-separated integers, e.g. 1,8,32") from None
    if not client_counts or min(client_counts) < 1 or max(client_counts) > 256:
        raise BenchError("client counts must be between 1 and 256")

    questions = [q.question for q in load_questions(args.data)]
    passages = load_passages(args.data)
    index = (args.index or REPO / "bench" / "results" / f"index-{args.data.resolve().name}-{args.store}").resolve()
    runs: list[dict[str, Any]] = []
    settings = ["off", "on"] if args.ingest == "both" else [args.ingest]
    if args.url:
        settings = ["off"]
    for ingest in settings:
        for clients in client_counts:
            if args.url:
                result = run_load(args.url, questions, clients, args.duration, args.max_requests, args.mode, args.top_k)
                runs.append({"ingest": False, **result})
                continue
            if not (index / "graph").exists() and args.store == "embedded":
                raise BenchError(f"{index} holds no index: build it first with bench/query_latency.py or bench/retrieval_eval.py")
            with tempfile.TemporaryDirectory(prefix="graphdex-load-") as scratch:
                target = index
                if ingest == "on":
                    if args.store == "neo4j":
                        raise BenchError("ingestion runs copy the index; with --store neo4j use --ingest off")
                    target = Path(scratch) / "index"
                    shutil.copytree(index, target)
                console.print(f"[bold]{clients} client(s), ingestion {ingest}[/bold] …")
                with served(target, args.store) as url:
                    httpx.post(f"{url}/query", json={"query": questions[0], "mode": args.mode}, timeout=300)  # builds the projection
                    if ingest == "on":
                        submit_ingest(url, passages, args.ingest_documents)
                    before = ingest_progress(url)
                    result = run_load(url, questions, clients, args.duration, args.max_requests, args.mode, args.top_k)
                    after = ingest_progress(url)
                runs.append({"ingest": ingest == "on", **result,
                             "documents_indexed_during_run": after.get("done", 0) - before.get("done", 0) if ingest == "on" else 0})
    print_table(f"REST API load: POST /query mode={args.mode} top-k={args.top_k}, {args.duration:.0f} s per run, store={args.store}",
                ["ingestion", "clients", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "docs indexed meanwhile"],
                [["on" if r["ingest"] else "off", r["clients"], r["requests"], r["errors"], r["throughput_rps"], r["p50_ms"], r["p95_ms"], r["p99_ms"],
                  r.get("documents_indexed_during_run", 0)] for r in runs])
    write_json(args.out, {"benchmark": "api_load", "data": str(args.data), "store": args.store, "machine": machine(), "mode": args.mode, "runs": runs})


if __name__ == "__main__":
    main()
