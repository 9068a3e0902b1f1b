"""Derived properties of entities, relations and their edges, computed from their summaries alone (ingest.summaries).

Because nothing here depends on the order in which chunks arrived, an element that lost a chunk's contribution is
identical to one that never had it (exact delete), and re-deriving after every merge is safe.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from graphdex.graph.model import Edge, Node, NodeType
from graphdex.ingest.summaries import EdgeSummary, EntitySummary, RelationSummary

DESCRIPTION_SENTENCES = 3


def _top(counter: Mapping[str, int]) -> str:
    """Most common value; ties broken alphabetically so the result is order-independent."""
    return min(counter.items(), key=lambda item: (-item[1], item[0]))[0]


def _ranked(counter: Mapping[str, int]) -> list[str]:
    return [k for k, _ in sorted(counter.items(), key=lambda item: (-item[1], item[0]))]


def _provenance(summary: Mapping[str, Any]) -> dict[str, Any]:
    return {"chunks": list(summary["chunks"]), "documents": list(summary["documents"]), "support": summary["support"]}


#: Summarises many descriptions of one element into one (name, descriptions) -> text; given by the writer when a
#: model is configured. It must answer the same for the same input (the LLM cache makes it so), or delete is not exact.
Summarizer = Callable[[str, list[str]], str]


def _description(summary: Mapping[str, Any], name: str = "", summarize: Summarizer | None = None, threshold: int = 0) -> str:
    sentences = [sentence for _, sentence in summary["sentences"]]
    if summarize is not None and len(sentences) > threshold:
        return summarize(name, sentences)
    return " ".join(sentences[:DESCRIPTION_SENTENCES])


def derive_entity(node: Node, summarize: Summarizer | None = None, threshold: int = 0) -> None:
    summary = cast(EntitySummary, node.summary)
    names, types = summary["names"], summary["types"]
    named_types = {t: c for t, c in types.items() if t != "CONCEPT"}
    node.props = {
        "name": _top(names),
        "type": _top(named_types or types),
        "aliases": sorted(names),
        "mentions": sum(names.values()),
        "description": _description(summary, _top(names), summarize, threshold),
        **_provenance(summary),
    }


def derive_relation(node: Node, summarize: Summarizer | None = None, threshold: int = 0) -> None:
    """A relation links two entities (``ends``, in id order); its reading direction is the majority of its evidence."""
    summary = cast(RelationSummary, node.summary)
    first, second = node.props["ends"]
    names = (_top(summary["first_names"]), _top(summary["second_names"]))
    ranked = _ranked(summary["keywords"])
    forward = summary["direction"] >= 0
    strengths = summary["strength_count"]
    node.props = {
        "ends": [first, second],
        "source_id": first if forward else second,
        "target_id": second if forward else first,
        "source_name": names[0] if forward else names[1],
        "target_name": names[1] if forward else names[0],
        "keywords": ranked,
        "label": ", ".join(ranked[:2]) or "related to",  # a short caption (the Neo4j Browser shows it on the node)
        "kind": _top(summary["kinds"]),
        "weight": summary["support"],
        "description": _description(summary, f"{names[0]} / {names[1]}", summarize, threshold),
        **({"strength": round(summary["strength_total"] / strengths, 2)} if strengths else {}),
        **_provenance(summary),
    }


def derive_edge(edge: Edge) -> None:
    """MENTIONS edges weigh their mention counts, RELATED_TO edges gather their predicate words; EVIDENCES and
    CONNECTS edges count their supporting chunks."""
    if not edge.summary:  # structural edges (Document -> Chunk) carry fixed props, not contributions
        return
    summary = cast(EdgeSummary, edge.summary)
    props: dict[str, Any] = {"weight": summary["weight"], "support": summary["support"]}
    if summary["keywords"]:
        props["keywords"] = _ranked(summary["keywords"])
    edge.props = props


def derive(node: Node, summarize: Summarizer | None = None, threshold: int = 0) -> None:
    if node.type == NodeType.ENTITY:
        derive_entity(node, summarize, threshold)
    elif node.type == NodeType.RELATION:
        derive_relation(node, summarize, threshold)


@dataclass(frozen=True)
class Derivation:
    """How the writer derives properties: with a model's summary for elements that gathered more than
    ``summary_threshold`` descriptions, when a model is configured."""

    summarize: Summarizer | None = None
    summary_threshold: int = 6

    def derive(self, node: Node) -> None:
        derive(node, self.summarize, self.summary_threshold)


def embedding_text(node: Node) -> str:
    """The text whose vector stands for a node in its type's index."""
    props = node.props
    if node.type == NodeType.CHUNK:
        title = props.get("title", "")
        return f"{title}\n{props['text']}" if title else props["text"]
    if node.type == NodeType.ENTITY:
        return props["name"]
    if node.type == NodeType.RELATION:
        keywords = ", ".join(props["keywords"][:3]) or "related to"
        return f"{props['source_name']} {keywords} {props['target_name']}"
    if node.type == NodeType.COMMUNITY:
        return f"{props['label']}. {', '.join(props['keywords'])}"
    raise ValueError(f"{node.type} nodes are not embedded")
