"""Query keywords from a chat model: low level (the specific names a question asks about) and high level (its themes).

The spaCy analysis still runs: its word n-grams find entity names exactly, and its keywords are the fallback when the
model fails or answers something unusable, so a flaky model never fails a query.
"""

from __future__ import annotations

import logging

from graphdex.common.llm import LLM, LLMError, parse_json_object
from graphdex.query.analysis import QueryKeywords, SpacyQueryAnalyzer

log = logging.getLogger(__name__)

KEYWORDS_PROMPT = """Pick the search keywords of a question for a knowledge graph.
- "low_level": the specific entities, names, titles and terms the question mentions (as written in the question).
- "high_level": the broader themes, relations or concepts it is about.
Answer with JSON only: {"low_level": ["..."], "high_level": ["..."]}

Question: """


class LLMQueryAnalyzer:
    def __init__(self, llm: LLM, fallback: SpacyQueryAnalyzer) -> None:
        self.llm = llm
        self.fallback = fallback

    def analyze(self, question: str) -> QueryKeywords:
        keywords = self.fallback.analyze(question)
        try:
            data = parse_json_object(self.llm.complete([{"role": "user", "content": KEYWORDS_PROMPT + question}], json_mode=True))
        except LLMError as error:
            log.warning("keyword extraction by the model failed, using spaCy's: %s", error)
            return keywords
        low = _strings(data, "low_level") if data else []
        high = _strings(data, "high_level") if data else []
        if not low and not high:
            log.warning("the model returned no usable keywords, using spaCy's")
            return keywords
        return QueryKeywords(low or keywords.low_level, high or keywords.high_level, keywords.spans)


def _strings(data: dict, key: str) -> list[str]:
    values = data.get(key)
    if not isinstance(values, list):
        return []
    return [v.strip() for v in values if isinstance(v, str) and v.strip()][:10]
