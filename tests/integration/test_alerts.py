"""Alerts end to end: readings → hourly job → alerts job → API, and a real webhook server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from ecosense.app import create_app
from pipelines.jobs import JobContext, get
from pipelines.runner import Runner
from sensors.observations import Observation, Source
from sensors.stations import Station
from store import derived
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

SOURCE = Source("http", "test-device")

pytestmark = pytest.mark.integration
ADMIN = "operator-secret"


class Hook:
    """A real HTTP server that answers 503 to the first ``failures`` POSTs, then 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.attempts += 1
                if hook.attempts <= hook.failures:
                    self.send_response(503)
                else:
                    hook.received.append(json.loads(body))
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook() -> Iterator[Hook]:
    h = Hook(failures=2)
    yield h
    h.close()


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    with Runner(local="threads", workers=2) as r:
        yield r


def _write_hours(store: PostgresStore, start: Any, end: Any, so2: float) -> None:
    """Minute readings of SO2 at about ``so2`` µg/m³ from ``start`` until ``end``."""
    minutes = int((end - start).total_seconds() // 60)
    store.write_observations(
        [
            Observation("S1", "so2", start + timedelta(minutes=m), so2 + (m % 5) * 0.37)
            for m in range(minutes)
        ],
        source=SOURCE,
    )


def test_alert_life_cycle_api_and_webhook(
    store: PostgresStore, database_url: str, runner: Runner, hook: Hook
) -> None:
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    with psycopg.connect(database_url) as conn:
        now = derived.now(conn)
    last_hour = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
    _write_hours(store, last_hour - timedelta(hours=3), now, so2=600.0)  # above the 500 limit
    ctx = JobContext(database_url, runner, "Asia/Shanghai", webhook=hook.url, webhook_backoff=0.0)
    assert get("hourly").run(ctx, None, None).errors == []
    first = get("alerts").run(ctx, None, None)
    # the webhook failed twice: those two notifications are queued for retry
    assert first.errors and "will retry" in first.errors[0]

    app_ctx = ServiceContext(store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"))
    with TestClient(create_app(app_ctx)) as client:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        assert client.get("/api/v1/alerts").status_code == 401
        token = store.add_device("d1", "S1")
        denied = client.get("/api/v1/alerts", headers={"Authorization": f"Bearer {token}"})
        assert denied.status_code == 403
        live = client.get("/api/v1/alerts", params={"state": "live"}, headers=admin).json()["items"]
        keys = {(a["rule"], a["station"], a["parameter"]) for a in live}
        assert keys == {("exceedance", "S1", "so2_1h"), ("sustained", "S1", "so2")}
        assert all(a["state"] == "open" and a["opened_at"].endswith("+08:00") for a in live)

        # the same conditions again: no new alert (de-duplicated), the webhook catches up
        second = get("alerts").run(ctx, None, None)
        assert second.rows == 0 and second.errors == []
        again = client.get("/api/v1/alerts", headers=admin).json()["items"]
        assert len(again) == 2
        assert sorted(n["event"] for n in hook.received) == ["opened", "opened"]

        target = next(a for a in live if a["rule"] == "exceedance")
        acked = client.post(
            f"/api/v1/alerts/{target['id']}/acknowledge",
            params={"by": "duty officer"},
            headers=admin,
        )
        assert acked.status_code == 200 and acked.json()["state"] == "acknowledged"
        assert acked.json()["acknowledged_by"] == "duty officer"
        assert client.post("/api/v1/alerts/999999/acknowledge", headers=admin).status_code == 404

        # SO2 falls back below the limit: both alerts close, and the webhook hears of it
        _write_hours(store, last_hour - timedelta(hours=3), now, so2=20.0)
        assert get("hourly").run(ctx, None, None).errors == []
        closing = get("alerts").run(ctx, None, None)
        assert closing.rows == 2 and closing.errors == []
        closed = client.get("/api/v1/alerts", params={"state": "closed"}, headers=admin).json()[
            "items"
        ]
        assert {a["id"] for a in closed} == {a["id"] for a in live}
        assert (
            client.post(f"/api/v1/alerts/{target['id']}/acknowledge", headers=admin).status_code
            == 409
        )
        assert (
            client.get("/api/v1/alerts", params={"state": "nope"}, headers=admin).status_code == 400
        )

    events = sorted(n["event"] for n in hook.received)
    assert events == ["acknowledged", "closed", "closed", "opened", "opened"]
    assert hook.attempts == len(events) + 2  # each delivered once, after two refusals
    with psycopg.connect(database_url) as conn:
        pending = conn.execute(
            "SELECT count(*) FROM alert_notifications WHERE delivered_at IS NULL"
        ).fetchone()
    assert pending == (0,)
    opened = next(n for n in hook.received if n["event"] == "opened")
    assert opened["alert"]["station"] == "S1" and opened["alert"]["state"] == "open"


def test_aggregates_api(store: PostgresStore, database_url: str, runner: Runner) -> None:
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    with psycopg.connect(database_url) as conn:
        now = derived.now(conn)
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)
    _write_hours(store, start, start + timedelta(hours=2), so2=30.0)
    get("hourly").run(JobContext(database_url, runner), None, None)
    app_ctx = ServiceContext(store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"))
    with TestClient(create_app(app_ctx)) as client:
        got = client.get(
            "/api/v1/aggregates",
            params={
                "period": "PT1H",
                "subject": "S1",
                "parameter": "a21026",  # an HJ 212 code works too
                "start": (start - timedelta(hours=1)).isoformat(),
                "end": now.isoformat(),
            },
        )
        assert got.status_code == 200
        items = got.json()["items"]
        assert [i["valid"] for i in items] == [True, True]
        assert items[0]["value"] == pytest.approx(30 + 0.37 * 2)
        assert items[0]["unit"] == "ug/m3" and items[0]["start"].endswith("+08:00")
        bad = client.get("/api/v1/aggregates", params={"period": "PT1H", "start": "x", "end": "y"})
        assert bad.status_code == 400
