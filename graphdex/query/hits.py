"""A query's ranked ids turned into what it returns: chunks with their citations, graph nodes with readable names."""

from __future__ import annotations

from collections.abc import Iterable

from graphdex.graph.model import Node, NodeType
from graphdex.graph.store import GraphStore
from graphdex.query.results import ChunkHit, NodeHit


def chunk_hits(store: GraphStore, ranked: list[tuple[str, float]]) -> list[ChunkHit]:
    """Each ranked chunk with its text, its document's source and where in the document it is (one read of each)."""
    found = store.get_nodes((c for c, _ in ranked), contributions=False)
    docs = store.get_nodes({n.props["document_id"] for n in found.values()}, contributions=False)
    hits = []
    for chunk_id, score in ranked:
        node = found.get(chunk_id)
        if node is None:  # deleted since it was ranked
            continue
        doc = docs.get(node.props["document_id"])
        hits.append(ChunkHit(chunk_id, node.props["document_id"], node.props.get("title", ""),
                             doc.props.get("source", "") if doc else "", node.props["text"], round(score, 6),
                             node.props.get("section"), node.props.get("page"), node.props.get("page_end")))
    return hits


def node_hits(store: GraphStore, ranked: Iterable[tuple[str, float]]) -> list[NodeHit]:
    ranked = list(ranked)
    found = store.get_nodes((n for n, _ in ranked), contributions=False)
    hits = []
    for node_id, score in ranked:
        node = found.get(node_id)
        if node is not None:
            hits.append(NodeHit(node_id, str(node.type), display_name(node), round(score, 6),
                                node.props.get("description", ""), list(node.props.get("chunks", ()))[:10]))
    return hits


def display_name(node: Node) -> str:
    props = node.props
    if node.type == NodeType.RELATION:
        keywords = ", ".join(props.get("keywords", [])[:2]) or "related to"
        return f"{props['source_name']} —{keywords}→ {props['target_name']}"
    if node.type == NodeType.COMMUNITY:
        return props["label"]
    return props.get("name") or props.get("title") or node.id
