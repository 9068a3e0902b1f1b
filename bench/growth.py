"""Growth curves on one machine: build, query, +1% and delete costs at 1x, 4x and 10x the wiki-passages corpus.

The corpora are real text (bench/corpora.py: wiki-passages, then prose from Debian documentation packages), each size
a superset of the one below. Per size, every phase runs in a process of its own, so that memory figures and caches
are clean and each phase opens the index as a service or a later run would:

  build        ingest the corpus minus a held-out 1% into a fresh index: time, words/s, peak memory (summed PSS of
               the process and its spaCy workers), CPU use, then the data directory's size on disk
  cli          fresh `graphdex stats` and `graphdex query ... --mode graph` processes, as a user runs them: wall time
               and peak RSS of each (model loads included), the median of three runs
  query        open the built index (timed), get the PageRank projection once (as the service does at start),
               warm up, then p50/p99 retrieval latency per mode over a fixed question set, and the peak memory
  incremental  open the index and ingest the held-out 1%: the cost of adding 1% as a fraction of the build
  delete       delete a sample of documents one at a time (as `graphdex delete` does; the service refreshes once per
               batch of deletes): time per document, split into the removal, the community refresh and the vector save

Targets at 10x (issue 20), embedded store: a fresh `graphdex stats` <= 1 s and `graphdex query` <= 2 s wall, query
process peak <= 1 GiB, build peak <= 2 GiB, delete <= 1 s per document, +1% <= 2% of the build, query p50 <= 30 ms and
p99 <= 100 ms in every mode.

    python bench/growth.py --sizes 1,4,10 --out bench/results/growth.json
    python bench/growth.py --sizes 1,4 --scale 0.03          # a quick end-to-end check on 3% of each corpus
"""

from __future__ import annotations

import _checkout  # noqa: F401  # isort: skip  (first: this checkout's graphdex, not the installed one)

import argparse
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from corpora import Corpus, build_corpora

from harness import REPO, SHARED_DATA, BenchError, PeakMemory, Timer, console, load_questions, machine, percentile, print_table, scratch_settings, write_json

PHASES = ("build", "cli", "query", "incremental", "delete")
CLI_RUNS = 3
QUESTIONS = SHARED_DATA / "qa-2wiki-dev"


# the corpus of one size, and its held-out and delete samples ------------------------------------------------------

def _corpus(args: argparse.Namespace) -> Corpus:
    corpus = build_corpora([args.size])[args.size]
    if args.scale < 1:
        corpus.documents = corpus.documents[: max(200, round(len(corpus.documents) * args.scale))]
    return corpus


