"""The `graphdex` command line."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from graphdex.api.sample import SAMPLE_CORPUS, SAMPLE_QUESTIONS
from graphdex.api.workspace import Workspace
from graphdex.common.llm import LLMError, counting_usage
from graphdex.common.settings import Settings
from graphdex.graph.store import StoreError
from graphdex.ingest.documents import DocumentError, SourceDocument, iter_files, load_file, load_paths
from graphdex.ingest.pipeline import IngestReport
from graphdex.query.answer import citations_in
from graphdex.query.engine import DEFAULT_MODE, MODES, QueryError
from graphdex.query.results import QueryResult

app = typer.Typer(
    help="graphdex: index documents into a knowledge graph and query it.\n\n"
    "Configuration comes from GRAPHDEX_* environment variables or a .env file (see the README); "
    "--data-dir overrides GRAPHDEX_DATA_DIR.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True, soft_wrap=True)

_state: dict = {"data_dir": None, "verbose": False}


@app.callback()
def main(
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", "-d", help="Where the embedded index lives (default: GRAPHDEX_DATA_DIR or ./graphdex-data)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail."),
) -> None:
    _state["data_dir"] = data_dir
    _state["verbose"] = verbose


def _workspace(**overrides) -> Workspace:
    try:
        settings = Settings(**({"data_dir": _state["data_dir"]} if _state["data_dir"] else {}), **overrides)
    except ValidationError as error:
        _fail(f"invalid configuration: {error}")
    level = logging.DEBUG if _state["verbose"] else getattr(logging, settings.log_level.upper(), logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    return Workspace(settings)


def _fail(message: str, code: int = 1) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _run_ingest(workspace: Workspace, documents: list) -> IngestReport:
    with Progress(TextColumn("[bold]indexing"), BarColumn(), MofNCompleteColumn(), TextColumn("chunks"), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=err, transient=False) as progress:
        task = progress.add_task("ingest", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return workspace.indexer.ingest(documents, progress=update)


def _print_report(report: IngestReport) -> None:
    table = Table(title="ingest summary", show_header=False)
    for label, value in (
        ("documents added", report.documents_added), ("documents replaced", report.documents_replaced),
        ("documents unchanged (skipped)", report.documents_unchanged), ("documents failed", len(report.failed)),
        ("chunks", report.chunks), ("words", report.words), ("entities touched", report.entities),
        ("relations touched", report.relations), ("chunks with extraction problems", report.problem_chunks), ("time", f"{report.seconds:.1f} s"),
        ("words/s", f"{report.words / report.seconds:,.0f}" if report.seconds and report.words else "-"),
    ):
        table.add_row(label, str(value))
    console.print(table)
    if report.llm_usage:
        u = report.llm_usage
        per_chunk = f", {(u['prompt_tokens'] + u['completion_tokens']) / report.chunks:,.0f} tokens per chunk" if report.chunks else ""
        console.print(f"model: {u['calls']} calls, {u['cached']} cached, {u['retries']} retries, "
                      f"{u['prompt_tokens']:,} prompt + {u['completion_tokens']:,} completion tokens{per_chunk}")
    for source, reason in report.failed:
        err.print(f"[yellow]skipped[/] {source}: {reason}")


def _load_documents(paths: list[Path]) -> list[SourceDocument]:
    """The documents of every file under ``paths``. Bad files are all reported, each by name and reason, before
    anything is indexed: a run fails as a whole rather than leaving the index with part of a corpus."""
    documents: list[SourceDocument] = []
    problems: list[str] = []
    for file in iter_files(paths):
        try:
            documents += load_file(file)
        except DocumentError as error:
            problems.append(str(error))
    for problem in problems:
        err.print(f"[red]cannot read[/] {escape(problem)}")
    if problems:
        raise DocumentError(f"{len(problems)} file(s) cannot be read (listed above); nothing was indexed")
    return documents


@app.command()
def ingest(paths: list[Path] = typer.Argument(..., help="Files (.txt, .md, .json, .jsonl) or folders of them."),
           workers: Optional[int] = typer.Option(None, "--workers", "-w", min=0, max=64, help="spaCy worker processes (default GRAPHDEX_EXTRACT_WORKERS; 0 = in this process)."),
           json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON.")) -> None:
    """Index documents. Unchanged documents are skipped; changed ones (same source, new text) replace their old version."""
    workspace = _workspace(**({"extract_workers": workers} if workers is not None else {}))
    try:
        documents = _load_documents(paths)
        with workspace.store.lock():
            report = _run_ingest(workspace, documents)
    except (DocumentError, StoreError) as error:
        _fail(str(error))
    finally:
        workspace.close()
    if json_output:
        console.print_json(json.dumps({**report.__dict__, "stage_seconds": dict(report.stage_seconds)}))
    else:
        _print_report(report)


def _print_result(result: QueryResult) -> None:
    table = Table(title=f"{result.mode} retrieval for: {result.query}  ({result.seconds * 1000:.0f} ms)")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("source")
    table.add_column("text", overflow="fold")
    for rank, hit in enumerate(result.chunks, start=1):
        text = hit.text if len(hit.text) <= 300 else hit.text[:297] + "..."
        table.add_row(str(rank), f"{hit.score:.3f}", f"{hit.title}\n[dim]{hit.chunk_id}[/]", text)
    console.print(table)
    if result.nodes:
        nodes = Table(title="graph nodes", show_lines=False)
        for column in ("score", "type", "name", "cited chunks"):
            nodes.add_column(column)
        for node in result.nodes:
            nodes.add_row(f"{node.score:.3f}", node.type, node.name, ", ".join(node.chunks[:3]))
        console.print(nodes)


@app.command()
def query(text: str = typer.Argument(..., help="The question."),
          mode: str = typer.Option(DEFAULT_MODE, "--mode", "-m", help=f"Retrieval mode: {', '.join(MODES)} ({DEFAULT_MODE} is the default: the best measured, see the README)."),
          top_k: Optional[int] = typer.Option(None, "--top-k", "-k", min=1, max=200, help="Chunks to return (default GRAPHDEX_TOP_K)."),
          answer: bool = typer.Option(False, "--answer", "-a", help="Also write an answer with [n] citations (needs GRAPHDEX_LLM_MODEL); streamed as the model writes it."),
          json_output: bool = typer.Option(False, "--json", help="Print the result as JSON.")) -> None:
    """Retrieve ranked, cited context for a question, and optionally an answer written from it."""
    workspace = _workspace()
    try:
        if answer and workspace.answerer is None:
            _fail("--answer needs a model: set GRAPHDEX_LLM_MODEL (for example openai/gpt-4o-mini or ollama/qwen2.5:14b; see the README)")
        with counting_usage() as usage:
            result = workspace.engine.retrieve(text, mode, top_k or workspace.settings.top_k)
            if json_output:
                written = workspace.answerer.answer(text, result.chunks) if answer and result.chunks else None
                payload = {**result.to_dict(), "answer": written.text if written else None,
                           "citations": [c.__dict__ for c in written.citations] if written else []}
                console.print_json(json.dumps({**payload, "llm_usage": usage.snapshot()}))
                return
            _print_result(result)
            if not result.chunks:
                err.print("[yellow]nothing found[/]: is the index empty? `graphdex stats` shows what is indexed, `graphdex ingest PATH` adds documents")
            elif answer:
                console.print("[bold]answer[/] ", end="")
                parts = []
                for delta in workspace.answerer.stream(text, result.chunks):
                    parts.append(delta)
                    console.print(delta, end="", markup=False, highlight=False, soft_wrap=True)
                console.print()
                for citation in citations_in("".join(parts), text, result.chunks):
                    console.print(f"  [{citation.number}] {citation.title} ({citation.chunk_id})", markup=False, highlight=False)
        if usage.calls or usage.cached:
            err.print(f"[dim]model: {usage.calls} call(s), {usage.cached} cached, {usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens[/]")
    except (QueryError, StoreError, LLMError) as error:
        _fail(str(error))
    finally:
        workspace.close()


@app.command()
def delete(document: str = typer.Argument(..., help="A document id (doc-...) or the source path it was ingested from.")) -> None:
    """Delete a document and everything only it supported."""
    workspace = _workspace()
    try:
        with workspace.store.lock():
            report = workspace.maintenance.delete_document(document)
    except KeyError:
        _fail(f"no document with id or source {document!r} (see `graphdex stats` for what is indexed)")
    except StoreError as error:
        _fail(str(error))
    finally:
        workspace.close()
    console.print(f"deleted {report.document_id}: {report.chunks} chunks, {report.nodes_deleted} nodes removed, {report.nodes_updated} shared nodes updated")


@app.command()
def stats(json_output: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Counts of nodes per type, edges per type and vectors per index."""
    workspace = _workspace()
    try:
        data = workspace.stats()
    except StoreError as error:
        _fail(str(error))
    finally:
        workspace.close()
    if json_output:
        console.print_json(json.dumps(data))
        return
    table = Table(title=f"graphdex index at {data['data_dir']}")
    table.add_column("kind")
    table.add_column("name")
    table.add_column("count", justify="right")
    for kind in ("nodes", "edges", "vectors"):
        for name, count in data[kind].items():
            table.add_row(kind, name, str(count))
    console.print(table)


