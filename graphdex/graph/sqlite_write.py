"""One write transaction of the embedded store: the rows it inserts, updates and deletes, and the projection rows
its changes touch (what ``SqliteGraphStore.write`` hands the projection to update)."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable

from graphdex.graph.model import EDGE_ENDS, Edge, EdgeKey, EdgeType, Node, NodeType
from graphdex.graph.sqlite_schema import IN_JSON, dump, edge_weight_prop, node_row
from graphdex.graph.store import StoreError


class WriteTransaction:
    """One write's changes, applied in the transaction ``db`` is in; ``apply`` returns the rows whose projection
    columns changed: the nodes written or deleted, both ends of each edge written or deleted (a deleted node's edges
    included), and the entity a changed document is about (its about-chunks changed), before and after."""

    def __init__(self, db: sqlite3.Connection, nodes: list[Node], edges: list[Edge], delete_nodes: list[str], delete_edges: list[EdgeKey]) -> None:
        self.db = db
        # the same element twice in one write: the last one given wins, as if written one after the other
        self.nodes = list({n.id: n for n in nodes}.values())
        self.edges = list({e.key: e for e in edges}.values())
        self.delete_nodes, self.delete_edges = delete_nodes, delete_edges
        self.node_counts: Counter = Counter()
        self.edge_counts: Counter = Counter()
        self.support_totals: Counter = Counter()  # of each edge type: the community layer's total weight
        self.touched: set[int] = set()
        self.changed_edges: set[tuple[int, str, int]] = set()  # (src row, type, dst row) of every edge put or deleted
        self.retyped = False  # a stored node was written with another type
        self._id_of: dict[int, str] = {}

    def _lookup(self, ids: Iterable[str]) -> dict[str, tuple[int, str]]:
        found = self.db.execute(f"SELECT id, row, type FROM nodes WHERE id {IN_JSON}", (dump(list(ids)),))
        out = {node_id: (row, type_) for node_id, row, type_ in found}
        self._id_of.update((row, node_id) for node_id, (row, _) in out.items())
        return out

    def ids_of(self, rows: Iterable[int]) -> set[str]:
        """The ids of ``rows`` (of nodes stored now, or deleted by this write)."""
        rows = set(rows)
        unknown = dump(sorted(rows - set(self._id_of)))
        self._id_of.update(self.db.execute(f"SELECT row, id FROM nodes WHERE row {IN_JSON}", (unknown,)))
        return {self._id_of[r] for r in rows if r in self._id_of}

    def _abouts(self) -> set[str]:
        rows = dump(sorted(self.touched))
        return {r[0] for r in self.db.execute(f"SELECT about FROM nodes WHERE row {IN_JSON} AND about IS NOT NULL", (rows,))}

    def apply(self) -> set[int]:
        named = {n.id for n in self.nodes} | set(self.delete_nodes) | {i for e in self.edges for i in (e.source, e.target)}
        named |= {i for key in self.delete_edges for i in (key[0], key[2])}
        known = self._lookup(named)
        deleted = {i: known[i] for i in self.delete_nodes if i in known}
        self._check_edges(known, deleted)
        doomed = self._edges_to_delete(known, deleted)
        self.changed_edges = set(doomed)
        self.retyped = any(n.id in known and n.id not in deleted and known[n.id][1] != str(n.type) for n in self.nodes)
        self.touched = {known[n.id][0] for n in self.nodes if n.id in known} | {row for row, _ in deleted.values()}
        self.touched |= {end for src, _, dst in doomed for end in (src, dst)}
        self.touched |= {known[i][0] for e in self.edges for i in (e.source, e.target) if i in known and i not in deleted}
        about_before = self._abouts()
        self._delete(doomed, deleted)
        rows = self._upsert_nodes(known, deleted)
        self.touched |= set(rows.values())
        self._upsert_edges(rows)
        about = about_before | self._abouts()
        self.touched |= {row for row, type_ in self._lookup(about).values() if type_ == NodeType.ENTITY}
        self._save_counts()
        return self.touched

    def _check_edges(self, known: dict[str, tuple[int, str]], deleted: dict[str, tuple[int, str]]) -> None:
        batch = {n.id: str(n.type) for n in self.nodes}
        for edge in self.edges:
            ends = tuple(batch.get(i) or (known[i][1] if i in known and i not in deleted else None) for i in (edge.source, edge.target))
            if None in ends:
                raise StoreError(f"edge {edge.key} refers to a node that is neither stored nor written")
            expected = EDGE_ENDS[EdgeType(edge.type)]
            if ends != (str(expected[0]), str(expected[1])):
                raise StoreError(f"edge {edge.key} joins {ends[0]} to {ends[1]}, but {edge.type} joins {expected[0]} to {expected[1]}")

    def _stored_edges(self, keys: Iterable[tuple[int, str, int]]) -> dict[tuple[int, str, int], int]:
        """The support of each of ``keys`` that is stored."""
        found = self.db.execute(
            "SELECT e.src, e.type, e.dst, e.support FROM json_each(?) k JOIN edges e ON e.src = json_extract(k.value, '$[0]') "
            "AND e.type = json_extract(k.value, '$[1]') AND e.dst = json_extract(k.value, '$[2]')", (dump(sorted(set(keys))),))
        return {(src, type_, dst): support for src, type_, dst, support in found}

    def _edges_to_delete(self, known: dict[str, tuple[int, str]], deleted: dict[str, tuple[int, str]]) -> dict[tuple[int, str, int], int]:
        """The stored edges this write deletes (those asked for, and every edge of a deleted node), with their support."""
        doomed = self._stored_edges((known[s][0], str(t), known[d][0]) for s, t, d in self.delete_edges if s in known and d in known)
        if deleted:
            rows = dump([r for r, _ in deleted.values()])
            doomed.update(((src, type_, dst), support) for src, type_, dst, support in self.db.execute(
                f"SELECT src, type, dst, support FROM edges WHERE src {IN_JSON} UNION SELECT src, type, dst, support FROM edges WHERE dst {IN_JSON}",
                (rows, rows)))
        return doomed

    def _delete(self, doomed: dict[tuple[int, str, int], int], deleted: dict[str, tuple[int, str]]) -> None:
        for (_, type_, _), support in doomed.items():
            self.edge_counts[type_] -= 1
            self.support_totals[type_] -= support
        keys = sorted(doomed)
        self.db.executemany("DELETE FROM edges WHERE src = ? AND type = ? AND dst = ?", keys)
        self.db.executemany("DELETE FROM edge_support WHERE src = ? AND type = ? AND dst = ?", keys)
        for _, type_ in deleted.values():
            self.node_counts[type_] -= 1
        rows = [(row,) for row, _ in deleted.values()]
        self.db.executemany("DELETE FROM node_support WHERE node = ?", rows)
        self.db.executemany("DELETE FROM nodes WHERE row = ?", rows)
        # a contribution lives as long as its chunk: the elements a deleted chunk supported lose what it said
        ids = dump(sorted(deleted))
        self.db.execute(f"DELETE FROM node_support WHERE chunk {IN_JSON}", (ids,))
        self.db.execute(f"DELETE FROM edge_support WHERE chunk {IN_JSON}", (ids,))

    def _upsert_nodes(self, known: dict[str, tuple[int, str]], deleted: dict[str, tuple[int, str]]) -> dict[str, int]:
        """Writes the nodes (an existing node keeps its row) and adds their contributions; returns the row of every
        id named."""
        previous = {i: v for i, v in known.items() if i not in deleted}
        for node in self.nodes:
            old = previous.get(node.id)
            if old is None or old[1] != str(node.type):
                self.node_counts[str(node.type)] += 1
                if old is not None:
                    self.node_counts[old[1]] -= 1
        self.db.executemany(
            "INSERT INTO nodes (id, type, about, names, props, summary) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
            "type = excluded.type, about = excluded.about, names = excluded.names, props = excluded.props, summary = excluded.summary",
            [node_row(n) for n in self.nodes])
        rows = {i: row for i, (row, _) in previous.items()}
        fresh = [n.id for n in self.nodes if n.id not in rows]
        rows.update({i: row for i, (row, _) in self._lookup(fresh).items()})
        self.db.executemany(
            "INSERT INTO node_support (chunk, node, part) VALUES (?, ?, ?) ON CONFLICT(chunk, node) DO UPDATE SET part = excluded.part",
            [(chunk, rows[n.id], dump(part)) for n in self.nodes for chunk, part in n.contrib.items()])
        return rows

    def _upsert_edges(self, rows: dict[str, int]) -> None:
        if not self.edges:
            return
        keys = [(rows[e.source], str(e.type), rows[e.target]) for e in self.edges]
        self.changed_edges.update(keys)
        existing = self._stored_edges(keys)
        for key, edge in zip(keys, self.edges):
            self.edge_counts[key[1]] += key not in existing
            self.support_totals[key[1]] += edge.support_count - existing.get(key, 0)
        self.db.executemany(
            "INSERT INTO edges (src, type, dst, weight, support, props, summary) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(src, type, dst) DO UPDATE SET "
            "weight = excluded.weight, support = excluded.support, props = excluded.props, summary = excluded.summary",
            [(*key, edge_weight_prop(e), e.support_count, dump(e.props), dump(e.summary)) for key, e in zip(keys, self.edges)])
        self.db.executemany(
            "INSERT INTO edge_support (chunk, src, type, dst, part) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT(chunk, src, type, dst) DO UPDATE SET part = excluded.part",
            [(chunk, *key, dump(part)) for key, e in zip(keys, self.edges) for chunk, part in e.contrib.items()])

    def _save_counts(self) -> None:
        changes = [(kind, t, n) for kind, counter in (("node", self.node_counts), ("edge", self.edge_counts), ("support", self.support_totals))
                   for t, n in counter.items() if n]
        self.db.executemany("INSERT INTO counts VALUES (?, ?, ?) ON CONFLICT(kind, type) DO UPDATE SET n = n + excluded.n", changes)
