"""The Neo4j graph store: the system of record for real deployments, and what people browse in the Neo4j Browser.

Every node carries a label for its type (``:Document``, ``:Chunk``, ``:Entity``, ``:Relation``, ``:Community``) and
entities a second label for their kind (``:Person``, ``:Organization``...), so the Browser can colour and filter by
type. Relationship types are the edge types (``HAS_CHUNK``, ``MENTIONS``, ``RELATED_TO``...). Readable properties
(name, title, text, keywords...) sit on the elements for browsing and Cypher; the exact ``props`` and ``summary``
are kept as JSON strings so that reading an element back gives exactly what was written, as with the embedded store,
and the contributions as two lists in step: ``support_chunks`` (chunk ids) and ``contrib_parts`` (what each said, as
JSON), which a write extends on the server instead of sending back what a hub already has.

Several corpora can share one server: every element carries a ``workspace`` property, constraints are unique per
(workspace, id), and every query filters on it. All Cypher is parameterised; labels and relationship types, which
Cypher cannot take as parameters, come only from the fixed enums below, never from user input.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager

from graphdex.graph.model import EDGE_ENDS, GRAPH_SCHEMA_VERSION, Edge, EdgeKey, EdgeType, Node, NodeType, entity_label
from graphdex.graph.neo4j_cypher import (
    ALL_KINDS,
    SUPPORT,
    batches,
    find_node,
    readable_props,
    typed_edge,
    vector_params,
)
from graphdex.graph.neo4j_lease import LEASE_MILLISECONDS, WriterLease
from graphdex.graph.neo4j_session import Neo4jSession
from graphdex.graph.store import ChangeSet, StoreError
from graphdex.graph.vectors import VectorChanges

log = logging.getLogger(__name__)

#: How many versions back the change log reaches; a reader further behind reads the whole projection again.
CHANGE_LOG_VERSIONS = 1000
#: The label of the change log's nodes (one per write: its version and the ids of the nodes it touched).
CHANGE_LABEL = "GraphdexChange"


#: In a written element's upsert: the positions of the stored contributions it keeps (those of the chunks it does not
#: bring again), from its stored lists ``chunks`` and ``parts``.
_KEPT = "[i IN range(0, size(chunks) - 1) WHERE NOT chunks[i] IN row.chunks] AS kept"


def _element_columns(var: str, contributions: bool, summary: bool = True) -> str:
    """The summary and the contribution lists of the element ``var`` (each when asked), as ``summary``, ``chunks``, ``parts``."""
    lists = f"coalesce({var}.support_chunks, []) AS chunks, coalesce({var}.contrib_parts, []) AS parts" if contributions else "[] AS chunks, [] AS parts"
    kept = f"coalesce({var}.summary_json, '{{}}')" if summary else "'{}'"
    return f"{kept} AS summary, {lists}"


def _contrib(row) -> dict:
    return {chunk: json.loads(part) for chunk, part in zip(row["chunks"], row["parts"], strict=True)}


class Neo4jGraphStore:
    """GraphStore on a Neo4j 5 server (Community or Enterprise), over Bolt with the official driver."""

    def __init__(self, uri: str, user: str, password: str, database: str = "neo4j", workspace: str = "default") -> None:
        self.db = Neo4jSession(uri, user, password, database, workspace)  # the vector indexes on Neo4j share it
        self._workspace = workspace
        self._lease: str | None = None
        self._ensure_schema()
        self._check_schema_version(uri)

    def _ensure_schema(self) -> None:
        statements = [
            f"CREATE CONSTRAINT graphdex_{t.value.lower()}_id IF NOT EXISTS FOR (n:{t.value}) REQUIRE (n.workspace, n.id) IS UNIQUE"
            for t in NodeType
        ]
        statements += [
            "CREATE INDEX graphdex_entity_name IF NOT EXISTS FOR (n:Entity) ON (n.workspace, n.name)",
            "CREATE INDEX graphdex_document_about IF NOT EXISTS FOR (n:Document) ON (n.workspace, n.about)",
            f"CREATE INDEX graphdex_change IF NOT EXISTS FOR (c:{CHANGE_LABEL}) ON (c.workspace, c.version)",
            "CREATE CONSTRAINT graphdex_meta IF NOT EXISTS FOR (m:GraphdexMeta) REQUIRE m.workspace IS UNIQUE",
        ]
        with self.db.driver.session(database=self.db.database) as session:
            for statement in statements:
                session.run(statement).consume()

    @property
    def workspace(self) -> str:
        return self._workspace

    def writer(self) -> str | None:
        """Who holds the writer lease of this workspace ("host:pid:nonce"), if anyone: what a query replica names as
        the place to send writes to."""
        rows = self.db.read("MATCH (m:GraphdexMeta {workspace: $ws}) WHERE coalesce(m.writer_until, 0) >= timestamp() RETURN m.writer AS writer")
        return rows[0]["writer"] if rows else None

    def _check_schema_version(self, uri: str) -> None:
        """A workspace written by a graphdex that stored elements differently is refused, not misread."""
        rows = self.db.read("MATCH (m:GraphdexMeta {workspace: $ws}) WHERE m.version > 0 RETURN coalesce(m.schema_version, 1) AS schema")
        if rows and int(rows[0]["schema"]) != GRAPH_SCHEMA_VERSION:
            raise StoreError(f"workspace {self._workspace!r} on {uri} was written by another graphdex version (graph schema "
                             f"{rows[0]['schema']}; this one reads {GRAPH_SCHEMA_VERSION}): re-index into a new GRAPHDEX_NEO4J_WORKSPACE")

    def _stored_version(self) -> int:
        # the meta node exists before the first write (a writer's lease is kept on it), without a version yet
        rows = self.db.read("MATCH (m:GraphdexMeta {workspace: $ws}) RETURN coalesce(m.version, 0) AS version")
        return int(rows[0]["version"]) if rows else 0

    # GraphStore -----------------------------------------------------------------------------------------------

    def get_nodes(self, ids: Iterable[str], contributions: bool = True) -> dict[str, Node]:
        ids = list(dict.fromkeys(ids))
        out: dict[str, Node] = {}
        for part in batches(ids):
            rows = self.db.read(
                f"UNWIND $ids AS id {find_node('n', 'id')} "
                f"RETURN n.id AS id, n.graphdex_type AS type, n.props_json AS props, {_element_columns('n', contributions)}",
                ids=list(part),
            )
            for row in rows:
                out[row["id"]] = Node(row["id"], NodeType(row["type"]), json.loads(row["props"]), _contrib(row), json.loads(row["summary"]))
        return out

    def get_edges(self, keys: Iterable[EdgeKey], contributions: bool = True) -> dict[EdgeKey, Edge]:
        by_type: dict[EdgeType, list[dict[str, str]]] = {}
        for source, type_, target in keys:
            by_type.setdefault(EdgeType(type_), []).append({"s": source, "t": target})
        out: dict[EdgeKey, Edge] = {}
        for type_, pairs in by_type.items():
            for part in batches(pairs):
                rows = self.db.read(
                    f"UNWIND $pairs AS p MATCH {typed_edge(type_, 'p.s', 'p.t')} "
                    f"RETURN a.id AS s, b.id AS t, r.props_json AS props, {_element_columns('r', contributions)}",
                    pairs=list(part),
                )
                for row in rows:
                    edge = Edge(row["s"], type_, row["t"], json.loads(row["props"]), _contrib(row), json.loads(row["summary"]))
                    out[edge.key] = edge
        return out

    def write(self, nodes: Sequence[Node] = (), edges: Sequence[Edge] = (), delete_nodes: Iterable[str] = (), delete_edges: Iterable[EdgeKey] = (),
              vectors: VectorChanges | None = None) -> None:
        """``vectors`` (of Neo4jVectorIndexes) are set on their nodes by the same transaction, after the nodes are
        written; an upserted node keeps the embedding it had unless ``vectors`` gives it a new one."""
        delete_nodes = list(delete_nodes)
        vector_rows, vector_deletes = vector_params(vectors)
        node_rows: dict[tuple[str, str], list[dict]] = {}
        for node in nodes:
            kind = entity_label(str(node.props.get("type", ""))) if node.type == NodeType.ENTITY else ""
            node_rows.setdefault((node.type.value, kind), []).append(self._row(node, id=node.id, type=node.type.value))
        edge_rows: dict[EdgeType, list[dict]] = {}
        for edge in edges:
            edge_rows.setdefault(EdgeType(edge.type), []).append(self._row(edge, s=edge.source, t=edge.target))
        edge_deletes: dict[EdgeType, list[dict]] = {}
        for source, type_, target in delete_edges:
            edge_deletes.setdefault(EdgeType(type_), []).append({"s": source, "t": target})
        ws = self._workspace
        lease = self._lease

        touched = {n.id for n in nodes} | set(delete_nodes) | {i for e in edges for i in (e.source, e.target)}
        touched |= {i for pairs in edge_deletes.values() for p in pairs for i in (p["s"], p["t"])}

        def work(tx) -> None:
            changed = set(touched)
            if delete_nodes:  # a deleted node's neighbours lose an edge
                changed |= {r["id"] for r in tx.run(f"UNWIND $ids AS id {find_node('n', 'id')} MATCH (n)--(m) RETURN DISTINCT m.id AS id",
                                                     ids=delete_nodes, ws=ws)}
            about_before = self._abouts(tx, changed)
            for type_, pairs in edge_deletes.items():
                for part in batches(pairs):
                    tx.run(f"UNWIND $pairs AS p MATCH {typed_edge(type_, 'p.s', 'p.t')} DELETE r", pairs=list(part), ws=ws).consume()
            if delete_nodes:
                self._drop_contributions(tx, delete_nodes)
            for part in batches(delete_nodes):
                tx.run(f"UNWIND $ids AS id {find_node('n', 'id')} DETACH DELETE n", ids=list(part), ws=ws).consume()
            for (primary, kind), rows in node_rows.items():
                # an entity whose type changed must lose its old kind label, so kind labels are reset on every write
                relabel = f" REMOVE n:{ALL_KINDS} SET n:{kind}" if kind else ""
                for part in batches(rows):
                    tx.run(
                        f"UNWIND $rows AS row MERGE (n:{primary} {{workspace: $ws, id: row.id}}) "
                        "WITH n, row, n.embedding AS embedding, n.embedding_digest AS digest, "
                        "coalesce(n.support_chunks, []) AS chunks, coalesce(n.contrib_parts, []) AS parts "
                        f"WITH n, row, embedding, digest, chunks, parts, {_KEPT} "
                        "SET n = row.props, n.workspace = $ws, n.id = row.id, n.graphdex_type = row.type, "
                        "n.embedding = embedding, n.embedding_digest = digest, n.props_json = row.props_json, n.summary_json = row.summary_json, "
                        f"n.support_chunks = [i IN kept | chunks[i]] + row.chunks, n.contrib_parts = [i IN kept | parts[i]] + row.parts{relabel}",
                        rows=list(part), ws=ws,
                    ).consume()
            for type_, rows in edge_rows.items():
                source_label, target_label = (t.value for t in EDGE_ENDS[type_])
                for part in batches(rows):
                    written = tx.run(
                        f"UNWIND $rows AS row MATCH (a:{source_label} {{workspace: $ws, id: row.s}}) MATCH (b:{target_label} {{workspace: $ws, id: row.t}}) "
                        f"MERGE (a)-[r:{type_.value}]->(b) WITH r, row, coalesce(r.support_chunks, []) AS chunks, coalesce(r.contrib_parts, []) AS parts "
                        f"WITH r, row, chunks, parts, {_KEPT} "
                        "SET r = row.props, r.props_json = row.props_json, r.summary_json = row.summary_json, "
                        "r.support_chunks = [i IN kept | chunks[i]] + row.chunks, r.contrib_parts = [i IN kept | parts[i]] + row.parts RETURN count(r) AS n",
                        rows=list(part), ws=ws,
                    ).single()["n"]
                    if written != len(part):  # raising rolls the whole transaction back
                        raise StoreError(f"{len(part) - written} {type_} edges do not join a stored or written {source_label} to a {target_label}")
            for label, rows in vector_rows.items():
                for part in batches(rows):
                    written = tx.run(
                        f"UNWIND $rows AS row MATCH (n:{label} {{workspace: $ws, id: row.id}}) "
                        "SET n.embedding = row.vector, n.embedding_digest = row.digest RETURN count(n) AS n",
                        rows=list(part), ws=ws).single()["n"]
                    if written != len(part):
                        raise StoreError(f"{len(part) - written} {label} vectors belong to no stored or written {label}")
            for label, ids in vector_deletes.items():
                for part in batches(ids):
                    tx.run(f"UNWIND $ids AS id MATCH (n:{label} {{workspace: $ws, id: id}}) REMOVE n.embedding, n.embedding_digest",
                           ids=list(part), ws=ws).consume()
            changed |= about_before | self._abouts(tx, changed)
            # every write bumps the version readers watch, logs what it touched, and renews this writer's lease
            version = tx.run("MERGE (m:GraphdexMeta {workspace: $ws}) SET m.version = coalesce(m.version, 0) + 1, m.schema_version = $schema "
                             "RETURN m.version AS version", ws=ws, schema=GRAPH_SCHEMA_VERSION).single()["version"]
            tx.run(f"CREATE (:{CHANGE_LABEL} {{workspace: $ws, version: $version, nodes: $nodes}}) WITH 1 AS done "
                   f"MATCH (c:{CHANGE_LABEL} {{workspace: $ws}}) WHERE c.version <= $version - $keep DELETE c",
                   ws=ws, version=version, nodes=sorted(changed), keep=CHANGE_LOG_VERSIONS).consume()
            tx.run("MATCH (m:GraphdexMeta {workspace: $ws}) WHERE $lease IS NOT NULL AND m.writer = $lease SET m.writer_until = timestamp() + $ttl",
                   ws=ws, lease=lease, ttl=LEASE_MILLISECONDS).consume()

        self.db.write(work)

    def _abouts(self, tx, ids: set[str]) -> set[str]:
        """The entities that documents among ``ids`` are about: their about-chunks change with the document."""
        rows = tx.run("UNWIND $ids AS id MATCH (d:Document {workspace: $ws, id: id}) WHERE d.about IS NOT NULL RETURN d.about AS about",
                      ids=sorted(ids), ws=self._workspace)
        return {r["about"] for r in rows}

    def _drop_contributions(self, tx, deleted: list[str]) -> None:
        """A contribution lives as long as its chunk: the elements a deleted chunk supports lose what it said (found
        through the chunk's neighbourhood, by the model's invariant, as ``supported_by`` finds them)."""
        keep = "[i IN range(0, size(x.support_chunks) - 1) WHERE NOT x.support_chunks[i] IN $ids] AS kept"
        drop = "SET x.contrib_parts = [i IN kept | x.contrib_parts[i]], x.support_chunks = [i IN kept | x.support_chunks[i]]"
        for part in batches(deleted):
            ids = list(part)
            tx.run(f"UNWIND $ids AS id MATCH (c:Chunk {{workspace: $ws, id: id}})--(x) WHERE id IN x.support_chunks WITH DISTINCT x WITH x, {keep} {drop}",
                   ids=ids, ws=self._workspace).consume()
            tx.run("UNWIND $ids AS id MATCH (c:Chunk {workspace: $ws, id: id})--(n)-[x]->() WHERE id IN x.support_chunks "
                   f"WITH DISTINCT x WITH x, {keep} {drop}", ids=ids, ws=self._workspace).consume()

    @staticmethod
    def _row(element: Node | Edge, **keys: str) -> dict:
        """A written element's parameters: its readable props, its props and summary as JSON, and the contributions
        it adds."""
        return {**keys, "props": readable_props(element.props), "props_json": json.dumps(element.props, ensure_ascii=False),
                "summary_json": json.dumps(element.summary, ensure_ascii=False), "chunks": list(element.contrib),
                "parts": [json.dumps(part, ensure_ascii=False) for part in element.contrib.values()]}

    def supported_by(self, chunk_ids: Iterable[str]) -> tuple[set[str], set[EdgeKey]]:
        """Relies on the model's invariant that a node is adjacent to every chunk that supports it, and that an edge
        a chunk supports starts at that chunk or at a node it supports: so only their own edges are examined."""
        chunk_ids = sorted(set(chunk_ids))
        if not chunk_ids:
            return set(), set()
        rows = self.db.read(
            "UNWIND $chunks AS cid MATCH (c:Chunk {workspace: $ws, id: cid})--(n) WHERE any(x IN n.support_chunks WHERE x IN $chunks) "
            "RETURN DISTINCT n.id AS id, n.graphdex_type AS type",
            chunks=chunk_ids,
        )
        by_type: dict[str, list[str]] = {NodeType.CHUNK.value: chunk_ids}
        for row in rows:
            by_type.setdefault(row["type"], []).append(row["id"])
        edges: set[EdgeKey] = set()
        for type_, (source_type, target_type) in EDGE_ENDS.items():
            sources = by_type.get(source_type.value)
            for part in batches(sources or []):
                found = self.db.read(
                    f"UNWIND $ids AS id MATCH (a:{source_type.value} {{workspace: $ws, id: id}})-[r:{type_.value}]->(b:{target_type.value}) "
                    "WHERE any(x IN r.support_chunks WHERE x IN $chunks) RETURN a.id AS s, b.id AS t",
                    ids=list(part), chunks=chunk_ids,
                )
                edges |= {(r["s"], type_.value, r["t"]) for r in found}
        return {r["id"] for r in rows}, edges

    def edges_of(self, node_id: str, types: Iterable[str] | None = None) -> list[Edge]:
        return self.edges_of_many([node_id], types).get(node_id, [])

    def edges_of_many(self, node_ids: Iterable[str], types: Iterable[str] | None = None, contributions: bool = True) -> dict[str, list[Edge]]:
        wanted = [EdgeType(t).value for t in types] if types is not None else [t.value for t in EdgeType]
        out: dict[str, list[Edge]] = {}
        columns = _element_columns("r", contributions, summary=contributions)
        for part in batches(list(dict.fromkeys(node_ids))):
            rows = self.db.read(
                f"UNWIND $ids AS id {find_node('n', 'id')} MATCH (n)-[r]-(m) WHERE type(r) IN $types "
                f"RETURN n.id AS of, startNode(r).id AS s, type(r) AS type, endNode(r).id AS t, r.props_json AS props, {columns}",
                ids=list(part), types=wanted,
            )
            for r in rows:
                out.setdefault(r["of"], []).append(Edge(r["s"], EdgeType(r["type"]), r["t"], json.loads(r["props"]), _contrib(r), json.loads(r["summary"])))
        return out

    def documents_about(self, entity_ids: Iterable[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for part in batches(sorted(set(entity_ids))):
            for r in self.db.read("UNWIND $ids AS about MATCH (d:Document {workspace: $ws, about: about}) RETURN about, d.id AS id ORDER BY id",
                                ids=list(part)):
                out.setdefault(r["about"], []).append(r["id"])
        return out

    def changes_since(self, version: int) -> ChangeSet | None:
        rows = self.db.read("OPTIONAL MATCH (m:GraphdexMeta {workspace: $ws}) WITH coalesce(m.version, 0) AS current "
                          f"OPTIONAL MATCH (c:{CHANGE_LABEL} {{workspace: $ws}}) WHERE c.version > $since "
                          "RETURN current, min(c.version) AS first, collect(c.nodes) AS lists", since=version)
        current, first, lists = rows[0]["current"], rows[0]["first"], rows[0]["lists"]
        if current <= version:
            return ChangeSet(current, frozenset())
        if first is None or first > version + 1:
            return None
        return ChangeSet(current, frozenset(i for ids in lists for i in ids))

    def node_ids(self, type_: NodeType) -> set[str]:
        rows = self.db.read(f"MATCH (n:{NodeType(type_).value} {{workspace: $ws}}) RETURN n.id AS id")
        return {r["id"] for r in rows}

    def iter_nodes(self, type_: NodeType) -> Iterator[Node]:
        rows = self.db.read(
            f"MATCH (n:{NodeType(type_).value} {{workspace: $ws}}) RETURN n.id AS id, n.props_json AS props, {_element_columns('n', True)} ORDER BY n.id"
        )
        for r in rows:
            yield Node(r["id"], NodeType(type_), json.loads(r["props"]), _contrib(r), json.loads(r["summary"]))

    def iter_edges(self, types: Iterable[str] | None = None, contributions: bool = True) -> Iterator[Edge]:
        wanted = [EdgeType(t).value for t in types] if types is not None else [t.value for t in EdgeType]
        for type_ in wanted:
            source_label, target_label = (t.value for t in EDGE_ENDS[EdgeType(type_)])
            rows = self.db.read(
                f"MATCH (a:{source_label} {{workspace: $ws}})-[r:{type_}]->(b:{target_label}) "
                f"RETURN a.id AS s, b.id AS t, r.props_json AS props, {_element_columns('r', contributions, summary=contributions)}"
            )
            for r in rows:
                yield Edge(r["s"], EdgeType(type_), r["t"], json.loads(r["props"]), _contrib(r), json.loads(r["summary"]))

    def edge_weights(self, edge_type: EdgeType, node_ids: Iterable[str] | None = None, within: bool = False) -> list[tuple[str, str, int]]:
        type_ = EdgeType(edge_type)
        source_label, target_label = (t.value for t in EDGE_ENDS[type_])
        if node_ids is None:
            rows = self.db.read(f"MATCH (a:{source_label} {{workspace: $ws}})-[r:{type_.value}]->(b:{target_label}) "
                              f"RETURN a.id AS s, b.id AS t, {SUPPORT} AS support")
            return [(r["s"], r["t"], int(r["support"])) for r in rows]
        asked = list(dict.fromkeys(node_ids))
        found: dict[tuple[str, str], int] = {}
        if within:
            for part in batches(asked):
                rows = self.db.read(f"UNWIND $ids AS id MATCH (a:{source_label} {{workspace: $ws, id: id}})-[r:{type_.value}]->(b:{target_label}) "
                                  f"WHERE b.id IN $asked RETURN a.id AS s, b.id AS t, {SUPPORT} AS support", ids=list(part), asked=asked)
                found.update(((r["s"], r["t"]), int(r["support"])) for r in rows)
            return [(s, t, support) for (s, t), support in found.items()]
        for part in batches(asked):
            rows = self.db.read(f"UNWIND $ids AS id {find_node('n', 'id')} MATCH (n)-[r:{type_.value}]-() "
                              f"RETURN startNode(r).id AS s, endNode(r).id AS t, {SUPPORT} AS support", ids=list(part))
            found.update(((r["s"], r["t"]), int(r["support"])) for r in rows)  # an edge between two asked nodes comes twice
        return [(s, t, support) for (s, t), support in found.items()]

    def total_support(self, edge_type: EdgeType) -> int:
        type_ = EdgeType(edge_type)
        source_label, target_label = (t.value for t in EDGE_ENDS[type_])
        # the support prop is stored natively with the edge's readable props; without it, its contributions count
        rows = self.db.read(
            f"MATCH (:{source_label} {{workspace: $ws}})-[r:{type_.value}]->(:{target_label}) "
            f"RETURN sum({SUPPORT}) AS total"
        )
        return int(rows[0]["total"] or 0) if rows else 0

    def find_entities(self, text: str, limit: int = 10) -> list[Node]:
        needle = text.casefold().strip()
        if not needle:
            return []
        rows = self.db.read(
            "MATCH (n:Entity {workspace: $ws}) WHERE toLower(n.name) CONTAINS $needle OR any(a IN n.aliases WHERE toLower(a) CONTAINS $needle) "
            f"RETURN n.id AS id, n.props_json AS props, {_element_columns('n', False)} ORDER BY size(n.name), n.name LIMIT $limit",
            needle=needle, limit=limit,
        )
        return [Node(r["id"], NodeType.ENTITY, json.loads(r["props"]), _contrib(r), json.loads(r["summary"])) for r in rows]

    def counts(self) -> dict[str, dict[str, int]]:
        nodes = {t.value: 0 for t in NodeType}
        for node_type in NodeType:
            nodes[node_type.value] = self.db.read(f"MATCH (n:{node_type.value} {{workspace: $ws}}) RETURN count(n) AS n")[0]["n"]
        edges = {}
        for type_, (source_type, target_type) in EDGE_ENDS.items():
            pattern = f"(:{source_type.value} {{workspace: $ws}})-[r:{type_.value}]->(:{target_type.value})"
            edges[type_.value] = self.db.read(f"MATCH {pattern} RETURN count(r) AS n")[0]["n"]
        return {"nodes": nodes, "edges": edges}

    @property
    def version(self) -> int:
        """Read from the database, so readers see writes made by other processes (the CLI, another server)."""
        return self._stored_version()

    @contextmanager
    def lock(self) -> Iterator[None]:
        """A writer lease stored in the database (graph/neo4j_lease.py), so two graphdex writers on one workspace
        refuse each other; renewed by every write too."""
        with WriterLease(self.db.driver, self.db.database, self._workspace, self.db.read).held() as token:
            self._lease = token
            try:
                yield
            finally:
                self._lease = None

    def warm(self) -> None:
        """The server keeps its own page cache."""

    def close(self) -> None:
        self.db.close()

