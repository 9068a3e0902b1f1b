"""Creating and deleting named workspaces, crash-safely, for the service's registry and the command line alike.

Creating is one `mkdir`: the folder is the workspace. Deleting is mark, then remove: while holding the workspace's
writer lock (no service or `graphdex ingest` is writing to it), its folder is renamed to a tombstone, after which the
workspace no longer exists for anyone; then its Neo4j nodes (when the store is Neo4j) and the tombstone's files are
removed. A crash in between leaves only the tombstone, and whoever starts next (the service, or a create of the same
name) finishes the removal: a half-deleted workspace is never usable.

Whoever calls these must make sure it does not have the workspace open itself (the registry closes it first).
"""

from __future__ import annotations

import logging
import shutil

from graphdex.api.layout import DEFAULT_WORKSPACE, Layout, Tombstone, check_name
from graphdex.api.workspace import Workspace
from graphdex.common.errors import Conflict, NotFound
from graphdex.graph.store import StoreError

log = logging.getLogger(__name__)


class WorkspaceExists(Conflict):
    pass


class UnknownWorkspace(NotFound):
    pass


class DefaultWorkspace(Conflict):
    """The default workspace is the data directory itself: it can be emptied, never deleted."""


def unknown(name: str) -> UnknownWorkspace:
    return UnknownWorkspace(f"no workspace {name!r}: create it with POST /workspaces {{\"name\": \"{name}\"}} "
                            f"(or `graphdex workspace create {name}`)")


def create_workspace(layout: Layout, name: str) -> None:
    """Creates an empty workspace; raises WorkspaceExists when the name is taken. A removal of an earlier workspace
    of that name that a crash interrupted is finished first, so the new one starts empty."""
    check_name(name)
    if layout.exists(name):
        raise WorkspaceExists(f"workspace {name!r} already exists")
    for tombstone in layout.tombstones(name):
        finish_removal(layout, tombstone)
    layout.root.mkdir(parents=True, exist_ok=True)
    try:
        layout.folder(name).mkdir()
    except FileExistsError:  # created meanwhile by another request or process
        raise WorkspaceExists(f"workspace {name!r} already exists") from None
    log.info("created workspace %s at %s", name, layout.folder(name))


def delete_workspace(layout: Layout, name: str) -> None:
    """Deletes a named workspace completely: graph, vectors and queue. Raises StoreError when another process is
    writing to it (nothing is deleted then)."""
    check_deletable(layout, name)
    workspace = Workspace(layout.settings_for(name))
    try:
        try:
            store = workspace.store
        except StoreError as error:
            # unreadable (written by another graphdex version, a damaged file) or unreachable: no writer of this
            # version can have it open, and the Neo4j removal takes the writer lease itself
            log.warning("deleting workspace %s, which cannot be opened: %s", name, error)
            tombstone = layout.bury(name)
        else:
            with store.lock():  # as its writer: nobody else writes while the folder goes, nobody opens it after
                tombstone = layout.bury(name)
    finally:
        workspace.close()
    finish_removal(layout, tombstone)
    log.info("deleted workspace %s", name)


def check_deletable(layout: Layout, name: str) -> None:
    """Raises DefaultWorkspace, InvalidWorkspaceName or UnknownWorkspace unless ``name`` is a workspace to delete."""
    if name == DEFAULT_WORKSPACE:
        raise DefaultWorkspace("the default workspace cannot be deleted (it is the data directory itself); delete its documents instead")
    check_name(name)
    if not layout.exists(name):
        raise unknown(name)


def finish_removal(layout: Layout, tombstone: Tombstone) -> None:
    """Removes what a buried workspace left: its Neo4j nodes, then its files (the tombstone goes last, so an
    interrupted removal is found and finished again)."""
    s = layout.settings
    if s.store == "neo4j":
        from graphdex.graph.neo4j_drop import drop_workspace

        removed = drop_workspace(s.neo4j_uri, s.neo4j_user, s.neo4j_password, s.neo4j_database, layout.neo4j_workspace(tombstone.name))
        log.info("removed %d Neo4j nodes of workspace %s", removed, tombstone.name)
    shutil.rmtree(tombstone.folder)


def finish_interrupted_removals(layout: Layout) -> None:
    """At start: the removals a crash interrupted. One that fails (Neo4j unreachable) is logged and left for the
    next start or create of its name; the workspace stays deleted meanwhile."""
    for tombstone in layout.tombstones():
        try:
            finish_removal(layout, tombstone)
        except (StoreError, OSError) as error:
            log.warning("could not finish deleting workspace %s (%s); trying again at the next start", tombstone.name, error)
