"""Stand-ins for the two expensive models, for the fast tier (`make test-fast`).

They are deterministic and quick, not good: what the fast tier checks (incremental semantics, exact delete, the
store contract, the transports, crash recovery in process) holds whatever the models find, so a test that passes
with these and the real models tests graphdex, not a model. Tests that depend on what the real models find are
marked `e2e` and run in `make test` only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from graphdex.common.embedder import Calibration
from graphdex.common.resolution import normalize_key
from graphdex.ingest.extraction import ChunkExtraction, ChunkInput, EntityMention, RelationMention

_WORD = re.compile(r"[A-Za-z0-9]+")
# a run of capitalised words, joined by at most one lowercase particle ("Bank of England", "Leonardo da Vinci")
_NAME = re.compile(r"[A-Z][\w'-]*(?:\s+(?:(?:of|da|de|von|van|the)\s+)?[A-Z][\w'-]*)*")
_SENTENCE = re.compile(r"[^.!?]+[.!?]?")
_STOP_OPENERS = {"The", "A", "An", "It", "He", "She", "They", "In", "On", "At", "This", "That", "His", "Her", "Its"}


class HashingEmbedder:
    """Bags of hashed words and word pairs, L2-normalised: texts that share words are near, others far."""

    name = "test-hashing-384"
    dim = 384
    calibration = Calibration(0.7, 0.5)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = [w.lower() for w in _WORD.findall(text)]
            for feature in words + [f"{a} {b}" for a, b in zip(words, words[1:])]:
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                slot = int.from_bytes(digest[:4], "little") % self.dim
                out[row, slot] += 1.0 if digest[4] & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(_WORD.findall(t)) + 2 for t in texts]


class PatternExtractor:
    """Capitalised word runs are entities; two in one sentence are related by the words between them (a predicate
    when there are at most four, co-occurrence otherwise). The title entity joins the first sentence."""

    def extract(self, chunks: Iterable[ChunkInput]) -> Iterator[ChunkExtraction]:
        for chunk in chunks:
            yield self._one(chunk)

    def _one(self, chunk: ChunkInput) -> ChunkExtraction:
        result = ChunkExtraction(chunk.chunk_id)
        for number, match in enumerate(_SENTENCE.finditer(chunk.text)):
            sentence = match.group().strip()
            names = [(m.start(), m.end(), self._surface(m.group())) for m in _NAME.finditer(sentence)]
            names = [(s, e, n) for s, e, n in names if n]
            if number == 0 and chunk.first and chunk.title and chunk.title.lower() not in sentence.lower():
                names.insert(0, (0, 0, chunk.title))
            for _, _, surface in names:
                result.entities.append(EntityMention(normalize_key(surface), surface, "TOPIC", sentence))
            for (_, end, first), (start, _, second) in zip(names, names[1:]):
                a, b = normalize_key(first), normalize_key(second)
                if a == b:
                    continue
                between = [w.lower() for w in _WORD.findall(sentence[end:start])]
                keywords = [" ".join(between)] if 0 < len(between) <= 4 else []
                result.relations.append(RelationMention(a, b, first, second, keywords, sentence, "dependency" if keywords else "cooccurrence"))
        return result

    @staticmethod
    def _surface(text: str) -> str:
        words = text.split()
        while words and words[0] in _STOP_OPENERS:
            words.pop(0)
        return " ".join(words) if len(" ".join(words)) >= 2 else ""

    def release_workers(self) -> None:
        """Nothing runs beside this process."""

    def close(self) -> None:
        """Nothing to close."""
