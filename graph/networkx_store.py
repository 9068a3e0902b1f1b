"""The embedded graph store: a networkx graph in memory, persisted in SQLite on local disk.

Why SQLite under networkx: each write is one small transaction (WAL journal), so adding documents costs in proportion
to what changed instead of rewriting a whole graph file, and a crash mid-write leaves the previous consistent state.
The whole graph is loaded into networkx at open, which is what makes traversal and projection fast.
"""

from __future__ import annotations

import fcntl
import json
import logging
import sqlite3
import sys
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import networkx as nx

from graphdex.graph.model import EDGE_ENDS, GRAPH_SCHEMA_VERSION, Edge, EdgeKey, EdgeType, Node, NodeType
from graphdex.graph.store import StoreError
from graphdex.graph.vectors import VectorChanges

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (id TEXT PRIMARY KEY, type TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS edges (source TEXT NOT NULL, type TEXT NOT NULL, target TEXT NOT NULL, data TEXT NOT NULL,
                                  PRIMARY KEY (source, type, target));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _shared_keys(pairs: list[tuple[str, object]]) -> dict:
    """A decoded JSON object whose keys are shared strings: ``json.loads`` makes a new string for every key of every
    row, and the same few property names and chunk ids repeat over millions of rows."""
    return {sys.intern(key): value for key, value in pairs}


def _load_payload(data: str) -> dict:
    return json.loads(data, object_pairs_hook=_shared_keys)


def _dump(props: dict, contrib: dict) -> str:
    return json.dumps({"p": props, "c": contrib}, ensure_ascii=False, separators=(",", ":"))


class NetworkxGraphStore:
    """GraphStore kept in a networkx MultiDiGraph (edge key = edge type) and mirrored to ``<dir>/graph.sqlite``."""

    def __init__(self, directory: Path) -> None:
        self._dir = Path(directory)
        self._dir.mkdir(parents=True, exist_ok=True)
        self._path = self._dir / "graph.sqlite"
        try:
            self._db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as error:
            raise StoreError(f"cannot open the embedded graph at {self._path}: {error}. Move the file away to start afresh.") from error
        self._check_schema()
        self._graph = nx.MultiDiGraph()
        self._support_nodes: dict[str, set[str]] = defaultdict(set)
        self._support_edges: dict[str, set[EdgeKey]] = defaultdict(set)
        self._by_type: dict[str, set[str]] = defaultdict(set)
        self._version = 0
        self._lock_file = None
        self._load()

    def _check_schema(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(GRAPH_SCHEMA_VERSION),))
        elif int(row[0]) != GRAPH_SCHEMA_VERSION:
            raise StoreError(f"{self._path} was written by another graphdex version (graph schema {row[0]}; this one reads "
                             f"{GRAPH_SCHEMA_VERSION}): re-index your documents into a new GRAPHDEX_DATA_DIR")

    def _load(self) -> None:
        # ids are shared strings too: an edge's ends, the graph's adjacency keys and the support maps then hold one
        # string per node instead of a copy per row that names it (a built index shares them the same way)
        for node_id, type_, data in self._db.execute("SELECT id, type, data FROM nodes"):
            payload = _load_payload(data)
            self._put_node(Node(sys.intern(node_id), NodeType(type_), payload["p"], payload["c"]))
        for source, type_, target, data in self._db.execute("SELECT source, type, target, data FROM edges"):
            payload = _load_payload(data)
            self._put_edge(Edge(sys.intern(source), EdgeType(type_), sys.intern(target), payload["p"], payload["c"]))
        row = self._db.execute("SELECT value FROM meta WHERE key='version'").fetchone()
        self._version = int(row[0]) if row else 0
        log.debug("loaded %d nodes and %d edges from %s", self._graph.number_of_nodes(), self._graph.number_of_edges(), self._path)

    # in-memory bookkeeping -------------------------------------------------------------------------------------

    def _put_node(self, node: Node) -> None:
        old = self._graph.nodes[node.id]["node"] if node.id in self._graph else None
        if old is not None:
            for chunk in old.contrib:
                self._support_nodes[chunk].discard(node.id)
            if old.type != node.type:
                self._by_type[old.type].discard(node.id)
        self._graph.add_node(node.id, node=node)
        self._by_type[node.type].add(node.id)
        for chunk in node.contrib:
            self._support_nodes[chunk].add(node.id)

    def _put_edge(self, edge: Edge) -> None:
        if edge.source not in self._graph or edge.target not in self._graph:
            raise StoreError(f"edge {edge.key} refers to a node that does not exist")
        key = edge.key
        if self._graph.has_edge(edge.source, edge.target, key=key[1]):
            for chunk in self._graph.edges[edge.source, edge.target, key[1]]["edge"].contrib:
                self._support_edges[chunk].discard(key)
        self._graph.add_edge(edge.source, edge.target, key=key[1], edge=edge)
        for chunk in edge.contrib:
            self._support_edges[chunk].add(key)

    def _drop_edge(self, key: EdgeKey) -> bool:
        source, type_, target = key
        if not self._graph.has_edge(source, target, key=type_):
            return False
        for chunk in self._graph.edges[source, target, type_]["edge"].contrib:
            self._support_edges[chunk].discard(key)
        self._graph.remove_edge(source, target, key=type_)
        return True

    def _incident_keys(self, node_id: str) -> list[EdgeKey]:
        out = [(node_id, k, t) for _, t, k in self._graph.out_edges(node_id, keys=True)]
        out += [(s, k, node_id) for s, _, k in self._graph.in_edges(node_id, keys=True)]
        return out

    def _drop_node(self, node_id: str) -> list[EdgeKey]:
        if node_id not in self._graph:
            return []
        dropped = self._incident_keys(node_id)
        for key in dropped:
            self._drop_edge(key)
        node: Node = self._graph.nodes[node_id]["node"]
        for chunk in node.contrib:
            self._support_nodes[chunk].discard(node_id)
        self._by_type[node.type].discard(node_id)
        self._graph.remove_node(node_id)
        return dropped

    # GraphStore ------------------------------------------------------------------------------------------------

    def get_nodes(self, ids: Iterable[str]) -> dict[str, Node]:
        graph = self._graph
        return {i: graph.nodes[i]["node"] for i in ids if i in graph}

    def get_edges(self, keys: Iterable[EdgeKey]) -> dict[EdgeKey, Edge]:
        out = {}
        for source, type_, target in keys:
            if self._graph.has_edge(source, target, key=type_):
                out[(source, type_, target)] = self._graph.edges[source, target, type_]["edge"]
        return out

    def write(self, nodes: Sequence[Node] = (), edges: Sequence[Edge] = (), delete_nodes: Iterable[str] = (), delete_edges: Iterable[EdgeKey] = (),
              vectors: VectorChanges | None = None) -> None:
        if vectors:
            raise StoreError("the embedded store keeps no vectors: they live in the hnswlib indexes beside it")
        delete_nodes = list(delete_nodes)
        delete_edges = list(delete_edges)
        known = {n.id: n.type for n in nodes}
        graph = self._graph
        for edge in edges:
            ends = (known.get(edge.source) or (graph.nodes[edge.source]["node"].type if edge.source in graph else None),
                    known.get(edge.target) or (graph.nodes[edge.target]["node"].type if edge.target in graph else None))
            if None in ends:
                raise StoreError(f"edge {edge.key} refers to a node that is neither stored nor written")
            if ends != EDGE_ENDS[EdgeType(edge.type)]:
                expected = EDGE_ENDS[EdgeType(edge.type)]
                raise StoreError(f"edge {edge.key} joins {ends[0]} to {ends[1]}, but {edge.type} joins {expected[0]} to {expected[1]}")
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            edge_deletes = list(delete_edges)
            for node_id in delete_nodes:
                edge_deletes += self._incident_keys(node_id) if node_id in self._graph else []
            db.executemany("DELETE FROM edges WHERE source=? AND type=? AND target=?", edge_deletes)
            db.executemany("DELETE FROM nodes WHERE id=?", [(i,) for i in delete_nodes])
            db.executemany(
                "INSERT OR REPLACE INTO nodes (id, type, data) VALUES (?, ?, ?)",
                [(n.id, str(n.type), _dump(n.props, n.contrib)) for n in nodes],
            )
            db.executemany(
                "INSERT OR REPLACE INTO edges (source, type, target, data) VALUES (?, ?, ?, ?)",
                [(e.source, str(e.type), e.target, _dump(e.props, e.contrib)) for e in edges],
            )
            db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (str(self._version + 1),))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for key in delete_edges:
            self._drop_edge(key)
        for node_id in delete_nodes:
            self._drop_node(node_id)
        for node in nodes:
            self._put_node(node)
        for edge in edges:
            self._put_edge(edge)
        self._version += 1

    def supported_by(self, chunk_ids: Iterable[str]) -> tuple[set[str], set[EdgeKey]]:
        nodes: set[str] = set()
        edges: set[EdgeKey] = set()
        for chunk in chunk_ids:
            nodes |= self._support_nodes.get(chunk, set())
            edges |= self._support_edges.get(chunk, set())
        return nodes, edges

    def edges_of(self, node_id: str, types: Iterable[str] | None = None) -> list[Edge]:
        if node_id not in self._graph:
            return []
        wanted = set(types) if types is not None else None
        out = []
        for _, _, key, data in self._graph.out_edges(node_id, keys=True, data=True):
            if wanted is None or key in wanted:
                out.append(data["edge"])
        for _, _, key, data in self._graph.in_edges(node_id, keys=True, data=True):
            if wanted is None or key in wanted:
                out.append(data["edge"])
        return out

    def edges_of_many(self, node_ids: Iterable[str], types: Iterable[str] | None = None, contributions: bool = True) -> dict[str, list[Edge]]:
        types = list(types) if types is not None else None
        return {node_id: edges for node_id in dict.fromkeys(node_ids) if (edges := self.edges_of(node_id, types))}

    def node_ids(self, type_: NodeType) -> set[str]:
        return set(self._by_type.get(type_, set()))

    def iter_nodes(self, type_: NodeType) -> Iterator[Node]:
        graph = self._graph
        for node_id in sorted(self._by_type.get(type_, set())):
            yield graph.nodes[node_id]["node"]

    def iter_edges(self, types: Iterable[str] | None = None, contributions: bool = True) -> Iterator[Edge]:
        # in memory already: the edges are returned whole either way
        wanted = set(types) if types is not None else None
        for _, _, key, data in self._graph.edges(keys=True, data=True):
            if wanted is None or key in wanted:
                yield data["edge"]

    def total_support(self, edge_type: EdgeType) -> int:
        # through the out-edges of the nodes an edge of this type starts at: no pass over every edge of the graph
        key = str(EdgeType(edge_type))
        successors = self._graph.succ
        total = 0
        for source in self._by_type.get(EDGE_ENDS[EdgeType(edge_type)][0], ()):
            for keyed in successors[source].values():
                data = keyed.get(key)
                if data is not None:
                    edge: Edge = data["edge"]
                    total += int(edge.props.get("support") or len(edge.contrib))
        return total

    def find_entities(self, text: str, limit: int = 10) -> list[Node]:
        needle = text.casefold().strip()
        if not needle:
            return []
        hits = []
        for node in self.iter_nodes(NodeType.ENTITY):
            names = [node.props.get("name", "")] + list(node.props.get("aliases", []))
            if any(needle in name.casefold() for name in names):
                hits.append(node)
        hits.sort(key=lambda n: (len(n.props.get("name", "")), n.props.get("name", "")))
        return hits[:limit]

    def counts(self) -> dict[str, dict[str, int]]:
        edge_counts: dict[str, int] = defaultdict(int)
        for _, _, key in self._graph.edges(keys=True):
            edge_counts[key] += 1
        return {
            "nodes": {str(t): len(self._by_type.get(t, ())) for t in NodeType},
            "edges": {str(t): edge_counts.get(str(t), 0) for t in EdgeType},
        }

    @property
    def version(self) -> int:
        return self._version

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

    def close(self) -> None:
        self._db.close()
