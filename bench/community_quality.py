"""Quality and cost of the incremental community layer against Leiden from scratch on the same graph.

Builds an index from the first ``--base`` wiki-passages, then ingests ``--batches`` batches of ``--batch-size`` more
passages and deletes ``--deletes`` documents of the base one at a time (`graphdex delete`: removal, refresh, save),
each write followed by the community refresh as the service does it: incremental, from what the write touched. After
every step, on the same graph: the refresh's time (with its writes and re-embedding) and how much it clustered again
(touched entities and communities, entities re-clustered); the time its plan takes (reads, Leiden, descriptions: no
writes) against the plan from scratch (the same without writes, so a lower bound of a refresh from scratch); and
the modularity of both partitions.

Modularity is the whole entity graph's (RELATED_TO edges weighted by support, resolution 1, igraph's
``Graph.modularity``); entities outside a community (none, or a group under the minimum size) count as communities
of their own in both partitions. At the end the layer is refreshed from scratch for real, and that is timed too.

    python bench/community_quality.py --out bench/results/community_quality.json
"""

from __future__ import annotations

import _checkout  # noqa: F401  # isort: skip  (first: this checkout's graphdex, not the installed one)

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import igraph

from graphdex.graph.leiden import merge_edges
from graphdex.graph.model import EdgeType
from graphdex.ingest.community_layer import CommunityPolicy, plan_communities
from graphdex.ingest.target import CommunityChanges
from harness import WIKI_PASSAGES, Timer, console, load_passages, machine, print_table, scratch_settings, write_json  # noqa: I001 (first: sys.path)


def _cpu() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


class EntityGraph:
    """The whole RELATED_TO graph in igraph, to score partitions of it."""

    def __init__(self, store) -> None:
        merged = merge_edges((e.source, e.target, float(e.support_count))
                             for e in store.iter_edges([EdgeType.RELATED_TO], contributions=False))
        self.names = sorted({n for pair in merged for n in pair})
        position = {n: i for i, n in enumerate(self.names)}
        pairs = sorted(merged)
        self.graph = igraph.Graph(n=len(self.names), edges=[(position[a], position[b]) for a, b in pairs])
        self.graph.es["weight"] = [merged[p] for p in pairs]

    def membership(self, community_of: dict[str, str]) -> list[int]:
        """One number per entity: its community's, or one of its own."""
        numbers: dict[str, int] = {}
        out = []
        for name in self.names:
            key = community_of.get(name, "\x00" + name)
            out.append(numbers.setdefault(key, len(numbers)))
        return out

    def modularity(self, membership: list[int]) -> float:
        return self.graph.modularity(membership, weights="weight", resolution=1.0)


def _stored_partition(store) -> dict[str, str]:
    return {e.source: e.target for e in store.iter_edges([EdgeType.IN_COMMUNITY], contributions=False)}


def _sizes(community_of: dict[str, str]) -> dict[str, Any]:
    sizes: dict[str, int] = {}
    for community in community_of.values():
        sizes[community] = sizes.get(community, 0) + 1
    values = sorted(sizes.values(), reverse=True)
    return {"communities": len(values), "entities_in_communities": sum(values), "largest": values[:3],
            "median_size": statistics.median(values) if values else 0}


def _compare(store, policy: CommunityPolicy) -> dict[str, Any]:
    """The stored (incremental) partition against Leiden from scratch on the same graph, planned, not written."""
    with Timer() as scratch:
        plan = plan_communities(store, policy, None)
    graph = EntityGraph(store)
    incremental = _stored_partition(store)
    from_scratch = {member: cid for cid, group in plan.members.items() for member in group}
    ours, theirs = graph.membership(incremental), graph.membership(from_scratch)
    return {"entities": len(graph.names), "related_edges": graph.graph.ecount(), "total_support": store.total_support(EdgeType.RELATED_TO),
            "from_scratch_plan_seconds": scratch.seconds,
            "modularity_incremental": graph.modularity(ours), "modularity_from_scratch": graph.modularity(theirs),
            "nmi_incremental_vs_from_scratch": igraph.compare_communities(ours, theirs, method="nmi"),
            "incremental": _sizes(incremental), "from_scratch": _sizes(from_scratch)}


