"""Community detection (Leiden, via igraph) over a weighted undirected graph, or over a part of one.

Modularity compares each community's internal weight with what a random graph of the same strengths would give:
``Q = sum_ij (A_ij - resolution * k_i k_j / 2m) [same community]``, with k the strengths and m the total weight of
the whole graph. That is the Constant Potts Model with node weights k and resolution ``resolution / 2m``, which is
how ``local_communities`` runs it: on a part of a graph (the entities a write touched, with the communities around
them as single vertices) with the whole graph's strengths and total weight, the part is clustered by the whole
graph's modularity. Plain modularity of the part alone would use the part's own m, much smaller, and split it into
ever smaller communities.

Modularity has a resolution limit: the smallest community it can tell apart grows with the square root of the
graph's weight, so on a large corpus its communities grow with the corpus (23,000 entities in the largest at 8.7M
words). A community over ``max_size`` is therefore split, by clustering its members again at a doubled resolution
until every part fits. That keeps communities usable as topics, and keeps what a write re-clusters (the
communities it touched) bounded at any corpus size.

Inputs are sorted before the graph is built and the random seed is fixed, so the same inputs always yield the same
communities.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

import igraph

#: Passes of Leiden's local moving and refinement. Iterating until nothing moves (-1) took 14 times as long on the
#: wiki-passages graph (37k entities) for 0.5% more modularity (0.7357 against 0.7318), and the community layer is
#: refreshed after every ingest and delete, so its cost is paid by every write (bench/growth.py, docs/scaling.md).
LEIDEN_ITERATIONS = 2
SEED = 7


def merge_edges(edges: Iterable[tuple[str, str, float]]) -> dict[tuple[str, str], float]:
    """Undirected weights: both directions of a pair summed under (smaller, larger); self-loops left out."""
    merged: dict[tuple[str, str], float] = {}
    for a, b, weight in edges:
        if a == b:
            continue
        key = (a, b) if a < b else (b, a)
        merged[key] = merged.get(key, 0.0) + weight
    return merged


def local_communities(nodes: Iterable[str], edges: Mapping[tuple[str, str], float], strength: Mapping[str, float], total_weight: float,
                      resolution: float = 1.0, initial: Mapping[str, str] | None = None, min_size: int = 3, seed: int = SEED,
                      max_size: int = 0, sizes: Mapping[str, int] | None = None) -> list[list[str]]:
    """Communities (sorted member lists, largest first) of at least ``min_size`` and, when ``max_size`` is set, at
    most ``max_size`` among ``nodes``, by the modularity of the whole graph they are part of.

    ``edges``: the merged weights (``merge_edges``) of the edges with both ends in ``nodes``; ``strength``: each
    node's total weight in the whole graph, edges leaving ``nodes`` included; ``total_weight``: the whole graph's
    total edge weight (m). ``initial``: a community name per node to start from (nodes without one start alone);
    None starts every node alone, as a run from scratch does. ``sizes``: how many entities each node stands for
    (a community taking part as one vertex), 1 for those not named; the bounds count entities."""
    names = sorted(set(nodes))
    if not names or total_weight <= 0:
        return []
    position = {name: i for i, name in enumerate(names)}
    pairs = sorted(pair for pair in edges if pair[0] in position and pair[1] in position)
    graph = igraph.Graph(n=len(names), edges=[(position[a], position[b]) for a, b in pairs])
    graph.es["weight"] = [float(edges[pair]) for pair in pairs]
    graph.vs["strength"] = [float(strength[n]) for n in names]
    density = resolution / (2 * total_weight)
    start = _start(names, initial)
    weight = [int(sizes.get(n, 1)) if sizes else 1 for n in names]
    parts = _leiden(graph, density, start, seed)
    if max_size > 0:
        parts = [piece for part in parts for piece in _bounded(graph, part, density, max_size, seed, start, weight)]
    groups = [sorted(names[i] for i in members) for members in parts if sum(weight[i] for i in members) >= min_size]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups


def _leiden(graph: igraph.Graph, density: float, start: list[int] | None, seed: int) -> list[list[int]]:
    """Leiden (CPM with the nodes' strengths as weights) with a fixed seed: vertex lists, one per community."""
    state = random.getstate()
    random.seed(seed)
    try:
        igraph.set_random_number_generator(random)
        partition = graph.community_leiden(objective_function="CPM", weights="weight", node_weights="strength",
                                           resolution=density, initial_membership=start, n_iterations=LEIDEN_ITERATIONS)
    finally:
        random.setstate(state)
    return [list(members) for members in partition]


#: Doublings of the resolution tried on a community over the size limit before it is left to its members alone.
_MAX_DOUBLINGS = 64


def _bounded(graph: igraph.Graph, members: list[int], density: float, max_size: int, seed: int, start: list[int] | None,
             size: list[int]) -> list[list[int]]:
    """``members`` (vertices of ``graph``, each standing for ``size`` entities) as communities of at most
    ``max_size`` entities: one that is larger is clustered again on its own at twice the resolution, each part
    bounded in turn. The split starts from the communities the members were in (``start``, as the first clustering
    did), so a refresh that merged some bounded communities at the base resolution finds them again instead of
    cutting the union afresh (which would rename and re-describe every one of them at every write)."""
    if sum(size[m] for m in members) <= max_size:
        return [members]
    local = sorted(members)
    inside = graph.induced_subgraph(local)  # keeps the vertices' order: the result does not depend on the input's
    inside_start = _renumbered([start[m] for m in local]) if start is not None else None
    for _ in range(_MAX_DOUBLINGS):
        density *= 2
        parts = _leiden(inside, density, inside_start, seed)
        if len(parts) > 1:
            return [piece for part in parts for piece in _bounded(graph, [local[i] for i in part], density, max_size, seed, start, size)]
    return [[member] for member in members]


def _renumbered(membership: list[int]) -> list[int]:
    """Community numbers 0, 1, ... in order of first appearance (what Leiden takes as a starting membership)."""
    numbers: dict[int, int] = {}
    return [numbers.setdefault(community, len(numbers)) for community in membership]


def _start(names: Sequence[str], initial: Mapping[str, str] | None) -> list[int] | None:
    """Leiden's starting membership: the given communities numbered in order of first member, every other node a
    community of its own; None (the singleton partition, as from scratch) when no node has a community."""
    if not initial or not any(name in initial for name in names):
        return None
    numbers: dict[str, int] = {}
    start: list[int] = []
    taken = 0
    for name in names:
        community = initial.get(name)
        if community is not None and community in numbers:
            start.append(numbers[community])
            continue
        if community is not None:
            numbers[community] = taken
        start.append(taken)  # the first member of a named community, or a node alone
        taken += 1
    return start


def detect_communities(edges: Iterable[tuple[str, str, float]], resolution: float = 1.0, min_size: int = 3, seed: int = SEED,
                       max_size: int = 0) -> list[list[str]]:
    """Communities (sorted member lists, largest first) of at least ``min_size`` members of a whole graph, from
    scratch: ``local_communities`` over every node, whose strengths and total weight are the graph's own."""
    merged = merge_edges(edges)
    strength: dict[str, float] = {}
    for (a, b), weight in merged.items():
        strength[a] = strength.get(a, 0.0) + weight
        strength[b] = strength.get(b, 0.0) + weight
    return local_communities(strength, merged, strength, sum(merged.values()), resolution, None, min_size, seed, max_size)
