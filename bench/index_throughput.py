"""Indexing throughput: end to end versus each stage alone, incremental cost, re-ingest no-op, peak memory.

Every phase runs in its own process so that timings and memory are not polluted by the phase before it:

  build        ingest the corpus minus a held-out fraction into a fresh index (the end-to-end figure, peak memory)
  incremental  open that index in a new process and ingest the held-out documents (cost of adding ~1%)
  reingest     ingest the held-out documents again (must change nothing)
  spacy        the spaCy extraction alone over the same chunks, with one worker per core
  embedding    the embedder alone over exactly the texts the built index holds (chunks, entities, relations, communities)
  store        the store writes alone: the built graph copied into a fresh store, in batches like the indexer's

Targets (issue 2): end-to-end words/s >= 70% of the slowest stage's words/s; adding 1% costs <= 5% of the build;
peak memory (summed PSS of the process and its spaCy workers) <= 2 GiB.

    python bench/index_throughput.py --out bench/results/index_throughput.json
    python bench/index_throughput.py --limit 500          # a quick run on the first 500 passages
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
from pathlib import Path
from typing import Any

from harness import REPO, WIKI_PASSAGES, BenchError, PeakMemory, Timer, console, load_passages, machine, print_table, scratch_settings, write_json

PHASES = ("build", "incremental", "reingest", "edited", "spacy", "embedding", "store")


def _corpus(args: argparse.Namespace) -> tuple[list, list]:
    documents = load_passages(args.data)
    if args.limit:
        documents = documents[: args.limit]
    held = max(1, round(len(documents) * args.holdout))
    # every 1/holdout-th document is held out, so the addition looks like the rest of the corpus
    step = max(1, len(documents) // held)
    held_out = documents[step - 1 :: step][:held]
    held_sources = {d.source for d in held_out}
    return [d for d in documents if d.source not in held_sources], held_out


def _workspace(args: argparse.Namespace, data_dir: Path, workspace: str = "bench"):
    from graphdex.api.workspace import Workspace

    overrides: dict[str, Any] = {"store": args.store}
    if args.store == "neo4j":
        overrides["neo4j_workspace"] = workspace
    return Workspace(scratch_settings(data_dir, **overrides))


def _report_dict(report) -> dict[str, Any]:
    return {
        "seconds": report.seconds, "words": report.words, "chunks": report.chunks,
        "documents_added": report.documents_added, "documents_replaced": report.documents_replaced,
        "documents_unchanged": report.documents_unchanged, "entities": report.entities, "relations": report.relations,
        "stage_seconds": dict(report.stage_seconds), "stage_cpu_seconds": dict(report.stage_cpu_seconds),
    }


def _ingest_into_index(args: argparse.Namespace, documents: list) -> dict[str, Any]:
    """Open the benchmark's index in this (fresh) process and ingest; the opening is timed on its own."""
    cpu_before = os.times()
    with PeakMemory() as memory, Timer() as wall:
        workspace = _workspace(args, args.workdir / "index")
        with Timer() as opening:
            indexer = workspace.indexer
            workspace.embedder.embed(["warm-up"])
        report = indexer.ingest(documents)
        counts = workspace.stats()
        workspace.close()
    cpu = os.times()
    # CPU time of this process and its (joined) spaCy workers: how busy the two cores were, on average
    cpu_seconds = sum(getattr(cpu, f) - getattr(cpu_before, f) for f in ("user", "system", "children_user", "children_system"))
    return {**_report_dict(report), "open_seconds": opening.seconds, "wall_seconds": wall.seconds, "cpu_seconds": cpu_seconds,
            "cores_busy": cpu_seconds / wall.seconds, "peak_mib": memory.peak_mib,
            "memory_at_peak": memory.at_peak, "neo4j_server_rss_mib": _neo4j_server_rss_mib() if args.store == "neo4j" else None, "index": counts}


def phase_build(args: argparse.Namespace) -> dict[str, Any]:
    return _ingest_into_index(args, _corpus(args)[0])


def _neo4j_server_rss_mib() -> float | None:
    """The local Neo4j server's memory (a separate JVM, not part of graphdex's own peak), from its pid file."""
    pid_file = Path(os.environ.get("GRAPHDEX_NEO4J_DATA", REPO / ".neo4j-data")) / "run" / "neo4j.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, ValueError, IndexError):
        return None
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def _ingest_held_out(args: argparse.Namespace) -> dict[str, Any]:
    return _ingest_into_index(args, _corpus(args)[1])


def _ingest_edited(args: argparse.Namespace) -> dict[str, Any]:
    """The held-out documents again, each with one sentence added at its end: what a user's edit costs (the old
    version is taken out, the new one goes in; the texts that come back unchanged keep their vectors)."""
    from dataclasses import replace

    edited = [replace(d, text=d.text + " This passage was revised after its first publication.") for d in _corpus(args)[1]]
    return _ingest_into_index(args, edited)


