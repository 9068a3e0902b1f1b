"""Chat models through litellm: any provider (OpenAI, Anthropic, Azure, Ollama, vLLM...), with what a paying user
needs around it: a persistent response cache, bounded concurrency, retry with backoff, and call/token accounting.

Why a cache keyed by model + messages: re-ingesting, re-running a benchmark or re-deriving a description must not pay
twice for the same prompt, and a replayed answer makes extraction reproducible.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from graphdex.common.errors import UpstreamFailed
from graphdex.common.settings import Settings

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]
JsonSchema = dict[str, Any]


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def parse_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in a model's answer: code fences, prose around it, trailing commas and raw line breaks
    or tabs inside strings (which JSON wants escaped, and models and older grammar-constrained servers write) are
    tolerated."""
    text = _FENCE.sub("", text.strip())
    start = text.find("{")
    while start != -1:
        depth = 0
        for end in range(start, len(text)):
            if text[end] == "{":
                depth += 1
            elif text[end] == "}":
                depth -= 1
                if depth == 0:
                    candidate = _TRAILING_COMMA.sub(r"\1", text[start : end + 1])
                    try:
                        value = json.loads(candidate, strict=False)
                    except json.JSONDecodeError:
                        break
                    return value if isinstance(value, dict) else None
        start = text.find("{", start + 1)
    return None


def parse_cut_json(text: str) -> dict[str, Any] | list[Any] | None:
    """The first JSON object or array of an answer that was cut off (an output token limit, a model that loops), with
    what it completed: the open brackets are closed after the last complete element of an array, or the last complete
    member of the outermost object. An object inside an array is never cut, so a half-written record is dropped whole
    rather than kept with its fields missing. None when nothing complete is in it."""
    text = _FENCE.sub("", text.strip())
    start = min((i for i in (text.find("{"), text.find("[")) if i != -1), default=-1)
    if start == -1:
        return None
    cuts: list[tuple[int, str]] = []  # (end of a complete part, the brackets that close it)
    stack: list[str] = []
    in_string = escaped = False
    for i in range(start, len(text)):
        char = text[i]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]":
            if not stack or stack.pop() != char:
                break  # not JSON from here on
            if not stack:
                cuts.append((i + 1, ""))
                break
            if stack[-1] == "]":
                cuts.append((i + 1, "".join(reversed(stack))))
        elif char == "," and (stack[-1] == "]" or len(stack) == 1):
            cuts.append((i, "".join(reversed(stack))))
    for end, closing in reversed(cuts[-_CUT_ATTEMPTS:]):
        try:
            value = json.loads(_TRAILING_COMMA.sub(r"\1", text[start:end] + closing), strict=False)
        except json.JSONDecodeError:
            continue
        if isinstance(value, (dict, list)):
            return value
    return None


_CUT_ATTEMPTS = 20  # a cut point whose prefix does not parse is followed by earlier ones; bounded, as answers can be long


class LLMError(UpstreamFailed):
    """The model could not be called (after retries) or is misconfigured; the message says what to do."""

    summary = "the language model failed"


@dataclass
class Usage:
    """Calls and tokens, counted per ingest or per query so users see what they pay for."""

    calls: int = 0
    cached: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, *, calls: int = 0, cached: int = 0, retries: int = 0, prompt: int = 0, completion: int = 0) -> None:
        with self._lock:
            self.calls += calls
            self.cached += cached
            self.retries += retries
            self.prompt_tokens += prompt
            self.completion_tokens += completion

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"calls": self.calls, "cached": self.cached, "retries": self.retries,
                    "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


_SCOPE: ContextVar[Usage | None] = ContextVar("graphdex_llm_usage_scope", default=None)


@contextmanager
def counting_usage() -> Iterator[Usage]:
    """Counts the model calls made in this thread (context) while open: the cost of one query."""
    usage = Usage()
    token = _SCOPE.set(usage)
    try:
        yield usage
    finally:
        _SCOPE.reset(token)


class LLM(Protocol):
    model: str
    usage: Usage

    def complete(self, messages: Messages, *, json_mode: bool = False, json_schema: JsonSchema | None = None,
                 max_tokens: int | None = None) -> str: ...

    def stream(self, messages: Messages, *, json_schema: JsonSchema | None = None) -> Iterator[str]: ...


class ResponseCache:
    """model + messages -> response text, in SQLite (safe across threads and processes)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, model TEXT, response TEXT, created REAL)")
        self._lock = threading.Lock()

    @staticmethod
    def key(model: str, messages: Messages, json_mode: bool, max_tokens: int | None = None, json_schema: JsonSchema | None = None) -> str:
        # an answer cut at a token limit, or held to a schema, is not the answer to the same prompt without one (and
        # keys made before there were limits or schemas stay valid)
        parts = [model, messages, json_mode] + ([max_tokens] if max_tokens else []) + ([json_schema] if json_schema else [])
        return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def put(self, key: str, model: str, response: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)", (key, model, response, time.time()))


def import_litellm(why: str):
    """litellm, set up to work offline (its bundled price table, not a download at import) and quietly."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        import litellm
    except ImportError as error:
        raise LLMError(f"{why} but litellm is not installed: pip install 'graphdex[llm]'") from error
    litellm.suppress_debug_info = True
    return litellm


class LiteLLMChat:
    """A chat model called through litellm."""

    def __init__(self, model: str, *, api_base: str | None = None, api_key: str | None = None, timeout: float = 60.0,
                 max_retries: int = 4, concurrency: int = 4, cache: ResponseCache | None = None, temperature: float = 0.0,
                 max_tokens: int | None = None) -> None:
        self._litellm = import_litellm("GRAPHDEX_LLM_MODEL is set")
        self.model = model
        self.usage = Usage()
        self._options = {k: v for k, v in {"api_base": api_base, "api_key": api_key}.items() if v}
        self._timeout = timeout
        self._max_retries = max_retries
        self._slots = threading.BoundedSemaphore(concurrency)
        self._cache = cache
        self._temperature = temperature
        self._max_tokens = max_tokens

    def _token_limit(self, wanted: int | None) -> int | None:
        """The tighter of the call's own bound and the configured one (None: the provider's default)."""
        limits = [n for n in (wanted, self._max_tokens) if n]
        return min(limits) if limits else None

    def _count(self, **amounts: int) -> None:
        self.usage.add(**amounts)
        scope = _SCOPE.get()
        if scope is not None:
            scope.add(**amounts)

    def _transient(self, error: Exception) -> bool:
        exceptions = self._litellm.exceptions
        transient = (exceptions.RateLimitError, exceptions.Timeout, exceptions.APIConnectionError, exceptions.ServiceUnavailableError,
                     exceptions.InternalServerError)
        return isinstance(error, transient)

    def _call(self, messages: Messages, json_mode: bool, stream: bool, max_tokens: int | None, json_schema: JsonSchema | None = None):
        options: dict[str, Any] = dict(self._options)
        if json_schema:
            # OpenAI's structured-output shape, which litellm passes on and llama.cpp, vLLM and Ollama enforce as a grammar
            # whatever "strict" says; not strict, because OpenAI's strict subset refuses length bounds (a small model's
            # statement needs one, or it loops until the token limit and never names its sources)
            options["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": json_schema, "strict": False}}
        elif json_mode:
            options["response_format"] = {"type": "json_object"}
        if max_tokens:
            options["max_tokens"] = max_tokens
        for attempt in range(self._max_retries + 1):
            try:
                with self._slots:
                    return self._litellm.completion(model=self.model, messages=messages, temperature=self._temperature, timeout=self._timeout,
                                                    stream=stream, num_retries=0, **options)
            except Exception as error:  # litellm maps every provider's errors onto its own exception types
                if not self._transient(error) or attempt == self._max_retries:
                    raise LLMError(f"{self.model}: {type(error).__name__}: {error}") from error
                delay = min(30.0, 0.5 * 2 ** attempt) * (0.5 + random.random())
                log.warning("%s: %s, retrying in %.1fs (attempt %d of %d)", self.model, type(error).__name__, delay, attempt + 1, self._max_retries)
                self._count(retries=1)
                time.sleep(delay)
        raise AssertionError("unreachable")

    def complete(self, messages: Messages, *, json_mode: bool = False, json_schema: JsonSchema | None = None,
                 max_tokens: int | None = None) -> str:
        """The model's answer; ``max_tokens`` bounds it for calls whose answer is short by nature (a small model that
        loops writes until the limit); ``json_schema`` asks the server to hold the answer to that schema."""
        limit = self._token_limit(max_tokens)
        key = ResponseCache.key(self.model, messages, json_mode, limit, json_schema) if self._cache else ""
        if self._cache and (hit := self._cache.get(key)) is not None:
            self._count(cached=1)
            return hit
        response = self._call(messages, json_mode, stream=False, max_tokens=limit, json_schema=json_schema)
        text = response.choices[0].message.content or ""
        usage = getattr(response, "usage", None)
        self._count(calls=1, prompt=getattr(usage, "prompt_tokens", 0) or 0, completion=getattr(usage, "completion_tokens", 0) or 0)
        if self._cache and text:
            self._cache.put(key, self.model, text)
        return text

    def stream(self, messages: Messages, *, json_schema: JsonSchema | None = None) -> Iterator[str]:
        """Text deltas as the model writes them (a cached answer comes back as one piece)."""
        limit = self._token_limit(None)
        key = ResponseCache.key(self.model, messages, False, limit, json_schema) if self._cache else ""
        if self._cache and (hit := self._cache.get(key)) is not None:
            self._count(cached=1)
            yield hit
            return
        parts: list[str] = []
        prompt_tokens = completion_tokens = 0
        for chunk in self._call(messages, False, stream=True, max_tokens=limit, json_schema=json_schema):
            delta = chunk.choices[0].delta.content if chunk.choices else None
            if delta:
                parts.append(delta)
                yield delta
            usage = getattr(chunk, "usage", None)
            if usage:
                prompt_tokens = getattr(usage, "prompt_tokens", 0) or prompt_tokens
                completion_tokens = getattr(usage, "completion_tokens", 0) or completion_tokens
        self._count(calls=1, prompt=prompt_tokens, completion=completion_tokens)
        if self._cache and parts:
            self._cache.put(key, self.model, "".join(parts))


def make_llm(settings: Settings, data_dir: Path) -> LiteLLMChat | None:
    """The configured chat model, or None when GRAPHDEX_LLM_MODEL is unset (the spaCy-only path)."""
    if not settings.llm_model:
        return None
    cache = ResponseCache(data_dir / "llm-cache.sqlite") if settings.llm_cache else None
    return LiteLLMChat(settings.llm_model, api_base=settings.llm_api_base, api_key=settings.llm_api_key, timeout=settings.llm_timeout,
                       max_retries=settings.llm_max_retries, concurrency=settings.llm_concurrency, cache=cache, max_tokens=settings.llm_max_tokens)
