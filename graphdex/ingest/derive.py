"""Derived properties of entities, relations and their edges, computed from contributions alone.

Because nothing here depends on the order in which chunks arrived, an element that lost a chunk's contribution is
identical to one that never had it (exact delete), and re-deriving after every merge is safe.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from graphdex.common.ids import document_of_chunk
from graphdex.graph.model import Contributions, Edge, Node, NodeType
from graphdex.ingest.contributions import EntityContribution, RelationContribution

DESCRIPTION_SENTENCES = 3


def _top(counter: Counter) -> str:
    """Most common value; ties broken alphabetically so the result is order-independent."""
    return min(counter.items(), key=lambda item: (-item[1], item[0]))[0]


def _provenance(contrib: Contributions) -> dict[str, Any]:
    chunks = sorted(contrib)
    return {"chunks": chunks, "documents": sorted({document_of_chunk(c) for c in chunks}), "support": len(chunks)}


#: Summarises many descriptions of one element into one (name, descriptions) -> text; given by the writer when a
#: model is configured. It must answer the same for the same input (the LLM cache makes it so), or delete is not exact.
Summarizer = Callable[[str, list[str]], str]


def _description(contrib: Contributions, name: str = "", summarize: Summarizer | None = None, threshold: int = 0) -> str:
    sentences: list[str] = []
    for chunk in sorted(contrib):
        sentence = contrib[chunk].get("sentence", "")
        if sentence and sentence not in sentences:
            sentences.append(sentence)
            if summarize is None and len(sentences) == DESCRIPTION_SENTENCES:
                break  # an entity named in thousands of chunks is not read through for sentences no one keeps
    if summarize is not None and len(sentences) > threshold:
        return summarize(name, sentences)
    return " ".join(sentences[:DESCRIPTION_SENTENCES])


def derive_entity(node: Node, summarize: Summarizer | None = None, threshold: int = 0) -> None:
    names: Counter = Counter()
    types: Counter = Counter()
    parts: list[EntityContribution] = list(node.contrib.values())  # type: ignore[arg-type]
    for part in parts:
        names.update(part["names"])
        types.update(part["types"])
    named_types = Counter({t: c for t, c in types.items() if t != "CONCEPT"})
    node.props = {
        "name": _top(names),
        "type": _top(named_types or types),
        "aliases": sorted(names),
        "mentions": sum(names.values()),
        "description": _description(node.contrib, _top(names), summarize, threshold),
        **_provenance(node.contrib),
    }


def derive_relation(node: Node, summarize: Summarizer | None = None, threshold: int = 0) -> None:
    """A relation links two entities (``ends``, in id order); its reading direction is the majority of its evidence."""
    keywords: Counter = Counter()
    first_names: Counter = Counter()
    second_names: Counter = Counter()
    kinds: Counter = Counter()
    direction = 0
    parts: list[RelationContribution] = list(node.contrib.values())  # type: ignore[arg-type]
    strengths = [part["strength"] for part in parts if "strength" in part]  # stated by an LLM extractor
    for part in parts:
        keywords.update(part["keywords"])
        first_names[part["first_name"]] += 1
        second_names[part["second_name"]] += 1
        kinds[part["kind"]] += 1
        direction += part["direction"]
    first, second = node.props["ends"]
    names = (_top(first_names), _top(second_names))
    ranked = [k for k, _ in sorted(keywords.items(), key=lambda item: (-item[1], item[0]))]
    forward = direction >= 0
    node.props = {
        "ends": [first, second],
        "source_id": first if forward else second,
        "target_id": second if forward else first,
        "source_name": names[0] if forward else names[1],
        "target_name": names[1] if forward else names[0],
        "keywords": ranked,
        "label": ", ".join(ranked[:2]) or "related to",  # a short caption (the Neo4j Browser shows it on the node)
        "kind": _top(kinds),
        "weight": len(node.contrib),
        "description": _description(node.contrib, f"{names[0]} / {names[1]}", summarize, threshold),
        **({"strength": round(sum(strengths) / len(strengths), 2)} if strengths else {}),
        **_provenance(node.contrib),
    }


def derive_edge(edge: Edge) -> None:
    """MENTIONS edges weigh their mention counts, RELATED_TO edges gather their predicate words; EVIDENCES and
    CONNECTS edges have empty contributions and count their supporting chunks."""
    if not edge.contrib:  # structural edges (Document -> Chunk) carry fixed props, not contributions
        return
    parts: list[dict[str, Any]] = list(edge.contrib.values())  # MentionContribution, RelatedContribution or {}
    keywords: Counter = Counter()
    for part in parts:
        keywords.update(part.get("keywords", ()))
    props: dict[str, Any] = {"weight": sum(part.get("count", 1) for part in parts), "support": len(edge.contrib)}
    if keywords:
        props["keywords"] = [k for k, _ in sorted(keywords.items(), key=lambda item: (-item[1], item[0]))]
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
