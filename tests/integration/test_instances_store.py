"""store/instances.py and store/notify.py against the real servers: which gateway instance holds
which HJ 212 unit, heartbeats that expire, the command rows, and one listener for several
channels."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from store import notify
from store.instances import CHANNEL, Instances, Wakeup, new_command_id
from store.postgres import PostgresStore

pytestmark = pytest.mark.integration


def wait_for(check: Callable[[], object], timeout: float) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start


def test_a_unit_is_held_by_the_instance_it_logged_in_to_last(store: PostgresStore) -> None:
    a, b = Instances(store).start(), Instances(store).start()
    try:
        assert a.holder("MN1") is None
        a.hold("MN1")
        wait_for(lambda: a.holder("MN1") == a.id, 5)
        assert b.holder("MN1") == a.id  # every instance sees it
        b.hold("MN1")  # the unit reconnected to B: the row moves
        wait_for(lambda: a.holder("MN1") == b.id, 5)
        a.release("MN1")  # A noticed its old connection closed: B's row stays
        time.sleep(0.5)
        assert a.holder("MN1") == b.id
        b.release("MN1")
        wait_for(lambda: a.holder("MN1") is None, 5)
        b.hold("MN2")
        wait_for(lambda: a.holder("MN2") == b.id, 5)
    finally:
        a.stop()
        b.stop()  # a stopped instance's units are no one's at once
    assert a.holder("MN2") is None


def test_a_dead_instance_holds_nothing_within_seconds_and_its_rows_are_rewritten_if_purged(
    store: PostgresStore,
) -> None:
    dead = Instances(store, heartbeat=0.2, expiry=1.0).start()
    dead.hold("MN1")
    wait_for(lambda: dead.holder("MN1") == dead.id, 5)
    dead._stop.set()  # killed: no more heartbeats, nothing deleted
    dead._wake.set()
    assert dead._thread is not None
    dead._thread.join(5)
    elapsed = wait_for(lambda: dead.holder("MN1") is None, 5)
    assert elapsed < 3
    # an instance whose row was purged (a long outage) records itself and its units again
    alive = Instances(store, heartbeat=0.2, expiry=1.0).start()
    try:
        alive.hold("MN3")
        wait_for(lambda: alive.holder("MN3") == alive.id, 5)
        with store.connection() as conn:
            conn.execute("DELETE FROM gateway_instances WHERE id = %s", (alive.id,))
        assert alive.holder("MN3") is None
        wait_for(lambda: alive.holder("MN3") == alive.id, 5)
    finally:
        alive.stop()


def test_a_routed_command_is_a_row_the_holder_takes_once_and_answers(
    store: PostgresStore,
) -> None:
    sender, holder = Instances(store), Instances(store)
    heard: list[str] = []
    listener = notify.Listener(store.url)
    listener.subscribe(heard.append, CHANNEL)
    listener.start()
    try:
        assert listener.wait_listening()
        command = new_command_id()
        sender.send_command(command, holder.id, "MN1", "1072", "NewPW=secret", 15.0)
        wait_for(lambda: f"request {holder.id} {command}" in heard, 5)
        assert all("secret" not in h for h in heard)  # the password stays in the table
        assert sender.claim(command) is None  # not for the sender
        taken = holder.claim(command)
        assert taken is not None and (taken.mn, taken.cn, taken.cp) == (
            "MN1",
            "1072",
            "NewPW=secret",
        )
        assert holder.claim(command) is None  # taken once
        wait_for(lambda: f"answer {sender.id} {command}" in heard, 5)
        assert sender.withdraw(command) is False  # taken: its answer is to be awaited
        state = sender.command_state(command)
        assert state is not None and state.state == "accepted"
        holder.answer(taken, "answered", {"qn": "q", "QnRtn": "1", "ExeRtn": "1"})
        state = sender.command_state(command)
        assert state is not None and state.state == "answered"
        assert state.result == {"qn": "q", "QnRtn": "1", "ExeRtn": "1"}
        assert holder.command_state(command) is None  # only its sender reads it
        sender.forget(command)
        assert sender.command_state(command) is None
        # a command nobody took is withdrawn, and cannot be taken after
        late = new_command_id()
        sender.send_command(late, holder.id, "MN1", "1061", "", 15.0)
        assert sender.withdraw(late) is True
        assert holder.claim(late) is None
        with pytest.raises(ValueError, match="time-out"):
            sender.send_command(new_command_id(), holder.id, "MN1", "1061", "", 601.0)
    finally:
        listener.stop()


def test_one_listener_for_several_channels_even_one_subscribed_while_it_runs(
    store: PostgresStore,
) -> None:
    credentials: list[str] = []
    routed: list[str] = []
    listener = notify.Listener(store.url, poll_seconds=0.1)
    listener.subscribe(credentials.append)
    listener.start()
    try:
        assert listener.wait_listening()
        assert credentials == [notify.EVERYTHING]
        listener.subscribe(routed.append, CHANNEL)
        assert listener.wait_listening()
        assert routed == [notify.EVERYTHING]  # what was announced before is unknown to it
        with store.connection() as conn:
            notify.announce(conn, notify.device_payload("d1"))
            notify.announce(conn, Wakeup("answer", "i1", "c1").payload(), CHANNEL)
        wait_for(lambda: len(credentials) == 2 and len(routed) == 2, 5)
        assert credentials[1] == "device:d1" and routed[1] == "answer i1 c1"
        with store.connection() as conn, pytest.raises(ValueError, match="exceeds"):
            notify.announce(conn, "x" * 8000, CHANNEL)
    finally:
        listener.stop()
