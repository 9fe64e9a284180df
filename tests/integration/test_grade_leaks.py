"""Two leaks past the grades (issue 13, "What to build" 2), found in review, against PostgreSQL.

Issue 13: "Every dataset has one [grade] — station readings and their derived series per
station, facility activity and emissions, alerts, …" and "Anonymous callers see ``public``
only; each role sees up to its grade."

- ``GET /api/v1/alerts`` listed the alerts of every station to a viewer, those of a plant's
  CEMS stack included: an alert now carries its station's grade (listing, naming a station,
  acknowledging, and the webhook events that carry it).
- The hourly job put every station with a ``city`` attribute into its city's means, so a CEMS
  stack's SO₂ or a station reclassified above public flowed into the public
  ``city-aggregates``: a city's means are now over its public ambient-air stations only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest
from fastapi.testclient import TestClient

from access import Grade, Role
from access.passwords import hash_password
from ecosense.app import create_app
from pipelines.jobs import JobContext, get
from pipelines.runner import Runner
from sensors.alerts import Condition
from sensors.observations import Observation, Source
from sensors.stations import Station
from store import alerts as alert_store
from store import derived, users
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
ADMIN = "break-glass-secret"
T0 = datetime(2026, 11, 28, 0, tzinfo=UTC)


@pytest.fixture
def server_admin_url(embedded_admin_url: str) -> str:
    """Grades do not depend on the server: one is enough."""
    return embedded_admin_url


@pytest.fixture
def world(store: PostgresStore) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    """Stations of three grades in one city, an alert on each, and a client signed in as
    each role that matters here."""
    store.upsert_stations(
        [
            Station("A1", "Air", "air", 116.4, 39.9, {"city": "Beijing"}),  # public
            Station("C1", "Stack", "cems", 116.5, 39.8, {"city": "Beijing"}),  # sensitive
            Station("X1", "Secret", "air", 116.3, 39.7, {"city": "Beijing"}),  # restricted
        ]
    )
    with store.connection() as conn:
        users.set_station_grade(conn, "X1", Grade.RESTRICTED)
        for role in (Role.VIEWER, Role.ANALYST, Role.OPERATOR):
            users.add_user(conn, role.label, role, hash_password(f"pw-{role.label}"))
        alert_store.sync(
            conn,
            [
                Condition("exceedance", s, "so2", "warning", f"so2 high at {s}")
                for s in ("A1", "C1", "X1")
            ],
        )
    ctx = ServiceContext(store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"))
    with TestClient(create_app(ctx)) as client:
        headers = {"admin": {"Authorization": f"Bearer {ADMIN}"}}
        for role in (Role.VIEWER, Role.ANALYST, Role.OPERATOR):
            r = client.post(
                "/api/v1/auth/token", data={"username": role.label, "password": f"pw-{role.label}"}
            )
            assert r.status_code == 200, r.text
            headers[role.label] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        yield client, headers


def _stations(client: TestClient, path: str, headers: dict[str, str], **params: str) -> list[str]:
    r = client.get(path, headers=headers, params={**params, "limit": "1"})
    assert r.status_code == 200, r.text
    seen, body = [], r.json()
    while True:  # paging unchanged: one alert a page
        seen += [
            i["station"] if "station" in i else i["payload"]["alert"]["station"]
            for i in body["items"]
        ]
        if body["next_cursor"] is None:
            return sorted(seen)
        body = client.get(
            path, headers=headers, params={**params, "limit": "1", "cursor": body["next_cursor"]}
        ).json()


def test_alerts_are_listed_by_the_grade_of_their_station(
    world: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    """A viewer does not see a CEMS alert, an analyst does; a restricted station's alert is
    the admin's alone."""
    client, headers = world
    assert _stations(client, "/api/v1/alerts", headers["viewer"]) == ["A1"]
    assert _stations(client, "/api/v1/alerts", headers["analyst"]) == ["A1", "C1"]
    assert _stations(client, "/api/v1/alerts", headers["admin"]) == ["A1", "C1", "X1"]
    # naming a station beyond the caller's grade is refused, as /api/v1/aggregates does
    r = client.get("/api/v1/alerts", headers=headers["viewer"], params={"station": "C1"})
    assert r.status_code == 403, r.text
    r = client.get("/api/v1/alerts", headers=headers["analyst"], params={"station": "C1"})
    assert r.status_code == 200 and [i["station"] for i in r.json()["items"]] == ["C1"]
    # the webhook events carry the alert (its station, message and value): same rule
    events = "/api/v1/alerts/webhooks"
    assert _stations(client, events, headers["analyst"], state="pending") == ["A1", "C1"]
    assert _stations(client, events, headers["admin"], state="pending") == ["A1", "C1", "X1"]


