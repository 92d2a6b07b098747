"""Rendezvous hashing and the hand-off rules of a shard's view, as pure logic."""

from __future__ import annotations

from collections import Counter

import pytest

from autoscaler.settings import Settings
from autoscaler.sharding.hashing import owner
from autoscaler.sharding.membership import lease_name
from autoscaler.sharding.view import ShardView

KEYS = [f"node/n{i}" for i in range(3000)]


def test_every_key_has_one_owner_and_shares_are_even() -> None:
    members = {"a", "b", "c"}
    counts = Counter(owner(k, members) for k in KEYS)
    assert set(counts) == members
    assert all(900 <= n <= 1100 for n in counts.values()), counts
    assert owner("x", set()) is None
    # Independent of the order the members are listed in, and of the process.
    assert owner("node/n7", ["c", "b", "a"]) == owner("node/n7", ["a", "b", "c"])


def test_only_the_leavers_keys_move() -> None:
    before = {k: owner(k, {"a", "b", "c"}) for k in KEYS}
    after = {k: owner(k, {"a", "b"}) for k in KEYS}
    moved = [k for k in KEYS if before[k] != after[k]]
    assert moved and all(before[k] == "c" for k in moved)
    joined = {k: owner(k, {"a", "b", "c", "d"}) for k in KEYS}
    taken = [k for k in KEYS if joined[k] != before[k]]
    assert all(joined[k] == "d" for k in taken)
    assert 600 <= len(taken) <= 900  # a quarter


def _view(identity: str) -> ShardView:
    return ShardView(identity, handoff_seconds=10, lease_seconds=15)


def test_a_new_member_waits_a_hand_off_before_acting() -> None:
    view = _view("a")
    view.observe(frozenset({"a"}), now=100, renewed=True)
    assert view.owner("node/n1") == "a"
    assert not view.owns("node/n1", now=100)
    view.observe(frozenset({"a"}), now=105, renewed=True)
    assert not view.owns("node/n1", now=105)
    view.observe(frozenset({"a"}), now=111, renewed=True)
    assert view.owns("node/n1", now=111)


def test_a_key_lost_is_dropped_at_once_and_a_key_gained_waits() -> None:
    a, b = _view("a"), _view("b")
    for t in (0, 5, 11):
        a.observe(frozenset({"a"}), now=t, renewed=True)
    mine = [k for k in KEYS if a.owns(k, 11)]
    assert len(mine) == len(KEYS)
    moving = [k for k in KEYS[:300] if owner(k, {"a", "b"}) == "b"]
    acting: dict[float, tuple[int, int]] = {}
    # b joins; both see it at t = 15.
    for t in (15, 20, 25, 30):
        a.observe(frozenset({"a", "b"}), now=t, renewed=True)
        b.observe(frozenset({"a", "b"}), now=t, renewed=True)
        for k in KEYS[:300]:
            assert not (a.owns(k, t) and b.owns(k, t)), (k, t)
        acting[t] = (sum(a.owns(k, t) for k in moving), sum(b.owns(k, t) for k in moving))
    assert moving
    # Dropped by a at once, taken by b after the hand-off time.
    assert acting == {15: (0, 0), 20: (0, 0), 25: (0, len(moving)), 30: (0, len(moving))}


def test_a_replica_that_cannot_renew_stops_acting_within_a_lease() -> None:
    view = _view("a")
    for t in (0, 5, 11):
        view.observe(frozenset({"a"}), now=t, renewed=True)
    assert view.owns("node/n1", 11)
    view.observe(frozenset({"a"}), now=20, renewed=False)
    assert view.owns("node/n1", 20)
    assert not view.owns("node/n1", 26)  # last renewal at 11, lease 15


@pytest.mark.parametrize(
    "identity",
    ["foresight-0", "Host_Name_1234", "x" * 200, "pod.with.dots"],
)
def test_lease_names_are_valid_and_distinct(identity: str) -> None:
    name = lease_name("foresight", identity)
    assert len(name) <= 63 and name == name.lower()
    assert all(c.isalnum() or c == "-" for c in name) and name[0].isalnum() and name[-1].isalnum()
    assert lease_name("foresight", identity + "1") != name


def test_shards_without_a_shared_store_are_refused() -> None:
    with pytest.raises(ValueError, match=r"needs storage.query_url, remote_write"):
        Settings.model_validate({"sharding": {"replicas": 3}})
    ok = Settings.model_validate(
        {
            "sharding": {"replicas": 3},
            "storage": {"query_url": "http://prometheus:9090"},
            "remote_write": [{"url": "http://prometheus:9090/api/v1/write"}],
        }
    )
    assert ok.sharding.replicas == 3
