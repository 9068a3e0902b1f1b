import networkx as nx
import numpy as np
import pytest

from graphdex.graph.leiden import detect_communities, local_communities, merge_edges
from graphdex.graph.model import Edge, EdgeType, Node, NodeType
from graphdex.graph.projection_keeper import FollowingProjection
from graphdex.graph.sqlite_store import SqliteGraphStore


def test_personalized_pagerank_matches_networkx(tmp_path):
    store = SqliteGraphStore(tmp_path)
    nodes = [Node(f"e{i}", NodeType.ENTITY, {"name": str(i)}, {}) for i in range(8)]
    pairs = [(0, 1), (1, 2), (2, 3), (3, 0), (3, 4), (4, 5), (5, 6), (6, 7), (7, 4)]
    store.write(nodes, [Edge(f"e{a}", EdgeType.RELATED_TO, f"e{b}", {}, {}) for a, b in pairs])
    projection = store.projection()
    ours = projection.personalized_pagerank({"e0": 1.0}, alpha=0.15, iterations=200)
    graph = nx.Graph([(f"e{a}", f"e{b}") for a, b in pairs])
    reference = nx.pagerank(graph, alpha=0.85, personalization={"e0": 1.0}, tol=1e-12, max_iter=1000)
    rows = projection.rows.rows_of(reference)
    np.testing.assert_allclose(ours[[rows[i] for i in reference]], list(reference.values()), atol=1e-6)
    assert projection.version == store.version


def test_communities_split_two_cliques_deterministically():
    left = [(f"a{i}", f"a{j}", 1.0) for i in range(5) for j in range(i + 1, 5)]
    right = [(f"b{i}", f"b{j}", 1.0) for i in range(5) for j in range(i + 1, 5)]
    edges = left + right + [("a0", "b0", 1.0)]
    first = detect_communities(edges, min_size=3)
    assert sorted(map(tuple, first)) == [tuple(f"a{i}" for i in range(5)), tuple(f"b{i}" for i in range(5))]
    assert detect_communities(list(reversed(edges)), min_size=3) == first, "input order must not matter"
    assert detect_communities(edges, min_size=6) == []


def test_a_community_over_the_size_limit_is_split_along_its_weakest_links():
    """Four cliques of 6 chained by single edges, with a dominant rest of the graph: modularity joins the cliques
    into one community (its resolution limit); with at most 12 members, each part is a union of whole cliques."""
    cliques = [[f"q{c}n{i}" for i in range(6)] for c in range(4)]
    edges = [(a, b, 1.0) for clique in cliques for i, a in enumerate(clique) for b in clique[i + 1:]]
    edges += [(cliques[c][0], cliques[c + 1][0], 1.0) for c in range(3)]
    nodes = [n for clique in cliques for n in clique]
    merged = merge_edges(edges)
    strength = {n: sum(w for pair, w in merged.items() if n in pair) for n in nodes}
    total = 100 * sum(merged.values())  # the cliques are a small part of a large graph
    whole = local_communities(nodes, merged, strength, total)
    assert [len(g) for g in whole] == [24], "a small part of a large graph: modularity cannot tell the cliques apart"
    bounded = local_communities(nodes, merged, strength, total, max_size=12)
    assert all(len(g) <= 12 for g in bounded) and sorted(n for g in bounded for n in g) == sorted(nodes)
    for group in bounded:
        assert all(set(clique) <= set(group) or not set(clique) & set(group) for clique in cliques), "no clique is cut"
    shuffled = dict(reversed(list(merged.items())))
    assert local_communities(list(reversed(nodes)), shuffled, strength, total, max_size=12) == bounded, "input order must not matter"
    initial = {member: group[0] for group in bounded for member in group}
    assert local_communities(nodes, merged, strength, total, initial=initial, max_size=12) == bounded, \
        "a refresh starting from bounded communities finds them again (the base resolution merges them, the split undoes it)"

    # the same with each clique as one vertex standing for its 6 members (as a refresh sees communities it keeps):
    # the bound counts members, so the vertices are grouped two by two at most
    vertices = [clique[0] for clique in cliques]
    links = merge_edges((cliques[c][0], cliques[c + 1][0], 1.0) for c in range(3))
    weight = {v: sum(strength[n] for n in clique) for v, clique in zip(vertices, cliques)}
    sized = local_communities(vertices, links, weight, total, min_size=6, max_size=12, sizes={v: 6 for v in vertices})
    assert sized and all(len(g) <= 2 for g in sized), "at most two 6-member vertices fit in 12"
    assert local_communities(vertices, links, weight, total, min_size=6, sizes={v: 6 for v in vertices}) == [sorted(vertices)], \
        "without the bound they are one community: the bound, not the clustering, split them"


