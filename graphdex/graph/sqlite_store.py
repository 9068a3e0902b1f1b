"""The embedded graph store: SQLite on local disk, read by what each call needs, never loaded whole.

Why: an index of millions of words would otherwise be read into memory at every open (a minute at 4M words, and
memory in proportion). Here opening costs a connection; a query reads the rows of the nodes and edges it visits
through indexes; the PageRank projection is memory-mapped (graph/sqlite_projection.py). Each write is one
transaction (WAL journal) that also updates the per-type counts, the support index and the projection columns it
touches, so a crash at any moment leaves the previous consistent state. Readers use a connection per thread and see
committed writes only; the single writer holds its own connection.
"""

from __future__ import annotations

import fcntl
import logging
import sqlite3
import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import orjson

from graphdex.graph.model import EDGE_ENDS, GRAPH_SCHEMA_VERSION, Edge, EdgeKey, EdgeType, Node, NodeType
from graphdex.graph.projection import GraphProjection
from graphdex.graph.read_ahead import read_ahead_in_background
from graphdex.graph.sqlite_projection import ProjectionFiles
from graphdex.graph.sqlite_schema import CHANGE_LOG_VERSIONS, IN_JSON, LAYOUT_VERSION, SCHEMA, dump
from graphdex.graph.sqlite_write import WriteTransaction
from graphdex.graph.store import ChangeSet, StoreError
from graphdex.graph.vectors import VectorChanges

log = logging.getLogger(__name__)

_EDGE_COLUMNS = "a.id, e.type, b.id, e.props, {summary}, {contrib} FROM edges e JOIN nodes a ON a.row = e.src JOIN nodes b ON b.row = e.dst"
#: An element's contributions as one JSON object, gathered from its support rows (by the index on the element).
_NODE_CONTRIB = "(SELECT json_group_object(s.chunk, json(s.part)) FROM node_support s WHERE s.node = n.row)"
_EDGE_CONTRIB = "(SELECT json_group_object(s.chunk, json(s.part)) FROM edge_support s WHERE s.src = e.src AND s.type = e.type AND s.dst = e.dst)"


def _edge_columns(contributions: bool) -> str:
    """Edges read in bulk: without contributions, without the summary too (see ``GraphStore.edges_of_many``)."""
    if contributions:
        return _EDGE_COLUMNS.format(summary="e.summary", contrib=_EDGE_CONTRIB)
    return _EDGE_COLUMNS.format(summary="'{}'", contrib="'{}'")



#: Entity search: only entities have ``names``, so the scan reads the partial index on it, not every row; the
#: shortest names first (SQLite's length counts characters, and its binary order of UTF-8 is code point order).
FIND_ENTITIES = ("SELECT id, json_extract(props, '$.name') AS name FROM nodes WHERE names IS NOT NULL AND instr(names, ?) > 0 "
                 "ORDER BY length(coalesce(name, '')), coalesce(name, ''), id LIMIT ?")

