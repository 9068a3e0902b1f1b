"""A real small model end to end: LLM extraction against spaCy on the same chunks, LLM query keywords, and streamed
cited answers through the REST API (as prose, and as JSON statements under a schema: GRAPHDEX_LLM_ANSWER_FORMAT), with
every failure of the model counted by kind.

The model is the one `scripts/local-llm.sh start` serves (Gemma 3 270M on llama-cpp-python, wired exactly as any
OpenAI-compatible server: GRAPHDEX_LLM_MODEL=openai/gemma-3-270m and GRAPHDEX_LLM_API_BASE); --start starts it when
it is not running (and stops it afterwards). The corpus is the supporting passages of the first --questions questions
of a QA set, topped up with the next passages to --chunks chunks, so the answers can be found in it. The response cache
is off: every run asks the model again.

    scripts/local-llm.sh start
    python bench/local_llm.py --out bench/results/local_llm.json
"""

from __future__ import annotations

import _checkout  # noqa: F401  # isort: skip  (first: this checkout's graphdex, not the installed one)

import argparse
import logging
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from graphdex.api.app import create_app
from graphdex.api.workspace import Workspace
from graphdex.common.embedder import make_embedder
from graphdex.common.settings import Settings
from graphdex.common.tokens import token_counter
from graphdex.graph.model import NodeType
from graphdex.ingest.chunking import Chunker
from graphdex.ingest.documents import SourceDocument
from graphdex.ingest.extraction import ChunkExtraction, ChunkInput, Extractor
from harness import DEV_QA, REPO, BenchError, console, load_passages, load_questions, machine, print_table, scratch_settings, write_json

LOCAL_LLM = REPO / "scripts" / "local-llm.sh"


class TimedExtractor:
    """Wraps the workspace's extractor: keeps each chunk's extraction and the seconds until it arrived (with one model
    call in flight at a time, that is the chunk's own time)."""

    def __init__(self, inner: Extractor) -> None:
        self.inner = inner
        self.results: list[tuple[ChunkExtraction, float]] = []

    def extract(self, chunks: Iterable[ChunkInput]) -> Iterator[ChunkExtraction]:
        began = time.perf_counter()
        for extraction in self.inner.extract(chunks):
            now = time.perf_counter()
            self.results.append((extraction, now - began))
            began = now
            yield extraction

    def close(self) -> None:
        self.inner.close()


def corpus(data: Path, questions: int, chunks: int, chunk_count: Callable[[SourceDocument], int]) -> tuple[list[SourceDocument], list[str]]:
    """The supporting passages of the questions, then the next passages that fit, to exactly ``chunks`` chunks (or
    fewer, when the supporting passages alone have more)."""
    asked = load_questions(data)[:questions]
    passages = load_passages(data)
    by_id = {p.source.removeprefix("passage:"): p for p in passages}
    chosen = [by_id[s] for q in asked for s in q.supporting if s in by_id]
    total = sum(map(chunk_count, chosen))
    for passage in passages:
        if total >= chunks:
            break
        if passage not in chosen and total + chunk_count(passage) <= chunks:
            chosen.append(passage)
            total += chunk_count(passage)
    return chosen, [q.question for q in asked]


def ingest(documents: list[SourceDocument], scratch: Path, **settings: Any) -> tuple[Workspace, Any, TimedExtractor]:
    workspace = Workspace(scratch_settings(scratch, extract_workers=0, **settings))
    timed = TimedExtractor(workspace.indexer.extractor)
    workspace.indexer.extractor = timed
    report = workspace.indexer.ingest(documents)
    return workspace, report, timed


def per_chunk(timed: TimedExtractor) -> dict[str, Any]:
    entities = [len(e.entities) for e, _ in timed.results]
    relations = [len(e.relations) for e, _ in timed.results]
    return {"chunks": len(entities), "entities_per_chunk": statistics.mean(entities), "relations_per_chunk": statistics.mean(relations),
            "chunks_with_entities": sum(1 for n in entities if n), "chunks_with_relations": sum(1 for n in relations if n),
            "seconds_per_chunk": statistics.mean(s for _, s in timed.results), "max_seconds_per_chunk": max(s for _, s in timed.results),
            "per_chunk": [{"chunk_id": e.chunk_id, "seconds": round(s, 2), "entities": [f"{m.surface} ({m.type})" for m in e.entities][:20],
                           "relations": len(e.relations), "problems": e.problems} for e, s in timed.results]}


