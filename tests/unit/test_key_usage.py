"""API keys' usage counts (store.keys.KeyUsage): added up in memory, flushed as additive
updates, kept when the database cannot take them; and a consumer's principal."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import access
from access import Action, Grade
from store.errors import StoreUnavailable
from store.keys import KEY_PREFIX, KeyUsage, new_key


class FakeConn:
    def __init__(self, log: list[tuple[str, tuple[Any, ...]]]) -> None:
        self.log = log

    def execute(self, query: str, params: tuple[Any, ...]) -> None:
        self.log.append((query, params))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        yield


class FakeStore:
    def __init__(self) -> None:
        self.log: list[tuple[str, tuple[Any, ...]]] = []
        self.down = False

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[FakeConn]:
        if self.down:
            raise StoreUnavailable("database unavailable")
        yield FakeConn(self.log)


def test_usage_is_added_up_and_flushed_as_one_update_per_key() -> None:
    store = FakeStore()
    usage = KeyUsage(store)
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    for i in range(5):
        usage.count(1, served=True, at=t0 + timedelta(seconds=i))
    usage.count(1, served=False, at=t0)
    usage.count(2, served=True, at=t0)
    assert usage.pending() == 7
    assert store.log == []  # nothing written per request
    assert usage.flush() == 2
    assert [params for _, params in store.log] == [
        (5, 1, t0 + timedelta(seconds=4), 1),
        (1, 0, t0, 2),
    ]
    assert all("requests = requests + %s" in query for query, _ in store.log)  # additive
    assert usage.pending() == 0 and usage.flush() == 0


def test_a_failed_flush_keeps_the_counts_for_the_next() -> None:
    store = FakeStore()
    usage = KeyUsage(store)
    t0 = datetime(2026, 12, 1, tzinfo=UTC)
    usage.count(1, served=True, at=t0)
    store.down = True
    with pytest.raises(StoreUnavailable):
        usage.flush()
    usage.count(1, served=True, at=t0 + timedelta(seconds=1))
    usage.stop()  # never started: flushes once, logs the failure, keeps the counts
    assert usage.pending() == 2
    store.down = False
    assert usage.flush() == 1
    assert store.log[-1][1] == (2, 0, t0 + timedelta(seconds=1), 1)


def test_the_flush_thread_writes_every_interval_and_at_stop() -> None:
    store = FakeStore()
    usage = KeyUsage(store, interval=0.05).start()
    usage.count(7, served=True)
    for _ in range(100):
        if store.log:
            break
        time.sleep(0.02)
    assert store.log and store.log[0][1][0] == 1
    usage.count(7, served=False)
    usage.stop()
    assert store.log[-1][1][:2] == (0, 1)


def test_keys_look_like_device_tokens_with_their_own_prefix() -> None:
    key = new_key()
    assert key.startswith(KEY_PREFIX) and len(key) == len(KEY_PREFIX) + 43
    assert new_key() != key


def test_a_consumer_reads_public_only_and_is_named_in_the_audit() -> None:
    """A key does not raise the grade: anonymous to the policy, ``key:<name>`` as actor."""
    who = access.consumer("acme")
    assert who.kind == "anonymous" and who.actor == "key:acme"
    assert access.ANONYMOUS.actor == "anonymous"
    for grade in Grade:
        mine = access.authorize(who, Action.READ, access.Dataset("d", grade))
        anonymous = access.authorize(access.ANONYMOUS, Action.READ, access.Dataset("d", grade))
        assert bool(mine) == bool(anonymous) == (grade is Grade.PUBLIC)
        assert mine.status == anonymous.status
