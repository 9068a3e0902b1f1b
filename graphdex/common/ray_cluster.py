"""Ingestion's per-item work (extraction, embedding) on a Ray cluster: the connection, and ordered pools of actors.

The connection fails at once, saying what to do, when the cluster cannot be reached (Ray itself would retry for
minutes). A pool feeds its actors work items with a bounded number in flight (memory stays flat however long the
input) and hands results back in input order; an actor that dies costs time, never work: its items go to the other
actors and a replacement starts. Actors report where they run and with which code, and a cluster whose code differs
from this process's is refused, since its graph would silently differ from a local build.

Ray is imported only by this module's functions, and only when GRAPHDEX_RAY_ADDRESS is set: the default path never
loads it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import logging
import os
import socket
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphdex.common.errors import Unavailable

log = logging.getLogger(__name__)

#: Work items each actor has queued or running: enough that no actor waits for the driver between two items, few
#: enough that results do not pile up while the consumer (the single writer) is busy with a batch.
IN_FLIGHT_PER_ACTOR = 4
#: Tries of one work item, each on another actor when there is one: an item that killed this many actors is taken
#: for the cause of their deaths, not a victim, and stops the run.
MAX_ATTEMPTS = 3
_PROBE_SECONDS = 5.0
_HINT = ("start it (`scripts/ray.sh start` runs one on this machine), point GRAPHDEX_RAY_ADDRESS at its head "
         "(HOST:PORT, or ray://HOST:10001 from outside the cluster), or unset GRAPHDEX_RAY_ADDRESS to ingest locally")


class ClusterError(Unavailable):
    """The Ray cluster cannot be reached or cannot run graphdex's actors; the message says what to do."""


@dataclass(frozen=True)
class ActorPlace:
    """Where an actor runs and with which code, as the actor itself reports it."""

    node_id: str
    pid: int
    identity: tuple[tuple[str, str], ...]


def code_identity(distributions: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """What decides an actor's output: a digest of graphdex's own source and the versions of the libraries named."""
    digest = hashlib.blake2b(digest_size=12)
    for package in ("graphdex", *(f"graphdex.{name}" for name in ("common", "graph", "ingest", "query", "api"))):
        spec = importlib.util.find_spec(package)  # imports only the parent package, not the subpackage itself
        for folder in sorted(spec.submodule_search_locations or []) if spec else []:
            for path in sorted(Path(folder).glob("*.py")):
                digest.update(f"{package}/{path.name}\0".encode() + path.read_bytes())
    return (("graphdex", digest.hexdigest()), *((name, _version(name)) for name in distributions))


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "not installed as a package"


def actor_place(distributions: Sequence[str]) -> ActorPlace:
    """Called inside an actor: its node, its process and its code."""
    import ray

    return ActorPlace(ray.get_runtime_context().get_node_id(), os.getpid(), code_identity(distributions))


def _probe(address: str) -> None:
    """A plain TCP connection to the address first: Ray's own attempt at an absent cluster retries for minutes."""
    if address == "auto":
        return  # Ray's lookup (RAY_ADDRESS, the cluster `ray start` last recorded) fails fast when it finds nothing
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=_PROBE_SECONDS):
            pass
    except OSError as error:
        raise ClusterError(f"cannot reach the Ray cluster at {address} ({error}): {_HINT}") from None


def _connect(address: str):  # -> the ray module, connected
    try:
        import ray
    except ImportError as error:
        raise ClusterError("GRAPHDEX_RAY_ADDRESS is set but Ray is not installed here: pip install 'graphdex[ray]', "
                           "or unset GRAPHDEX_RAY_ADDRESS to ingest locally") from error
    _probe(address)
    if ray.is_initialized():
        return ray  # this process is connected already (several workspaces share one driver)
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise ClusterError(f"cannot connect to the Ray cluster at {address} ({error}): {_HINT}") from error
    log.info("connected to the Ray cluster at %s: %g CPUs on %d nodes", address, ray.cluster_resources().get("CPU", 0), len(ray.nodes()))
    return ray