class SqliteGraphStore:
    """GraphStore in ``<dir>/graph.sqlite``, with its projection under ``<dir>/projection``."""

    def __init__(self, directory: Path) -> None:
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._path = self._dir / "graph.sqlite"
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._write_lock = threading.Lock()
        try:
            self._writer = self._connect()
            self._check_layout()
            self._writer.executescript(SCHEMA)
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot open the embedded graph at {self._path}: {error}. Move the file away to start afresh.") from error
        self._check_schema()
        self._projection = ProjectionFiles(self._dir, self._reader)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        return db

    def _reader(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._connect()
            db.execute("PRAGMA query_only=1")
            self._local.db = db
            with self._readers_lock:
                self._readers.append(db)
        return db

    def _check_layout(self) -> None:
        columns = {row[1] for row in self._writer.execute("PRAGMA table_info(nodes)")}
        if columns and "row" not in columns:
            raise StoreError(f"{self._path} was written by an earlier graphdex (embedded layout 1, loaded whole at every open; this one "
                             f"reads layout {LAYOUT_VERSION}): re-index your documents into a new GRAPHDEX_DATA_DIR")

    def _check_schema(self) -> None:
        row = self._writer.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._writer.executemany("INSERT INTO meta VALUES (?, ?)", [("schema_version", str(GRAPH_SCHEMA_VERSION)), ("layout", str(LAYOUT_VERSION))])
        elif int(row[0]) != GRAPH_SCHEMA_VERSION:
            raise StoreError(f"{self._path} was written by another graphdex version (graph schema {row[0]}; this one reads "
                             f"{GRAPH_SCHEMA_VERSION}): re-index your documents into a new GRAPHDEX_DATA_DIR")

    # reading ---------------------------------------------------------------------------------------------------

    def get_nodes(self, ids: Iterable[str], contributions: bool = True) -> dict[str, Node]:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        contrib = _NODE_CONTRIB if contributions else "'{}'"
        found = self._reader().execute(f"SELECT n.id, n.type, n.props, n.summary, {contrib} FROM nodes n WHERE n.id {IN_JSON}", (dump(ids),))
        return {node_id: Node(node_id, NodeType(type_), orjson.loads(props), orjson.loads(c), orjson.loads(summary))
                for node_id, type_, props, summary, c in found}

    def get_edges(self, keys: Iterable[EdgeKey], contributions: bool = True) -> dict[EdgeKey, Edge]:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        contrib = _EDGE_CONTRIB if contributions else "'{}'"
        found = self._reader().execute(
            f"SELECT a.id, e.type, b.id, e.props, e.summary, {contrib} FROM json_each(?) k "
            "JOIN nodes a ON a.id = json_extract(k.value, '$[0]') JOIN nodes b ON b.id = json_extract(k.value, '$[2]') "
            "JOIN edges e ON e.src = a.row AND e.type = json_extract(k.value, '$[1]') AND e.dst = b.row", (dump(keys),))
        return {(s, t, d): Edge(s, EdgeType(t), d, orjson.loads(p), orjson.loads(c), orjson.loads(m)) for s, t, d, p, m, c in found}

    def supported_by(self, chunk_ids: Iterable[str]) -> tuple[set[str], set[EdgeKey]]:
        chunks = dump(sorted(set(chunk_ids)))
        db = self._reader()
        nodes = {r[0] for r in db.execute(f"SELECT n.id FROM node_support s JOIN nodes n ON n.row = s.node WHERE s.chunk {IN_JSON}", (chunks,))}
        edges = {(a, t, b) for a, t, b in db.execute(
            "SELECT DISTINCT a.id, s.type, b.id FROM edge_support s JOIN nodes a ON a.row = s.src JOIN nodes b ON b.row = s.dst "
            f"WHERE s.chunk {IN_JSON}", (chunks,))}
        return nodes, edges

    def edges_of(self, node_id: str, types: Iterable[str] | None = None) -> list[Edge]:
        return self.edges_of_many([node_id], types).get(node_id, [])

    def edges_of_many(self, node_ids: Iterable[str], types: Iterable[str] | None = None, contributions: bool = True) -> dict[str, list[Edge]]:
        ids = dump(list(dict.fromkeys(node_ids)))
        wanted = dump([str(EdgeType(t)) for t in (types if types is not None else EdgeType)])
        columns = _edge_columns(contributions)
        found = self._reader().execute(
            f"WITH asked(row) AS (SELECT row FROM nodes WHERE id {IN_JSON}) "
            f"SELECT {columns} WHERE e.src IN asked AND e.type {IN_JSON} UNION ALL "
            f"SELECT {columns} WHERE e.dst IN asked AND e.src NOT IN asked AND e.type {IN_JSON}", (ids, wanted, wanted))
        asked = set(orjson.loads(ids))
        out: dict[str, list[Edge]] = defaultdict(list)
        for s, t, d, p, m, c in found:
            edge = Edge(s, EdgeType(t), d, orjson.loads(p), orjson.loads(c), orjson.loads(m))
            if s in asked:
                out[s].append(edge)
            if d in asked and d != s:
                out[d].append(edge)
        return dict(out)

    def documents_about(self, entity_ids: Iterable[str]) -> dict[str, list[str]]:
        found = self._reader().execute(f"SELECT about, id FROM nodes WHERE about {IN_JSON} ORDER BY id", (dump(list(entity_ids)),))
        out: dict[str, list[str]] = defaultdict(list)
        for entity, document in found:
            out[entity].append(document)
        return dict(out)

    def node_ids(self, type_: NodeType) -> set[str]:
        return {r[0] for r in self._reader().execute("SELECT id FROM nodes WHERE type = ?", (str(type_),))}

    def iter_nodes(self, type_: NodeType) -> Iterator[Node]:
        found = self._reader().execute(f"SELECT n.id, n.props, n.summary, {_NODE_CONTRIB} FROM nodes n WHERE n.type = ? ORDER BY n.id", (str(type_),))
        for node_id, props, summary, contrib in found:
            yield Node(node_id, NodeType(type_), orjson.loads(props), orjson.loads(contrib), orjson.loads(summary))

    def iter_edges(self, types: Iterable[str] | None = None, contributions: bool = True) -> Iterator[Edge]:
        wanted = dump([str(EdgeType(t)) for t in (types if types is not None else EdgeType)])
        for s, t, d, p, m, c in self._reader().execute(f"SELECT {_edge_columns(contributions)} WHERE e.type {IN_JSON}", (wanted,)):
            yield Edge(s, EdgeType(t), d, orjson.loads(p), orjson.loads(c), orjson.loads(m))

    def find_entities(self, text: str, limit: int = 10) -> list[Node]:
        needle = text.casefold().strip()
        if not needle:
            return []
        best = self._reader().execute(FIND_ENTITIES, (needle, limit)).fetchall()
        found = self.get_nodes((node_id for node_id, _ in best), contributions=False)
        return [found[node_id] for node_id, _ in best if node_id in found]

    def edge_weights(self, edge_type: EdgeType, node_ids: Iterable[str] | None = None, within: bool = False) -> list[tuple[str, str, int]]:
        joined = "FROM edges e JOIN nodes a ON a.row = e.src JOIN nodes b ON b.row = e.dst"
        db = self._reader()
        if node_ids is None:
            # every edge of the type: the ends' ids are read once per node, not once per edge, so the list holds one
            # string per node (a refresh from scratch reads a million edges at 10x: 220 -> 70 bytes an edge)
            type_ = EdgeType(edge_type)
            ends = {str(t) for t in EDGE_ENDS[type_]}
            names = dict(db.execute(f"SELECT row, id FROM nodes WHERE type {IN_JSON}", (dump(sorted(ends)),)))
            return [(names[s], names[t], w) for s, t, w in db.execute("SELECT src, dst, support FROM edges WHERE type = ?", (str(type_),))]
        asked = "WITH asked(row) AS (SELECT row FROM nodes WHERE id IN (SELECT value FROM json_each(?2))) "
        if within:
            # "+e.dst": a range scan of each asked node's edges, filtered by the other end; with the index on dst too,
            # SQLite looks up every pair of asked nodes instead (25M lookups for a core batch of 5,000: 8 s, not 0.04 s)
            return db.execute(f"{asked}SELECT a.id, b.id, e.support {joined} WHERE e.src IN asked AND e.type = ?1 AND +e.dst IN asked",
                              (str(EdgeType(edge_type)), dump(list(dict.fromkeys(node_ids))))).fetchall()
        return db.execute(
            f"{asked}"
            f"SELECT a.id, b.id, e.support {joined} WHERE e.src IN asked AND e.type = ?1 UNION ALL "
            f"SELECT a.id, b.id, e.support {joined} WHERE e.dst IN asked AND e.src NOT IN asked AND e.type = ?1",
            (str(EdgeType(edge_type)), dump(list(dict.fromkeys(node_ids))))).fetchall()

    def total_support(self, edge_type: EdgeType) -> int:
        """Kept up to date by every write (in ``counts``), so the community layer never sums every edge."""
        row = self._reader().execute("SELECT n FROM counts WHERE kind = 'support' AND type = ?", (str(EdgeType(edge_type)),)).fetchone()
        return int(row[0]) if row else 0

    def counts(self) -> dict[str, dict[str, int]]:
        stored = {(kind, type_): n for kind, type_, n in self._reader().execute("SELECT kind, type, n FROM counts")}
        return {"nodes": {str(t): stored.get(("node", str(t)), 0) for t in NodeType},
                "edges": {str(t): stored.get(("edge", str(t)), 0) for t in EdgeType}}

    @property
    def version(self) -> int:
        row = self._reader().execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return int(row[0]) if row else 0

    def changes_since(self, version: int) -> ChangeSet | None:
        db = self._reader()
        db.execute("BEGIN")
        try:
            current = self.version
            if current <= version:
                return ChangeSet(current, frozenset())
            first = db.execute("SELECT min(version) FROM changes WHERE version > ?", (version,)).fetchone()[0]
            if first is None or first > version + 1:
                return None
            logged = db.execute("SELECT nodes FROM changes WHERE version > ? AND version <= ?", (version, current))
            return ChangeSet(current, frozenset(i for (ids,) in logged for i in orjson.loads(ids)))
        finally:
            db.execute("COMMIT")

    def projection(self) -> GraphProjection:
        return self._projection.current()

    # writing ---------------------------------------------------------------------------------------------------

    def write(self, nodes: Sequence[Node] = (), edges: Sequence[Edge] = (), delete_nodes: Iterable[str] = (), delete_edges: Iterable[EdgeKey] = (),
              vectors: VectorChanges | None = None) -> None:
        if vectors:
            raise StoreError("the embedded store keeps no vectors: they live in the hnswlib indexes beside it")
        with self._write_lock:
            db = self._writer
            db.execute("BEGIN IMMEDIATE")
            try:
                version = int((db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone() or (0,))[0]) + 1
                change = WriteTransaction(db, list(nodes), list(edges), list(dict.fromkeys(delete_nodes)), list(delete_edges))
                touched = change.apply()
                self._projection.update(db, version, touched, change.changed_edges, whole=change.retyped)
                db.execute("INSERT OR REPLACE INTO changes VALUES (?, ?)", (version, dump(sorted(change.ids_of(touched)))))
                db.execute("DELETE FROM changes WHERE version <= ?", (version - CHANGE_LOG_VERSIONS,))
                db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (str(version),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    @contextmanager
    def lock(self) -> Iterator[None]:
        handle = open(self._dir / "writer.lock", "w")
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                raise StoreError(f"another graphdex process is writing to {self._dir}; wait for it to finish") from error
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def warm(self) -> None:
        read_ahead_in_background(self._path)

    def close(self) -> None:
        with self._readers_lock:
            for db in self._readers:
                db.close()
            self._readers.clear()
        self._writer.close()
