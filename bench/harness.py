"""Shared pieces of the benchmarks (named harness, not common, so it never shadows the `common` package): corpora,
settings for a scratch index, peak-memory sampling, tables and JSON."""

from __future__ import annotations

from _checkout import REPO  # isort: skip  (first: this checkout's graphdex, not the installed one)

import json
import os
import platform
import sys
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from graphdex.common.settings import Settings
from graphdex.ingest.documents import SourceDocument

SHARED_DATA = REPO.parent / "shared" / "data"
WIKI_PASSAGES = SHARED_DATA / "wiki-passages"
DEV_QA = SHARED_DATA / "qa-wiki-directors-dev"

console = Console(width=None if sys.stdout.isatty() else 160)


class BenchError(SystemExit):
    """Bad arguments or data: the message says what to fix (exit status 2)."""

    def __init__(self, message: str) -> None:
        console.print(f"[red]error:[/red] {message}")
        super().__init__(2)


def load_passages(path: Path) -> list[SourceDocument]:
    """Passages from a QA-set directory (``passages.jsonl``), a wiki-passages directory or file (``passages.json``).

    Every passage becomes its own document whose source is its id, so results map straight back to passage ids.
    """
    path = path.expanduser()
    if path.is_dir():
        for name in ("passages.jsonl", "passages.json"):
            if (path / name).exists():
                path = path / name
                break
        else:
            raise BenchError(f"{path} holds neither passages.jsonl nor passages.json")
    if not path.exists():
        raise BenchError(f"{path}: no such file")
    if path.suffix == ".jsonl":
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        records = json.loads(path.read_text(encoding="utf-8"))
    documents = []
    for number, record in enumerate(records):
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise BenchError(f"{path}: record {number} has no string `text`")
        passage_id = str(record.get("id", number))
        documents.append(SourceDocument(f"passage:{passage_id}", record.get("title") or "", record["text"], {"id": passage_id}))
    return documents


def passage_id_of_source(source: str) -> str:
    return source.removeprefix("passage:")


def scratch_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for a benchmark index: the user's environment, except where the index lives."""
    return Settings(data_dir=data_dir, **overrides)


def _pss_kib(pid: int) -> int:
    """Proportional set size: shared copy-on-write pages of forked workers are counted once in total, not per process."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        current = frontier.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    children = [int(c) for c in handle.read().split()]
            except OSError:
                continue
            found += children
            frontier += children
    return found


class PeakMemory:
    """Samples the memory of this process and all its children (spaCy workers) until stopped.

    Reported as the peak of the summed PSS of the process tree, in MiB: what the indexing run costs the machine.
    """

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peak_mib = 0.0
        self.at_peak: dict[str, float] = {}  # this process and its children, at the moment of the peak
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        root = os.getpid()
        children = _descendants(root)
        main = _pss_kib(root) / 1024
        workers = sum(_pss_kib(pid) for pid in children) / 1024
        if main + workers > self.peak_mib:
            self.peak_mib = main + workers
            self.at_peak = {"main_mib": main, "children_mib": workers, "children": len(children)}

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()


@dataclass
class Timer:
    seconds: float = 0.0

    def __enter__(self) -> Timer:
        self._began = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._began


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(), "when": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def _cell(cell: Any) -> str:
    if isinstance(cell, float):
        return f"{cell:.3f}" if abs(cell) < 10 else f"{cell:,.1f}"
    return str(cell)


def print_table(title: str, columns: list[str], rows: Iterable[Iterable[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="left" if column == columns[0] else "right")
    for row in rows:
        table.add_row(*[_cell(cell) for cell in row])
    console.print(table)


def write_json(out: Path | None, payload: dict[str, Any]) -> None:
    if out is None:
        return
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(out)
    console.print(f"wrote {out}")


@dataclass
class Question:
    id: str
    question: str
    answers: list[str]
    supporting: list[str]
    type: str = ""  # the question's kind, when the set says (2WikiMultihopQA: compositional, inference...)


def load_questions(directory: Path) -> list[Question]:
    """``questions.jsonl`` of a QA-set directory (format: ../shared/data/README.md)."""
    path = directory.expanduser() / "questions.jsonl"
    if not path.exists():
        raise BenchError(f"{directory} is not a QA set: it has no questions.jsonl")
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            questions.append(Question(str(record["id"]), record["question"], list(record.get("answers", [])), [str(s) for s in record["supporting"]],
                                      str(record.get("type") or "")))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise BenchError(f"{path}:{number}: not a question record ({error})") from error
    if not questions:
        raise BenchError(f"{path} holds no questions")
    return questions


def open_index(index_dir: Path, documents: list[SourceDocument], store: str = "embedded", neo4j_workspace: str = "bench-qa", **settings: Any):
    """A workspace over ``documents``, reusing ``index_dir`` when it already holds them (re-ingest is a no-op);
    ``settings``: more Settings fields (such as neo4j_vectors)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from graphdex.api.workspace import Workspace

    overrides: dict[str, Any] = {"store": store, **settings}
    if store == "neo4j":
        overrides["neo4j_workspace"] = neo4j_workspace
    workspace = Workspace(scratch_settings(index_dir, **overrides))
    with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=console, transient=True) as progress:
        task = progress.add_task(f"indexing {len(documents):,} passages into {index_dir}", total=None)
        report = workspace.indexer.ingest(documents, lambda done, total: progress.update(task, completed=done, total=total))
    if report.documents_added or report.documents_replaced:
        console.print(f"indexed {report.documents_added + report.documents_replaced:,} passages ({report.chunks:,} chunks) in {report.seconds:.0f}s")
    else:
        console.print(f"reusing the index in {index_dir} ({report.documents_unchanged:,} passages unchanged)")
    return workspace


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation, so p99 is a latency that really happened)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]