def phase_spacy(args: argparse.Namespace) -> dict[str, Any]:
    from graphdex.common.ids import chunk_id, document_id
    from graphdex.common.resolution import find_acronyms
    from graphdex.ingest.chunking import Chunker
    from graphdex.ingest.extraction import ChunkInput
    from graphdex.ingest.spacy_extractor import SpacyConfig, SpacyExtractor

    base, _ = _corpus(args)
    workspace = _workspace(args, args.workdir / "scratch-spacy")
    s = workspace.settings
    # the chunker alone: opening the indexer would open (and repair) a graph this phase does not use
    chunker = Chunker(workspace.token_counter(), s.chunk_tokens, s.chunk_overlap)
    with Timer() as chunking:
        inputs = []
        for doc in base:
            acronyms = find_acronyms(doc.text)
            for chunk in chunker.split(doc.text):
                inputs.append(ChunkInput(chunk_id(document_id(doc.source), chunk.index), chunk.text, acronyms, doc.title, chunk.index == 0))
    workers = os.cpu_count() or 1
    extractor = SpacyExtractor(SpacyConfig(s.spacy_model, tuple(s.excluded_entity_types), s.max_cooccurrence_window), workers, s.extract_batch_chunks)
    with Timer() as extraction:
        mentions = sum(len(result.entities) for result in extractor.extract(inputs))
    extractor.close()
    workspace.close()
    return {"seconds": extraction.seconds, "chunking_seconds": chunking.seconds, "workers": workers, "chunks": len(inputs),
            "entity_mentions": mentions, "words": sum(len(d.text.split()) for d in base)}


def phase_embedding(args: argparse.Namespace) -> dict[str, Any]:
    from graphdex.graph.model import SEARCHABLE_TYPES
    from graphdex.ingest.derive import embedding_text

    base, _ = _corpus(args)
    built = _workspace(args, args.workdir / "index")
    texts = [embedding_text(node) for type_ in SEARCHABLE_TYPES for node in built.store.iter_nodes(type_)]
    built.close()
    embedder = _workspace(args, args.workdir / "scratch-embed").embedder
    embedder.embed(["warm-up"])
    with Timer() as embedding:
        vectors = embedder.embed(texts)
    return {"seconds": embedding.seconds, "texts": len(texts), "dim": int(vectors.shape[1]), "words": sum(len(d.text.split()) for d in base)}


