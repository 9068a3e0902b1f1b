import json

import numpy as np

from graphdex.graph.model import NodeType
from graphdex.graph.vector_index import HnswVectorIndex, VectorIndexSet


def unit(rows: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(rows, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_add_search_replace_delete_and_grow():
    index = HnswVectorIndex(16, capacity=4)
    vectors = unit(50)
    index.add([f"n{i}" for i in range(50)], vectors)  # grows past the initial capacity
    assert len(index) == 50
    hits = index.search(vectors[7], 3)
    assert hits[0][0] == "n7" and abs(hits[0][1] - 1.0) < 1e-4
    index.add(["n7"], vectors[8:9])  # replacing keeps one entry per id
    assert len(index) == 50
    assert index.search(vectors[8], 2)[0][0] in {"n7", "n8"}
    index.delete(["n8", "n7", "unknown"])
    assert len(index) == 48
    assert all(node not in {"n7", "n8"} for node, _ in index.search(vectors[8], 10))
    index.add(["fresh"], vectors[8:9])  # reuses a deleted slot
    assert index.search(vectors[8], 1)[0][0] == "fresh"
    assert index.search(vectors[0], 500)  # k larger than the index is clamped


def test_set_saves_atomically_by_generation(tmp_path):
    indexes = VectorIndexSet(tmp_path, 16, "test-model")
    vectors = unit(10)
    indexes[NodeType.ENTITY].add([f"e{i}" for i in range(10)], vectors)
    indexes.save()
    indexes[NodeType.ENTITY].delete(["e0"])
    indexes.save()
    assert json.loads((tmp_path / "current.json").read_text())["generation"] == 2
    assert not list(tmp_path.glob("*.1.*")), "the previous generation is removed once the new one is in place"
    loaded = VectorIndexSet(tmp_path, 16, "test-model")
    assert loaded[NodeType.ENTITY].ids() == {f"e{i}" for i in range(1, 10)}
    np.testing.assert_allclose(loaded[NodeType.ENTITY].get(["e3"])[0], vectors[3], atol=1e-6)


def test_crash_before_pointer_flip_keeps_previous_generation(tmp_path):
    indexes = VectorIndexSet(tmp_path, 16, "test-model")
    indexes[NodeType.CHUNK].add(["c1"], unit(1))
    indexes.save()
    # a later save that died after writing its files but before flipping current.json
    (tmp_path / "chunk.2.bin").write_bytes(b"partial garbage")
    loaded = VectorIndexSet(tmp_path, 16, "test-model")
    assert loaded[NodeType.CHUNK].ids() == {"c1"}


def test_refuses_vectors_of_another_model(tmp_path):
    VectorIndexSet(tmp_path, 16, "model-a").save()
    try:
        VectorIndexSet(tmp_path, 32, "model-b")
    except Exception as error:
        assert "model-a" in str(error) and "GRAPHDEX_DATA_DIR" in str(error)
    else:
        raise AssertionError("a dimension mismatch must be refused")
