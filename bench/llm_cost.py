"""Model calls and tokens per chunk (LLM extraction) and per query (keywords + answer).

By default it runs against the stand-in OpenAI-compatible server of the tests (tests/llm_standin.py, recorded
responses, loopback only), so the figure is reproducible anywhere; give --model/--api-base to measure a real model
on your own documents instead (that costs money: the response cache is used, so a second run is free).

    python bench/llm_cost.py --out bench/results/llm_cost.json
"""

from __future__ import annotations

import _checkout  # noqa: F401  # isort: skip  (first: this checkout's graphdex, not the installed one)

import argparse
import logging
import tempfile
from contextlib import nullcontext
from pathlib import Path

from graphdex.api.workspace import Workspace
from graphdex.common.llm import counting_usage
from graphdex.ingest.documents import load_paths
from harness import REPO, console, machine, print_table, scratch_settings, write_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="litellm model (default: the stand-in's)")
    parser.add_argument("--api-base", default=None, help="the model's API base URL (default: the stand-in, started here)")
    parser.add_argument("--documents", type=Path, nargs="*", default=None, help="files or folders to ingest (default: the stand-in's recorded documents)")
    parser.add_argument("--question", action="append", default=None, help="question(s) to answer (default: the stand-in's recorded one)")
    parser.add_argument("--gleaning", type=int, default=1, help="gleaning passes per chunk (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    import sys

    sys.path.insert(0, str(REPO))
    from tests.conftest import FILM_DOCS
    from tests.llm_standin import StandInModel
    from tests.test_llm import EXTRA_DOCS, QUESTION

    standin = StandInModel() if args.api_base is None else nullcontext()
    with standin as server, tempfile.TemporaryDirectory() as scratch:
        api_base = args.api_base or server.api_base
        settings = scratch_settings(Path(scratch), extractor="llm", llm_model=args.model or "openai/standin-gpt-4o-mini", llm_api_base=api_base,
                                    llm_api_key="sk-standin" if args.api_base is None else None, llm_gleaning=args.gleaning, extract_workers=0,
                                    llm_timeout=1.5 if args.api_base is None else 120)
        workspace = Workspace(settings)
        documents = list(load_paths(args.documents)) if args.documents else FILM_DOCS + EXTRA_DOCS
        report = workspace.indexer.ingest(documents)
        questions = args.question or [QUESTION]
        per_query = []
        for question in questions:
            with counting_usage() as usage:
                result = workspace.engine.retrieve(question, "graph", 5)
                workspace.answerer.answer(question, result.chunks)
            per_query.append(usage.snapshot())
        workspace.close()
    u = report.llm_usage
    chunks = max(report.chunks, 1)
    rows = [["ingest", report.chunks, u["calls"], u["cached"], u["retries"], u["prompt_tokens"], u["completion_tokens"],
             f"{u['calls'] / chunks:.2f} calls, {(u['prompt_tokens'] + u['completion_tokens']) / chunks:,.0f} tokens per chunk"]]
    for question, q in zip(questions, per_query):
        rows.append([f"query: {question[:40]}", "", q["calls"], q["cached"], q["retries"], q["prompt_tokens"], q["completion_tokens"],
                     f"{q['prompt_tokens'] + q['completion_tokens']:,} tokens per query"])
    print_table(f"Model cost, gleaning={args.gleaning}, model={settings.llm_model}",
                ["work", "chunks", "calls", "cached", "retries", "prompt tok", "completion tok", "per unit"], rows)
    write_json(args.out, {"benchmark": "llm_cost", "machine": machine(), "model": settings.llm_model, "gleaning": args.gleaning,
                          "ingest": {"chunks": report.chunks, **u, "problem_chunks": report.problem_chunks}, "queries": dict(zip(questions, per_query))})
    console.print("against the stand-in, token counts are the stand-in's estimate (1.3 per word), as a provider would report them")


if __name__ == "__main__":
    main()
