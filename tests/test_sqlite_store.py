"""What only the embedded store promises: writes append to SQLite's log instead of rewriting the graph, and an index
written in another graph schema is refused."""

import json
import sqlite3

import pytest

from graphdex.graph.model import Node, NodeType
from graphdex.graph.read_ahead import read_ahead
from graphdex.graph.sqlite_store import SqliteGraphStore
from graphdex.graph.store import StoreError


def entity(node_id: str, name: str, chunks: list[str]) -> Node:
    return Node(node_id, NodeType.ENTITY, {"name": name, "aliases": [name]}, {c: {"names": {name: 1}, "types": {"PERSON": 1}, "sentence": ""} for c in chunks})


def test_writes_are_incremental_not_a_rewrite(tmp_path):
    store = SqliteGraphStore(tmp_path)
    store.write([entity(f"e{i}", f"N{i}", ["c"]) for i in range(20_000)])
    db = tmp_path / "graph.sqlite"
    sqlite3.connect(db).execute("PRAGMA wal_checkpoint(TRUNCATE)")
    database_bytes = db.stat().st_size
    store.write([entity("extra", "Extra", ["d"])])
    wal_bytes = (tmp_path / "graph.sqlite-wal").stat().st_size
    # one small transaction appends a few pages to the write-ahead log instead of rewriting the whole graph
    assert 0 < wal_bytes < database_bytes / 10


def test_an_index_of_another_graph_schema_is_refused_with_what_to_do(tmp_path):
    SqliteGraphStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / "graph.sqlite")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="graph schema 1.*re-index your documents into a new GRAPHDEX_DATA_DIR"):
        SqliteGraphStore(tmp_path)


FRESH_QUERY = """
import json, sys
from graphdex.api.workspace import Workspace
from graphdex.common.settings import Settings

def bytes_read():
    return int(next(line for line in open("/proc/self/io") if line.startswith("rchar")).split()[1])

workspace = Workspace(Settings(data_dir=sys.argv[1]))
workspace.warm()  # the models and every vector index are loaded before counting
engine = workspace.engine
engine.embedder.embed(["the models are loaded before counting"])
engine.analyzer.analyze("the models are loaded before counting")
import scipy.sparse  # a walk step over most of this small graph's columns imports SciPy: reading its files is no graph read
before = bytes_read()
result = engine.retrieve(sys.argv[2], "graph", 5)
print(json.dumps({"read": bytes_read() - before, "titles": [hit.title for hit in result.chunks]}))
"""


@pytest.mark.e2e
def test_a_fresh_process_answers_a_query_reading_a_small_part_of_the_graph(make_workspace, sample_records, tmp_path):
    """The embedded store is read by what a query needs: a fresh process (models and vectors loaded first) answers a
    graph-mode query reading only part of the graph file (the earlier design read all of it at open). On this small
    index (~1,000 pages) one query touches about a fifth of the pages: the rows of the entities it names, their edges,
    and the chunks it returns; what it reads grows with those, not with the index."""
    import subprocess
    import sys

    from tests.conftest import FILM_DOCS, as_documents

    workspace = make_workspace()
    workspace.indexer.ingest(FILM_DOCS + as_documents(sample_records[:150]))
    workspace.close()
    graph = workspace.settings.data_dir / "graph"
    size = sum(f.stat().st_size for f in graph.glob("graph.sqlite*"))
    done = subprocess.run([sys.executable, "-c", FRESH_QUERY, str(workspace.settings.data_dir), "Who directed The Harbor Lights?"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"The Harbor Lights", "Maria Kessler"} & set(result["titles"][:2])
    assert 0 < result["read"] < 0.3 * size, f"read {result['read']:,} bytes of a {size:,}-byte graph"


def test_entity_search_scans_the_name_index_not_every_row(tmp_path):
    """Only entities have search names, kept in a partial index: a search reads it, not the table (whose rows carry
    every node's properties), which at 10x is about 1 s against 50-80 ms."""
    from graphdex.graph.sqlite_store import FIND_ENTITIES

    store = SqliteGraphStore(tmp_path)
    store.write([Node("e1", NodeType.ENTITY, {"name": "Lake Bled", "aliases": ["Blejsko jezero"]}, {}),
                 Node("c1", NodeType.CHUNK, {"text": "Lake Bled lies in the Julian Alps.", "document_id": "d1"}, {})], [])
    plan = " ".join(str(row[-1]) for row in store._reader().execute("EXPLAIN QUERY PLAN " + FIND_ENTITIES, ("bled", 5)))
    assert "USING INDEX nodes_by_names" in plan and "SCAN nodes" not in plan, plan
    assert [n.id for n in store.find_entities("jezero")] == ["e1"] and store.find_entities("julian") == []


def test_read_ahead_reads_a_file_to_its_end_only_within_its_budget(tmp_path):
    path = tmp_path / "graph.sqlite"
    path.write_bytes(bytes(range(256)) * (3 * 4096 + 7))  # several blocks and a partial one
    assert read_ahead(path, budget=path.stat().st_size) == path.stat().st_size
    assert read_ahead(path, budget=path.stat().st_size - 1) == 0  # larger than the free memory allows: left alone
    assert read_ahead(tmp_path / "moved-away.sqlite", budget=1 << 30) == 0
