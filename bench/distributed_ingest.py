"""Distributed ingestion: words/s of a build whose extraction and embedding run on a local Ray cluster with 1 and 2
worker nodes, next to a local build of the same passages in the same run.

For each worker count, scripts/ray.sh starts a cluster on this machine whose head offers no CPUs (so every actor runs
on a worker node) and whose worker nodes offer one CPU each; each build runs in its own process on a fresh index, and
the Ray builds' graphs are checked against the local one (node and edge counts per type). "Per worker" is the build's
words/s divided by the worker nodes. The actors' start (loading spaCy and the model) is timed apart from the build. The
writer's own CPU seconds (a Ray build's driver does nothing but chunk, merge and write) give the words one writer
core handles per second: the number of workers one writer can keep busy.

    python bench/distributed_ingest.py --limit 600 --out bench/results/distributed_ingest.json
    python bench/distributed_ingest.py --workers 1,2,3 --limit 0     # every passage, up to 3 worker nodes
"""

from __future__ import annotations

import _checkout  # noqa: F401  # isort: skip  (first: this checkout's graphdex, not the installed one)

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import REPO, WIKI_PASSAGES, BenchError, PeakMemory, Timer, console, load_passages, machine, print_table, scratch_settings, write_json

RAY_SCRIPT = REPO / "scripts" / "ray.sh"


def phase_build(args: argparse.Namespace) -> dict[str, Any]:
    """One build into a fresh index, in this process (local, or as the driver of the cluster at --ray-address)."""
    from graphdex.api.workspace import Workspace

    documents = load_passages(args.data)[: args.limit or None]
    overrides = {"ray_address": args.ray_address} if args.ray_address else {}
    workspace = Workspace(scratch_settings(args.index, **overrides))
    load_before = os.getloadavg()[0]
    with PeakMemory() as memory:
        with Timer() as opening:
            indexer = workspace.indexer  # connects and starts the actors (spaCy, model) on a cluster
            workspace.write_embedder.embed(["warm-up"])
        cpu_before = time.process_time()
        report = indexer.ingest(documents)
        driver_cpu = time.process_time() - cpu_before
    # the driver's own CPU (all its threads, not its spaCy child processes nor the actors): on a cluster, that is the
    # single writer's work alone, whose words per CPU-second bound how many workers one writer can keep busy
    result = {"seconds": report.seconds, "open_seconds": opening.seconds, "words": report.words, "chunks": report.chunks,
              "driver_cpu_seconds": driver_cpu, "words_per_driver_cpu_second": report.words / max(driver_cpu, 1e-9),
              "documents": report.documents_added, "words_per_second": report.words / report.seconds, "stage_seconds": dict(report.stage_seconds),
              "driver_peak_mib": memory.peak_mib, "counts": workspace.store.counts(),
              "load_average_1min": [load_before, os.getloadavg()[0]]}  # other jobs on the machine move these figures
    if workspace.cluster is not None:
        result["work_items_by_node"] = {pool.label: dict(pool.work_by_node) for pool in workspace.cluster.pools}
    workspace.close()
    return result


def _spawn_build(args: argparse.Namespace, name: str, ray_address: str | None) -> dict[str, Any]:
    index = args.workdir / name
    shutil.rmtree(index, ignore_errors=True)
    result_file = args.workdir / f"{name}.json"
    command = [sys.executable, __file__, "--phase", "build", "--data", str(args.data), "--limit", str(args.limit), "--index", str(index),
               "--phase-out", str(result_file), *(["--ray-address", ray_address] if ray_address else [])]
    console.print(f"[bold]{name}[/bold] build …")
    if subprocess.run(command, cwd=REPO).returncode != 0:
        raise BenchError(f"the {name} build failed")
    return json.loads(result_file.read_text())


