"""The litellm path end to end against a stand-in OpenAI-compatible server on loopback (tests/llm_standin.py):
extraction (JSON, fenced, prose-wrapped, delimited, cut off, refused), gleaning, retries on 429 and timeouts,
description summaries, the response cache, LLM query keywords, cited and streamed answers, and litellm embeddings."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from graphdex.api.app import create_app
from graphdex.api.cli import app as cli
from graphdex.common.embedder import LiteLLMEmbedder
from graphdex.common.ids import document_id, entity_id
from graphdex.common.resolution import normalize_key
from graphdex.graph.model import NodeType
from graphdex.ingest.documents import SourceDocument
from tests.conftest import FILM_DOCS
from tests.llm_standin import EMBEDDING_DIM, StandInModel

EXTRA_DOCS = [
    SourceDocument("notes/lighthouse.md", "Old Lighthouse", "The Old Lighthouse stands on Cape Ferro. It was built by the engineer Paolo Ruiz in 1872."),
    SourceDocument("notes/minutes.md", "Minutes", "Page 3 of the committee minutes is water-damaged and cannot be read."),
]
QUESTION = "Where was the director of The Harbor Lights born?"


@pytest.fixture
def standin():
    with StandInModel() as model:
        yield model


def llm_settings(standin: StandInModel) -> dict:
    return {"extractor": "llm", "llm_model": "openai/standin-gpt-4o-mini", "llm_api_base": standin.api_base, "llm_api_key": "sk-standin",
            "llm_timeout": 1.5, "llm_max_retries": 3, "llm_gleaning": 1, "llm_summary_threshold": 2, "llm_concurrency": 3}


def entity(workspace, name: str):
    return workspace.store.get_nodes([entity_id(normalize_key(name))]).get(entity_id(normalize_key(name)))


def test_llm_extraction_builds_the_graph_and_survives_bad_answers(make_workspace, standin):
    workspace = make_workspace("llm", **llm_settings(standin))
    report = workspace.indexer.ingest(FILM_DOCS + EXTRA_DOCS)
    assert standin.unmatched == [], "every prompt graphdex sent has a recording"
    assert report.documents_added == 6

    harbor, kessler = entity(workspace, "The Harbor Lights"), entity(workspace, "Maria Kessler")
    assert harbor.props["type"] == "WORK" and kessler.props["type"] == "PERSON"
    # three chunks describe Kessler: past the threshold of 2, the model's summary replaces the joined sentences
    assert kessler.props["description"].startswith("Maria Kessler (1899-1968) was a German film director")
    relations = {(r.props["source_name"], r.props["label"], r.props["target_name"]) for r in workspace.store.iter_nodes(NodeType.RELATION)}
    assert ("Harbor Lights", "directed by", "Maria Kessler") in relations or ("The Harbor Lights", "directed by", "Maria Kessler") in relations
    assert ("Tom Brandt", "worked with", "Maria Kessler") in relations  # from the delimited fallback format
    assert ("Maria Kessler", "born in", "Leipzig") in relations  # from JSON wrapped in prose, with trailing commas
    assert entity(workspace, "fisherman") is not None  # found by the gleaning pass
    strengths = [r.props.get("strength") for r in workspace.store.iter_nodes(NodeType.RELATION)]
    assert all(isinstance(s, float) and 1 <= s <= 10 for s in strengths)

    # a cut-off answer keeps its complete records and marks the chunk; a refusal keeps nothing and marks the chunk
    assert entity(workspace, "Cape Ferro") is not None and entity(workspace, "Paolo Ruiz") is None
    chunks = workspace.store.get_nodes([f"{document_id('notes/lighthouse.md')}:00000", f"{document_id('notes/minutes.md')}:00000"])
    problems = [c.props.get("extraction_problems") for c in chunks.values()]
    assert sorted(map(str, problems)) == sorted(map(str, [["partial model answer"], ["unparseable model answer"]]))
    assert report.problem_chunks == 2

    # one 429 and one timeout were retried; every call was paid for once
    assert standin.calls["extract-harbor"] == 2 and standin.calls["extract-who"] == 2
    assert report.llm_usage["retries"] == 2
    assert report.llm_usage["calls"] == sum(standin.calls.values()) - 2
    assert report.llm_usage["prompt_tokens"] > 0 and report.llm_usage["completion_tokens"] > 0


def test_cached_responses_are_not_paid_twice(make_workspace, standin):
    workspace = make_workspace("llm", **llm_settings(standin))
    workspace.indexer.ingest(FILM_DOCS)
    calls = sum(standin.calls.values())
    for doc in FILM_DOCS:
        workspace.maintenance.delete_document(doc.source)
    again = workspace.indexer.ingest(FILM_DOCS)
    assert sum(standin.calls.values()) == calls, "re-extracting the same chunks must come from the cache"
    assert again.llm_usage["calls"] == 0 and again.llm_usage["cached"] >= len(FILM_DOCS)


def test_keywords_and_cited_answer(make_workspace, standin):
    workspace = make_workspace("llm", **llm_settings(standin))
    workspace.indexer.ingest(FILM_DOCS)
    result = workspace.engine.retrieve(QUESTION, "graph", 5)
    assert result.keywords["low_level"] == ["The Harbor Lights", "director"]
    assert result.keywords["high_level"] == ["film director", "birthplace"]
    keywords_format = standin.response_formats["keywords-harbor"]
    assert keywords_format["type"] == "json_schema" and set(keywords_format["json_schema"]["schema"]["required"]) == {"low_level", "high_level"}
    answer = workspace.answerer.answer(QUESTION, result.chunks)
    assert "born in Leipzig on 4 May 1899 [2]" in answer.text
    # [1] and [2] map to the first two results; [9] is not a source and is dropped
    assert [(c.number, c.chunk_id) for c in answer.citations] == [(1, result.chunks[0].chunk_id), (2, result.chunks[1].chunk_id)]


def test_api_answers_and_streams(make_workspace, standin):
    workspace = make_workspace("llm", **llm_settings(standin))
    workspace.indexer.ingest(FILM_DOCS)
    with TestClient(create_app(workspace=workspace)) as client:
        body = client.post("/query", json={"query": QUESTION, "mode": "graph", "top_k": 5}).json()
        assert body["answer"].startswith("The Harbor Lights was directed by Maria Kessler [1]")
        assert [c["chunk_id"] for c in body["citations"]] == [r["chunk_id"] for r in body["results"][:2]]
        assert body["llm_usage"]["calls"] + body["llm_usage"]["cached"] == 2  # keywords + answer
        with client.stream("POST", "/query/stream", json={"query": QUESTION, "mode": "graph", "top_k": 5}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = [block for block in response.read().decode().split("\n\n") if block.strip()]
    names = [block.split("\n")[0].removeprefix("event: ") for block in events]
    assert names[0] == "context" and names[-1] == "done" and names.count("token") >= 1
    done = json.loads(events[-1].split("data: ", 1)[1])
    assert done["answer"] == body["answer"] and len(done["citations"]) == 2


@pytest.mark.e2e
def test_cli_ingest_and_query_with_answer(tmp_path, standin, monkeypatch):
    for key, value in llm_settings(standin).items():
        monkeypatch.setenv(f"GRAPHDEX_{key.upper()}", str(value))
    monkeypatch.setenv("GRAPHDEX_EXTRACT_WORKERS", "0")
    corpus = tmp_path / "films.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.source, "title": d.title, "text": d.text}) + "\n" for d in FILM_DOCS))
    runner = CliRunner()
    ingested = runner.invoke(cli, ["--data-dir", str(tmp_path / "data"), "ingest", str(corpus)])
    assert ingested.exit_code == 0, ingested.output
    assert "model:" in ingested.output and "tokens per chunk" in ingested.output
    answered = runner.invoke(cli, ["--data-dir", str(tmp_path / "data"), "query", QUESTION, "--mode", "graph", "--answer"])
    assert answered.exit_code == 0, answered.output
    assert "born in Leipzig" in answered.output and "[1]" in answered.output


def test_answers_without_a_model_fail_clearly(make_workspace):
    workspace = make_workspace("plain")
    workspace.indexer.ingest(FILM_DOCS)
    with TestClient(create_app(workspace=workspace)) as client:
        assert client.post("/query", json={"query": QUESTION}).json()["answer"] is None
        refused = client.post("/query", json={"query": QUESTION, "answer": True})
        assert refused.status_code == 422 and "GRAPHDEX_LLM_MODEL" in refused.text
        assert client.post("/query/stream", json={"query": QUESTION}).status_code == 422


def test_litellm_embedder_over_http(standin):
    embedder = LiteLLMEmbedder("openai/standin-embed", batch_size=2, api_base=standin.api_base, api_key="sk-standin")
    assert embedder.dim == EMBEDDING_DIM
    vectors = embedder.embed(["Lake Bled", "Ljubljana", "lake bled"])
    assert vectors.shape == (3, EMBEDDING_DIM)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors[0], vectors[2], atol=1e-6) and not np.allclose(vectors[0], vectors[1])
    assert standin.embedding_calls == 3  # one probe for the dimension, then two batches of at most two texts


def test_json_answers_cite_only_sources_of_the_context(make_workspace, standin):
    workspace = make_workspace("llm", **llm_settings(standin), llm_answer_format="json")
    workspace.indexer.ingest(FILM_DOCS)
    with TestClient(create_app(workspace=workspace)) as client:
        with client.stream("POST", "/query/stream", json={"query": QUESTION, "mode": "graph", "top_k": 5}) as response:
            events = [block for block in response.read().decode().split("\n\n") if block.strip()]
        body = client.post("/query", json={"query": QUESTION, "mode": "graph", "top_k": 5}).json()  # the cached answer
    # the schema went to the server with the context's source numbers as the only allowed ones
    schema = standin.response_formats["answer-harbor-json"]["json_schema"]["schema"]
    assert schema["properties"]["statements"]["items"]["properties"]["sources"]["items"]["enum"] == list(range(1, len(body["results"]) + 1))
    # read back as prose with [n]; 9 is not a source; the statement the token limit cut keeps its words, uncited
    assert body["answer"] == ("The Harbor Lights was directed by Maria Kessler. [1] She was born in Leipzig on 4 May 1899. [2] "
                              "Her later fi")
    assert [c["chunk_id"] for c in body["citations"]] == [r["chunk_id"] for r in body["results"][:2]]
    tokens = [json.loads(block.split("data: ", 1)[1])["text"] for block in events if block.startswith("event: token")]
    done = json.loads(events[-1].split("data: ", 1)[1])
    assert len(tokens) > 3 and "".join(tokens) == done["answer"] == body["answer"]
    assert [c["number"] for c in done["citations"]] == [1, 2]


def test_answers_with_raw_line_breaks_in_their_strings_are_read():
    # JSON wants a line break inside a string escaped; small models (and llama-cpp-python's grammar) write it raw, and
    # reading strictly kept nothing of the local Gemma model's answers (issue 23)
    from graphdex.ingest.llm_extractor import parse_extraction

    record = '{"name": "Tom Brandt", "type": "PERSON", "description": "A fisherman.\nHe loses\tHis boat."}'
    whole = parse_extraction('{"entities": [' + record + '], "relations": []}')
    assert whole == {"entities": [json.loads(record, strict=False)], "relations": []}
    assert whole["entities"][0]["description"] == "A fisherman.\nHe loses\tHis boat."
    cut = parse_extraction('{"entities": [' + record + ', {"name": "Maria Kessler", "type": "PERSON", "descr')
    assert cut is not None and cut["partial"] and [e["name"] for e in cut["entities"]] == ["Tom Brandt"]