def _split(documents: list, fraction: float, offset: int = 0) -> list:
    """Every 1/fraction-th document (from ``offset``), so a sample looks like the rest of the corpus."""
    wanted = max(1, round(len(documents) * fraction))
    step = max(1, len(documents) // wanted)
    return documents[offset + step - 1 :: step][:wanted]


def _held_out(args: argparse.Namespace, documents: list) -> list:
    return _split(documents, args.holdout)


def _base(args: argparse.Namespace, documents: list) -> list:
    held = {d.source for d in _held_out(args, documents)}
    return [d for d in documents if d.source not in held]


def _delete_sample(args: argparse.Namespace, base: list) -> list:
    """Documents of the build (not the held-out ones) to delete, spread over the corpus, at most ``--delete-max``."""
    sample = _split(base, args.holdout, offset=len(base) // max(1, round(len(base) * args.holdout)) // 2)
    return sample[: args.delete_max]


def _words(documents: list) -> int:
    return sum(len(d.text.split()) for d in documents)


# phases ------------------------------------------------------------------------------------------------------------

def _workspace(args: argparse.Namespace):
    from graphdex.api.workspace import Workspace

    overrides: dict[str, Any] = {"store": args.store}
    if args.store == "neo4j":
        overrides["neo4j_workspace"] = f"growth-{args.size}"
    return Workspace(scratch_settings(args.workdir / f"index-{args.size}x", **overrides))


def _disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _cpu() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _report_dict(report) -> dict[str, Any]:
    return {"seconds": report.seconds, "words": report.words, "chunks": report.chunks, "documents_added": report.documents_added,
            "documents_unchanged": report.documents_unchanged, "failed": len(report.failed), "stage_seconds": dict(report.stage_seconds)}


class _ProgressLog:
    """Appends the chunks done, the elapsed time and the peak memory so far to a JSON-lines file every ``every``
    seconds: a build that is stopped before it ends (the 10x one takes hours on a busy machine) still tells its pace
    and how its memory grew."""

    def __init__(self, path: Path, memory: PeakMemory, every: float = 60.0) -> None:
        self.path, self.memory, self.every = path, memory, every
        self.began = self.last = time.perf_counter()
        path.unlink(missing_ok=True)

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - self.last >= self.every or done == total:
            self.last = now
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps({"seconds": round(now - self.began, 1), "chunks_done": done, "chunks_total": total,
                                      "peak_mib": round(self.memory.peak_mib, 1), "load_average": os.getloadavg()[0]}) + "\n")


def _ingest(args: argparse.Namespace, documents: list) -> dict[str, Any]:
    """Open the index in this fresh process and ingest ``documents``; the opening is timed on its own."""
    cpu_before = _cpu()
    with PeakMemory() as memory, Timer() as wall:
        workspace = _workspace(args)
        with Timer() as opening:
            indexer = workspace.indexer
            workspace.embedder.embed(["warm-up"])
        report = indexer.ingest(documents, _ProgressLog(args.workdir / f"{args.size}x-{args.phase}.progress.jsonl", memory))
        counts = workspace.stats()
        workspace.close()
    cpu_seconds = _cpu() - cpu_before
    return {**_report_dict(report), "open_seconds": opening.seconds, "wall_seconds": wall.seconds, "cpu_seconds": cpu_seconds,
            "cores_busy": cpu_seconds / wall.seconds, "peak_mib": memory.peak_mib, "memory_at_peak": memory.at_peak, "index": counts}


def phase_build(args: argparse.Namespace) -> dict[str, Any]:
    corpus = _corpus(args)
    shutil.rmtree(args.workdir / f"index-{args.size}x", ignore_errors=True)
    result = _ingest(args, _base(args, corpus.documents))
    result["disk_bytes"] = _disk_bytes(args.workdir / f"index-{args.size}x")
    result["corpus"] = {"documents": len(corpus.documents), "words": corpus.words, "composition": corpus.composition()}
    return result


def phase_incremental(args: argparse.Namespace) -> dict[str, Any]:
    return _ingest(args, _held_out(args, _corpus(args).documents))


def phase_query(args: argparse.Namespace) -> dict[str, Any]:
    from graphdex.common.memory import freeze_startup_heap
    from graphdex.query.engine import MODES

    questions = load_questions(QUESTIONS)
    with PeakMemory() as memory:
        with Timer() as opening:
            workspace = _workspace(args)
            engine = workspace.engine
            workspace.store.version  # noqa: B018 - opens (loads) the store
        with Timer() as projection:
            engine.projections.get()
        with Timer() as warm_up:
            workspace.warm()  # what the service does once it has opened a workspace
            for question in questions[:5]:
                for mode in MODES:
                    engine.retrieve(question.question, mode, args.top_k)
        freeze_startup_heap()  # as the service does once it is open
        modes: dict[str, dict[str, float]] = {}
        for mode in MODES:
            samples = []
            for _ in range(args.repeat):
                for question in questions:
                    began = time.perf_counter()
                    engine.retrieve(question.question, mode, args.top_k)
                    samples.append((time.perf_counter() - began) * 1000)
            modes[mode] = {"queries": len(samples), "p50_ms": percentile(samples, 50), "p99_ms": percentile(samples, 99),
                           "mean_ms": statistics.fmean(samples), "max_ms": max(samples)}
        workspace.close()
    return {"open_seconds": opening.seconds, "projection_seconds": projection.seconds, "warm_up_seconds": warm_up.seconds,
            "questions": len(questions), "repeat": args.repeat, "top_k": args.top_k, "peak_mib": memory.peak_mib, "modes": modes}


def _timed_command(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one fresh process."""
    began = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - began
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise BenchError(f"{' '.join(command)} failed: {process.stderr.read().decode()[-2000:] if process.stderr else ''}")
    return seconds, usage.ru_maxrss / 1024


def phase_cli(args: argparse.Namespace) -> dict[str, Any]:
    question = load_questions(QUESTIONS)[0].question
    env = {**os.environ, "GRAPHDEX_DATA_DIR": str(args.workdir / f"index-{args.size}x"), "GRAPHDEX_STORE": args.store}
    if args.store == "neo4j":
        env["GRAPHDEX_NEO4J_WORKSPACE"] = f"growth-{args.size}"
    # what the `graphdex` script runs, from this checkout (so an A/B run measures the code beside this file)
    graphdex = [sys.executable, "-c", "from graphdex.api.cli import run; run()"]
    out: dict[str, Any] = {"question": question}
    for name, command in (("stats", [*graphdex, "stats"]), ("query", [*graphdex, "query", question, "--mode", "graph"])):
        runs = [_timed_command(command, env) for _ in range(CLI_RUNS)]
        out[name] = {"wall_seconds": statistics.median(r[0] for r in runs), "peak_rss_mib": max(r[1] for r in runs), "runs": runs}
    return out


def phase_delete(args: argparse.Namespace) -> dict[str, Any]:
    sample = _delete_sample(args, _base(args, _corpus(args).documents))
    with PeakMemory() as memory:
        with Timer() as opening:
            workspace = _workspace(args)
            maintenance = workspace.maintenance
            workspace.embedder.embed(["warm-up"])
        seconds: list[float] = []
        parts: dict[str, float] = {"remove": 0.0, "communities": 0.0, "vector_save": 0.0}
        for document in sample:
            # Maintenance.delete_document step by step, to see which part grows with the index
            with Timer() as one:
                doc_id = maintenance.resolve_document(document.source)
                with Timer() as remove:
                    maintenance.remove_document(doc_id)
                with Timer() as communities:
                    maintenance.refresh_communities()
                with Timer() as save:
                    workspace.vectors.save(complete=True)
            seconds.append(one.seconds)
            for name, timer in (("remove", remove), ("communities", communities), ("vector_save", save)):
                parts[name] += timer.seconds
        workspace.close()
    return {"documents": len(sample), "words": _words(sample), "open_seconds": opening.seconds, "total_seconds": sum(seconds),
            "per_document_median_seconds": statistics.median(seconds), "per_document_max_seconds": max(seconds),
            "per_document_part_seconds": {name: total / len(sample) for name, total in parts.items()}, "peak_mib": memory.peak_mib}


HANDLERS = {"build": phase_build, "cli": phase_cli, "query": phase_query, "incremental": phase_incremental, "delete": phase_delete}


def _spawn(args: argparse.Namespace, size: int, phase: str) -> dict[str, Any]:
    result_file = args.workdir / f"{size}x-{phase}.json"
    command = [sys.executable, __file__, "--phase", phase, "--size", str(size), "--scale", str(args.scale), "--holdout", str(args.holdout),
               "--delete-max", str(args.delete_max), "--repeat", str(args.repeat), "--top-k", str(args.top_k), "--store", args.store,
               "--workdir", str(args.workdir), "--phase-out", str(result_file)]
    console.print(f"[bold]{size}x {phase}[/bold] … (load average {os.getloadavg()[0]:.2f})")
    load_before = os.getloadavg()
    began = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO)
    if completed.returncode != 0:
        raise BenchError(f"{size}x {phase} failed with exit status {completed.returncode}")
    result = json.loads(result_file.read_text())
    # the machine is shared: the 1-minute load average before and after says how busy it was besides this run
    result["load_average_before_after"] = [round(load_before[0], 2), round(os.getloadavg()[0], 2)]
    result["process_seconds"] = time.perf_counter() - began
    return result


# summary -----------------------------------------------------------------------------------------------------------

def summarise(phases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    build, incremental, delete, query, cli = phases["build"], phases["incremental"], phases["delete"], phases["query"], phases["cli"]
    return {
        "documents": build["corpus"]["documents"], "words": build["corpus"]["words"], "build_documents": build["documents_added"],
        "build_words": build["words"], "build_seconds": build["seconds"], "words_per_second": build["words"] / build["seconds"],
        "peak_mib": build["peak_mib"], "disk_mib": build["disk_bytes"] / 2**20,
        "nodes": sum(build["index"]["nodes"].values()), "edges": sum(build["index"]["edges"].values()),
        "cli_stats_seconds": cli["stats"]["wall_seconds"], "cli_query_seconds": cli["query"]["wall_seconds"],
        "cli_stats_peak_mib": cli["stats"]["peak_rss_mib"], "cli_query_peak_mib": cli["query"]["peak_rss_mib"],
        "query_open_seconds": query["open_seconds"], "projection_seconds": query["projection_seconds"], "query_peak_mib": query["peak_mib"],
        "query_ms": {mode: [r["p50_ms"], r["p99_ms"]] for mode, r in query["modes"].items()},
        "incremental_documents": incremental["documents_added"], "incremental_seconds": incremental["seconds"],
        "incremental_open_seconds": incremental["open_seconds"], "incremental_fraction_of_build": incremental["seconds"] / build["seconds"],
        "delete_documents": delete["documents"], "delete_seconds_per_document": delete["total_seconds"] / max(1, delete["documents"]),
        "delete_median_seconds": delete["per_document_median_seconds"],
    }


def _targets(summary: dict[str, Any]) -> dict[str, bool]:
    return {
        "graphdex stats <= 1 s": summary["cli_stats_seconds"] <= 1.0,
        "graphdex query <= 2 s": summary["cli_query_seconds"] <= 2.0,
        "query process peak <= 1024 MiB": summary["query_peak_mib"] <= 1024,
        "build peak <= 2048 MiB": summary["peak_mib"] <= 2048,
        "delete <= 1 s per document": summary["delete_seconds_per_document"] <= 1.0,
        "+1% <= 2% of build": summary["incremental_fraction_of_build"] <= 0.02,
        "query p50 <= 30 ms (every mode)": all(p50 <= 30 for p50, _ in summary["query_ms"].values()),
        "query p99 <= 100 ms (every mode)": all(p99 <= 100 for _, p99 in summary["query_ms"].values()),
    }


def _print(summaries: dict[int, dict[str, Any]]) -> None:
    print_table("Growth: build, +1%, delete", ["size", "documents", "words", "build s", "words/s", "peak MiB", "disk MiB", "nodes", "edges",
                                               "+1% s", "+1%/build", "delete s/doc"],
                [[f"{size}x", s["documents"], s["words"], s["build_seconds"], s["words_per_second"], s["peak_mib"], s["disk_mib"], s["nodes"], s["edges"],
                  s["incremental_seconds"], f"{s['incremental_fraction_of_build']:.2%}", s["delete_seconds_per_document"]] for size, s in summaries.items()])
    modes = list(next(iter(summaries.values()))["query_ms"])
    print_table("Growth: query latency p50 / p99 ms", ["size", "stats s", "query s", "query MiB", "open s", "projection s", "peak MiB", *modes],
                [[f"{size}x", s["cli_stats_seconds"], s["cli_query_seconds"], s["cli_query_peak_mib"], s["query_open_seconds"], s["projection_seconds"],
                  s["query_peak_mib"], *[f"{s['query_ms'][m][0]:.1f} / {s['query_ms'][m][1]:.1f}" for m in modes]]
                 for size, s in summaries.items()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,4,10", help="corpus sizes in multiples of wiki-passages (default: %(default)s)")
    parser.add_argument("--scale", type=float, default=1.0, help="use only this fraction of each corpus (a quick check; default: all)")
    parser.add_argument("--holdout", type=float, default=0.01, help="fraction held out of the build and added incrementally (default: %(default)s)")
    parser.add_argument("--delete-max", type=int, default=25, help="documents deleted per size, at most (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=2, help="passes over the questions per mode (default: %(default)s)")
    parser.add_argument("--top-k", type=int, default=10, help="chunks per query (default: %(default)s)")
    parser.add_argument("--store", default="embedded", choices=("embedded", "neo4j"), help="graph store (neo4j: the server of GRAPHDEX_NEO4J_URI)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the indexes go (default: a temporary directory, removed afterwards)")
    parser.add_argument("--keep", action="store_true", help="keep the indexes (in --workdir) after the run")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here (rewritten after every size)")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--phase-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not 0 < args.holdout < 0.5 or not 0 < args.scale <= 1:
        raise BenchError("--holdout must be in (0, 0.5) and --scale in (0, 1]")

    if args.phase:
        args.phase_out.write_text(json.dumps(HANDLERS[args.phase](args)))
        return

    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    build_corpora(sizes)  # fails early when the packages are missing or too small
    temporary = args.workdir is None
    args.workdir = Path(tempfile.mkdtemp(prefix="graphdex-growth-")) if temporary else args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results: dict[int, dict[str, Any]] = {}
    summaries: dict[int, dict[str, Any]] = {}
    try:
        for size in sizes:
            results[size] = {phase: _spawn(args, size, phase) for phase in PHASES}
            summaries[size] = summarise(results[size])
            summaries[size]["targets"] = _targets(summaries[size])
            write_json(args.out, {"benchmark": "growth", "store": args.store, "scale": args.scale, "holdout": args.holdout, "machine": machine(),
                                  "command": " ".join(["python", "bench/growth.py", *sys.argv[1:]]), "summary": summaries, "phases": results})
            if not args.keep:
                shutil.rmtree(args.workdir / f"index-{size}x", ignore_errors=True)
    finally:
        if temporary and not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    _print(summaries)


if __name__ == "__main__":
    main()