def test_acknowledging_needs_the_grade_of_the_alert_s_station(
    world: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    client, headers = world
    ids = {
        a["station"]: a["id"]
        for a in client.get("/api/v1/alerts", headers=headers["admin"]).json()["items"]
    }
    ack = "/api/v1/alerts/{}/acknowledge"
    r = client.post(ack.format(ids["C1"]), headers=headers["operator"])
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "operator", r.text
    r = client.post(ack.format(ids["X1"]), headers=headers["operator"])
    assert r.status_code == 403, r.text  # restricted: admin only
    r = client.post(ack.format(ids["X1"]), headers=headers["admin"])
    assert r.status_code == 200 and r.json()["acknowledged_by"] == "admin", r.text
    assert client.post(ack.format(10**9), headers=headers["operator"]).status_code == 404


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    with Runner(local="threads", workers=2) as r:
        yield r


def test_city_means_are_over_public_ambient_air_stations_only(
    store: PostgresStore, database_url: str, runner: Runner
) -> None:
    """A CEMS stack and an air station reclassified ``internal`` in the same city do not
    change the city's means (public ``city-aggregates``, city AQI)."""
    store.upsert_stations(
        [
            Station("A1", "Air", "air", 116.4, 39.9, {"city": "Beijing"}),
            Station("C1", "Stack", "cems", 116.5, 39.8, {"city": "Beijing"}),
            Station("R1", "Reclassified", "air", 116.3, 39.7, {"city": "Beijing"}),
        ]
    )
    with store.connection() as conn:
        users.set_station_grade(conn, "R1", Grade.INTERNAL)
    levels = {"A1": 10.0, "C1": 500.0, "R1": 300.0}
    store.write_observations(
        [
            Observation(s, "so2", T0 + timedelta(minutes=m), round(level * (1 + 0.05 * noise), 3))
            for s, level in levels.items()
            for m, noise in enumerate(np.random.default_rng(7).normal(size=60))
        ],
        source=Source("http", "test-device"),
    )
    ctx = JobContext(database_url, runner, "Asia/Shanghai", overlap=timedelta(0))
    report = get("hourly").run(ctx, T0, T0 + timedelta(hours=1))
    assert report.errors == [], report.errors
    with psycopg.connect(database_url) as conn:

        def hourly(scope: str, subject: str) -> list[float]:
            frame = derived.read_aggregates(
                conn,
                scope=scope,
                period="PT1H",
                start=T0,
                end=T0 + timedelta(hours=1),
                subjects=[subject],
                parameters=["so2"],
            )
            assert frame["valid"].all(), frame
            return [float(v) for v in frame["value"]]

        # the stack's and the reclassified station's own means are there, valid
        assert hourly("station", "C1") == [pytest.approx(500, rel=0.05)]
        assert hourly("station", "R1") == [pytest.approx(300, rel=0.05)]
        # the city's: A1's alone, not about (10 + 500 + 300) / 3
        (a1,) = hourly("station", "A1")
        assert hourly("city", "Beijing") == [pytest.approx(a1)] and a1 < 11
        aqi = conn.execute(
            "SELECT scope, value FROM assessments WHERE kind = 'aqi-hourly'"
            " AND subject IN ('A1', 'Beijing') ORDER BY scope"
        ).fetchall()
        assert aqi[0][0] == "city" and aqi[1][0] == "station" and aqi[0][1] == aqi[1][1], aqi


def test_the_station_list_holds_the_stations_the_caller_may_read(
    world: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    """Found trying issue 13 as a new user: after ``ecosense classify station SIM-HARBIN
    --class restricted`` an anonymous ``GET /api/v1/stations`` still returned it (and the
    CEMS stations with their facility ids) while the dashboard hid it."""
    client, headers = world

    def listed(who: dict[str, str] | None) -> list[str]:
        r = client.get("/api/v1/stations", headers=who)
        assert r.status_code == 200, r.text
        return [s["id"] for s in r.json()["items"]]

    assert listed(None) == ["A1"]
    assert listed(headers["viewer"]) == ["A1"]
    assert listed(headers["analyst"]) == ["A1", "C1"]
    assert listed(headers["admin"]) == ["A1", "C1", "X1"]
    # paging still walks the readable stations only
    r = client.get("/api/v1/stations", headers=headers["analyst"], params={"limit": 1})
    page = r.json()
    assert [s["id"] for s in page["items"]] == ["A1"] and page["next_cursor"]
    r = client.get(
        "/api/v1/stations",
        headers=headers["analyst"],
        params={"limit": 1, "cursor": page["next_cursor"]},
    )
    assert [s["id"] for s in r.json()["items"]] == ["C1"] and r.json()["next_cursor"] is None


def test_aggregates_take_station_as_the_subject(
    world: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    """Found trying issue 13 as a new user: ``/api/v1/aggregates?…&station=SIM-JINAN``
    silently ignored ``station=`` and answered other stations' means to an anonymous caller."""
    client, headers = world
    query = {"period": "PT1H", "start": "2026-11-28", "end": "2026-11-29"}
    assert client.get("/api/v1/aggregates", params=query | {"station": "C1"}).status_code == 401
    viewer = headers["viewer"]
    r = client.get("/api/v1/aggregates", params=query | {"station": "C1"}, headers=viewer)
    assert r.status_code == 403
    r = client.get(
        "/api/v1/aggregates", params=query | {"station": "C1"}, headers=headers["analyst"]
    )
    assert r.status_code == 200
    r = client.get("/api/v1/aggregates", params=query | {"station": "A1", "scope": "city"})
    assert r.status_code == 400
