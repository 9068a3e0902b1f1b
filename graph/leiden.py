"""Community detection (Leiden, via igraph) over a weighted undirected graph given as edge triples.

Inputs are sorted before the graph is built and the random seed is fixed, so the same graph always yields the same
communities: the exact-delete guarantee extends to the community layer.
"""

from __future__ import annotations

import random
from typing import Iterable

import igraph


#: Passes of Leiden's local moving and refinement. Iterating until nothing moves (-1) took 14 times as long on the
#: wiki-passages graph (37k entities) for 0.5% more modularity (0.7357 against 0.7318), and the community layer is
#: recomputed after every ingest and delete, so its cost is paid by every write (bench/growth.py, docs/scaling.md).
LEIDEN_ITERATIONS = 2


def detect_communities(edges: Iterable[tuple[str, str, float]], resolution: float = 1.0, min_size: int = 3, seed: int = 7) -> list[list[str]]:
    """Communities (sorted member lists, largest first) of at least ``min_size`` members."""
    merged: dict[tuple[str, str], float] = {}
    for a, b, weight in edges:
        if a == b:
            continue
        key = (a, b) if a < b else (b, a)
        merged[key] = merged.get(key, 0.0) + weight
    if not merged:
        return []
    names = sorted({name for pair in merged for name in pair})
    position = {name: i for i, name in enumerate(names)}
    pairs = sorted(merged)
    graph = igraph.Graph(n=len(names), edges=[(position[a], position[b]) for a, b in pairs])
    graph.es["weight"] = [merged[pair] for pair in pairs]
    state = random.getstate()
    random.seed(seed)
    try:
        igraph.set_random_number_generator(random)
        partition = graph.community_leiden(objective_function="modularity", weights="weight", resolution=resolution, n_iterations=LEIDEN_ITERATIONS)
    finally:
        random.setstate(state)
    groups = [sorted(names[i] for i in members) for members in partition if len(members) >= min_size]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups
