"""Entity resolution keys, shared by the writer (ingest) and the reader (query) so both name an entity alike.

Merges only obvious variants, because a wrong merge corrupts the graph while a missed one only duplicates a node:
case and whitespace, typographic quotes, possessives, a leading "the", surrounding punctuation, and acronyms that the
same document defines ("World Health Organization (WHO)").
"""

from __future__ import annotations

import re
import unicodedata

_POSSESSIVE = re.compile(r"(?:'s|s')$")
_LEADING_ARTICLE = re.compile(r"^(?:the|a|an)\s+", re.IGNORECASE)
_EDGE_PUNCT = re.compile(r"^[\s\"'“”‘’`()\[\]{},.;:!?-]+|[\s\"'“”‘’`()\[\]{},.;:!?-]+$")
_SPACES = re.compile(r"\s+")
_ACRONYM_DEFINITION = re.compile(r"((?:[A-Z][\w&'-]*\s+(?:(?:of|and|for|the|on|in|de|&)\s+)*){1,9}[A-Z][\w&'-]*)\s+\(([A-Z][A-Za-z&]{1,9})\)")
#: "Mercury (planet)" -> "Mercury": the parenthetical in a title disambiguates, it is not part of the name
TITLE_DISAMBIGUATION = re.compile(r"\s*\([^()]*\)\s*$")
_SMALL_WORDS = {"of", "and", "for", "the", "on", "in", "de", "&"}
# entity types a lone surname may carry: a person, or a proper noun the NER left untyped (noun phrase, title)
_PERSON_OR_UNTYPED = {"PERSON", "CONCEPT", "TOPIC"}


def clean_surface(text: str) -> str:
    """A mention as it should be displayed: normalised quotes and spaces, no possessive, no leading article."""
    text = unicodedata.normalize("NFKC", text).replace("’", "'").replace("‘", "'")
    text = _SPACES.sub(" ", text).strip()
    if text.count("(") > text.count(")"):  # "World Health Organization (WHO" from a span cut mid-parenthesis
        text = text[: text.rindex("(")]
    text = _EDGE_PUNCT.sub("", text)
    text = _POSSESSIVE.sub("", text).rstrip()
    text = _LEADING_ARTICLE.sub("", text)
    return _EDGE_PUNCT.sub("", text)


def normalize_key(text: str) -> str:
    return clean_surface(text).casefold()


def name_core(name: str) -> str:
    """A name without the lowercase words at its edges ("Maharashtra state" -> "Maharashtra", "north-west Iowa" ->
    "Iowa"): the entity a qualified mention refers to, which other passages and its own article name bare. "" when
    the name has no such words, or nothing capitalised is left. Numbers stay ("1920 Summer Olympics")."""
    words = name.split()
    while words and not (words[0][:1].isupper() or words[0][:1].isdigit()):
        words.pop(0)
    while words and not (words[-1][:1].isupper() or words[-1][:1].isdigit()):
        words.pop()
    core = " ".join(words)
    return core if core != name.strip() and any(c.isupper() for c in core) else ""


def find_acronyms(text: str) -> dict[str, str]:
    """Acronym key -> long-form key, for acronyms the text defines as "Long Form Name (LFN)"."""
    found: dict[str, str] = {}
    for match in _ACRONYM_DEFINITION.finditer(text):
        words = match.group(1).split()
        acronym = match.group(2)
        letters = acronym.replace("&", "").upper()
        # take the shortest tail of the phrase whose significant initials spell the acronym
        for start in range(len(words) - 1, -1, -1):
            significant = [w for w in words[start:] if w.lower() not in _SMALL_WORDS]
            initials = "".join(w[0] for w in significant).upper()
            if initials == letters:
                found[normalize_key(acronym)] = normalize_key(" ".join(words[start:]))
                break
    return found


def resolve_key(surface: str, acronyms: dict[str, str]) -> str:
    key = normalize_key(surface)
    return acronyms.get(key, key)


def surname_aliases(mentions: list[tuple[str, str]]) -> dict[str, str]:
    """Within one document, a lone surname ("Farrow") that ends exactly one full person name the document mentions
    ("John Farrow") is that person: biographies and film articles name someone in full once, then by surname.

    ``mentions`` are (key, entity type) pairs of the document; returns surname key -> full-name key. A lone word
    the document names as something else (a place, an organisation...) is no surname, and a name ending "of X" has
    none: "France" is not Marie Zéphyrine of France.
    """
    types_of: dict[str, set[str]] = {}
    for key, type_ in mentions:
        types_of.setdefault(key, set()).add(type_)
    full_names: dict[str, set[str]] = {}
    for key, type_ in mentions:
        words = key.split()
        if type_ == "PERSON" and len(words) >= 2 and words[-2] not in _SMALL_WORDS:
            full_names.setdefault(words[-1], set()).add(key)
    return {surname: next(iter(keys)) for surname, keys in full_names.items()
            if len(keys) == 1 and types_of.get(surname, set()) <= _PERSON_OR_UNTYPED}