def failures(timed: TimedExtractor) -> dict[str, Any]:
    """Problems per kind, and how much of the broken answers was saved."""
    kinds: Counter = Counter()
    for extraction, _ in timed.results:
        for problem in extraction.problems:
            kinds[problem.split(":")[0]] += 1
    broken = [e for e, _ in timed.results if any(p.startswith(("partial", "off-schema")) for p in e.problems)]
    return {"by_kind": dict(kinds), "chunks_with_problems": sum(1 for e, _ in timed.results if e.problems),
            "parse_failures": kinds["unparseable model answer"] + kinds["empty model answer"], "call_failures": kinds["model call failed"],
            "salvaged_chunks": sum(1 for e in broken if e.entities or e.relations),
                "salvage_rate": (sum(1 for e in broken if e.entities) / len(broken)) if broken else None}


def lost_chunks(workspace: Workspace, report: Any, timed: TimedExtractor) -> int:
    """Chunks sent to the extractor that are not in the graph (must be 0)."""
    stored = sum(1 for _ in workspace.store.iter_nodes(NodeType.CHUNK))
    return max(report.chunks, len(timed.results)) - stored


def keyword_latency(workspace: Workspace, questions: list[str]) -> dict[str, Any]:
    analyzer = workspace.engine.analyzer
    runs = []
    for question in questions:
        began = time.perf_counter()
        keywords = analyzer.analyze(question)
        runs.append({"question": question, "seconds": time.perf_counter() - began, "source": keywords.source,
                     "fallback_reason": keywords.fallback_reason, "low_level": keywords.low_level, "high_level": keywords.high_level})
    seconds = [r["seconds"] for r in runs]
    return {"mean_seconds": statistics.mean(seconds), "max_seconds": max(seconds), "from_model": sum(r["source"] == "llm" for r in runs),
            "fallbacks": dict(Counter(r["fallback_reason"] for r in runs if r["fallback_reason"])), "runs": runs}


