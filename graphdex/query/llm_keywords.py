"""Query keywords from a chat model: low level (the specific names a question asks about) and high level (its themes).

The spaCy analysis still runs: its word n-grams find entity names exactly, and its keywords are the fallback when the
model fails or answers something unusable, so a flaky model never fails a query. Unusable, as a small model (Gemma 3
270M) shows: the prompt's "..." placeholders copied back, a string where a list was asked for, and names that are not
in the question at all (low-level keywords must be, as the prompt asks for them as written there).
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from graphdex.common.llm import LLM, LLMError, parse_json_object
from graphdex.query.analysis import QueryAnalyzer, QueryKeywords

log = logging.getLogger(__name__)

KEYWORDS_PROMPT = """Pick the search keywords of a question for a knowledge graph.
- "low_level": the specific entities, names, titles and terms the question mentions (as written in the question).
- "high_level": the broader themes, relations or concepts it is about.
Answer with JSON only: an object with the list "low_level" and the list "high_level", each of strings.

Question: """

MAX_TOKENS = 200  # ten keywords of each level fit easily; a model that loops is cut here rather than at its context size
MAX_KEYWORDS = 10
_KEYWORD_LIST = {"type": "array", "items": {"type": "string", "minLength": 1, "maxLength": 80}, "maxItems": MAX_KEYWORDS}
# held by servers that enforce a schema (llama.cpp, vLLM, Ollama, OpenAI): the answer always parses, and the length
# bounds keep a looping model from spending its whole token budget on one keyword
KEYWORDS_SCHEMA = {"type": "object", "properties": {"low_level": _KEYWORD_LIST, "high_level": _KEYWORD_LIST},
                   "required": ["low_level", "high_level"], "additionalProperties": False}
_WORD = re.compile(r"\w")


class LLMQueryAnalyzer:
    def __init__(self, llm: LLM, fallback: QueryAnalyzer) -> None:
        self.llm = llm
        self.fallback = fallback

    def analyze(self, question: str) -> QueryKeywords:
        keywords = self.fallback.analyze(question)
        try:
            answer = self.llm.complete([{"role": "user", "content": KEYWORDS_PROMPT + question}], json_mode=True, json_schema=KEYWORDS_SCHEMA,
                                       max_tokens=MAX_TOKENS)
        except LLMError as error:
            log.warning("keyword extraction by the model failed, using spaCy's: %s", error)
            return replace(keywords, fallback_reason="model call failed")
        data = parse_json_object(answer) or {}
        listed = _strings(data, "low_level")
        low = [k for k in listed if k.casefold() in question.casefold()]
        high = _strings(data, "high_level")
        reason = ("its low-level keywords are not in the question" if listed and not low  # it wrote about something else
                  else "no usable keywords in the model's answer" if not low and not high else "")
        if reason:
            log.warning("%s, using spaCy's", reason)
            return replace(keywords, fallback_reason=reason)
        return QueryKeywords(low or keywords.low_level, high or keywords.high_level, keywords.spans, source="llm")


def _strings(data: dict, key: str) -> list[str]:
    """The keywords listed under ``key``: a lone string counts as a list of one; words only (no "..." placeholder)."""
    values = data.get(key)
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        return []
    return [v.strip() for v in values if isinstance(v, str) and _WORD.search(v)][:MAX_KEYWORDS]
