"""The tables of the embedded store, and how element rows are encoded.

Nodes are numbered by an ``AUTOINCREMENT`` row that is never reused, which is also their row in the PageRank
projection; edges refer to their ends by it (integers join and index far more cheaply than id strings). Readable
columns beside the JSON (``about``, ``names``, ``weight``, ``support``) are what lookups, the projection and the
community layer filter or sum on, so none of them parses JSON; entity search scans the index of ``names`` (entities
only), not the table's rows (50-80 ms instead of about 1 s at 10x). ``node_support`` and ``edge_support`` index
elements by supporting chunk (an exact delete asks "what does this chunk support?"), and ``counts`` keeps the
per-type totals that ``stats`` reports. ``changes`` logs the ids each write touched, for readers that follow
the store by change.
"""

from __future__ import annotations

from typing import Any

import orjson

from graphdex.graph.model import Edge, Node, NodeType

#: The layout of graph.sqlite, apart from the shape of elements (graph.model.GRAPH_SCHEMA_VERSION). 2: tables read on
#: demand, rows never reused, the projection beside them (layout 1 was loaded whole into networkx). 3: contributions
#: in the support tables, one row each, summaries in the element rows.
LAYOUT_VERSION = 3

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS nodes (
    row INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, about TEXT, names TEXT,
    props TEXT NOT NULL, summary TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS nodes_by_type ON nodes (type, id);
CREATE INDEX IF NOT EXISTS nodes_by_about ON nodes (about) WHERE about IS NOT NULL;
CREATE INDEX IF NOT EXISTS nodes_by_names ON nodes (names) WHERE names IS NOT NULL;
CREATE TABLE IF NOT EXISTS edges (
    src INTEGER NOT NULL, type TEXT NOT NULL, dst INTEGER NOT NULL, weight REAL NOT NULL, support INTEGER NOT NULL,
    props TEXT NOT NULL, summary TEXT NOT NULL, PRIMARY KEY (src, type, dst)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_by_target ON edges (dst, type);
CREATE TABLE IF NOT EXISTS node_support (chunk TEXT NOT NULL, node INTEGER NOT NULL, part TEXT NOT NULL, PRIMARY KEY (chunk, node)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS node_support_by_node ON node_support (node);
CREATE TABLE IF NOT EXISTS edge_support (
    chunk TEXT NOT NULL, src INTEGER NOT NULL, type TEXT NOT NULL, dst INTEGER NOT NULL, part TEXT NOT NULL,
    PRIMARY KEY (chunk, src, type, dst)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edge_support_by_edge ON edge_support (src, type, dst);
CREATE TABLE IF NOT EXISTS counts (kind TEXT NOT NULL, type TEXT NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (kind, type)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS projection_columns (col INTEGER PRIMARY KEY, version INTEGER NOT NULL, rows BLOB NOT NULL, probabilities BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS projection_columns_by_version ON projection_columns (version);
CREATE TABLE IF NOT EXISTS projection_weights (col INTEGER PRIMARY KEY, rows BLOB NOT NULL, weights BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS changes (version INTEGER PRIMARY KEY, nodes TEXT NOT NULL);
"""

#: How many versions back the change log reaches (``GraphStore.changes_since``).
CHANGE_LOG_VERSIONS = 1000

#: ``WHERE x IN`` over a JSON array parameter: one statement for any number of values.
IN_JSON = "IN (SELECT value FROM json_each(?))"


def dump(value: Any) -> str:
    """Compact JSON (orjson: the writer serialises every node and edge it writes, readers parse what they read)."""
    return orjson.dumps(value).decode()


def search_names(node: Node) -> str | None:
    """What ``find_entities`` matches on: the casefolded name and aliases, one per line."""
    if node.type != NodeType.ENTITY:
        return None
    names = [str(node.props.get("name", ""))] + [str(a) for a in node.props.get("aliases", ())]
    return "\n".join(name.casefold() for name in names)


def node_row(node: Node) -> tuple:
    about = node.props.get("about") if node.type == NodeType.DOCUMENT else None
    return (node.id, str(node.type), about or None, search_names(node), dump(node.props), dump(node.summary))


def edge_weight_prop(edge: Edge) -> float:
    return float(edge.props.get("weight", 1) or 1)


