"""Paging on every list route: ``limit`` and ``cursor`` in, ``{"items", "next_cursor"}`` out.

Issue 12: "``/api/v1/aggregates`` stops at 10,000 rows without a cursor or a flag" — and
"Paging on every list route (aggregates included)".
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from ecosense.app import create_app
from sensors.stations import Station
from store import derived
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
ADMIN = "operator-secret"
OPERATOR = {"Authorization": f"Bearer {ADMIN}"}
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def client(store: PostgresStore) -> Iterator[TestClient]:
    ctx = ServiceContext(store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"))
    with TestClient(create_app(ctx)) as c:
        yield c


def pages(
    client: TestClient, url: str, params: dict[str, Any], headers: dict[str, str] | None = None
) -> list[list[dict[str, Any]]]:
    """Every page of a list route, following ``next_cursor`` to the end."""
    out: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        answer = client.get(
            url, params=params | ({"cursor": cursor} if cursor else {}), headers=headers
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert set(body) == {"items", "next_cursor"}
        out.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return out
        assert len(out) < 1000, "the cursor must advance"


def test_aggregates_past_10000_rows_page_by_cursor(
    store: PostgresStore, client: TestClient
) -> None:
    """10,050 hourly aggregates: before, the answer stopped at 10,000 without a cursor; now
    pages of 1,000 (the default) lead to every row, once, in (subject, parameter, start)."""
    hours = 3350
    frames = [
        pd.DataFrame(
            {
                "scope": "station",
                "subject": subject,
                "parameter": "pm25",
                "period": "PT1H",
                "start": pd.date_range(T0, periods=hours, freq="h"),
                "value": [float(i) for i in range(hours)],
                "count": 45.0,
                "valid": True,
                "unit": "ug/m3",
            }
        )
        for subject in ("S1", "S2", "S3")
    ]
    # issue 13: a station's aggregates carry its grade; ambient-air stations are public
    store.upsert_stations([Station(s, s, "air", 116.4, 39.9) for s in ("S1", "S2", "S3")])
    with store.connection() as conn:
        assert derived.upsert(conn, "aggregates", pd.concat(frames)) == 3 * hours
    query = {"period": "PT1H", "start": "2000-01-01", "end": "2100-01-01"}
    got = pages(client, "/api/v1/aggregates", query)
    assert [len(p) for p in got] == [1000] * 10 + [50]
    rows = [(i["subject"], i["start"]) for p in got for i in p]
    assert len(set(rows)) == 3 * hours
    assert rows[0] == ("S1", "2026-01-01T08:00:00+08:00")
    assert rows[hours] == ("S2", "2026-01-01T08:00:00+08:00")
    assert [i["value"] for i in got[0][:3]] == [0.0, 1.0, 2.0]
    # a bigger page, and the page limit's bounds
    big = client.get("/api/v1/aggregates", params=query | {"limit": 10_000}).json()
    assert len(big["items"]) == 10_000 and big["next_cursor"] is not None
    for bad in ("0", "10001", "x"):
        answer = client.get("/api/v1/aggregates", params=query | {"limit": bad})
        assert answer.status_code == 422
    # filters and the cursor together
    one = pages(client, "/api/v1/aggregates", query | {"subject": "S2", "limit": 2000})
    assert [len(p) for p in one] == [2000, 1350]
    assert {i["subject"] for p in one for i in p} == {"S2"}


def test_aggregates_bad_parameters_are_400(client: TestClient) -> None:
    base = {"period": "PT1H", "start": "2026-01-01", "end": "2026-02-01"}
    for params in (
        base | {"period": "PT2H"},
        base | {"scope": "county"},
        base | {"cursor": "garbage"},
        base | {"start": "yesterday"},
        base | {"parameter": "nope"},
    ):
        assert client.get("/api/v1/aggregates", params=params).status_code == 400, params


def test_stations_page_by_cursor(store: PostgresStore, client: TestClient) -> None:
    ids = [f"S{i:02d}" for i in range(25)]
    store.upsert_stations([Station(s, s, "air", 116.0, 39.0) for s in reversed(ids)])
    got = pages(client, "/api/v1/stations", {"limit": 10})
    assert [len(p) for p in got] == [10, 10, 5]
    assert [i["id"] for p in got for i in p] == ids
    whole = client.get("/api/v1/stations").json()
    assert [i["id"] for i in whole["items"]] == ids and whole["next_cursor"] is None
    assert client.get("/api/v1/stations", params={"cursor": "%%%"}).status_code == 400


def test_alerts_page_by_cursor_newest_first(store: PostgresStore, client: TestClient) -> None:
    """Alerts opened at the same instant are told apart by id: none is skipped or repeated."""
    with store.connection() as conn:
        for i in range(23):
            conn.execute(
                "INSERT INTO alerts (rule, station_id, state, message, opened_at)"
                " VALUES (%s, 'S1', 'closed', 'm', %s)",
                (f"r{i}", T0 + timedelta(minutes=i // 3)),
            )
    got = pages(client, "/api/v1/alerts", {"limit": 5}, OPERATOR)
    assert [len(p) for p in got] == [5, 5, 5, 5, 3]
    rules = [i["rule"] for p in got for i in p]
    assert rules == [f"r{i}" for i in reversed(range(23))]
    answer = client.get("/api/v1/alerts", params={"cursor": "e30"}, headers=OPERATOR)
    assert answer.status_code == 400
