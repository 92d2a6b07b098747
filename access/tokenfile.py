"""Static tokens for running outside a cluster: the file format of kube-apiserver's
``--token-auth-file``, and the groups that grant rights.

One token a line, CSV: ``token,user,uid,"group1,group2"`` (groups optional; ``uid`` may be
empty). Blank lines and lines starting with ``#`` are ignored. The file is read again when its
modification time or size changes, so a token is added or revoked without a restart; a file
that became unreadable or invalid keeps the tokens last read and logs the problem once.

Rights come from the groups (:data:`GRANTS`): ``foresight:admin`` may do everything,
``foresight:view`` may read (``get``, ``list``, and ``/metrics``); ``system:masters`` is
``foresight:admin``, as in Kubernetes. A token without one of them is authenticated and
refused (403).

Errors name the file and line, never the token.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from access.model import Decision, Permission, User

__all__ = ["GRANTS", "GroupAuthorizer", "TokenFile", "TokenFileError", "parse_token_file"]

log = logging.getLogger(__name__)

READ_VERBS = frozenset({"get", "list", "watch"})
# Group → the verbs it grants on every foresight resource and path ("*": all).
GRANTS: Mapping[str, frozenset[str]] = {
    "system:masters": frozenset({"*"}),
    "foresight:admin": frozenset({"*"}),
    "foresight:view": READ_VERBS,
}


class TokenFileError(Exception):
    """The token file is missing or malformed; the message names the file and line."""


def digest(token: str) -> bytes:
    """What tokens are compared and cached by: never the token itself."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def parse_token_file(path: Path, text: str) -> dict[bytes, User]:
    """The users of a token file by the digest of their token."""
    users: dict[bytes, User] = {}
    for number, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        where = f"{path}:{number}"
        if len(row) < 3:
            raise TokenFileError(f"{where}: need token,user,uid[,groups], got {len(row)} fields")
        if len(row) > 4:
            raise TokenFileError(f'{where}: more than 4 fields (quote the groups: "a,b")')
        token, name, uid = (part.strip() for part in row[:3])
        if not token or not name:
            raise TokenFileError(f"{where}: the token and the user must not be empty")
        key = digest(token)
        if key in users:
            raise TokenFileError(f"{where}: token repeated (user {name!r})")
        groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) == 4 else ()
        users[key] = User(name, uid, groups)
    return users


class TokenFile:
    """The users of a token file, re-read when the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._users = self._read()
        self._problem = ""

    def _read(self) -> dict[bytes, User]:
        try:
            stat = os.stat(self.path)
            text = self.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise TokenFileError(f"{self.path}: cannot read the token file: {e}") from e
        users = parse_token_file(self.path, text)
        self._seen = (stat.st_mtime_ns, stat.st_size)
        return users

    def users(self) -> dict[bytes, User]:
        """The users now: the file is read again if it changed since the last read."""
        try:
            stat = os.stat(self.path)
            changed = (stat.st_mtime_ns, stat.st_size) != self._seen
        except OSError:
            changed = True
        if changed:
            try:
                self._users = self._read()
                self._problem = ""
            except TokenFileError as e:
                if str(e) != self._problem:
                    log.error("%s; keeping the %d tokens read before", e, len(self._users))
                self._problem = str(e)
        return self._users

    async def authenticate(self, token: str) -> User | None:
        """The user of ``token``, or None."""
        return self.users().get(digest(token))


class GroupAuthorizer:
    """Rights from the token file's groups (:data:`GRANTS`)."""

    async def authorize(self, user: User, permission: Permission) -> Decision:
        for group in user.groups:
            verbs = GRANTS.get(group, frozenset())
            if "*" in verbs or permission.verb in verbs:
                return Decision(True, f"group {group}")
        return Decision(False, f"no group grants it ({', '.join(sorted(GRANTS))} do)")
