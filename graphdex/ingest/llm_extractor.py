"""Entity and relation extraction by a chat model (any litellm provider), into the same graph as the spaCy path.

The model is asked for JSON; a delimited-line format is accepted as a fallback, because small local models often
drift from JSON. Nothing a model writes can crash a batch: whatever parses is kept, and a chunk whose answer did not
parse at all is marked (``ChunkExtraction.problems``) and logged. What a small model really does (Gemma 3 270M through
scripts/local-llm.sh, README "Run with a local model") shaped the salvage: it answers with one entity object instead
of the asked lists, adds fields nobody asked for, and loops until the token limit cuts it off mid-string.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from graphdex.common.llm import LLM, LLMError, Messages, parse_cut_json, parse_json_object
from graphdex.common.resolution import clean_surface, resolve_key
from graphdex.ingest.extraction import ChunkExtraction, ChunkInput, EntityMention, Extractor, RelationMention

log = logging.getLogger(__name__)

SYSTEM_PROMPT = """You build a knowledge graph from text. Read the passage and list
1. the entities it names: people, organisations, places, events, works, products and important concepts;
2. the relations the passage states between two of those entities.

Use only these entity types: {types}.
Answer with one JSON object and nothing else. Its "entities" list holds one object per entity: its "name" as the
passage writes it, in full; its "type"; and a "description", one sentence of what the passage says about it. Its
"relations" list holds one object per relation: the "source" and "target" entity names (names from your entity list),
"keywords" (one to three short predicates, such as "directed by"), a "description" stating the fact in one sentence,
and a "strength" from 1 to 10. Do not invent facts that the passage does not state."""
# The shape is told in words, not shown as a template: a small model copies a template's placeholders ("...") as its
# answer, and a server that enforces extraction_schema holds the shape anyway.

USER_PROMPT = """Title of the document: {title}

