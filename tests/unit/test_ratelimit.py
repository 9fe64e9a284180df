"""The request rate limiter (api.ratelimit): keys, exemptions, the memory bound, settings."""

from __future__ import annotations

import pytest

from api.ratelimit import RateLimits, client_key, parse_rate
from ecosense.config import load_settings
from ecosense.errors import ConfigError


def test_client_keys() -> None:
    assert client_key("192.0.2.7") == "192.0.2.7"
    assert client_key("::ffff:192.0.2.7") == "192.0.2.7"
    # one IPv6 subscriber prefix is one client: cycling its addresses does not help
    assert (
        client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    )
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key(None) == "unknown"
    assert client_key("testclient") == "testclient"


def test_a_limit_counts_per_address_and_tells_how_long_to_wait() -> None:
    limits = RateLimits(public="3/minute", auth="1/minute")
    assert [limits.hit("public", "192.0.2.1") for _ in range(3)] == [None] * 3
    wait = limits.hit("public", "192.0.2.1")
    assert wait is not None and 1 <= wait <= 60
    assert limits.hit("public", "192.0.2.2") is None  # another address
    assert limits.hit("auth", "192.0.2.1") is None  # another limit
    assert limits.hit("auth", "192.0.2.1") is not None
    assert limits.refused == {"public": 1, "auth": 1, "key": 0}


def test_loopback_is_limited_unless_exempt() -> None:
    limited = RateLimits(public="1/minute")
    assert limited.hit("public", "127.0.0.1") is None
    assert limited.hit("public", "127.0.0.1") is not None
    exempt = RateLimits(public="1/minute", exempt="127.0.0.0/8, ::1")
    assert all(exempt.hit("public", a) is None for a in ["127.0.0.1", "::1"] * 5)
    assert exempt.hit("public", "192.0.2.1") is None
    assert exempt.hit("public", "192.0.2.1") is not None
    assert exempt.tracked() == 1  # exempt addresses hold no counter


def test_a_flood_of_distinct_addresses_stays_within_the_memory_bound() -> None:
    """At most ``max_addresses`` counters; beyond, new addresses share one overflow counter
    (limited too), and the addresses already tracked keep their own."""
    limits = RateLimits(public="2/minute", max_addresses=100)
    assert limits.hit("public", "198.51.100.1") is None
    flood = [
        limits.hit("public", f"10.{i // 65536}.{i // 256 % 256}.{i % 256}") for i in range(5000)
    ]
    assert limits.tracked() <= 101  # the bound, and the overflow counter
    assert flood[:99] == [None] * 99  # tracked on their own while there was room
    assert sum(w is None for w in flood[99:]) == 2  # then all share one counter of 2
    assert limits.hit("public", "198.51.100.1") is None  # an early address keeps its own
    assert limits.hit("public", "198.51.100.1") is not None


def test_rates_are_parsed() -> None:
    assert parse_rate("120/minute").amount == 120
    assert parse_rate("10 per minute").amount == 10
    for bad in ["", "lots", "120/fortnight", "1/second;2/minute", "0/minute"]:
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_settings() -> None:
    s = load_settings({"ECOSENSE_CONFIG": ""})
    assert (s.public_rate, s.auth_rate, s.rate_exempt) == ("120/minute", "10/minute", ())
    s = load_settings(
        {
            "ECOSENSE_PUBLIC_RATE": "600/minute",
            "ECOSENSE_AUTH_RATE": "5/minute",
            "ECOSENSE_RATE_EXEMPT": "10.0.0.0/8, ::1",
        }
    )
    assert (s.public_rate, s.auth_rate, s.rate_exempt) == (
        "600/minute",
        "5/minute",
        ("10.0.0.0/8", "::1"),
    )
    for key, value in [
        ("ECOSENSE_PUBLIC_RATE", "fast"),
        ("ECOSENSE_AUTH_RATE", "0/minute;1/hour"),
        ("ECOSENSE_RATE_EXEMPT", "localhost"),
    ]:
        with pytest.raises(ConfigError, match=key):
            load_settings({key: value})


def test_a_bare_number_is_requests_a_minute() -> None:
    """The contract: ``ECOSENSE_PUBLIC_RATE`` ``120`` — requests a minute per address."""
    item = parse_rate("120")
    assert (item.amount, item.get_expiry()) == (120, 60)
    assert load_settings({"ECOSENSE_PUBLIC_RATE": "30"}).public_rate == "30"
    limits = RateLimits(public="2")
    assert [limits.hit("public", "192.0.2.1") for _ in range(2)] == [None, None]
    assert limits.hit("public", "192.0.2.1") is not None
    for bad in ["0", "-5", "١٢٠"]:
        with pytest.raises(ValueError):
            parse_rate(bad)


def test_an_api_key_is_counted_per_key_at_its_own_rate() -> None:
    """Issue 16 item 5: registered consumers get "their own limit" — per key, whatever the
    address, apart from the public limit of the addresses it is used from."""
    limits = RateLimits(public="1/minute")
    assert [limits.hit_key("acme", 3) for _ in range(3)] == [None] * 3
    wait = limits.hit_key("acme", 3)
    assert wait is not None and 1 <= wait <= 60
    assert limits.hit_key("other", 3) is None  # another key, its own window
    assert limits.hit("public", "192.0.2.1") is None  # the address's budget is apart
    assert limits.hit("public", "192.0.2.1") is not None
    assert limits.refused == {"public": 1, "auth": 0, "key": 1}


def test_exemptions_are_for_addresses_not_keys() -> None:
    limits = RateLimits(exempt="127.0.0.0/8")
    assert limits.hit_key("acme", 1) is None
    assert limits.hit_key("acme", 1) is not None


def test_keys_count_towards_the_memory_bound() -> None:
    limits = RateLimits(public="2/minute", max_addresses=10)
    for i in range(10):
        assert limits.hit("public", f"192.0.2.{i}") is None
    assert limits.tracked() == 10
    # no room: a new key shares the overflow counter (at its own rate) rather than growing it
    assert limits.hit_key("late", 1) is None
    assert limits.tracked() == 11
    assert limits.hit_key("late", 1) is not None
