"""Where each workspace of a data directory lives: its folder, its Neo4j workspace, its queue, its settings.

A workspace is one isolated corpus (graph, vectors, job queue). The *default* workspace is what graphdex always had:
the data directory itself, and on Neo4j the workspace GRAPHDEX_NEO4J_WORKSPACE, so existing indexes keep working
unchanged. A *named* workspace gets a folder of its own under the data directory, which is also the mark that it
exists:

- embedded store: ``<data_dir>/workspaces/<name>/`` holds its graph, vectors and queue;
- Neo4j: ``<data_dir>/workspaces-neo4j-<base>/<name>/`` holds its vectors and queue, and its graph is the nodes whose
  ``workspace`` property is ``<base>:<name>`` (``<base>`` being GRAPHDEX_NEO4J_WORKSPACE). The colon cannot occur in
  GRAPHDEX_NEO4J_WORKSPACE, so no other deployment's base workspace can collide with a named one.

A workspace being deleted is first renamed to a hidden tombstone folder (one atomic rename), so from that moment on it
is gone for every reader, and a restart finishes what a crash interrupted (see lifecycle.py).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from graphdex.common.errors import InvalidInput
from graphdex.common.settings import Settings

DEFAULT_WORKSPACE = "default"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
NAME_RULE = "1 to 63 characters: lowercase letters, digits, '-' and '_', starting with a letter or digit"
NEO4J_SEPARATOR = ":"
_NAME = re.compile(NAME_PATTERN)
_TOMBSTONE = re.compile(r"^\.deleted-(?P<name>[a-z0-9][a-z0-9_-]{0,62})-[0-9a-f]{8}$")


class InvalidWorkspaceName(InvalidInput):
    """A name that is not a workspace name (the caller's mistake: a 422)."""


def check_name(name: str) -> str:
    """The name, if it is a valid workspace name. Names end up in folder names and URLs, hence the narrow alphabet."""
    if not _NAME.match(name):
        shown = name if len(name) <= 80 else name[:77] + "..."
        raise InvalidWorkspaceName(f"invalid workspace name {shown!r}: use {NAME_RULE}")
    return name


@dataclass(frozen=True)
class Tombstone:
    """The folder of a workspace whose deletion started and has not finished."""

    name: str
    folder: Path


@dataclass(frozen=True)
class Layout:
    """The workspaces of one data directory (and, on Neo4j, of one base workspace)."""

    settings: Settings

    @property
    def data_dir(self) -> Path:
        return self.settings.data_dir.expanduser().resolve()

    @property
    def root(self) -> Path:
        """The folder of the named workspaces: one per store, as embedded and Neo4j indexes can share a data dir."""
        s = self.settings
        return self.data_dir / ("workspaces" if s.store == "embedded" else f"workspaces-neo4j-{s.neo4j_workspace}")

    def folder(self, name: str) -> Path:
        return self.data_dir if name == DEFAULT_WORKSPACE else self.root / check_name(name)

    def neo4j_workspace(self, name: str) -> str:
        """The value of the ``workspace`` property that the workspace's nodes carry in Neo4j."""
        base = self.settings.neo4j_workspace
        return base if name == DEFAULT_WORKSPACE else f"{base}{NEO4J_SEPARATOR}{check_name(name)}"

    def settings_for(self, name: str) -> Settings:
        """The settings that open this workspace: the service's own, with its folder and Neo4j workspace."""
        if name == DEFAULT_WORKSPACE:
            return self.settings
        return self.settings.model_copy(update={"data_dir": self.folder(name), "neo4j_workspace": self.neo4j_workspace(name)})

    def exists(self, name: str) -> bool:
        return name == DEFAULT_WORKSPACE or self.folder(name).is_dir()

    def names(self) -> list[str]:
        """Every workspace, the default first, then the named ones in alphabetical order."""
        named = sorted(p.name for p in self.root.iterdir() if p.is_dir() and _NAME.match(p.name)) if self.root.is_dir() else []
        return [DEFAULT_WORKSPACE, *named]

    def bury(self, name: str) -> Tombstone:
        """Renames the workspace's folder to a tombstone: one atomic step after which the workspace no longer exists."""
        folder = self.root / f".deleted-{check_name(name)}-{uuid.uuid4().hex[:8]}"
        self.folder(name).rename(folder)
        return Tombstone(name, folder)

    def tombstones(self, name: str | None = None) -> list[Tombstone]:
        """Deletions that started and did not finish (all of them, or those of one name)."""
        if not self.root.is_dir():
            return []
        found = [Tombstone(m["name"], p) for p in self.root.iterdir() if (m := _TOMBSTONE.match(p.name))]
        return [t for t in found if name is None or t.name == name]


def queue_path(settings: Settings) -> Path:
    """One job queue per graph: the embedded store's, or one Neo4j workspace's."""
    name = "jobs.sqlite" if settings.store == "embedded" else f"jobs-neo4j-{settings.neo4j_workspace}.sqlite"
    return settings.data_dir.expanduser().resolve() / "queue" / name
