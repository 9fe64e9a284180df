"""Connection caps (ingest.limits) and the linear-time HJ 212 frame decoder."""

from __future__ import annotations

import time

import pytest

from ecosense.config import load_settings
from ecosense.errors import ConfigError
from ingest import hj212
from ingest.limits import Admission, parse_networks

PACKET = hj212.encode(cn="2011", mn="MN1", pw="pw", st="32", qn="1", flag=5, cp="a=1")


def test_admission_caps_per_address_and_in_total_trusted_proxies_by_total_only() -> None:
    a = Admission("t", per_address=2, total=5, trusted=parse_networks("10.0.0.0/8"))
    assert [a.admit("1.1.1.1") for _ in range(3)] == [True, True, False]
    assert a.admit("2.2.2.2")
    assert a.admit("10.1.2.3") and a.admit("10.1.2.3")  # a proxy: beyond the per-address cap
    assert not a.admit("3.3.3.3")  # the total
    a.release("1.1.1.1")
    assert a.admit("3.3.3.3") and a.refused == 2


def test_trusted_proxies_setting_is_checked() -> None:
    settings = load_settings({"ECOSENSE_TRUSTED_PROXIES": "10.0.0.5, 192.168.0.0/16"})
    assert settings.trusted_proxies == ("10.0.0.5", "192.168.0.0/16")
    assert settings.max_connections_per_address == 64 and settings.max_connections == 4096
    with pytest.raises(ConfigError, match="TRUSTED_PROXIES"):
        load_settings({"ECOSENSE_TRUSTED_PROXIES": "not-an-address"})
    with pytest.raises(ConfigError, match="MAX_CONNECTIONS_PER_ADDRESS"):
        load_settings({"ECOSENSE_MAX_CONNECTIONS_PER_ADDRESS": "0"})


@pytest.mark.parametrize(
    "garbage", [b"##" * 500_000, b"#" * 1_000_000, b"##0001x\r\n" * 110_000], ids=str
)
def test_decoder_skips_a_megabyte_of_garbage_in_linear_time(garbage: bytes) -> None:
    """Issue 13: 1 MB of garbage stalled another logger's round trip (here: the decoder's
    work on it, summarised, and a packet after it still found)."""
    decoder = hj212.FrameDecoder(summarise=True)
    t0 = time.perf_counter()
    frames = []
    for i in range(0, len(garbage), 65536):
        frames += decoder.feed(garbage[i : i + 65536])
    frames += decoder.feed(PACKET)
    assert time.perf_counter() - t0 < 2.0
    assert frames == [PACKET]  # no error objects: counted
    assert decoder.errors > 0 and decoder.discarded >= len(garbage) - 6
