"""The static token file: kube-apiserver's CSV format, errors at their line without the token,
rights by group, and a change picked up without a restart."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from access import Permission, TokenFileError, User
from access.tokenfile import GroupAuthorizer, TokenFile, parse_token_file

FILE = """\
# token,user,uid,groups
s3cret-admin,alice,1001,"foresight:admin,dev"
s3cret-view,bob,,foresight:view

s3cret-none,carol,1003
"""


async def test_users_and_their_groups(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text(FILE)
    tokens = TokenFile(path)
    assert await tokens.authenticate("s3cret-admin") == User(
        "alice", "1001", ("foresight:admin", "dev")
    )
    assert await tokens.authenticate("s3cret-view") == User("bob", "", ("foresight:view",))
    assert await tokens.authenticate("s3cret-none") == User("carol", "1003", ())
    assert await tokens.authenticate("s3cret") is None
    assert await tokens.authenticate("") is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tok-1,alice\n", r"tokens.csv:1: need token,user,uid\[,groups\], got 2 fields"),
        ("tok-1,alice,1,a,b\n", r"tokens.csv:1: more than 4 fields"),
        ("\n,alice,1\n", r"tokens.csv:2: the token and the user must not be empty"),
        ("tok-1,alice,1\ntok-1,bob,2\n", r"tokens.csv:2: token repeated \(user 'bob'\)"),
    ],
)
def test_errors_name_the_line_never_the_token(text: str, message: str) -> None:
    with pytest.raises(TokenFileError, match=message) as raised:
        parse_token_file(Path("tokens.csv"), text)
    assert "tok-1" not in str(raised.value)


def test_a_missing_file_fails_at_start(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match=r"tokens.csv: cannot read the token file"):
        TokenFile(tmp_path / "tokens.csv")


async def test_changes_are_read_and_a_broken_file_keeps_the_last_tokens(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text("old-token,alice,1\n")
    tokens = TokenFile(path)
    path.write_text("new-token,alice,1\n")
    os.utime(path, ns=(1, 1))  # a new mtime even within the file system's granularity
    assert await tokens.authenticate("old-token") is None
    assert await tokens.authenticate("new-token") == User("alice", "1")
    path.write_text("new-token\n")
    os.utime(path, ns=(2, 2))
    with caplog.at_level(logging.ERROR):
        assert await tokens.authenticate("new-token") == User("alice", "1")
        assert await tokens.authenticate("new-token") == User("alice", "1")
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "tokens.csv:1: need token,user,uid" in errors[0]
    assert "new-token" not in errors[0]


@pytest.mark.parametrize(
    ("groups", "verb", "allowed"),
    [
        (("foresight:admin",), "create", True),
        (("foresight:admin",), "delete", True),
        (("system:masters",), "delete", True),
        (("foresight:view",), "list", True),
        (("foresight:view",), "get", True),
        (("foresight:view",), "create", False),
        (("dev",), "list", False),
        ((), "get", False),
    ],
)
async def test_rights_come_from_the_groups(
    groups: tuple[str, ...], verb: str, allowed: bool
) -> None:
    decision = await GroupAuthorizer().authorize(
        User("u", groups=groups), Permission(verb, "silences")
    )
    assert decision.allowed is allowed
