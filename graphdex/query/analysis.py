"""Turning a question into retrieval keys: low-level keywords (specific names) and high-level ones (themes)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from graphdex.common.resolution import clean_surface, normalize_key

_QUESTION_WORDS = {"who", "what", "when", "where", "which", "why", "how", "whom", "whose"}


@dataclass
class QueryKeywords:
    low_level: list[str] = field(default_factory=list)  # entity-like phrases, matched against entity names
    high_level: list[str] = field(default_factory=list)  # themes, matched against relations and communities
    spans: list[tuple[int, int, str]] = field(default_factory=list)  # (start, end, text) word n-grams, longest first
    source: str = "spacy"  # who picked low_level and high_level: "spacy" or "llm"
    fallback_reason: str = ""  # why spaCy's were used although a model is configured

MAX_NGRAM = 16  # words: titles of works run long ("Alexander and the Terrible, Horrible, No Good, Very Bad Day")
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([?.!,;:])")


def without_names(question: str, keywords: QueryKeywords) -> str:
    """The question with the names it mentions taken out ("What is the population of the state where Dodge City
    Regional Airport is located?" -> "What is the population of the state where is located?"): what it asks of
    the passages past the one its names lead to. The last passage of a chain names none of the question's names,
    so its similarity to the whole question is mostly the first passage's wording. "" when nothing is left or
    nothing was taken out."""
    remainder = question
    for phrase in sorted(keywords.low_level, key=len, reverse=True):
        remainder = remainder.replace(phrase, " ")
    remainder = _SPACE_BEFORE_PUNCT.sub(r"\1", _SPACES.sub(" ", remainder)).strip()
    return remainder if remainder != question.strip() and any(c.isalnum() for c in remainder) else ""


class QueryAnalyzer(Protocol):
    """What the query engine asks of an analyzer: spaCy's below, or a chat model's (query/llm_keywords.py)."""

    def analyze(self, question: str) -> QueryKeywords: ...


class SpacyQueryAnalyzer:
    """Keywords from spaCy: named entities and proper noun phrases are low level; other noun phrases and the main
    verbs are high level."""

    def __init__(self, nlp, excluded_types: Iterable[str] = ()) -> None:
        """``excluded_types``: the entity types the extractor leaves out (dates, numbers): the graph has no node
        for "last year", and the vector fallback would match it to whatever entity is nearest ("past years")."""
        self._nlp = nlp
        self._excluded = frozenset(excluded_types)

    def analyze(self, question: str) -> QueryKeywords:
        doc = self._nlp(question)
        low: list[str] = []
        high: list[str] = []
        covered: set[int] = set()

        def add(target: list[str], text: str) -> None:
            text = clean_surface(text)
            if len(text) >= 2 and normalize_key(text) not in _QUESTION_WORDS and text not in target:
                target.append(text)

        for ent in doc.ents:
            if ent.label_ not in self._excluded:
                add(low, ent.text)
            covered.update(range(ent.start, ent.end))
        for chunk in doc.noun_chunks:
            if any(i in covered for i in range(chunk.start, chunk.end)):
                continue
            tokens = [t for t in chunk if not t.is_stop and t.pos_ not in ("DET", "PRON", "PUNCT")]
            if not tokens:
                continue
            phrase = doc[tokens[0].i : tokens[-1].i + 1].text
            add(low if any(t.pos_ == "PROPN" for t in tokens) else high, phrase)
        for token in doc:
            if token.pos_ == "VERB" and not token.is_stop:
                add(high, token.lemma_)
        return QueryKeywords(low, high, self._spans(doc))

    @staticmethod
    def _spans(doc) -> list[tuple[int, int, str]]:
        """Every n-gram that could be an entity's whole name: it neither starts nor ends with a stop word or
        punctuation and, when the question uses capitals at all, it holds a name-like word (a proper noun, part of a
        named entity, or capitalised other than first). Names that spaCy's NER misses in a short question (titles of
        works) are found this way, while the common nouns that say what is asked ("the composer of", "whose
        father") are left to relation matching instead of being taken for the entity of the same name."""
        cased = any(t.text[:1].isupper() for t in doc[1:])
        name_like = [not cased or t.pos_ == "PROPN" or bool(t.ent_type_) or (t.i > 0 and t.text[:1].isupper()) for t in doc]
        # a capitalised stop word can open or close a title ("His Name Is Nobody", "The Cow and I")
        edge_ok = [not t.is_punct and (not t.is_stop or (cased and t.i > 0 and t.text[:1].isupper())) for t in doc]
        spans = []
        for start in range(len(doc)):
            if not edge_ok[start]:
                continue
            for end in range(start + 1, min(len(doc), start + MAX_NGRAM) + 1):
                if edge_ok[end - 1] and any(name_like[start:end]) and not all(t.is_stop for t in doc[start:end]):
                    spans.append((start, end, doc[start:end].text))
        spans.sort(key=lambda s: (s[0] - s[1], s[0]))
        return spans
