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


def test_requests_in_flight_are_capped_per_forwarded_client_of_trusted_proxies() -> None:
    """Item 6: "behind a proxy the client address comes from … X-Forwarded-For of
    configured trusted proxies only", and the per-address caps use it."""
    import asyncio
    from typing import Any

    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from ingest.http_guard import ClientConcurrency

    async def scenario() -> list[int]:
        release = asyncio.Event()

        async def app(scope: Any, receive: Any, send: Any) -> None:
            await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        stack = ProxyHeadersMiddleware(ClientConcurrency(app, 1), trusted_hosts="127.0.0.1")
        statuses: list[int] = []

        async def call(peer: str, forwarded: str) -> None:
            scope = {
                "type": "http",
                "scheme": "http",
                "client": (peer, 1234),
                "headers": [(b"x-forwarded-for", forwarded.encode())],
            }

            async def receive() -> Any:
                return {"type": "http.request", "body": b"", "more_body": False}

            async def send(message: Any) -> None:
                if message["type"] == "http.response.start":
                    statuses.append(message["status"])

            await stack(scope, receive, send)  # type: ignore[arg-type]

        first = asyncio.create_task(call("127.0.0.1", "203.0.113.7"))
        await asyncio.sleep(0.01)
        await call("127.0.0.1", "203.0.113.7")  # the same client behind the proxy: 503
        other = asyncio.create_task(call("127.0.0.1", "203.0.113.8"))  # another: admitted
        spoof = asyncio.create_task(call("127.0.0.2", "203.0.113.9"))  # untrusted: its own
        await asyncio.sleep(0.01)
        await call("127.0.0.2", "203.0.113.10")  # keyed on 127.0.0.2, not the header: 503
        release.set()
        await asyncio.gather(first, other, spoof)
        return statuses

    assert asyncio.run(scenario()) == [503, 503, 200, 200, 200]
