"""Entity and relation extraction by a chat model (any litellm provider), into the same graph as the spaCy path.

The model is asked for JSON; a delimited-line format is accepted as a fallback, because small local models often
drift from JSON. Nothing a model writes can crash a batch: whatever parses is kept, and a chunk whose answer did not
parse at all is marked (``ChunkExtraction.problems``) and logged.
"""

from __future__ import annotations

import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Iterator

from graphdex.common.llm import LLM, LLMError, Messages, parse_json_object
from graphdex.common.resolution import clean_surface, resolve_key
from graphdex.ingest.extraction import ChunkExtraction, ChunkInput, EntityMention, RelationMention

log = logging.getLogger(__name__)

SYSTEM_PROMPT = """You build a knowledge graph from text. Read the passage and list
1. the entities it names: people, organisations, places, events, works, products and important concepts;
2. the relations the passage states between two of those entities.

Use only these entity types: {types}.
Answer with one JSON object and nothing else:
{{"entities": [{{"name": "...", "type": "...", "description": "what the passage says about it, one sentence"}}],
  "relations": [{{"source": "entity name", "target": "entity name", "keywords": ["short predicate, e.g. directed by"],
                  "description": "the fact, one sentence", "strength": 1-10}}]}}
Name entities as the passage does, in full. Every relation's source and target must be names from your entity list.
Do not invent facts that the passage does not state."""

USER_PROMPT = """Title of the document: {title}

Passage:
{text}"""

GLEANING_PROMPT = """Some entities or relations of the passage may be missing from your answer. List only the missing ones,
in the same JSON format. If nothing is missing, answer {"entities": [], "relations": []}."""

_DELIMITED = re.compile(r"^\s*\(?\"?(entity|relation(?:ship)?)\"?\s*(?:<\|>|\|)\s*(.+?)\)?\s*$", re.IGNORECASE | re.MULTILINE)


def _delimited(text: str) -> dict[str, Any] | None:
    """The fallback format: one record per line, fields separated by <|> (or |):
    entity<|>name<|>type<|>description   and   relation<|>source<|>target<|>keywords<|>description<|>strength"""
    entities, relations = [], []
    for kind, rest in _DELIMITED.findall(text):
        fields = [f.strip().strip('"') for f in re.split(r"<\|>|\|", rest)]
        if kind.lower() == "entity" and len(fields) >= 2:
            entities.append({"name": fields[0], "type": fields[1], "description": fields[2] if len(fields) > 2 else ""})
        elif kind.lower().startswith("relation") and len(fields) >= 2:
            relations.append({"source": fields[0], "target": fields[1], "keywords": [k.strip() for k in fields[2].split(",")] if len(fields) > 2 else [],
                              "description": fields[3] if len(fields) > 3 else "", "strength": fields[4] if len(fields) > 4 else 5})
    return {"entities": entities, "relations": relations} if entities or relations else None


_FLAT_OBJECT = re.compile(r"\{[^{}]*\}")


def _salvage(text: str) -> dict[str, Any] | None:
    """The complete records of an answer that was cut off (output token limit) or broken half way."""
    entities, relations = [], []
    for match in _FLAT_OBJECT.finditer(text):
        try:
            record = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and "source" in record and "target" in record:
            relations.append(record)
        elif isinstance(record, dict) and "name" in record:
            entities.append(record)
    return {"entities": entities, "relations": relations, "partial": True} if entities or relations else None


def parse_extraction(text: str) -> dict[str, Any] | None:
    """``{"entities": [...], "relations": [...]}`` from a model's answer (with ``"partial": True`` when only some
    records could be recovered), or None when nothing usable is in it."""
    data = parse_json_object(text)
    if (data is not None and ("entities" in data or "relations" in data)
            and isinstance(data.get("entities", []), list) and isinstance(data.get("relations", []), list)):
        return {"entities": data.get("entities", []), "relations": data.get("relations", [])}
    return _delimited(text) or _salvage(text)


def _strength(value: Any) -> int:
    try:
        return max(1, min(10, int(float(value))))
    except (TypeError, ValueError):
        return 5