class RefreshProbe:
    """Wraps ``Maintenance.refresh_communities`` (which the Indexer and ``delete_document`` call) to time each refresh
    and note what it clustered again: before the real refresh, the same plan is made once more (reads, Leiden,
    descriptions, no writes) and timed on its own, to set beside the plan from scratch."""

    def __init__(self, maintenance, policy: CommunityPolicy) -> None:
        self.maintenance, self.policy = maintenance, policy
        self.original = maintenance.refresh_communities
        self.calls: list[dict[str, Any]] = []
        maintenance.refresh_communities = self

    def __call__(self, **kwargs: Any) -> int:
        target = self.maintenance.target
        changes = target.changes
        record = CommunityChanges(set(changes.entities), set(changes.communities), changes.everything)
        with Timer() as planning:
            plan = plan_communities(target.store, self.policy, None if record.everything or kwargs.get("from_scratch") else record)
        with Timer() as timer:
            written = self.original(**kwargs)
        self.calls.append({"seconds": timer.seconds, "plan_seconds": planning.seconds, "touched_entities": len(record.entities),
                           "touched_communities": len(record.communities), "reclustered_entities": plan.clustered,
                           "reclustered_communities": len(plan.existing), "communities_after": len(plan.wanted),
                           "written": written})
        return written

    def last(self) -> dict[str, Any]:
        return self.calls[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passages", type=Path, default=WIKI_PASSAGES, help="wiki-passages directory or file (default: %(default)s)")
    parser.add_argument("--base", type=int, default=1500, help="passages of the first build (default: %(default)s)")
    parser.add_argument("--batches", type=int, default=4, help="ingests after the build (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=100, help="passages per ingest (default: %(default)s)")
    parser.add_argument("--deletes", type=int, default=15, help="base documents deleted one at a time (default: %(default)s)")
    parser.add_argument("--extract-workers", type=int, default=1, help="spaCy processes (default: %(default)s; the machine may be shared)")
    parser.add_argument("--workdir", type=Path, default=None, help="where the index goes (default: a temporary directory, removed)")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from graphdex.api.workspace import Workspace

    documents = load_passages(args.passages)
    wanted = args.base + args.batches * args.batch_size
    if wanted > len(documents):
        raise SystemExit(f"{wanted} passages wanted, {len(documents)} available")
    base = documents[: args.base]
    batches = [documents[args.base + i * args.batch_size : args.base + (i + 1) * args.batch_size] for i in range(args.batches)]
    step = max(1, len(base) // max(1, args.deletes))
    deletes = base[step // 2 :: step][: args.deletes]  # spread over the base

    workdir = Path(tempfile.mkdtemp(prefix="graphdex-communities-")) if args.workdir is None else args.workdir
    shutil.rmtree(workdir / "index", ignore_errors=True)
    load_before = os.getloadavg()[0]  # the machine may be shared: how busy it was besides this run
    cpu_before, began = _cpu(), time.perf_counter()
    workspace = Workspace(scratch_settings(workdir / "index", store="embedded", extract_workers=args.extract_workers))
    policy = CommunityPolicy(workspace.settings.community_resolution, workspace.settings.community_min_size, workspace.settings.community_max_size)
    try:
        maintenance = workspace.maintenance
        probe = RefreshProbe(maintenance, policy)
        steps: list[dict[str, Any]] = []

        def record(kind: str, count: int, seconds: float) -> None:
            row = {"step": kind, "documents": count, "operation_seconds": seconds, "refresh": probe.last(), **_compare(workspace.store, policy)}
            steps.append(row)
            console.print(f"{kind:>8} {count:>5} docs: refresh {row['refresh']['seconds']:.3f}s (re-clustered {row['refresh']['reclustered_entities']} of "
                          f"{row['entities']} entities), from-scratch plan {row['from_scratch_plan_seconds']:.3f}s; modularity "
                          f"{row['modularity_incremental']:.4f} incremental, {row['modularity_from_scratch']:.4f} from scratch")

        report = workspace.indexer.ingest(base)
        record("build", report.documents_added, report.seconds)
        for batch in batches:
            report = workspace.indexer.ingest(batch)
            record("ingest", report.documents_added, report.seconds)
        for document in deletes:
            with Timer() as timer:
                maintenance.delete_document(document.source)
            record("delete", 1, timer.seconds)

        final_incremental = steps[-1]
        with Timer() as rebuild:
            maintenance.refresh_communities(from_scratch=True)
            workspace.vectors.save(complete=True)
        rebuilt = _compare(workspace.store, policy)
    finally:
        workspace.close()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    cpu_seconds, wall_seconds = _cpu() - cpu_before, time.perf_counter() - began

    updates = [s for s in steps if s["step"] != "build"]
    incremental_seconds = [s["refresh"]["seconds"] for s in updates]
    scratch_seconds = [s["from_scratch_plan_seconds"] for s in updates]
    summary = {
        "final_entities": final_incremental["entities"], "final_related_edges": final_incremental["related_edges"],
        "modularity_incremental": final_incremental["modularity_incremental"],
        "modularity_from_scratch": final_incremental["modularity_from_scratch"],
        "modularity_ratio": final_incremental["modularity_incremental"] / final_incremental["modularity_from_scratch"],
        "nmi_incremental_vs_from_scratch": final_incremental["nmi_incremental_vs_from_scratch"],
        "communities_incremental": final_incremental["incremental"]["communities"],
        "communities_from_scratch": final_incremental["from_scratch"]["communities"],
        "refresh_seconds_incremental_median": statistics.median(incremental_seconds),
        "refresh_seconds_incremental_ingest_median": statistics.median(s["refresh"]["seconds"] for s in updates if s["step"] == "ingest"),
        "refresh_seconds_incremental_delete_median": statistics.median(s["refresh"]["seconds"] for s in updates if s["step"] == "delete"),
        "plan_seconds_incremental_median": statistics.median(s["refresh"]["plan_seconds"] for s in updates),
        "from_scratch_plan_seconds_median": statistics.median(scratch_seconds),
        "refresh_seconds_from_scratch_final": rebuild.seconds,
        "reclustered_entities_delete_median": statistics.median(s["refresh"]["reclustered_entities"] for s in updates if s["step"] == "delete"),
        "reclustered_entities_ingest_median": statistics.median(s["refresh"]["reclustered_entities"] for s in updates if s["step"] == "ingest"),
        "after_rebuild_modularity": rebuilt["modularity_incremental"],
    }
    print_table("Community layer: incremental against from scratch, per step",
                ["step", "docs", "entities", "re-clustered", "refresh s", "plan s", "scratch plan s",
                 "Q incremental", "Q scratch", "NMI", "communities inc / scratch"],
                [[s["step"], s["documents"], s["entities"], s["refresh"]["reclustered_entities"], s["refresh"]["seconds"], s["refresh"]["plan_seconds"],
                  s["from_scratch_plan_seconds"],
                  f"{s['modularity_incremental']:.4f}", f"{s['modularity_from_scratch']:.4f}", f"{s['nmi_incremental_vs_from_scratch']:.3f}",
                  f"{s['incremental']['communities']} / {s['from_scratch']['communities']}"] for s in steps])
    console.print(summary)
    write_json(args.out, {"benchmark": "community_quality", "machine": machine(), "command": " ".join(["python", "bench/community_quality.py", *sys.argv[1:]]),
                          "parameters": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                          "policy": {"resolution": policy.resolution, "min_size": policy.min_size, "max_size": policy.max_size},
                          "cpu_seconds": cpu_seconds, "wall_seconds": wall_seconds,
                          "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)], "summary": summary, "steps": steps,
                          "after_from_scratch_refresh": rebuilt})


if __name__ == "__main__":
    main()
