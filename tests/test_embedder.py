"""The local embedder's int8 arithmetic: close to the float model, and a text's vector independent of its call."""

from __future__ import annotations

import numpy as np
import pytest

from graphdex.common.embedder import EmbedderError, OnnxMiniLMEmbedder, shipped_model
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


@pytest.fixture(scope="module")
def float_embedder() -> OnnxMiniLMEmbedder:
    return OnnxMiniLMEmbedder(threads=2, arithmetic="float")


def test_int8_vectors_are_close_to_the_float_model(embedder, float_embedder):
    assert embedder.name != float_embedder.name, "indexes built with one arithmetic must refuse the other"
    cosines = np.sum(embedder.embed(TEXTS) * float_embedder.embed(TEXTS), axis=1)
    assert cosines.min() > 0.98, cosines
    # and still an embedding: related texts closer than unrelated ones
    vectors = embedder.embed(["Robert Wiene, film director", "a German director of silent films", "the price of copper in 2020"])
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.1


def test_a_text_gets_the_same_vector_in_any_call(embedder):
    """Activations are quantised per token, so neither the texts sharing a call nor the padding they bring move a
    vector (with one scale per call they moved it down to cosine 0.97)."""
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
        OnnxMiniLMEmbedder(model_path=path, cache_dir=tmp_path / "cache")
