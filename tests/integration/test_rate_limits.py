"""Request rate limits on public and authentication routes (issue 13, "What to build" 6).

Issue 13: "Rate limits on public and authentication routes (429 with ``Retry-After``; local
addresses are not exempt unless configured), e.g. with a maintained limiter."

The application with its default limits (``ECOSENSE_PUBLIC_RATE`` 120/minute,
``ECOSENSE_AUTH_RATE`` 10/minute, nothing exempt), over the real store; the loopback and
trusted-proxy cases on a real uvicorn listener.
"""

from __future__ import annotations

import threading
import time
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from access import Role
from access.passwords import hash_password
from api.ratelimit import RateLimits
from ecosense.app import create_app
from sensors.stations import Station
from store import users
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
ADMIN = "break-glass-secret"


@pytest.fixture
def server_admin_url(embedded_admin_url: str) -> str:
    """The limits do not depend on the server: one is enough."""
    return embedded_admin_url


@pytest.fixture
def ctx(store: PostgresStore) -> ServiceContext:
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    with store.connection() as conn:
        users.add_user(conn, "ana", Role.VIEWER, hash_password("pw-ana"))
    return ServiceContext(store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"))


def test_the_121st_anonymous_request_in_a_minute_is_429(ctx: ServiceContext) -> None:
    """120 anonymous requests a minute per address by default; the 121st gets 429 with
    ``Retry-After`` and a JSON detail, while authenticated callers are still served."""
    with TestClient(create_app(ctx)) as client:
        sign_in = client.post("/api/v1/auth/token", data={"username": "ana", "password": "pw-ana"})
        assert sign_in.status_code == 200, sign_in.text  # counted as anonymous: 1 of 120
        user = {"Authorization": f"Bearer {sign_in.json()['access_token']}"}
        for i in range(119):
            r = client.get("/api/v1/stations")
            assert r.status_code == 200, (i, r.text)
        r = client.get("/api/v1/stations")
        assert r.status_code == 429, r.text
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert "too many anonymous requests" in r.json()["detail"]
        assert client.get("/healthz").status_code == 429  # every route
        # wrong credentials count as anonymous: no way around the limit by guessing tokens
        assert client.get("/healthz", headers={"Authorization": "Bearer nope"}).status_code == 429
        # authenticated callers are not counted by the public rate
        admin = {"Authorization": f"Bearer {ADMIN}"}
        for who in (user, admin):
            for _ in range(3):
                r = client.get("/api/v1/stations", headers=who)
                assert r.status_code == 200, r.text
        r = client.post(
            "/api/v1/observations",
            json={
                "observations": [
                    {
                        "station": "S1",
                        "parameter": "pm25",
                        "time": "2026-11-28T08:00:00+08:00",
                        "value": 1,
                    }
                ]
            },
            headers=admin,
        )
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text


def test_sign_in_is_limited_per_address(ctx: ServiceContext) -> None:
    """``POST /api/v1/auth/token``: 10 a minute per address by default, even with the right
    password and a token (the failure throttling behind it is separate)."""
    limits = RateLimits(public="1000/minute")  # the sign-in rate alone, at its default
    admin = {"Authorization": f"Bearer {ADMIN}"}
    with TestClient(create_app(ctx, limits)) as client:
        for i in range(10):
            r = client.post(
                "/api/v1/auth/token",
                data={"username": "ana", "password": "pw-ana"},
                headers=admin if i % 2 else {},
            )
            assert r.status_code == 200, (i, r.text)
        r = client.post(
            "/api/v1/auth/token", data={"username": "ana", "password": "pw-ana"}, headers=admin
        )
        assert r.status_code == 429, r.text
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert "sign-in" in r.json()["detail"]
        assert limits.refused == {"public": 0, "auth": 1, "key": 0}
        assert client.get("/api/v1/stations").status_code == 200  # reads go on


class Listener:
    """The application on a real uvicorn socket on loopback, as ``ecosense up`` serves it."""

    def __init__(self, app: object, trusted: list[str]) -> None:
        config = uvicorn.Config(
            app,  # type: ignore[arg-type]
            host="127.0.0.1",
            port=0,
            log_level="warning",
            proxy_headers=bool(trusted),
            forwarded_allow_ips=trusted,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def test_loopback_is_not_exempt_unless_configured(ctx: ServiceContext) -> None:
    """From 127.0.0.1: limited like any address by default; not with
    ``ECOSENSE_RATE_EXEMPT=127.0.0.0/8``."""
    for exempt, expected in (((), [200] * 5 + [429]), (("127.0.0.0/8",), [200] * 6)):
        app = create_app(ctx, RateLimits(public="5/minute", exempt=exempt))
        with Listener(app, []) as url, httpx.Client(base_url=url) as http:
            got = [http.get("/api/v1/stations").status_code for _ in range(6)]
        assert got == expected, exempt


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_count(
    ctx: ServiceContext,
) -> None:
    """Behind ``ECOSENSE_TRUSTED_PROXIES`` the forwarded client is counted, not the proxy;
    an untrusted peer's ``X-Forwarded-For`` is ignored (it cannot dodge its limit)."""
    app = create_app(ctx, RateLimits(public="3/minute"))
    with Listener(app, ["127.0.0.1"]) as url, httpx.Client(base_url=url) as http:

        def statuses(client: str) -> list[int]:
            headers = {"X-Forwarded-For": client}
            return [http.get("/healthz", headers=headers).status_code for _ in range(4)]

        assert statuses("203.0.113.5") == [200, 200, 200, 429]
        assert statuses("203.0.113.6") == [200, 200, 200, 429]
    app = create_app(ctx, RateLimits(public="3/minute"))
    with Listener(app, []) as url, httpx.Client(base_url=url) as http:
        got = [
            http.get("/healthz", headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
            for i in range(4)
        ]
    assert got == [200, 200, 200, 429]