class ApiServer:
    """The REST API on a free loopback port, in this process, so answers stream over real HTTP as to a client."""

    def __init__(self, workspace: Workspace) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(create_app(workspace=workspace), host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> ApiServer:
        self._thread.start()
        while not self._server.started:
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join()


def streamed_answers(workspace: Workspace, questions: list[str], top_k: int) -> dict[str, Any]:
    """POST /query/stream per question: seconds to the context event (retrieval, with the model's keywords), to the
    first answer token, and to the end; the citations of the done event, and the [n] the text has that were copied."""
    import json
    import re

    runs = []
    with ApiServer(workspace) as api, httpx.Client(base_url=f"http://127.0.0.1:{api.port}", timeout=600) as client:
        for question in questions:
            began = time.perf_counter()
            marks: dict[str, float] = {}
            events: list[tuple[str, dict]] = []
            with client.stream("POST", "/query/stream", json={"query": question, "mode": "graph", "top_k": top_k}) as response:
                response.raise_for_status()
                name = ""
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        name = line.removeprefix("event: ")
                        marks.setdefault(name, time.perf_counter() - began)
                    elif line.startswith("data: "):
                        events.append((name, json.loads(line.removeprefix("data: "))))
            done = next((data for kind, data in events if kind == "done"), None)
            error = next((data["detail"] for kind, data in events if kind == "error"), None)
            text = done["answer"] if done else ""
            numbers = {int(n) for n in re.findall(r"\[(\d{1,3})\]", text) if 1 <= int(n) <= top_k}
            cited = [c["number"] for c in done["citations"]] if done else []
            runs.append({"question": question, "context_seconds": marks.get("context"), "first_token_seconds": marks.get("token"),
                         "total_seconds": time.perf_counter() - began, "tokens_events": sum(1 for kind, _ in events if kind == "token"),
                         "citations": cited, "copied_citations_ignored": len(numbers - set(cited)), "error": error, "answer": text[:300]})
    answered = [r for r in runs if r["first_token_seconds"] is not None]
    return {"mean_first_token_seconds": statistics.mean(r["first_token_seconds"] for r in answered) if answered else None,
            "mean_total_seconds": statistics.mean(r["total_seconds"] for r in runs),
            "answers_with_citations": sum(1 for r in runs if r["citations"]), "errors": sum(1 for r in runs if r["error"]), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="openai/gemma-3-270m", help="litellm model (default: %(default)s, the model of scripts/local-llm.sh)")
    parser.add_argument("--api-base", default="http://127.0.0.1:8093/v1", help="the server's API base (default: %(default)s)")
    parser.add_argument("--start", action="store_true", help="start scripts/local-llm.sh when it is not running, and stop it afterwards")
    parser.add_argument("--data", type=Path, default=DEV_QA, help="QA-set directory (default: %(default)s)")
    parser.add_argument("--chunks", type=int, default=20, help="chunks to extract (default: %(default)s)")
    parser.add_argument("--questions", type=int, default=3, help="questions for keywords and streamed answers (default: %(default)s)")
    parser.add_argument("--max-tokens", type=int, default=256, help="GRAPHDEX_LLM_MAX_TOKENS (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=120, help="GRAPHDEX_LLM_TIMEOUT, seconds (default: %(default)s)")
    parser.add_argument("--top-k", type=int, default=5, help="chunks of context per answer (default: %(default)s)")
    parser.add_argument("--answer-formats", type=lambda text: text.split(","), default=["text", "json"],
                        help="GRAPHDEX_LLM_ANSWER_FORMAT values to answer with, comma-separated (default: text,json)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    if args.chunks < 1 or args.questions < 1:
        raise BenchError("--chunks and --questions must be at least 1")

    started = False
    if args.start and subprocess.run([str(LOCAL_LLM), "status"], capture_output=True).returncode != 0:
        subprocess.run([str(LOCAL_LLM), "start"], check=True)
        started = True
    settings = Settings()
    chunker = Chunker(token_counter(make_embedder(settings)), settings.chunk_tokens, settings.chunk_overlap)  # as ingest chunks
    documents, questions = corpus(args.data, args.questions, args.chunks, lambda doc: len(chunker.split(doc.text)))
    llm_settings = {"extractor": "llm", "llm_model": args.model, "llm_api_base": args.api_base, "llm_api_key": "local", "llm_concurrency": 1,
                    "llm_max_tokens": args.max_tokens, "llm_timeout": args.timeout, "llm_cache": False}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            spacy_ws, spacy_report, spacy_timed = ingest(documents, Path(scratch) / "spacy")
            spacy = {**per_chunk(spacy_timed), "chunks_lost": lost_chunks(spacy_ws, spacy_report, spacy_timed), "ingest_seconds": spacy_report.seconds}
            spacy_ws.close()
            console.print(f"spaCy: {spacy['chunks']} chunks in {spacy['ingest_seconds']:.1f} s")

            llm_ws, llm_report, llm_timed = ingest(documents, Path(scratch) / "llm", **llm_settings)
            usage = llm_report.llm_usage
            chunks = max(llm_report.chunks, 1)
            llm = {**per_chunk(llm_timed), "chunks_lost": lost_chunks(llm_ws, llm_report, llm_timed), "ingest_seconds": llm_report.seconds,
                   "problem_chunks": llm_report.problem_chunks, "failures": failures(llm_timed), "usage": usage,
                   "calls_per_chunk": usage["calls"] / chunks, "completion_tokens_per_chunk": usage["completion_tokens"] / chunks,
                   "prompt_tokens_per_chunk": usage["prompt_tokens"] / chunks,
                   "completion_tokens_per_second": usage["completion_tokens"] / max(sum(s for _, s in llm_timed.results), 1e-9)}
            console.print(f"LLM: {llm['chunks']} chunks in {llm['ingest_seconds']:.1f} s")
            keywords = keyword_latency(llm_ws, questions)
            llm_ws.close()
            answers = {}
            for answer_format in args.answer_formats:  # the same index, answered in each format
                answer_ws = Workspace(scratch_settings(Path(scratch) / "llm", extract_workers=0, **llm_settings, llm_answer_format=answer_format))
                answers[answer_format] = streamed_answers(answer_ws, questions, args.top_k)
                answer_ws.close()
    finally:
        if started:
            subprocess.run([str(LOCAL_LLM), "stop"], check=False)

    print_table(f"Extraction of the same {llm['chunks']} chunks", ["extractor", "entities/chunk", "relations/chunk", "chunks w/ entities",
                                                                     "s/chunk", "chunks lost"],
                [[name, r["entities_per_chunk"], r["relations_per_chunk"], r["chunks_with_entities"], r["seconds_per_chunk"], r["chunks_lost"]]
                 for name, r in (("spacy", spacy), (args.model, llm))])
    print_table("Model failures by kind (chunks)", ["kind", "chunks"], sorted(llm["failures"]["by_kind"].items()))
    print_table("Keywords", ["question", "seconds", "from"],
                [[k["question"][:50], k["seconds"], k["source"] + (f" ({k['fallback_reason']})" if k["fallback_reason"] else "")] for k in keywords["runs"]])
    print_table("Streamed answers", ["format", "question", "first token s", "total s", "citations", "answer"],
                [[answer_format, a["question"][:40], a["first_token_seconds"] or 0.0, a["total_seconds"], ",".join(map(str, a["citations"])) or "-",
                  " ".join(a["answer"].split())[:60]]
                 for answer_format, run in answers.items() for a in run["runs"]])
    write_json(args.out, {"benchmark": "local_llm", "machine": machine(), "model": args.model, "api_base": args.api_base, "data": str(args.data),
                          "settings": {k: v for k, v in llm_settings.items() if k != "llm_api_key"}, "spacy": spacy, "llm": llm,
                          "keywords": keywords, "answers": answers})


if __name__ == "__main__":
    main()
