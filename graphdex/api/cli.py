"""The `graphdex` command line."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from typer.core import TyperGroup

from graphdex.api.cli_output import console, err, print_report, print_result
from graphdex.api.index import Index
from graphdex.api.layout import DEFAULT_WORKSPACE, Layout
from graphdex.api.lifecycle import create_workspace, delete_workspace, unknown
from graphdex.api.sample import SAMPLE_CORPUS, SAMPLE_QUESTIONS
from graphdex.api.workspace import Workspace
from graphdex.common.errors import GraphdexError
from graphdex.common.llm import counting_usage
from graphdex.common.settings import Settings
from graphdex.graph.store import StoreError
from graphdex.ingest.documents import SUPPORTED_SUFFIXES, DocumentError, FileScan, SourceDocument, load_file, load_paths, scan_paths
from graphdex.query.modes import DEFAULT_MODE, MODES
from graphdex.query.results import describe_location

if TYPE_CHECKING:  # the ingest path's modules are imported by the commands that write: `stats` and `query` need none
    from graphdex.ingest.pipeline import IngestReport

class _ReportingGroup(TyperGroup):
    """Ends every command that fails with one of graphdex's own errors (graphdex/common/errors.py) the same way: the
    message and exit status 1. Anything else is a bug, and keeps its traceback."""

    def invoke(self, ctx: Any) -> Any:  # a click Context (typer vendors its own click)
        try:
            return super().invoke(ctx)
        except GraphdexError as error:
            if type(error) is GraphdexError:
                raise
            _fail(str(error))


app = typer.Typer(
    cls=_ReportingGroup,
    help="graphdex: index documents into a knowledge graph and query it.\n\n"
    "Configuration comes from GRAPHDEX_* environment variables or a .env file (see the README); "
    "--data-dir overrides GRAPHDEX_DATA_DIR.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

_state: dict = {"data_dir": None, "verbose": False, "read_only": False}


@app.callback()
def main(
    data_dir: Path | None = typer.Option(None, "--data-dir", "-d", help="Where the embedded index lives (default: GRAPHDEX_DATA_DIR or ./graphdex-data)."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug detail."),
) -> None:
    _state["data_dir"] = data_dir
    _state["verbose"] = verbose


# every command that works on one index takes it by name: without it, the default workspace (the data directory itself)
WORKSPACE_OPTION = typer.Option(DEFAULT_WORKSPACE, "--workspace", help="The workspace to use (see `graphdex workspace --help`).")


def _settings(**overrides) -> Settings:
    try:
        settings = Settings(**({"data_dir": _state["data_dir"]} if _state["data_dir"] else {}), **overrides)
    except ValidationError as error:
        _fail(f"invalid configuration: {error}")
    level = logging.DEBUG if _state["verbose"] else getattr(logging, settings.log_level.upper(), logging.WARNING)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    return settings


def _workspace(name: str = DEFAULT_WORKSPACE, **overrides) -> Workspace:
    layout = Layout(_settings(**overrides))
    if not layout.exists(name):
        raise unknown(name)
    return Workspace(layout.settings_for(name))


def _index(name: str = DEFAULT_WORKSPACE, **overrides) -> Index:
    return Index(_workspace(name, **overrides))


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def _run_ingest(index: Index, documents: list) -> IngestReport:
    with Progress(TextColumn("[bold]indexing"), BarColumn(), MofNCompleteColumn(), TextColumn("chunks"), TimeElapsedColumn(), TimeRemainingColumn(),
                  console=err, transient=False) as progress:
        task = progress.add_task("ingest", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return index.ingest(documents, progress=update)


def _load_documents(scan: FileScan) -> tuple[list[SourceDocument], list[str]]:
    """The documents of the files found, and for each file that cannot be read its name and reason. A bad file
    does not stop the others: the run indexes what it can and its exit code says that something was left out."""
    documents: list[SourceDocument] = []
    problems: list[str] = []
    for file in scan.files:
        try:
            documents += load_file(file)
        except DocumentError as error:
            problems.append(str(error))
    return documents, problems


@app.command()
def ingest(paths: list[Path] = typer.Argument(..., help=f"Files ({', '.join(SUPPORTED_SUFFIXES)}) or folders of them (read recursively)."),
           workers: int | None = typer.Option(None, "--workers", "-w", min=0, max=64, help="spaCy worker processes (default GRAPHDEX_EXTRACT_WORKERS; 0 = in "
                                                                                           "this process)."),
           json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON."), workspace_name: str = WORKSPACE_OPTION) -> None:
    """Index documents. Unchanged documents are skipped; changed ones (same source, new text) replace their old version.

    A file that cannot be read (corrupt, encrypted, a scanned PDF without text, empty...) is named with the reason and
    left out while the others are indexed; the exit code is then 1. Files a folder walk skips (hidden, unsupported
    types) are listed by reason."""
    index = _index(workspace_name, **({"extract_workers": workers} if workers is not None else {}))
    try:
        scan = scan_paths(paths)
        documents, unreadable = _load_documents(scan)
        if documents or not unreadable:
            report = _run_ingest(index, documents)
        else:
            from graphdex.ingest.pipeline import IngestReport

            report = IngestReport()  # nothing readable: the index is not even opened for writing
    finally:
        index.close()
    if json_output:
        console.print_json(json.dumps({**report.__dict__, "stage_seconds": dict(report.stage_seconds), "unreadable": unreadable,
                                       "skipped_files": [{"path": str(p), "reason": r} for p, r in scan.skipped]}))
    else:
        print_report(report, scan, unreadable)
    if unreadable or report.failed:
        _fail(f"{len(unreadable) + len(report.failed):,} file(s) or document(s) not indexed "
              f"({'listed in the JSON' if json_output else 'listed above'}); everything else was indexed")


@app.command()
def query(text: str = typer.Argument(..., help="The question."),
          mode: str = typer.Option(DEFAULT_MODE, "--mode", "-m", help=f"Retrieval mode: {', '.join(MODES)} ({DEFAULT_MODE} is the default: the best measured, "
                                                                      "see the README)."),
          top_k: int | None = typer.Option(None, "--top-k", "-k", min=1, max=200, help="Chunks to return (default GRAPHDEX_TOP_K)."),
          answer: bool = typer.Option(False, "--answer", "-a", help="Also write an answer with [n] citations (needs GRAPHDEX_LLM_MODEL); streamed as the "
                                                                    "model writes it."),
          json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."), workspace_name: str = WORKSPACE_OPTION) -> None:
    """Retrieve ranked, cited context for a question, and optionally an answer written from it."""
    _state["read_only"] = True
    index = _index(workspace_name)
    try:
        index.prepare_query(mode)
        answerer = index.answerer if answer else None
        if answer and answerer is None:
            _fail("--answer needs a model: set GRAPHDEX_LLM_MODEL (for example openai/gpt-4o-mini or ollama/qwen2.5:14b; see the README)")
        with counting_usage() as usage:
            result = index.retrieve(text, mode, top_k)
            if json_output:
                written = answerer.answer(text, result.chunks) if answerer is not None and result.chunks else None
                payload = {**result.to_dict(), "answer": written.text if written else None,
                           "citations": [c.__dict__ for c in written.citations] if written else []}
                console.print_json(json.dumps({**payload, "llm_usage": usage.snapshot()}))
                return
            print_result(result)
            if not result.chunks:
                err.print("[yellow]nothing found[/]: is the index empty? `graphdex stats` shows what is indexed, `graphdex ingest PATH` adds documents")
            elif answerer is not None:
                console.print("[bold]answer[/] ", end="")
                stream = answerer.stream(text, result.chunks)
                for delta in stream:
                    console.print(delta, end="", markup=False, highlight=False, soft_wrap=True)
                console.print()
                for citation in stream.citations:
                    where = describe_location(citation.section, citation.page, citation.page_end)
                    console.print(f"  [{citation.number}] {citation.title}{f', {where}' if where else ''} ({citation.chunk_id})", markup=False, highlight=False)
        if usage.calls or usage.cached:
            err.print(f"[dim]model: {usage.calls} call(s), {usage.cached} cached, "
                      f"{usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens[/]")
    finally:
        index.close()


@app.command()
def delete(document: str = typer.Argument(..., help="A document id (doc-...) or the source path it was ingested from."),
           workspace_name: str = WORKSPACE_OPTION) -> None:
    """Delete a document and everything only it supported.

    Idempotent, like `rm -f`: when no such document is indexed (deleted already, say by an earlier run that was
    interrupted, or never indexed) it says there is nothing to delete and exits with exit code 0, so a script can
    simply run it again. Only a failure (the index cannot be opened or written) exits with 1."""
    index = _index(workspace_name)
    try:
        report = index.delete(document)
    finally:
        index.close()
    if report is None:
        err.print(f"[yellow]nothing to delete:[/] no document with id or source {escape(repr(document))} is indexed "
                  "(deleted already, or never indexed; `graphdex stats` shows what is)")
        return
    console.print(f"deleted {report.document_id}: {report.chunks} chunks, {report.nodes_deleted} nodes removed, {report.nodes_updated} shared nodes updated")


@app.command()
def communities(rebuild: bool = typer.Option(False, "--rebuild", help="Recompute the community layer from scratch (Leiden over the whole entity graph)."),
                workspace_name: str = WORKSPACE_OPTION) -> None:
    """The community layer: how many communities; --rebuild recomputes it from scratch (every write only updates the
    communities it touched)."""
    index = _index(workspace_name)
    try:
        if rebuild:
            written = index.rebuild_communities()
            console.print(f"rebuilt the community layer: {written} community nodes and memberships written or removed")
        counts = index.stats()
    finally:
        index.close()
    console.print(f"{counts['nodes']['Community']} communities, {counts['edges']['IN_COMMUNITY']} memberships")


@app.command()
def stats(json_output: bool = typer.Option(False, "--json", help="Print as JSON."), workspace_name: str = WORKSPACE_OPTION) -> None:
    """Counts of nodes per type, edges per type and vectors per index."""
    _state["read_only"] = True
    index = _index(workspace_name)
    try:
        data = index.stats()
    except StoreError as error:
        _fail(str(error))
    finally:
        index.close()
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
    """Run the REST API (OpenAPI docs at /docs) and the web UI (/ui/): queue documents, follow their status, query,
    browse the graph. It serves every workspace: the default one at /documents, /query..., the others at
    /workspaces/NAME/documents..."""
    import uvicorn

    from graphdex.api.app import create_app
    from graphdex.api.logs import serve_log_config

    workspace = _workspace()
    if host not in ("127.0.0.1", "localhost", "::1") and not workspace.settings.api_key:
        err.print("[yellow]warning:[/] listening beyond this machine with no GRAPHDEX_API_KEY: anyone who can reach it can add and delete documents")
    if workspace.settings.ingest:  # a query replica never indexes: no cluster to reach
        _ = workspace.cluster  # an unreachable GRAPHDEX_RAY_ADDRESS stops the start here, with what to do, not in a traceback
    service = create_app(workspace=workspace)
    shown = f"[{host}]" if ":" in host else ("127.0.0.1" if host == "0.0.0.0" else host)
    err.print(f"web UI: http://{shown}:{port}/ui/   API docs: http://{shown}:{port}/docs")
    try:
        # uvicorn's logging, with keys sent in URLs by mistake (?api_key=...) redacted from the access log
        uvicorn.run(service, host=host, port=port, log_level=workspace.settings.log_level.lower(), log_config=serve_log_config())
    except StoreError as error:
        _fail(str(error))


@app.command()
def mcp(workspace_name: str = WORKSPACE_OPTION) -> None:
    """Serve the index to an MCP client (a desktop assistant, an IDE agent) over stdio: search with citations, entities
    and the graph around them, adding and deleting documents. Tools that name no workspace use --workspace.

    No API key applies: whoever starts this process owns the index. Documents are indexed in the background as by
    `graphdex serve`, and like it this process is the index's only writer while it runs; to share an index between
    agents and the REST API, point the agents at the service's /mcp endpoint instead (see the README)."""
    from graphdex.api.mcp_server import stdio_mcp_server

    settings = _settings()
    layout = Layout(settings)
    if not layout.exists(workspace_name):
        raise unknown(workspace_name)
    try:
        stdio_mcp_server(settings, workspace_name).run("stdio")
    except* StoreError as group:  # the index cannot be opened (locked by another writer, Neo4j unreachable)
        _fail("; ".join(str(error) for error in group.exceptions))