def phase_store(args: argparse.Namespace) -> dict[str, Any]:
    from graphdex.graph.model import NodeType

    base, _ = _corpus(args)
    built = _workspace(args, args.workdir / "index")
    nodes = [node for type_ in NodeType for node in built.store.iter_nodes(type_)]
    edges = list(built.store.iter_edges())
    chunks = sum(1 for n in nodes if n.type == NodeType.CHUNK)
    built.close()
    copy_dir = args.workdir / "scratch-store"
    shutil.rmtree(copy_dir, ignore_errors=True)
    target = _workspace(args, copy_dir, workspace="bench-store-copy").store
    per_write = built.settings.write_batch_chunks
    batches = max(1, chunks // per_write)  # as many writes as the indexer makes (one per GRAPHDEX_WRITE_BATCH_CHUNKS chunks)
    node_step = -(-len(nodes) // batches)
    position = {node.id: i // node_step for i, node in enumerate(nodes)}
    edge_batches: list[list] = [[] for _ in range(batches)]
    for edge in edges:  # an edge goes with the batch that writes the later of its two ends
        edge_batches[max(position[edge.source], position[edge.target])].append(edge)
    with Timer() as writing:
        for i in range(batches):
            target.write(nodes[i * node_step : (i + 1) * node_step], edge_batches[i])
    counts = target.counts()
    if args.store == "neo4j":
        _delete_in_batches(target, [n.id for n in nodes])
    target.close()
    return {"seconds": writing.seconds, "batches": batches, "nodes": len(nodes), "edges": len(edges), "copied": counts,
            "words": sum(len(d.text.split()) for d in base)}


def run_phase(args: argparse.Namespace) -> dict[str, Any]:
    handlers = {"build": phase_build, "incremental": _ingest_held_out, "reingest": _ingest_held_out, "edited": _ingest_edited,
                "spacy": phase_spacy, "embedding": phase_embedding, "store": phase_store}
    return handlers[args.phase](args)


def _spawn(args: argparse.Namespace, phase: str) -> dict[str, Any]:
    result_file = args.workdir / f"{phase}.json"
    command = [sys.executable, __file__, "--phase", phase, "--data", str(args.data), "--holdout", str(args.holdout),
               "--limit", str(args.limit), "--workdir", str(args.workdir), "--store", args.store, "--phase-out", str(result_file)]
    console.print(f"[bold]{phase}[/bold] …")
    completed = subprocess.run(command, cwd=REPO)
    if completed.returncode != 0:
        raise BenchError(f"phase {phase} failed with exit status {completed.returncode}")
    return json.loads(result_file.read_text())


def summarise(phases: dict[str, dict[str, Any]], holdout: float) -> dict[str, Any]:
    build = phases["build"]
    words = build["words"]
    e2e_rate = words / build["seconds"]
    stage_rates = {name: phases[name]["words"] / phases[name]["seconds"] for name in ("spacy", "embedding", "store")}
    slowest = min(stage_rates, key=stage_rates.get)
    incremental = phases["incremental"]
    writer_cpu = sum(build["stage_cpu_seconds"].get(stage, 0.0) for stage in WRITER_STAGES)
    return {
        "words": words,
        "end_to_end_words_per_second": e2e_rate,
        "stage_words_per_second": stage_rates,
        "slowest_stage": slowest,
        "ratio_to_slowest_stage": e2e_rate / stage_rates[slowest],
        "writer_cpu_seconds": writer_cpu,
        "writer_words_per_cpu_second": words / writer_cpu if writer_cpu else None,
        "incremental_fraction_of_build": incremental["seconds"] / build["seconds"],
        "incremental_fraction_of_build_with_open": (incremental["seconds"] + incremental["open_seconds"]) / build["seconds"],
        "held_out_fraction": holdout,
        "reingest_is_noop": phases["reingest"]["documents_added"] == 0 and phases["reingest"]["documents_replaced"] == 0
        and phases["reingest"]["documents_unchanged"] == incremental["documents_added"],
        "peak_mib": max(phases[p]["peak_mib"] for p in ("build", "incremental", "reingest")),
        "targets": {
            "end to end >= 3,333 words/s": e2e_rate >= 3333,
            "ratio_to_slowest_stage >= 0.80": e2e_rate / stage_rates[slowest] >= 0.80,
            "writer >= 10,000 words per CPU-second": bool(writer_cpu) and words / writer_cpu >= 10_000,
            "incremental <= 5% of build": incremental["seconds"] / build["seconds"] <= 0.05,
            "peak memory <= 2048 MiB": build["peak_mib"] <= 2048,
        },
    }


#: The stages the single writer runs itself (on a Ray cluster, extraction and embedding run elsewhere): their CPU time
#: is what caps how many worker cores one writer can keep busy.
WRITER_STAGES = ("chunking", "merge", "store_write", "vector_save", "communities")
STORE_PHASES = ("build", "incremental", "reingest", "edited", "store")
SHARED_PHASES = ("spacy", "embedding")  # do not depend on the graph store: measured once per run


def _report_store(store: str, phases: dict[str, dict[str, Any]], summary: dict[str, Any]) -> None:
    build = phases["build"]
    print_table(f"Indexing {summary['words']:,} words ({build['documents_added']:,} documents, {build['chunks']:,} chunks), store={store}",
                ["measure", "seconds", "words/s", "note"], [
                    ["end to end (build)", build["seconds"], summary["end_to_end_words_per_second"],
                     f"open {build['open_seconds']:.1f}s, peak {build['peak_mib']:,.0f} MiB, {build.get('cores_busy', 0):.2f} cores busy"],
                    ["spaCy extraction alone", phases["spacy"]["seconds"], summary["stage_words_per_second"]["spacy"], f"{phases['spacy']['workers']} workers"],
                    ["embedding alone", phases["embedding"]["seconds"], summary["stage_words_per_second"]["embedding"],
                     f"{phases['embedding']['texts']:,} texts"],
                    ["store writes alone", phases["store"]["seconds"], summary["stage_words_per_second"]["store"],
                     f"{phases['store']['nodes']:,} nodes, {phases['store']['edges']:,} edges"],
                    ["incremental +held-out", phases["incremental"]["seconds"], phases["incremental"]["words"] / max(phases["incremental"]["seconds"], 1e-9),
                     f"{phases['incremental']['documents_added']} docs; open {phases['incremental']['open_seconds']:.1f}s"],
                    ["re-ingest held-out", phases["reingest"]["seconds"], "", f"{phases['reingest']['documents_unchanged']} unchanged"],
                    ["held-out, each edited", phases["edited"]["seconds"], "",
                     f"{phases['edited']['documents_replaced']} replaced; embedding {phases['edited']['stage_seconds'].get('embedding', 0):.1f}s"],
                ])
    print_table(f"Targets, store={store}", ["target", "measured", "met"], [
        ["end to end >= 3,333 words/s", f"{summary['end_to_end_words_per_second']:,.0f}", summary["targets"]["end to end >= 3,333 words/s"]],
        ["e2e / slowest stage >= 0.80", f"{summary['ratio_to_slowest_stage']:.2f} (slowest: {summary['slowest_stage']})",
         summary["targets"]["ratio_to_slowest_stage >= 0.80"]],
        ["writer >= 10,000 words per CPU-s", f"{summary['writer_words_per_cpu_second'] or 0:,.0f} ({summary['writer_cpu_seconds']:.1f} CPU-s)",
         summary["targets"]["writer >= 10,000 words per CPU-second"]],
        ["incremental <= 5% of build",
         f"{summary['incremental_fraction_of_build']:.2%} (with index open: {summary['incremental_fraction_of_build_with_open']:.2%})",
         summary["targets"]["incremental <= 5% of build"]],
        ["peak memory <= 2048 MiB", f"{build['peak_mib']:,.0f} MiB", summary["targets"]["peak memory <= 2048 MiB"]],
        ["re-ingest is a no-op", str(summary["reingest_is_noop"]), summary["reingest_is_noop"]],
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=WIKI_PASSAGES, help="passages.json(l) file or a directory holding one (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N passages (0 = all)")
    parser.add_argument("--holdout", type=float, default=0.01, help="fraction held out of the build and added incrementally (default: %(default)s)")
    parser.add_argument("--store", default="embedded", help="graph store(s) to measure, comma-separated: embedded, neo4j (the server of GRAPHDEX_NEO4J_URI), "
                                                            "or embedded,neo4j side by side")
    parser.add_argument("--workdir", type=Path, default=None, help="where the scratch indexes go (default: a temporary directory, removed afterwards)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--phase-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if not 0 < args.holdout < 0.5:
        raise BenchError("--holdout must be between 0 and 0.5")

    if args.phase:
        args.phase_out.write_text(json.dumps(run_phase(args)))
        return

    stores = [s.strip() for s in args.store.split(",") if s.strip()]
    if not stores or any(s not in ("embedded", "neo4j") for s in stores):
        raise BenchError("--store takes embedded, neo4j or embedded,neo4j")
    temporary = args.workdir is None
    root = Path(tempfile.mkdtemp(prefix="graphdex-bench-")) if temporary else args.workdir.resolve()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    shared: dict[str, dict[str, Any]] = {}
    try:
        for store in stores:
            args.store = store
            args.workdir = root / store
            shutil.rmtree(args.workdir / "index", ignore_errors=True)
            args.workdir.mkdir(parents=True, exist_ok=True)
            if store == "neo4j":
                _clear_neo4j(args)
            try:
                phases = {phase: _spawn(args, phase) for phase in STORE_PHASES[:4]}
                for phase in SHARED_PHASES:
                    if phase not in shared:
                        shared[phase] = _spawn(args, phase)
                phases.update(shared)
                phases["store"] = _spawn(args, "store")
            finally:
                if store == "neo4j":
                    _clear_neo4j(args)
            results[store] = phases
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
    summaries = {store: summarise(phases, args.holdout) for store, phases in results.items()}
    for store in stores:
        _report_store(store, results[store], summaries[store])
    if len(stores) > 1:
        print_table("Stores side by side", ["measure", *stores], [
            ["build seconds", *[results[s]["build"]["seconds"] for s in stores]],
            ["build words/s", *[summaries[s]["end_to_end_words_per_second"] for s in stores]],
            ["store writes alone, seconds", *[results[s]["store"]["seconds"] for s in stores]],
            ["incremental +1%, seconds", *[results[s]["incremental"]["seconds"] for s in stores]],
            ["incremental / build", *[f"{summaries[s]['incremental_fraction_of_build']:.2%}" for s in stores]],
            ["re-ingest no-op, seconds", *[results[s]["reingest"]["seconds"] for s in stores]],
            ["peak MiB (graphdex processes)", *[results[s]["build"]["peak_mib"] for s in stores]],
            ["Neo4j server RSS after build, MiB", *[results[s]["build"].get("neo4j_server_rss_mib") or "-" for s in stores]],
        ])
    write_json(args.out, {"benchmark": "index_throughput", "data": str(args.data), "stores": stores, "machine": machine(),
                          "summary": summaries, "phases": results})


def _clear_neo4j(args: argparse.Namespace) -> None:
    from graphdex.graph.model import NodeType

    for name in ("bench", "bench-store-copy"):
        workspace = _workspace(args, args.workdir / "scratch-clear", workspace=name)
        store = workspace.store
        for type_ in NodeType:
            _delete_in_batches(store, sorted(store.node_ids(type_)))
        store.close()


def _delete_in_batches(store, ids: list[str], size: int = 5000) -> None:
    """Deletes of tens of thousands of nodes, a few thousand per transaction (one huge one would strain the server's heap)."""
    for start in range(0, len(ids), size):
        store.write(delete_nodes=ids[start : start + size])


if __name__ == "__main__":
    main()