class RayCluster:
    """A connection to the cluster of GRAPHDEX_RAY_ADDRESS, and the actor pools started on it."""

    def __init__(self, address: str, actor_cpus: float = 0.5, start_timeout: float = 120.0) -> None:
        self.address = address
        self.actor_cpus = actor_cpus
        self.start_timeout = start_timeout
        self._ray = _connect(address)
        self._pools: list[ActorPool] = []

    def cpus(self) -> float:
        return float(self._ray.cluster_resources().get("CPU", 0))

    def nodes(self) -> int:
        """Live nodes with room for at least one actor (a head started with no CPUs runs none)."""
        return sum(1 for node in self._ray.nodes() if node["Alive"] and node["Resources"].get("CPU", 0) >= self.actor_cpus)

    def pool(self, actor_class: type, args: tuple, count: int, *, label: str, count_setting: str, distributions: Sequence[str]) -> ActorPool:
        """``count`` actors of ``actor_class`` (which must offer ``describe() -> ActorPlace``), spread over the nodes.

        Ray restarts none of them (``max_restarts=0``): the pool itself moves a dead actor's work to the others at
        once and starts a replacement wherever the cluster has room, rather than waiting for a restart on a node
        that may be gone."""
        remote = self._ray.remote(actor_class).options(num_cpus=self.actor_cpus, max_restarts=0, max_task_retries=0, scheduling_strategy="SPREAD")
        pool = ActorPool(self._ray, lambda: remote.remote(*args), count, label=label, count_setting=count_setting,
                         identity=code_identity(distributions), start_timeout=self.start_timeout, cpus=self.actor_cpus)
        self._pools.append(pool)
        return pool

    @property
    def pools(self) -> list[ActorPool]:
        """The actor pools started on this connection (each knows where its work ran)."""
        return list(self._pools)

    def close(self) -> None:
        """Ends the actors this connection started; the connection itself lasts as long as the process."""
        for pool in self._pools:
            pool.close()
        self._pools.clear()


@dataclass(eq=False)
class _Member:
    actor: Any
    ready: Any  # the ObjectRef of its describe() call, ready once the actor has loaded its model
    place: ActorPlace | None = None
    load: int = 0  # items queued or running on it
    assigned: int = 0  # items ever given to it: ties in load go to the one given fewer


@dataclass(eq=False)
class _Work:
    item: Any
    ref: Any = None
    member: _Member | None = None
    attempts: int = 0