Passage:
{text}"""

GLEANING_PROMPT = """Some entities or relations of the passage may be missing from your answer. List only the missing ones,
in the same JSON format. If nothing is missing, answer {"entities": [], "relations": []}."""

MAX_RECORDS = 25  # of each kind per answer: a dense passage names fewer; a looping model is stopped here
_NAME = {"type": "string", "minLength": 1, "maxLength": 120}
_SENTENCE = {"type": "string", "maxLength": 300}


def extraction_schema(entity_types: list[str]) -> dict[str, Any]:
    """The answer's JSON schema, for servers that enforce one (llama.cpp, vLLM, Ollama, OpenAI): a model then cannot
    drift into another shape, and the length bounds keep one that loops from spending its budget on a single field."""
    entity = {"type": "object", "properties": {"name": _NAME, "type": {"type": "string", "enum": entity_types}, "description": _SENTENCE},
              "required": ["name", "type", "description"], "additionalProperties": False}
    relation = {"type": "object",
                "properties": {"source": _NAME, "target": _NAME,
                               "keywords": {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 60}, "minItems": 1, "maxItems": 3},
                               "description": _SENTENCE, "strength": {"type": "integer", "minimum": 1, "maximum": 10}},
                "required": ["source", "target", "keywords", "description", "strength"], "additionalProperties": False}
    return {"type": "object", "properties": {"entities": {"type": "array", "items": entity, "maxItems": MAX_RECORDS},
                                             "relations": {"type": "array", "items": relation, "maxItems": MAX_RECORDS}},
            "required": ["entities", "relations"], "additionalProperties": False}


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


def _collect(value: Any, entities: list, relations: list, key: str = "") -> None:
    """The records anywhere in a JSON value: objects with a source and a target are relations, objects with a name
    are entities (their other fields are not searched: a small model nests invented structures there), and bare
    strings listed under "entities" are entity names."""
    if isinstance(value, dict):
        if "source" in value and "target" in value:
            relations.append(value)
        elif isinstance(value.get("name"), str):
            entities.append(value)
        else:
            for child_key, child in value.items():
                _collect(child, entities, relations, child_key)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str) and key == "entities":
                entities.append({"name": item})
            else:
                _collect(item, entities, relations, key)


def _salvage(text: str, data: dict[str, Any] | None) -> dict[str, Any] | None:
    """The records of an answer that is not the JSON asked for: cut off (an output token limit) or broken half way
    (``"partial"``), or another shape, such as one entity object with made-up fields (``"off_schema"``)."""
    cut = parse_cut_json(text)  # all that is complete from the first bracket on; ``data`` may be a record inside it
    value = cut if cut is not None else data
    entities: list = []
    relations: list = []
    _collect(value, entities, relations)
    if not entities and not relations:
        return None
    in_schema = isinstance(value, dict) and bool(set(value)) and set(value) <= {"entities", "relations"}
    return {"entities": entities, "relations": relations, "partial": cut is not None and cut != data, "off_schema": not in_schema}


def parse_extraction(text: str) -> dict[str, Any] | None:
    """``{"entities": [...], "relations": [...]}`` from a model's answer (with ``"partial": True`` when only some
    records could be recovered, ``"off_schema": True`` when they were read from another shape), or None when
    nothing usable is in it. An answer with other keys beside the two lists is of another shape: a small model puts
    an entity's own fields at the top and the prompt's example relation in "relations"."""
    data = parse_json_object(text)
    if (data is not None and ("entities" in data or "relations" in data) and set(data) <= {"entities", "relations"}
            and isinstance(data.get("entities", []), list) and isinstance(data.get("relations", []), list)):
        return {"entities": data.get("entities", []), "relations": data.get("relations", [])}
    return _delimited(text) or _salvage(text, data)


def _letters(text: str) -> str:
    return re.sub(r"\W+", "", text.casefold())


def _in_passage(name: Any, chunk: ChunkInput) -> bool:
    """Is the name written in the chunk or its title (ignoring case, spaces and punctuation)?"""
    letters = _letters(name) if isinstance(name, str) else ""
    return bool(letters) and letters in _letters(f"{chunk.title} {chunk.text}")


def _strength(value: Any) -> int:
    try:
        return max(1, min(10, int(float(value))))
    except (TypeError, ValueError):
        return 5


class LLMExtractor:
    """Extractor backed by a chat model; chunks are sent concurrently (the model client bounds how many at once).

    ``fallback`` (the spaCy extractor, in this process) extracts the chunks whose model answer yielded no entity, so a
    weak or failing model leaves no chunk without entities; it runs one chunk at a time, as spaCy is not thread-safe.
    """

    def __init__(self, llm: LLM, entity_types: Iterable[str], gleaning: int = 0, concurrency: int = 4, fallback: Extractor | None = None) -> None:
        self.llm = llm
        self.entity_types = [t.upper() for t in entity_types]
        self.schema = extraction_schema(self.entity_types)
        self.gleaning = gleaning
        self.fallback = fallback
        self._fallback_lock = threading.Lock()
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
                answer = self.llm.complete(messages, json_mode=True, json_schema=self.schema)
            except LLMError as error:
                log.warning("chunk %s: extraction call failed: %s", chunk.chunk_id, error)
                result.problems.append(f"model call failed: {error}")
                break
            suffix = " (gleaning)" if round_ else ""
            parsed = parse_extraction(answer)
            if parsed is None:
                log.warning("chunk %s: the model's answer was %s; kept nothing from it", chunk.chunk_id,
                            "empty" if not answer.strip() else "neither JSON nor the delimited format")
                result.problems.append(("empty model answer" if not answer.strip() else "unparseable model answer") + suffix)
                break
            if parsed.get("partial"):
                log.warning("chunk %s: the model's answer was cut off; kept %d entities and %d relations from it",
                            chunk.chunk_id, len(parsed["entities"]), len(parsed["relations"]))
                result.problems.append("partial model answer" + suffix)
            if parsed.get("off_schema"):
                log.warning("chunk %s: the model's answer was JSON of another shape; kept the %d entities and %d relations in it",
                            chunk.chunk_id, len(parsed["entities"]), len(parsed["relations"]))
                result.problems.append("off-schema model answer" + suffix)
            # every answer is held to the passage: an entity is named in its chunk or title (its provenance). A small
            # model lists the prompt's type names ("Person", "Organization"), its chat template's "model", or, held
            # to a schema, names it knows from elsewhere
            named = [r.get("name") if isinstance(r, dict) else r for r in parsed["entities"]]
            invented = [n for n in named if isinstance(n, str) and not _in_passage(n, chunk)]
            if invented:
                result.problems.append("names not in the passage dropped" + suffix + ": " + ", ".join(invented)[:200])
            parsed["entities"] = [r for r, n in zip(parsed["entities"], named) if not isinstance(n, str) or _in_passage(n, chunk)]
            records["entities"] += parsed["entities"]
            records["relations"] += parsed["relations"]
            messages = messages + [{"role": "assistant", "content": answer}, {"role": "user", "content": GLEANING_PROMPT}]
        self._to_mentions(chunk, records, result)
        if not result.entities and result.problems and self.fallback is not None:
            with self._fallback_lock:
                substitute = next(iter(self.fallback.extract([chunk])))
            result.entities, result.relations = substitute.entities, substitute.relations
            result.problems.append("extracted by spaCy instead")
        return result

    def _to_mentions(self, chunk: ChunkInput, records: dict[str, list], result: ChunkExtraction) -> None:
        keys: dict[str, tuple[str, str]] = {}  # lower-cased name -> (key, surface)
        for record in records["entities"]:
            if isinstance(record, str):
                record = {"name": record}  # a bare name where an object was asked for
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

    def release_workers(self) -> None:
        """Model calls run in threads of this process; only a spaCy fallback has worker processes to stop."""
        if self.fallback is not None:
            self.fallback.release_workers()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        if self.fallback is not None:
            self.fallback.close()


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
