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
from pipelines import alerts
from pipelines.jobs import JobContext, get
from pipelines.runner import Runner
from sensors.alerts import Condition
from sensors.observations import Observation, Source
from sensors.stations import Station
from store import alerts as alert_store
from store import derived
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

SOURCE = Source("http", "test-device")

pytestmark = pytest.mark.integration
ADMIN = "operator-secret"


class Hook:
    """A real HTTP server that answers 503 to the first ``failures`` POSTs, then 200."""

    def __init__(self, failures: int, on_post: Any = None) -> None:
        self.failures = failures
        self.on_post = on_post
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.attempts += 1
                if hook.on_post is not None:
                    hook.on_post()
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
        # issue 14: "alert messages are English only": `message` as before, `message_zh` beside
        by_rule = {a["rule"]: a for a in live}
        assert by_rule["exceedance"]["message"].startswith("so2 1h mean 6")
        assert "above the GB 3095-2026 limit 500" in by_rule["exceedance"]["message"]
        assert by_rule["exceedance"]["message_zh"].startswith("二氧化硫 1小时平均浓度 6")
        assert "超过 GB 3095-2026 限值 500" in by_rule["exceedance"]["message_zh"]
        assert by_rule["sustained"]["message_zh"] == "二氧化硫 连续 3 小时超过 500（1小时限值）"

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
        # issue 13: "acknowledged by the authenticated actor, not a query parameter"
        assert acked.json()["acknowledged_by"] == "admin"
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
    assert opened["alert"]["message"] and "超过" in opened["alert"]["message_zh"]  # both


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


def _one_alert(store: PostgresStore, database_url: str) -> None:
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    with psycopg.connect(database_url, autocommit=True) as conn:
        alert_store.sync(conn, [Condition("offline", "S1", "", "warning", "no data", 45.0)])


def test_abandoned_webhook_events_are_logged_and_listed(
    store: PostgresStore, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 12: "webhook events are abandoned after 20 attempts without a log line" — an
    event refused ``max_attempts`` times is logged (warning: event id, last error), retried no
    more, and listed by ``GET /api/v1/alerts/webhooks?state=abandoned``."""
    _one_alert(store, database_url)
    hook = Hook(failures=1000)
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            first = alerts.deliver(conn, hook.url, backoff=0.0, max_attempts=2)
            assert first == {"delivered": 0, "failed": 1, "abandoned": 0}
            with caplog.at_level("WARNING", logger="pipelines.alerts"):
                second = alerts.deliver(conn, hook.url, backoff=0.0, max_attempts=2)
            assert second == {"delivered": 0, "failed": 1, "abandoned": 1}
            (event,) = alert_store.list_notifications(conn, "abandoned")
            # abandoned: not due any more
            assert alerts.deliver(conn, hook.url, backoff=0.0, max_attempts=2)["failed"] == 0
            assert alert_store.list_notifications(conn, "pending") == []
    finally:
        hook.close()
    assert hook.attempts == 2
    assert event["attempts"] == 2 and event["last_error"] == "HTTP 503"
    assert event["event"] == "opened" and event["abandoned_at"] is not None
    (line,) = [r for r in caplog.records if "abandoned" in r.getMessage()]
    assert line.levelname == "WARNING"
    assert f"event {event['id']} " in line.getMessage() and "HTTP 503" in line.getMessage()

    app_ctx = ServiceContext(store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"))
    with TestClient(create_app(app_ctx)) as client:
        admin = {"Authorization": f"Bearer {ADMIN}"}
        assert client.get("/api/v1/alerts/webhooks").status_code == 401
        listed = client.get("/api/v1/alerts/webhooks", params={"state": "abandoned"}, headers=admin)
        assert listed.status_code == 200
        (item,) = listed.json()["items"]
        assert item["id"] == event["id"] and item["last_error"] == "HTTP 503"
        assert item["abandoned_at"].endswith("+08:00") and item["payload"]["event"] == "opened"
        none = client.get("/api/v1/alerts/webhooks", params={"state": "delivered"}, headers=admin)
        assert none.json()["items"] == []
        bad = client.get("/api/v1/alerts/webhooks", params={"state": "nope"}, headers=admin)
        assert bad.status_code == 400


def test_no_webhook_call_inside_an_open_transaction(
    store: PostgresStore, database_url: str
) -> None:
    """Issue 12 ("no HTTP call inside an open transaction"): while the webhook is being
    called, the event's row is not locked and the notifier's connection is not in a
    transaction."""
    _one_alert(store, database_url)
    seen: list[tuple[bool, int]] = []

    def probe() -> None:
        with psycopg.connect(database_url, autocommit=True) as other:
            try:
                with other.transaction():
                    other.execute("SET LOCAL lock_timeout = '200ms'")
                    other.execute("SELECT id FROM alert_notifications FOR UPDATE NOWAIT")
                locked = False
            except psycopg.errors.LockNotAvailable:
                locked = True
            row = other.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND state LIKE 'idle in transaction%%'"
            ).fetchone()
            assert row is not None
            seen.append((locked, int(row[0])))

    hook = Hook(failures=0, on_post=probe)
    try:
        with psycopg.connect(database_url, autocommit=True) as conn:
            sent = alerts.deliver(conn, hook.url, backoff=0.0)
    finally:
        hook.close()
    assert sent["delivered"] == 1
    assert seen == [(False, 0)]


def test_an_invalidated_gamma_reading_raises_no_alert(store: PostgresStore) -> None:
    """Issue 12, bullet 4: jobs exclude invalidated readings from alerts — the radiation rule
    reads raw gamma readings, so a reviewer's invalidation must reach it too; a restore brings
    the alert back."""
    from datetime import UTC, datetime

    from sensors.alerts import evaluate
    from store import reviews

    store.upsert_stations([Station("R1", "Rad one", "radiation", 116.4, 39.9)])
    now = datetime.now(UTC).replace(microsecond=0)
    spike = now - timedelta(minutes=5)
    store.write_observations([Observation("R1", "gamma", spike, 5000.0)], source=SOURCE)

    def gamma_alerts() -> list[Condition]:
        with store.connection() as conn:
            state = alert_store.load_state(conn, now)
        return [c for c in evaluate(state) if c.rule == "gamma"]

    assert [c.station for c in gamma_alerts()] == ["R1"]
    for action, expected in (("invalidate", []), ("restore", ["R1"])):
        with store.connection() as conn:
            reviews.add(
                conn,
                station="R1",
                parameter="gamma",
                start=spike,
                end=spike + timedelta(seconds=1),
                action=action,
                reason="detector fault, see log 42",
                by="reviewer",
            )
        assert [c.station for c in gamma_alerts()] == expected
