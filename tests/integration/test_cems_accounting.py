"""CEMS accounting on stack streams written through the real ingest path (the HTTP gateway),
aggregated and accounted by the hourly job."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from ecosense.app import create_app
from pipelines.jobs import JobContext, get
from pipelines.runner import Runner
from sensors.stations import Station
from store import derived
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
T0 = datetime(2026, 11, 20, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    with Runner(local="threads", workers=2) as r:
        yield r


def test_stack_co2_by_measurement_with_a_substituted_hour(
    store: PostgresStore, database_url: str, runner: Runner
) -> None:
    store.upsert_stations([Station("STACK-1", "Unit 1 stack", "cems", 117.2, 39.1)])
    token = store.add_device("cems-1", "STACK-1")
    ctx = ServiceContext(  # T0 stays writable by the device (ECOSENSE_MAX_PAST_DAYS)
        store, hash_secret("admin"), ZoneInfo("Asia/Shanghai"), max_past=timedelta(days=3650)
    )
    readings = []
    for hour, co2 in ((0, 180_000.0), (2, 200_000.0)):  # hour 1: the analyser was down
        for m in range(60):
            t = (T0 + timedelta(hours=hour, minutes=m)).isoformat()
            readings.append(
                {
                    "station": "STACK-1",
                    "parameter": "a05001",
                    "time": t,
                    "value": co2 + (m % 3),
                    "unit": "mg/m3",
                }
            )
            readings.append(
                {
                    "station": "STACK-1",
                    "parameter": "flue_flow",
                    "time": t,
                    "value": 500_000 / 3600 + (m % 2) * 0.01,
                    "unit": "m3/s",
                }
            )
    with TestClient(create_app(ctx)) as client:
        answer = client.post(
            "/api/v1/observations",
            json={"observations": readings},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert answer.status_code == 200 and answer.json()["accepted"] == len(readings)
    report = get("hourly").run(JobContext(database_url, runner), None, None)
    assert report.errors == []
    with psycopg.connect(database_url) as conn:
        out = derived.read_emissions(
            conn, source="cems", start=T0, end=T0 + timedelta(hours=3)
        ).set_index("start")
    hour0, hour1, hour2 = (T0 + timedelta(hours=h) for h in range(3))
    co2_0 = (180_000 + 1) * 1e-9  # mean concentration (mg/m3) per m3/h
    flow = (500_000 / 3600 + 0.005) * 3600  # mean flow, m3/h
    assert out.loc[hour0, "tonnes"] == pytest.approx(co2_0 * flow, rel=1e-6)  # ≈ 90 t
    assert out.loc[hour0, "substitution"] == "" and out.loc[hour2, "substitution"] == ""
    assert out.loc[hour1, "substitution"] == "interpolated"
    assert out.loc[hour1, "tonnes"] == pytest.approx(
        (out.loc[hour0, "tonnes"] + out.loc[hour2, "tonnes"]) / 2
    )
    # a second run writes nothing new
    assert get("hourly").run(JobContext(database_url, runner), None, None).rows == 0