class ActorPool:
    """Actors of one kind, fed work items in order with a bounded number in flight."""

    def __init__(self, ray, spawn: Callable[[], Any], count: int, *, label: str, count_setting: str, identity: tuple[tuple[str, str], ...],
                 start_timeout: float, cpus: float) -> None:
        self._ray = ray
        self._spawn = spawn
        self.count = count
        self.label = label
        self._count_setting = count_setting
        self._identity = identity
        self._start_timeout = start_timeout
        self._cpus = cpus
        self.work_by_node: Counter[str] = Counter()  # work items completed per node id: where the work really ran
        self._live: list[_Member] = []
        self._starting: list[_Member] = []
        self._replacements_left = count  # enough for every actor to die once; beyond that the cluster is sick
        self._start()

    def _start(self) -> None:
        members = [self._new_member() for _ in range(self.count)]
        _, pending = self._ray.wait([m.ready for m in members], num_returns=len(members), timeout=self._start_timeout)
        if pending:
            self._kill(members)
            raise ClusterError(
                f"{len(pending)} of {self.count} Ray {self.label} actors did not start within {self._start_timeout:g} s: each reserves "
                f"{self._cpus:g} CPU and the cluster has {self._ray.available_resources().get('CPU', 0):g} of "
                f"{self._ray.cluster_resources().get('CPU', 0):g} CPUs free. Lower {self._count_setting} or GRAPHDEX_RAY_ACTOR_CPUS, add nodes, "
                f"or raise GRAPHDEX_RAY_START_TIMEOUT if loading is merely slow")
        try:
            for member in members:
                self._admit(member)
        except ClusterError:
            self._kill(members)
            self._live.clear()
            raise
        nodes = Counter(m.place.node_id[:8] for m in self._live if m.place)
        log.info("%d Ray %s actors started on %d node(s): %s", len(self._live), self.label, len(nodes), dict(nodes))

    @property
    def places(self) -> list[ActorPlace]:
        """Where the live actors run."""
        return [m.place for m in self._live if m.place is not None]

    def map(self, method: str, items: Iterable[Any]) -> Iterator[Any]:
        """``actor.method(item)`` for every item, results in input order. Items are drawn from ``items`` only as
        results are taken (backpressure): at most IN_FLIGHT_PER_ACTOR per actor are submitted and not yet taken."""
        from ray.exceptions import NodeDiedError, ObjectLostError, RayActorError, WorkerCrashedError

        window = IN_FLIGHT_PER_ACTOR * max(1, self.count)
        source = iter(items)
        queue: deque[_Work] = deque()

        def top_up() -> None:
            while len(queue) < window:
                item = next(source, _END)
                if item is _END:
                    return
                work = _Work(item)
                self._submit(method, work)
                queue.append(work)

        top_up()
        while queue:
            work = queue[0]
            try:
                result = self._ray.get(work.ref)
            except (RayActorError, ObjectLostError, WorkerCrashedError, NodeDiedError) as error:
                self._lost(work, error)
                self._submit(method, work)
                continue
            queue.popleft()
            member = work.member
            assert member is not None and member.place is not None  # _submit gave it to a live member, admitted with its place
            member.load -= 1
            self.work_by_node[member.place.node_id] += 1
            top_up()  # before handing the result over, so the actors work while the consumer does
            yield result

    def _submit(self, method: str, work: _Work) -> None:
        self._adopt_started(wait=not self._live)
        others = [m for m in self._live if m is not work.member] or self._live
        member = min(others, key=lambda m: (m.load, m.assigned))
        work.ref = getattr(member.actor, method).remote(work.item)
        work.member = member
        member.load += 1
        member.assigned += 1

    def _lost(self, work: _Work, error: Exception) -> None:
        """The actor of ``work`` died (or its node, with the result): out of the pool, a replacement on its way."""
        member = work.member
        work.attempts += 1
        if member in self._live:
            self._live.remove(member)
            self._kill([member])
            where = f"on node {member.place.node_id[:8]} (pid {member.place.pid})" if member.place else ""
            log.warning("a Ray %s actor %s died (%s); its %d pending item(s) go to the other actors", self.label, where,
                        type(error).__name__, member.load)
            if self._replacements_left > 0:
                self._replacements_left -= 1
                self._starting.append(self._new_member())
        if work.attempts >= MAX_ATTEMPTS:
            raise ClusterError(f"a {self.label} work item was lost with {work.attempts} Ray actors in a row (last: {error}); "
                               f"it may be what kills them. `scripts/ray.sh logs` shows the nodes' side")

    def _adopt_started(self, wait: bool) -> None:
        """Replacements that finished starting join the pool; with ``wait`` (no live actor left) wait for one."""
        while self._starting:
            refs = {m.ready: m for m in self._starting}
            ready, _ = self._ray.wait(list(refs), num_returns=1 if wait else len(refs), timeout=self._start_timeout if wait else 0)
            for ref in ready:
                member = refs[ref]
                self._starting.remove(member)
                try:
                    self._admit(member)
                except ClusterError as error:
                    log.warning("a replacement Ray %s actor failed to start: %s", self.label, error)
            if self._live or not wait or not ready:
                break
        if not self._live:
            raise ClusterError(f"every Ray {self.label} actor died and no replacement started within {self._start_timeout:g} s: "
                               f"is the cluster still up? (`scripts/ray.sh status` for the local one)")

    def _new_member(self) -> _Member:
        actor = self._spawn()
        return _Member(actor, actor.describe.remote())

    def _admit(self, member: _Member) -> None:
        from ray.exceptions import RayError

        try:
            member.place = self._ray.get(member.ready)
        except RayError as error:
            raise ClusterError(f"a Ray {self.label} actor failed to start ({error}). Every node needs the same graphdex, with its "
                               f"models, installed (scripts/ray.sh starts nodes with the graphdex of its checkout)") from error
        if member.place.identity != self._identity:
            mine, theirs = dict(self._identity), dict(member.place.identity)
            differences = ", ".join(f"{k}: here {mine.get(k)}, there {theirs.get(k)}" for k in sorted(mine.keys() | theirs.keys())
                                    if mine.get(k) != theirs.get(k))
            raise ClusterError(f"the Ray cluster runs other code than this process ({differences}): its graph would differ from a "
                               f"local build. Install the same graphdex and libraries on every node, or restart a scripts/ray.sh "
                               f"cluster from this checkout")
        self._live.append(member)

    def _kill(self, members: Iterable[_Member]) -> None:
        for member in members:
            self._ray.kill(member.actor, no_restart=True)

    def close(self) -> None:
        log.info("Ray %s work items per node: %s", self.label, {node[:8]: n for node, n in self.work_by_node.items()})
        self._kill([*self._live, *self._starting])
        self._live.clear()
        self._starting.clear()


_END = object()
