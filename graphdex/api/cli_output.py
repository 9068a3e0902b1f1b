"""What the CLI prints: ingest summaries, what a folder walk skipped, ranked results. Its two consoles are the CLI's
(``console`` for results on stdout, ``err`` for progress and problems on stderr)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from graphdex.ingest.documents import FileScan
from graphdex.query.results import QueryResult

if TYPE_CHECKING:  # the ingest path's modules are imported by the commands that write
    from graphdex.ingest.pipeline import IngestReport

console = Console()
err = Console(stderr=True, soft_wrap=True)


def print_report(report: IngestReport, files: FileScan | None = None, unreadable: Sequence[str] = ()) -> None:
    table = Table(title="ingest summary", show_header=False)
    read = () if files is None else (("files read", len(files.files) - len(unreadable)), ("files not readable", len(unreadable)),
                                     ("files skipped in folders", len(files.skipped)))
    for label, value in (
        *read,
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
        err.print(f"[yellow]skipped[/] {escape(source)}: {escape(reason)}")
    if files is not None:
        print_skipped(files.skipped)
    for problem in unreadable:
        err.print(f"[red]not indexed[/] {escape(problem)}")


# Names listed per reason for what a folder walk skipped: a folder of 5,000 images is one line, not 5,000.
_SKIPPED_NAMES_SHOWN = 5


def print_skipped(skipped: list[tuple[Path, str]]) -> None:
    by_reason: dict[str, list[Path]] = {}
    for path, reason in skipped:
        by_reason.setdefault(reason, []).append(path)
    for reason, found in by_reason.items():
        names = ", ".join(str(p) for p in found[:_SKIPPED_NAMES_SHOWN])
        more = f" and {len(found) - _SKIPPED_NAMES_SHOWN:,} more" if len(found) > _SKIPPED_NAMES_SHOWN else ""
        err.print(f"[dim]skipped {len(found):,} ({escape(reason)}): {escape(names)}{more}[/]")


def print_result(result: QueryResult) -> None:
    table = Table(title=f"{result.mode} retrieval for: {result.query}  ({result.seconds * 1000:.0f} ms)")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("source")
    table.add_column("text", overflow="fold")
    for rank, hit in enumerate(result.chunks, start=1):
        text = hit.text if len(hit.text) <= 300 else hit.text[:297] + "..."
        where = f"\n{escape(hit.location())}" if hit.location() else ""
        table.add_row(str(rank), f"{hit.score:.3f}", f"{escape(hit.title)}{where}\n[dim]{hit.chunk_id}[/]", text)
    console.print(table)
    if result.nodes:
        nodes = Table(title="graph nodes", show_lines=False)
        for column in ("score", "type", "name", "cited chunks"):
            nodes.add_column(column)
        for node in result.nodes:
            nodes.add_row(f"{node.score:.3f}", node.type, node.name, ", ".join(node.chunks[:3]))
        console.print(nodes)
