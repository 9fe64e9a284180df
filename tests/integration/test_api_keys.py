"""API keys of open-data consumers (issue 16, item 5), against PostgreSQL.

Issue 16: "Anonymous callers are rate-limited per address (default 120 requests a minute,
``ECOSENSE_PUBLIC_RATE``; local addresses not exempt), 429 with ``Retry-After``; registered
consumers get an API key (``ecosense keys add NAME [--rate N]``) with their own limit, sent as
``X-API-Key``; usage counted per key." Done when: "429 after the limit".
"""

from __future__ import annotations

import json
import time
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from api.ratelimit import RateLimits
from ecosense.app import create_app
from ecosense.cli import main
from sensors.stations import Station
from store import audit, keys
from store.context import ServiceContext
from store.keys import KEY_PREFIX, KeyUsage
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
ADMIN = "break-glass-secret"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(list(args))
    out = capsys.readouterr()
    err = [x for x in out.err.splitlines() if not x.startswith("ecosense: data dir ")]
    return code, out.out.splitlines() + err


def listed(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    code, lines = run(capsys, "keys", "list", "--format", "json")
    assert code == 0, lines
    return {row["name"]: row for row in json.loads("\n".join(lines))}


@pytest.fixture
def server_admin_url(embedded_admin_url: str) -> str:
    """Keys do not depend on the server: one is enough."""
    return embedded_admin_url


@pytest.fixture
def ctx(store: PostgresStore) -> ServiceContext:
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    return ServiceContext(store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"))


def test_a_key_has_its_own_rate_and_its_usage_is_listed(
    cli_env: object,
    store: PostgresStore,
    ctx: ServiceContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines = run(capsys, "keys", "add", "acme", "--rate", "5")
    assert code == 0, lines
    key = lines[-1]
    assert key.startswith(KEY_PREFIX) and " " not in key
    assert "5 requests a minute" in lines[-2]
    code, lines = run(capsys, "keys", "add", "plain")
    assert code == 0 and "600 requests a minute" in lines[-2]  # the default rate
    # the key is never stored in clear: its SHA-256 only
    with store.connection() as conn:
        rows = conn.execute("SELECT * FROM api_keys").fetchall()
        (key_hash,) = conn.execute("SELECT key_hash FROM api_keys WHERE name = 'acme'").fetchone()
    assert key_hash == hash_secret(key)
    assert key not in repr(rows) and key[len(KEY_PREFIX) :] not in repr(rows)
    before = listed(capsys)
    assert before["acme"]["rate_per_minute"] == 5 and before["acme"]["state"] == "active"
    assert (before["acme"]["requests"], before["acme"]["last_used"]) == (0, "")
    assert all(key not in json.dumps(row) for row in before.values())

    limits = RateLimits(public="3/minute")
    with TestClient(create_app(ctx, limits)) as client:
        with_key = {"X-API-Key": key}
        for i in range(5):
            r = client.get("/api/v1/stations", headers=with_key)
            assert r.status_code == 200, (i, r.text)
        r = client.get("/api/v1/stations", headers=with_key)
        assert r.status_code == 429, r.text  # done when: "429 after the limit"
        assert 1 <= int(r.headers["Retry-After"]) <= 60
        assert "API key acme" in r.json()["detail"]
        # anonymous requests from the same address still have their own budget (3)
        for i in range(2):
            assert client.get("/api/v1/stations").status_code == 200, i
        # a wrong key is 401, counted against the address's public rate as wrong credentials
        r = client.get("/api/v1/stations", headers={"X-API-Key": KEY_PREFIX + "x" * 43})
        assert r.status_code == 401 and "API key" in r.json()["detail"], r.text
        assert client.get("/api/v1/stations").status_code == 429  # the 4th of 3
        assert limits.refused == {"public": 1, "auth": 0, "key": 1}
        # with Authorization too, Authorization decides and the key is not counted
        both = {"X-API-Key": key, "Authorization": f"Bearer {ADMIN}"}
        assert client.get("/api/v1/audit", headers=both).status_code == 200
        wrong = {"X-API-Key": key, "Authorization": "Bearer nope"}
        assert client.get("/api/v1/stations", headers=wrong).status_code == 429  # public, spent
    # usage: counted in memory, written at the application's shutdown
    after = listed(capsys)
    assert (after["acme"]["requests"], after["acme"]["refused"]) == (5, 1)
    assert after["acme"]["last_used"] != ""
    assert (after["plain"]["requests"], after["plain"]["refused"]) == (0, 0)


def test_a_revoked_key_is_refused_at_once(
    cli_env: object,
    store: PostgresStore,
    ctx: ServiceContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, lines = run(capsys, "keys", "add", "acme", "--rate", "100")
    key = lines[-1]
    with TestClient(create_app(ctx)) as client:
        with_key = {"X-API-Key": key}
        assert client.get("/api/v1/stations", headers=with_key).status_code == 200
        # a key does not raise the grade: the audit (admin) is 401, as for anyone anonymous
        assert client.get("/api/v1/audit", headers=with_key).status_code == 401
        code, lines = run(capsys, "keys", "revoke", "acme")
        assert code == 0 and "revoked" in lines[-1]
        r = client.get("/api/v1/stations", headers=with_key)
        assert r.status_code == 401, r.text
        assert r.headers["WWW-Authenticate"] == "Bearer"
    code, lines = run(capsys, "keys", "revoke", "nobody")
    assert code == 1 and "no API key named nobody" in lines[-1]
    # a name is not reused, even revoked
    code, lines = run(capsys, "keys", "add", "acme")
    assert code == 1 and "exists already" in lines[-1]
    code, lines = run(capsys, "keys", "add", "bad name")
    assert code == 1 and "bad key name" in lines[-1]
    with pytest.raises(SystemExit):
        main(["keys", "add", "x", "--rate", "0"])
    capsys.readouterr()
    row = listed(capsys)["acme"]
    assert row["state"] == "revoked" and row["revoked"] != "" and row["requests"] == 2
    with store.connection() as conn:
        entries = [(e.action, e.object) for e in audit.read(conn, limit=1000)]
    assert ("key.add", "key:acme") in entries
    assert ("key.revoke", "key:acme") in entries
    assert ("key.list", "api-keys") in entries


def test_the_header_is_in_the_openapi_document(ctx: ServiceContext) -> None:
    with TestClient(create_app(ctx)) as client:
        spec = client.get("/openapi.json").json()
    params = spec["paths"]["/api/v1/stations"]["get"]["parameters"]
    headers = {p["name"]: p for p in params if p["in"] == "header"}
    assert {"authorization", "X-API-Key"} <= set(headers)
    assert "API key" in headers["X-API-Key"]["description"]


def test_usage_is_flushed_in_the_background(store: PostgresStore, ctx: ServiceContext) -> None:
    """Usage is written every ``interval`` seconds while the gateway runs, not per request."""
    with store.connection() as conn:
        record, key = keys.add_key(conn, "feed", 50)
    usage = KeyUsage(store, interval=0.2)
    with TestClient(create_app(ctx, key_usage=usage)) as client:
        for _ in range(3):
            assert client.get("/healthz", headers={"X-API-Key": key}).status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with store.connection() as conn:
                (requests,) = conn.execute(
                    "SELECT requests FROM api_keys WHERE id = %s", (record.id,)
                ).fetchone()
            if requests == 3:
                break
            time.sleep(0.1)
        assert requests == 3  # written while the application still runs
