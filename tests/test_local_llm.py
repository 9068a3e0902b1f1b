"""A real model through the real path: Gemma 3 270M served by scripts/local-llm.sh (llama-cpp-python), wired as any
OpenAI-compatible server (GRAPHDEX_LLM_MODEL=openai/..., GRAPHDEX_LLM_API_BASE), extracting entities from a few short
documents, picking query keywords and streaming a cited answer over the REST API.

A 270M base model is weak, so the test asserts what graphdex must guarantee whatever the model writes: no chunk is
lost, every failure is one of the known kinds and counted on its chunk, entities come from the model (spaCy only for
a chunk the model gave nothing for), keywords come back, and a streamed answer (JSON statements under a schema, read
back as prose) ends with citations the model chose from the context. Run alone with `make test-local-llm`.
"""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from graphdex.api.app import create_app
from graphdex.graph.model import EdgeType, NodeType
from tests.conftest import FILM_DOCS

QUESTION = "Where was the director of The Harbor Lights born?"
KNOWN_PROBLEMS = ("partial model answer", "off-schema model answer", "names not in the passage dropped", "unparseable model answer",
                  "empty model answer", "model call failed", "extracted by spaCy instead")
KEYWORD_FALLBACKS = ("model call failed", "its low-level keywords are not in the question", "no usable keywords in the model's answer")


def local_settings(api_base: str) -> dict:
    return {"extractor": "llm", "llm_model": "openai/gemma-3-270m", "llm_api_base": api_base, "llm_api_key": "local", "llm_concurrency": 1,
            "llm_max_tokens": 256, "llm_timeout": 240, "llm_max_retries": 1, "llm_extraction_fallback": "spacy", "llm_answer_format": "json"}


def test_real_model_extracts_picks_keywords_and_streams_a_cited_answer(make_workspace, local_llm_server):
    workspace = make_workspace("local-llm", **local_settings(local_llm_server))
    documents = FILM_DOCS[:3]
    report = workspace.indexer.ingest(documents)

    # no chunk lost: every chunk is stored, and each one was sent to the model once
    chunks = list(workspace.store.iter_nodes(NodeType.CHUNK))
    assert report.documents_added == len(documents) and report.failed == []
    assert len(chunks) == report.chunks == len(documents)
    assert report.llm_usage["calls"] == report.chunks and report.llm_usage["completion_tokens"] > 0

    # every problem is a known kind, and counted: the report's problem chunks are the marked ones
    problems = {c.id: c.props.get("extraction_problems") or [] for c in chunks}
    assert all(p.startswith(KNOWN_PROBLEMS) for found in problems.values() for p in found), problems
    assert report.problem_chunks == sum(1 for found in problems.values() if found)

    # entities: from the model, unless the model gave nothing for the chunk (then spaCy's, and the chunk says so)
    from_model = [cid for cid, found in problems.items() if "extracted by spaCy instead" not in found]
    assert from_model, f"the model gave nothing usable for any chunk: {problems}"
    mentions = workspace.store.edges_of_many(problems, [EdgeType.MENTIONS])
    assert all(mentions.get(cid) for cid in problems), "every chunk mentions at least one entity"

    # keywords come back: the model's, or spaCy's with the reason the model's were unusable
    keywords = workspace.engine.analyzer.analyze(QUESTION)
    assert keywords.low_level or keywords.high_level
    assert keywords.source == "llm" or keywords.fallback_reason in KEYWORD_FALLBACKS, keywords

    # a streamed answer over the REST API: context, tokens as the model writes them, then the answer and its citations
    with TestClient(create_app(workspace=workspace)) as client:
        with client.stream("POST", "/query/stream", json={"query": QUESTION, "mode": "graph", "top_k": 3}) as response:
            assert response.status_code == 200
            events = [block for block in response.read().decode().split("\n\n") if block.strip()]
    names = [block.split("\n")[0].removeprefix("event: ") for block in events]
    assert names[0] == "context" and names[-1] == "done" and names.count("token") >= 1, names
    context = json.loads(events[0].split("data: ", 1)[1])["results"]
    done = json.loads(events[-1].split("data: ", 1)[1])
    tokens = "".join(json.loads(block.split("data: ", 1)[1])["text"] for block in events if block.startswith("event: token"))
    assert done["answer"].strip() and tokens == done["answer"]
    # JSON answers (the schema held by the server's grammar): the model chose its sources among the context's, and
    # the prose shows them as [n]
    context_ids = [r["chunk_id"] for r in context]
    assert done["citations"], done["answer"]
    assert all(c["chunk_id"] == context_ids[c["number"] - 1] and f"[{c['number']}]" in done["answer"] for c in done["citations"])
    assert not done["answer"].lstrip().startswith("{"), "the answer reads as prose, not JSON"