def test_a_following_projection_serves_the_last_one_and_follows_the_change_log_in_the_background(tmp_path):
    store = SqliteGraphStore(tmp_path)
    store.write([Node("e0", NodeType.ENTITY, {}, {}), Node("e1", NodeType.ENTITY, {}, {})], [Edge("e0", EdgeType.RELATED_TO, "e1", {}, {})])
    keeper = FollowingProjection(store, spacing=0.0)
    first = keeper.get()
    assert first.version == store.version
    store.write([Node("e2", NodeType.ENTITY, {}, {})], [Edge("e1", EdgeType.RELATED_TO, "e2", {}, {})])
    assert keeper.get() is first, "a query after a write is served the last complete projection, not a rebuild"
    keeper.wait(timeout=10)
    fresh = keeper.get()
    assert fresh is not first and fresh.version == store.version and "e2" in fresh.rows.rows_of(["e2"])
    assert fresh.matrix.base_size == first.matrix.base_size and fresh.matrix.overlay, "followed by change, not rebuilt"
    keeper.close()


def test_a_truncated_walk_reads_only_what_it_reaches_and_keeps_the_leading_rows(tmp_path):
    """Two rings of 200 entities, each linked to its four nearest: a walk seeded in one never reads the other; the
    truncated walk stops short of where the exact one spreads, and keeps its leading rows and their scores."""
    store = SqliteGraphStore(tmp_path)
    nodes = [Node(f"e{i}", NodeType.ENTITY, {"name": str(i)}, {}) for i in range(400)]
    edges = [(ring + i, ring + (i + step) % 200) for ring in (0, 200) for i in range(200) for step in (1, 2)]
    store.write(nodes, [Edge(f"e{a}", EdgeType.RELATED_TO, f"e{b}", {}, {}) for a, b in edges])
    projection = store.projection()
    seeds = {"e10": 1.0, "e14": 0.5}
    exact = projection.personalized_pagerank(seeds, alpha=0.3, iterations=10)
    truncated = projection.personalized_pagerank(seeds, alpha=0.3, iterations=10, tolerance=1e-4)
    other = list(projection.rows.rows_of(f"e{i}" for i in range(200, 400)).values())
    assert not exact[other].any() and not truncated[other].any()
    assert 0 < np.count_nonzero(truncated) < np.count_nonzero(exact), "the tolerance must cut the walk short"
    top = np.argsort(-exact, kind="stable")[:10]
    assert list(np.argsort(-truncated, kind="stable")[:10]) == list(top)
    np.testing.assert_allclose(truncated[top], exact[top], rtol=0.02)
    np.testing.assert_array_equal(projection.personalized_pagerank(seeds, 0.3, 10, tolerance=0.0), exact)


def test_a_walk_kept_sparse_gives_the_dense_walks_scores_bit_for_bit(tmp_path, monkeypatch):
    """While few nodes hold a score, a step sums only the entries it reads (no pass over every row); the scores must
    be those of the dense step (``TransitionMatrix.spread`` at every step), over base and overlay columns alike."""
    store = SqliteGraphStore(tmp_path)
    nodes = [Node(f"e{i}", NodeType.ENTITY, {"name": str(i)}, {}) for i in range(600)]
    rng = np.random.default_rng(7)
    pairs = {(int(a), int(b)) for a, b in rng.integers(0, 600, size=(1500, 2)) if a != b}
    pairs = sorted(pairs)
    store.write(nodes, [Edge(f"e{a}", EdgeType.RELATED_TO, f"e{b}", {}, {}) for a, b in pairs[:1000]])
    store.write([], [Edge(f"e{a}", EdgeType.RELATED_TO, f"e{b}", {}, {}) for a, b in pairs[1000:]])  # overlay columns
    projection = store.projection()
    assert projection.matrix.overlay, "the second write must leave replaced columns for the walk to read"

    spread = projection.matrix.spread

    def dense(seeds: dict[str, float], alpha: float, iterations: int, tolerance: float) -> np.ndarray:
        n = projection.size
        restart = np.zeros(n, dtype=np.float32)
        for node_id, row in projection.rows.rows_of(seeds).items():
            restart[row] += seeds[node_id]
        restart /= restart[restart > 0].sum()  # the seeds' weights summed in row order, as the walk does
        scores, restarting = restart.copy(), alpha * restart
        for _ in range(iterations):
            scores = spread(scores, np.flatnonzero(scores >= tolerance))
            scores *= 1 - alpha
            scores += restarting
        return scores

    dense_steps: list[int] = []
    sparse_steps = []
    monkeypatch.setattr(projection.matrix, "spread", lambda *args: dense_steps.append(1) or spread(*args))
    for seeds in ({"e3": 1.0}, {"e10": 2.0, "e400": 0.5, "e599": 1.0}):
        for tolerance in (1e-2, 1e-3, 1e-5):
            dense_steps.clear()
            walked = projection.personalized_pagerank(seeds, alpha=0.3, iterations=10, tolerance=tolerance)
            sparse_steps.append(10 - len(dense_steps))
            np.testing.assert_array_equal(walked, dense(seeds, 0.3, 10, tolerance))
    assert max(sparse_steps) > 0 and min(sparse_steps) < 10, f"both kinds of step must be compared: {sparse_steps}"