@app.command()
def serve(host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on (0.0.0.0 for all; set GRAPHDEX_API_KEY then)."),
          port: int = typer.Option(8000, "--port", "-p", min=1, max=65535, help="TCP port.")) -> None:
    """Run the REST API (OpenAPI docs at /docs): queue documents, follow their status, query, browse the graph."""
    import uvicorn

    from graphdex.api.app import create_app
    from graphdex.api.deps import InvalidApiKey

    workspace = _workspace()
    if host not in ("127.0.0.1", "localhost", "::1") and not workspace.settings.api_key:
        err.print("[yellow]warning:[/] listening beyond this machine with no GRAPHDEX_API_KEY: anyone who can reach it can add and delete documents")
    try:
        service = create_app(workspace=workspace)
    except InvalidApiKey as error:
        _fail(str(error))
    try:
        uvicorn.run(service, host=host, port=port, log_level=workspace.settings.log_level.lower())
    except StoreError as error:
        _fail(str(error))


@app.command()
def demo(questions: int = typer.Option(len(SAMPLE_QUESTIONS), "--questions", "-n", min=1, max=len(SAMPLE_QUESTIONS), help="How many sample questions to answer."),
         mode: str = typer.Option(DEFAULT_MODE, "--mode", "-m", help=f"Retrieval mode: {', '.join(MODES)}.")) -> None:
    """Index the bundled sample corpus (if the index is empty) and answer sample questions."""
    workspace = _workspace()
    try:
        if workspace.store.counts()["nodes"]["Document"] == 0:
            err.print(f"indexing the sample corpus ({SAMPLE_CORPUS.name}) into {workspace.data_dir} ...")
            with workspace.store.lock():
                _print_report(_run_ingest(workspace, list(load_paths([SAMPLE_CORPUS]))))
        for question in SAMPLE_QUESTIONS[:questions]:
            result = workspace.engine.retrieve(question, mode, 3)
            _print_result(result)
            if result.chunks:
                best = result.chunks[0]
                console.print(f"[bold]best evidence[/] [{best.title}]: {best.text}\n")
    except (DocumentError, StoreError, QueryError) as error:
        _fail(str(error))
    finally:
        workspace.close()


if __name__ == "__main__":
    sys.exit(app())
