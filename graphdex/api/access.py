"""API keys: who may read, write and manage which workspaces.

GRAPHDEX_API_KEY is the admin key: every workspace, and creating and deleting workspaces. GRAPHDEX_WORKSPACE_KEYS
adds keys scoped to some workspaces, as JSON ``{"<key>": ["<workspace>", ...]}``. Writes need a key as soon as one is
set; reads only with GRAPHDEX_API_KEY_FOR_READS. A missing or unknown key is a 401; a known key used outside its
workspaces is a 403, and nothing happens.

Keys are compared as UTF-8 bytes, in constant time, and always against every configured key, so neither the time of a
refusal nor its status says how close a guess came. Keys no client could send are refused at start-up.
"""

from __future__ import annotations

import enum
import secrets
import unicodedata
from dataclasses import dataclass

from graphdex.api.layout import InvalidWorkspaceName, check_name
from graphdex.common.errors import InvalidInput, NotAllowed
from graphdex.common.settings import Settings


class InvalidApiKey(InvalidInput):
    """GRAPHDEX_API_KEY or GRAPHDEX_WORKSPACE_KEYS holds something no client could send, or is inconsistent."""


class Access(enum.Enum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"  # create and delete workspaces


@dataclass(frozen=True)
class Grant:
    """What the key a request carried allows."""

    admin: bool
    workspaces: frozenset[str]

    def covers(self, workspace: str) -> bool:
        return self.admin or workspace in self.workspaces


OPEN = Grant(admin=True, workspaces=frozenset())  # no key configured: everything is allowed


class Refused(NotAllowed):
    """A request the keys do not allow: ``status`` is 401 (no valid key) or 403 (a valid key, not for this)."""


@dataclass(frozen=True)
class KeyRing:
    admin_key: bytes | None
    scoped: tuple[tuple[bytes, frozenset[str]], ...]
    for_reads: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """The configured keys, checked: raises InvalidApiKey with what to fix rather than start a service that
        answers 401 (or 500) to everyone."""
        check_api_key(settings.api_key)
        scoped = []
        for key, workspaces in (settings.workspace_keys or {}).items():
            if not key:
                raise InvalidApiKey("GRAPHDEX_WORKSPACE_KEYS holds an empty key, which no client could send")
            check_api_key(key, "a key of GRAPHDEX_WORKSPACE_KEYS")
            if not workspaces:
                raise InvalidApiKey("a key of GRAPHDEX_WORKSPACE_KEYS lists no workspace; give it at least one")
            for name in workspaces:
                try:
                    check_name(name)
                except InvalidWorkspaceName as error:
                    raise InvalidApiKey(f"GRAPHDEX_WORKSPACE_KEYS: {error}") from None
            if key == settings.api_key:
                raise InvalidApiKey("a key of GRAPHDEX_WORKSPACE_KEYS equals GRAPHDEX_API_KEY; scoped keys must differ from the admin key")
            scoped.append((key.encode("utf-8"), frozenset(workspaces)))
        if scoped and not settings.api_key:
            raise InvalidApiKey("GRAPHDEX_WORKSPACE_KEYS needs GRAPHDEX_API_KEY as well: the admin key, which creates and deletes workspaces")
        return cls(settings.api_key.encode("utf-8") if settings.api_key else None, tuple(scoped), settings.api_key_for_reads)

    def grant(self, given: bytes, access: Access) -> Grant:
        """What ``given`` (the X-API-Key header's bytes) allows for this kind of access; raises Refused(401) for a
        missing or unknown key where one is needed."""
        if self.admin_key is None or (access is Access.READ and not self.for_reads):
            return OPEN
        admin = secrets.compare_digest(given, self.admin_key)
        workspaces: set[str] = set()
        for key, names in self.scoped:  # every key compared, whichever matches
            if secrets.compare_digest(given, key):
                workspaces |= names
        if not admin and not workspaces:
            raise Refused(401, "missing or wrong API key: send it in the X-API-Key header")
        return Grant(admin, frozenset(workspaces))

    def check(self, given: bytes, access: Access, workspace: str | None) -> Grant:
        """The grant, if it allows ``access`` on ``workspace`` (None: the request names no workspace, as listing
        them); raises Refused otherwise."""
        grant = self.grant(given, access)
        if access is Access.ADMIN and not grant.admin:
            raise Refused(403, "this API key may not create or delete workspaces: that needs GRAPHDEX_API_KEY")
        if workspace is not None and not grant.covers(workspace):
            raise Refused(403, f"this API key is not allowed on workspace {_shown(workspace)}")
        return grant


def _shown(workspace: str) -> str:
    return repr(workspace if len(workspace) <= 80 else workspace[:77] + "...")


def check_api_key(key: str | None, what: str = "GRAPHDEX_API_KEY") -> None:
    """Refuses at start-up a key that could never match, instead of a service that answers 401 (or 500) to all.

    Any UTF-8 text works, non-ASCII included; what cannot work is a key with bytes that are not UTF-8 (the
    environment hands those over as lone surrogates), control characters (not allowed in a header) or spaces at
    either end (HTTP strips them from header values)."""
    if not key:
        return
    try:
        key.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidApiKey(f"{what} is not valid UTF-8 text; set it to a UTF-8 string") from None
    if any(unicodedata.category(c) == "Cc" for c in key):
        raise InvalidApiKey(f"{what} contains control characters, which an HTTP header cannot carry")
    if key != key.strip():
        raise InvalidApiKey(f"{what} starts or ends with whitespace, which HTTP strips from headers; remove it")