class LLMExtractor:
    """Extractor backed by a chat model; chunks are sent concurrently (the model client bounds how many at once)."""

    def __init__(self, llm: LLM, entity_types: Iterable[str], gleaning: int = 0, concurrency: int = 4) -> None:
        self.llm = llm
        self.entity_types = [t.upper() for t in entity_types]
        self.gleaning = gleaning
        self._pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="graphdex-llm")

    def extract(self, chunks: Iterable[ChunkInput]) -> Iterator[ChunkExtraction]:
        # map keeps input order while calls overlap
        yield from self._pool.map(self._extract_one, chunks)

    def _extract_one(self, chunk: ChunkInput) -> ChunkExtraction:
        messages: Messages = [
            {"role": "system", "content": SYSTEM_PROMPT.format(types=", ".join(self.entity_types))},
            {"role": "user", "content": USER_PROMPT.format(title=chunk.title or "(none)", text=chunk.text)},
        ]
        result = ChunkExtraction(chunk.chunk_id)
        records: dict[str, list] = {"entities": [], "relations": []}
        for round_ in range(1 + self.gleaning):
            try:
                answer = self.llm.complete(messages, json_mode=True)
            except LLMError as error:
                log.warning("chunk %s: extraction call failed: %s", chunk.chunk_id, error)
                result.problems.append(f"model call failed: {error}")
                break
            parsed = parse_extraction(answer)
            if parsed is None:
                log.warning("chunk %s: the model's answer was neither JSON nor the delimited format; kept nothing from it", chunk.chunk_id)
                result.problems.append("unparseable model answer" + (" (gleaning)" if round_ else ""))
                break
            if parsed.get("partial"):
                log.warning("chunk %s: the model's answer was cut off; kept %d entities and %d relations from it",
                            chunk.chunk_id, len(parsed["entities"]), len(parsed["relations"]))
                result.problems.append("partial model answer" + (" (gleaning)" if round_ else ""))
            records["entities"] += parsed["entities"]
            records["relations"] += parsed["relations"]
            messages = messages + [{"role": "assistant", "content": answer}, {"role": "user", "content": GLEANING_PROMPT}]
        self._to_mentions(chunk, records, result)
        return result

    def _to_mentions(self, chunk: ChunkInput, records: dict[str, list], result: ChunkExtraction) -> None:
        keys: dict[str, tuple[str, str]] = {}  # lower-cased name -> (key, surface)
        for record in records["entities"]:
            if not isinstance(record, dict) or not isinstance(record.get("name"), str):
                continue
            surface = clean_surface(record["name"])
            if not surface:
                continue
            entity_type = str(record.get("type") or "CONCEPT").upper().replace(" ", "_")
            if entity_type not in self.entity_types:
                entity_type = "CONCEPT"
            key = resolve_key(surface, chunk.acronyms)
            if surface.casefold() in keys:
                continue
            keys[surface.casefold()] = (key, surface)
            result.entities.append(EntityMention(key, surface, entity_type, str(record.get("description") or "").strip()))
        for record in records["relations"]:
            if not isinstance(record, dict):
                continue
            source = keys.get(clean_surface(str(record.get("source", ""))).casefold())
            target = keys.get(clean_surface(str(record.get("target", ""))).casefold())
            if source is None or target is None or source[0] == target[0]:
                continue  # a relation must join two entities the model listed
            keywords = record.get("keywords") or []
            if isinstance(keywords, str):
                keywords = [k.strip() for k in keywords.split(",")]
            keywords = [str(k).strip().lower() for k in keywords if str(k).strip()][:5] or ["related to"]
            result.relations.append(RelationMention(source[0], target[0], source[1], target[1], keywords,
                                                    str(record.get("description") or "").strip(), "llm", _strength(record.get("strength"))))

    def close(self) -> None:
        self._pool.shutdown(wait=True)


SUMMARY_PROMPT = """Merge these descriptions of {name} into one neutral paragraph of at most three sentences.
Keep every distinct fact, drop repetitions, add nothing that is not stated.

{descriptions}"""

FALLBACK_SENTENCES = 3


def make_summarizer(llm: LLM):
    """A description summariser for ``derive``; when the model fails it falls back to the first sentences, joined."""

    def summarize(name: str, sentences: list[str]) -> str:
        prompt = SUMMARY_PROMPT.format(name=name, descriptions="\n".join(f"- {s}" for s in sentences))
        try:
            summary = llm.complete([{"role": "user", "content": prompt}]).strip()
        except LLMError as error:
            log.warning("summarising the descriptions of %s failed, joining them instead: %s", name, error)
            summary = ""
        return summary or " ".join(sentences[:FALLBACK_SENTENCES])

    return summarize
