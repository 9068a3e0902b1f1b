"""Community detection (Leiden, via igraph) over a weighted undirected graph given as edge triples.

Inputs are sorted before the graph is built and the random seed is fixed, so the same graph always yields the same
communities: the exact-delete guarantee extends to the community layer.
"""

from __future__ import annotations

import random
from typing import Iterable

import igraph


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
        partition = graph.community_leiden(objective_function="modularity", weights="weight", resolution=resolution, n_iterations=-1)
    finally:
        random.setstate(state)
    groups = [sorted(names[i] for i in members) for members in partition if len(members) >= min_size]
    groups.sort(key=lambda g: (-len(g), g[0]))
    return groups