@app.command()
def demo(questions: int = typer.Option(len(SAMPLE_QUESTIONS), "--questions", "-n", min=1, max=len(SAMPLE_QUESTIONS),
                                       help="How many sample questions to answer."),
         mode: str = typer.Option(DEFAULT_MODE, "--mode", "-m", help=f"Retrieval mode: {', '.join(MODES)}."), workspace_name: str = WORKSPACE_OPTION) -> None:
    """Index the bundled sample corpus (if the index is empty) and answer sample questions."""
    index = _index(workspace_name)
    try:
        if index.document_count() == 0:
            err.print(f"indexing the sample corpus ({SAMPLE_CORPUS.name}) into {index.workspace.data_dir} ...")
            print_report(_run_ingest(index, list(load_paths([SAMPLE_CORPUS]))))
        for question in SAMPLE_QUESTIONS[:questions]:
            result = index.retrieve(question, mode, 3)
            print_result(result)
            if result.chunks:
                best = result.chunks[0]
                console.print(f"[bold]best evidence[/] [{best.title}]: {best.text}\n")
        err.print("next: `graphdex serve`, then open http://127.0.0.1:8000/ui/ to add documents, ask and explore the graph in a browser")
    finally:
        index.close()


workspace_app = typer.Typer(help="Workspaces: isolated indexes in one data directory (or one Neo4j database), each with its own graph, "
                            "vectors and queue. The default workspace is the data directory itself.", no_args_is_help=True)
app.add_typer(workspace_app, name="workspace")


@workspace_app.command("create")
def workspace_create(name: str = typer.Argument(..., help="1 to 63 lowercase letters, digits, '-' and '_'.")) -> None:
    """Create an empty workspace; then use it with --workspace NAME, or over HTTP at /workspaces/NAME/..."""
    layout = Layout(_settings())
    create_workspace(layout, name)
    console.print(f"created workspace {name}")


@workspace_app.command("list")
def workspace_list(json_output: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Every workspace, with its number of documents."""
    layout = Layout(_settings())
    rows: list[dict[str, Any]] = []
    for name in layout.names():
        index = Index(Workspace(layout.settings_for(name)))
        try:
            rows.append({"name": name, "documents": index.document_count()})
        except StoreError as error:
            _fail(str(error))
        finally:
            index.close()
    if json_output:
        console.print_json(json.dumps({"workspaces": rows}))
        return
    table = Table(title=f"workspaces of {layout.data_dir}")
    table.add_column("workspace")
    table.add_column("documents", justify="right")
    for row in rows:
        table.add_row(row["name"], str(row["documents"]))
    console.print(table)


@workspace_app.command("delete")
def workspace_delete(name: str = typer.Argument(..., help="The workspace to delete, with all its documents."),
                     yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation.")) -> None:
    """Delete a workspace with its graph, vectors and queue (refused while a service or an ingest is writing to it)."""
    layout = Layout(_settings())
    if not yes:
        typer.confirm(f"delete workspace {name} and every document in it?", abort=True)
    delete_workspace(layout, name)
    console.print(f"deleted workspace {name}")


def run() -> NoReturn:
    """The `graphdex` console script. A read-only command (query, stats) ends the process as soon as its output is
    written, skipping the interpreter's teardown: freeing the models, the index's arrays and some 1,400 modules took
    about 0.35 s of a fresh `graphdex query`, after the answer was on screen. Every other command ends normally, its
    threads joined and exit handlers run, as a writer must."""
    code: str | int | None = 0
    try:
        app()
    except SystemExit as stop:
        code = stop.code
    if not (_state["read_only"] and (code is None or isinstance(code, int))):
        sys.exit(code)
    logging.shutdown()
    with contextlib.suppress(BrokenPipeError):  # `graphdex query ... | head` closed its end early: nothing to say
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code or 0)


if __name__ == "__main__":
    run()