def test_the_compiled_walk_step_refuses_indexes_outside_its_arrays():
    """graphdex/graph/_walk.c writes into arrays by the indexes it is given: a wrong one must be an error, never a
    write outside an array (which would corrupt memory instead of failing)."""
    from graphdex.graph import _walk

    indptr = np.array([0, 2, 3], dtype=np.int32)  # two columns: rows 0 and 1, then row 2
    indices, data = np.array([0, 1, 2], dtype=np.int32), np.array([0.5, 0.5, 1.0], dtype=np.float32)
    sums, mark, reached = np.zeros(3), np.zeros(3, dtype=np.uint8), np.empty(3, dtype=np.int32)
    count = _walk.spread(indptr, indices, data, np.array([1, 0], dtype=np.int32), np.array([0.25, 1.0], dtype=np.float32), sums, mark, reached, 0)
    assert count == 3 and sums.tolist() == [0.5, 0.5, 0.25] and reached.tolist() == [2, 0, 1]
    rows, values = np.empty(3, dtype=np.int32), np.empty(3, dtype=np.float32)
    kept = _walk.collect(sums, mark, reached, count, 0.5, 0.2, rows, values, None)
    assert rows[:kept].tolist() == [0, 1] and values[:kept].tolist() == [0.25, 0.25]
    _walk.clear(sums, mark, reached, count)
    assert not sums.any() and not mark.any()
    for columns in ([2], [-1]):
        with pytest.raises(ValueError, match="column outside"):
            _walk.spread(indptr, indices, data, np.array(columns, dtype=np.int32), np.ones(1, dtype=np.float32), sums, mark, reached, 0)
    with pytest.raises(ValueError, match="row outside"):
        _walk.spread(indptr, np.array([0, 1, 7], dtype=np.int32), data, np.array([1], dtype=np.int32), np.ones(1, dtype=np.float32), sums, mark, reached, 0)
    with pytest.raises(ValueError, match="do not agree"):
        _walk.spread(indptr, indices, data, np.array([0], dtype=np.int32), np.ones(1, dtype=np.float32), sums, mark[:2], reached, 0)
    fresh_sums, fresh_mark = np.zeros(3), np.zeros(3, dtype=np.uint8)
    with pytest.raises(ValueError, match="room"):
        _walk.spread(indptr, indices, data, np.array([0], dtype=np.int32), np.ones(1, dtype=np.float32), fresh_sums, fresh_mark, reached[:1], 0)
    with pytest.raises(ValueError, match="row outside"):
        _walk.collect(sums, mark, np.array([5], dtype=np.int32), 1, 0.5, 0.2, rows, values, None)
    with pytest.raises(BufferError):  # the sums must be writable
        _walk.spread(indptr, indices, data, np.array([0], dtype=np.int32), np.ones(1, dtype=np.float32), b"read-only", mark, reached, 0)


def test_adding_seeds_to_a_walk_mixes_in_a_walk_from_the_added_ones(tmp_path):
    """Graph mode's second walk: the walk from seeds and more seeds together, computed from the first walk and a walk
    from the added seeds alone, is the joint walk (exactly up to rounding without tolerance, and with the leading
    rows and their scores kept with one)."""
    store = SqliteGraphStore(tmp_path)
    nodes = [Node(f"e{i}", NodeType.ENTITY, {"name": str(i)}, {}) for i in range(500)]
    rng = np.random.default_rng(11)
    pairs = sorted({(int(a), int(b)) for a, b in rng.integers(0, 500, size=(1500, 2)) if a != b})
    store.write(nodes, [Edge(f"e{a}", EdgeType.RELATED_TO, f"e{b}", {}, {}) for a, b in pairs])
    projection = store.projection()
    seeds, more = {"e3": 1.0, "e40": 0.6}, {"e200": 0.1, "e201": 0.05, "e499": 0.1, "missing": 0.3}
    for tolerance in (0.0, 1e-5):
        first = projection.personalized_pagerank(seeds, 0.3, 10, tolerance)
        joint = projection.personalized_pagerank({**seeds, **more}, 0.3, 10, tolerance)
        mixed = projection.pagerank_with_more_seeds(first, seeds, more, 0.3, 10, tolerance)
        top = np.argsort(-joint, kind="stable")[:20]
        assert list(np.argsort(-mixed, kind="stable")[:20]) == list(top)
        np.testing.assert_allclose(mixed[top], joint[top], rtol=1e-4 if tolerance else 1e-5)
    assert projection.pagerank_with_more_seeds(first, seeds, {"missing": 1.0}, 0.3, 10, 1e-5) is first
