"""The HJ 212 login throttle: failures per MN and per address over a sliding window."""

from __future__ import annotations

from ingest.hj212_server import LoginThrottle


def test_an_mn_is_blocked_after_its_failures_until_the_oldest_is_a_window_old() -> None:
    t = LoginThrottle(per_mn=3, per_address=100, window=60)
    for now in (0.0, 1.0, 2.0):
        assert t.blocked("MN1", "10.0.0.1", now) is None
        t.failed("MN1", "10.0.0.1", now)
    assert t.blocked("MN1", "10.0.0.2", 3.0) is not None  # from any address
    assert t.blocked("MN2", "10.0.0.1", 3.0) is None  # another MN from the same address
    assert t.blocked("MN1", "10.0.0.1", 59.9) is not None
    assert t.blocked("MN1", "10.0.0.1", 60.1) is None  # the first failure aged out


def test_an_address_is_blocked_after_its_failures_unless_a_trusted_proxy() -> None:
    t = LoginThrottle(per_mn=100, per_address=4, window=60)
    for i in range(4):
        t.failed(f"MN{i}", "10.0.0.1", float(i))
        t.failed(f"MN{i}", "10.0.0.9", float(i))
    assert "address" in (t.blocked("MN-new", "10.0.0.1", 5.0) or "")
    assert t.blocked("MN-new", "10.0.0.2", 5.0) is None
    t.exempt = lambda host: host == "10.0.0.9"
    assert t.blocked("MN-new", "10.0.0.9", 5.0) is None


def test_old_failures_are_forgotten() -> None:
    t = LoginThrottle(per_mn=2, per_address=2, window=10)
    t.failed("MN1", "10.0.0.1", 0.0)
    t.prune(11.0)
    t.failed("MN1", "10.0.0.1", 12.0)
    assert t.blocked("MN1", "10.0.0.1", 12.5) is None
