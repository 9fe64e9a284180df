"""The pure parts of routing HJ 212 commands between gateway instances: the notifications'
payloads (PostgreSQL refuses 8000 bytes or more), instance ids, and how a routed command's
final state becomes the answer or the exception of ``Hj212Server.command``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.hj212_server import CommandFailed, _routed_result
from store import notify
from store.instances import (
    TERMINAL,
    CommandState,
    Wakeup,
    new_command_id,
    new_instance_id,
)


def test_a_wakeup_round_trips_through_its_payload() -> None:
    instance, command = new_instance_id(), new_command_id()
    for kind in ("request", "answer"):
        wakeup = Wakeup(kind, instance, command)  # type: ignore[arg-type]
        payload = wakeup.payload()
        assert payload == f"{kind} {instance} {command}"
        assert Wakeup.parse(payload) == wakeup
        assert len(payload.encode()) < 200  # a few dozen bytes, far below the 8000 limit


@pytest.mark.parametrize(
    "payload",
    [
        "*",
        "",
        "request",
        "request a",
        "request a b c",
        "command a b",
        "request a\0 b",
        "request a;DROP b",
        "answer " + "x" * 101 + " b",
        "request a  b",
    ],
)
def test_other_payloads_are_ignored(payload: str) -> None:
    assert Wakeup.parse(payload) is None


@given(st.text(max_size=300))
def test_parsing_any_payload_never_raises(payload: str) -> None:
    wakeup = Wakeup.parse(payload)
    if wakeup is not None:
        assert wakeup.payload() == payload


def test_a_wakeup_with_an_id_that_is_no_token_is_not_sent() -> None:
    with pytest.raises(ValueError, match="not an instance or command id"):
        Wakeup("request", "a b", "c").payload()
    with pytest.raises(ValueError, match="not an instance or command id"):
        Wakeup("answer", "a", "x" * 101).payload()


def test_instance_ids_are_tokens_naming_the_host_and_process() -> None:
    ident = new_instance_id("gw 1.example.org/ü", 4242)
    assert ident.startswith("gw1.example.org-4242-")
    assert Wakeup.parse(f"request {ident} {new_command_id()}") is not None
    assert new_instance_id("", 1).startswith("host-1-")
    assert len(new_instance_id("h" * 300, 1)) <= 60
    assert new_instance_id("h", 1) != new_instance_id("h", 1)


def test_payload_limit_is_8000_bytes_of_utf8() -> None:
    """PostgreSQL: "the payload string must be shorter than 8000 bytes" (pg_notify)."""
    assert notify.check_payload("x" * notify.MAX_PAYLOAD) == "x" * notify.MAX_PAYLOAD
    with pytest.raises(ValueError, match="8000 bytes exceeds 7999"):
        notify.check_payload("x" * 8000)
    three_bytes = "环" * (notify.MAX_PAYLOAD // 3)  # 7998 bytes
    assert notify.check_payload(three_bytes) == three_bytes
    with pytest.raises(ValueError, match="exceeds"):
        notify.check_payload(three_bytes + "环")  # 8001 bytes in 2667 characters
    with pytest.raises(ValueError, match="NUL"):
        notify.check_payload("device:a\0b")
    with pytest.raises(ValueError, match="valid text"):
        notify.check_payload("device:\udc80")


def test_an_answered_command_gives_the_units_answers() -> None:
    answer = {"qn": "20261128000000000", "QnRtn": "1", "ExeRtn": "1", "extra": "x"}
    assert _routed_result(CommandState("answered", answer), "MN1") == {
        "qn": "20261128000000000",
        "QnRtn": "1",
        "ExeRtn": "1",
    }
    refused = {"qn": "q", "QnRtn": "2", "ExeRtn": None}
    assert _routed_result(CommandState("answered", refused), "MN1") == refused


@pytest.mark.parametrize(
    ("state", "error"),
    [
        ("not_connected", LookupError),
        ("timeout", TimeoutError),
        ("invalid", ValueError),
        ("failed", CommandFailed),
    ],
)
def test_a_command_that_failed_there_fails_here_alike(state: str, error: type[Exception]) -> None:
    """The holder's outcome maps to what the local path raises, so the HTTP route answers
    404/504/400/502 the same whichever instance holds the unit."""
    assert state in TERMINAL
    with pytest.raises(error, match="why"):
        _routed_result(CommandState(state, None, "why"), "MN1")  # type: ignore[arg-type]