def _cluster(args: argparse.Namespace, workers: int) -> dict[str, str]:
    """The environment of scripts/ray.sh for a cluster of ``workers`` one-CPU worker nodes and a head with none."""
    return {**os.environ, "GRAPHDEX_RAY_PORT": str(args.port), "GRAPHDEX_RAY_CLIENT_PORT": str(args.port + 1),
            "GRAPHDEX_RAY_HEAD_CPUS": "0", "GRAPHDEX_RAY_WORKERS": str(workers), "GRAPHDEX_RAY_WORKER_CPUS": "1",
            "RAY": os.environ.get("RAY", str(Path(sys.executable).with_name("ray")))}


def _ray_build(args: argparse.Namespace, workers: int) -> dict[str, Any]:
    env = _cluster(args, workers)
    subprocess.run([str(RAY_SCRIPT), "stop"], env=env, check=False, capture_output=True)  # a leftover of an interrupted run
    with Timer() as starting:
        if subprocess.run([str(RAY_SCRIPT), "start"], env=env).returncode != 0:
            raise BenchError(f"scripts/ray.sh could not start a cluster of {workers} worker node(s)")
    try:
        result = _spawn_build(args, f"ray-{workers}", f"127.0.0.1:{args.port}")
    finally:
        subprocess.run([str(RAY_SCRIPT), "stop"], env=env, check=False)
    return {**result, "workers": workers, "cluster_start_seconds": starting.seconds, "words_per_second_per_worker": result["words_per_second"] / workers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=WIKI_PASSAGES, help="passages.json(l) file or a directory holding one (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=600, help="use only the first N passages, 0 = all (default: %(default)s)")
    parser.add_argument("--workers", default="1,2", help="worker-node counts to measure, comma-separated (default: %(default)s)")
    parser.add_argument("--port", type=int, default=6390, help="head port of the benchmark's cluster; the next port is its client port (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the scratch indexes go (default: a temporary directory, removed afterwards)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--phase", choices=("build",), help=argparse.SUPPRESS)
    parser.add_argument("--phase-out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--index", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--ray-address", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    if args.phase:
        args.phase_out.write_text(json.dumps(phase_build(args)))
        return
    try:
        counts = sorted({int(n) for n in args.workers.split(",") if n.strip()})
    except ValueError:
        raise BenchError("--workers takes whole numbers, comma-separated (1,2)") from None
    if not counts or counts[0] < 1:
        raise BenchError("--workers takes counts of at least 1")
    temporary = args.workdir is None
    args.workdir = Path(tempfile.mkdtemp(prefix="graphdex-bench-ray-")) if temporary else args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        local = _spawn_build(args, "local", None)
        distributed = [_ray_build(args, workers) for workers in counts]
    finally:
        if temporary:
            shutil.rmtree(args.workdir, ignore_errors=True)
    for run in distributed:
        run["same_graph_counts_as_local"] = run["counts"] == local["counts"]

    print_table(f"Building {local['documents']:,} passages ({local['words']:,} words, {local['chunks']:,} chunks) on {os.cpu_count()} cores",
                ["build", "seconds", "words/s", "words/s per worker", "writer CPU s", "words per writer CPU s", "actors start s", "same graph",
                 "extraction batches by node"],
                [["local (spaCy process + ONNX here)", local["seconds"], local["words_per_second"], "", local["driver_cpu_seconds"], "",
                  local["open_seconds"], "", ""]]
                + [[f"Ray, {r['workers']} worker node(s)", r["seconds"], r["words_per_second"], r["words_per_second_per_worker"], r["driver_cpu_seconds"],
                    r["words_per_driver_cpu_second"], r["open_seconds"], r["same_graph_counts_as_local"],
                        ", ".join(str(n) for n in r["work_items_by_node"]["spaCy extraction"].values())] for r in distributed])
    write_json(args.out, {"machine": machine(), "data": str(args.data), "passages": local["documents"], "words": local["words"],
                          "local": local, "ray": distributed})


if __name__ == "__main__":
    main()
