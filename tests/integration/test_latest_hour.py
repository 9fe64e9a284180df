"""Issue 14, "latest complete hour everywhere": the hourly views and the alerts read each
station's latest valid complete hour (never the running one), and alerts look at the daily AQI
too. Real readings, the real hourly/daily/alerts jobs, real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pandas as pd
import psycopg
import pytest

from pipelines.jobs import JobContext, get
from pipelines.runner import Runner
from sensors.observations import Observation, Source
from sensors.stations import Station
from store import alerts as alert_store
from store import derived
from store.postgres import PostgresStore

pytestmark = pytest.mark.integration
SOURCE = Source("http", "test-device")
TZ = "Asia/Shanghai"


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    with Runner(local="threads", workers=2) as r:
        yield r


def _minutes(
    station: str, parameter: str, start: datetime, minutes: int, value: float
) -> list[Observation]:
    """Minute readings around ``value`` (mean exactly ``value`` over whole hours; not constant,
    which QC would flag as a stuck sensor)."""
    return [
        Observation(station, parameter, start + timedelta(minutes=m), value + (m % 5 - 2) * 0.37)
        for m in range(minutes)
    ]


def test_running_hour_is_never_the_current_hour(
    store: PostgresStore, database_url: str, runner: Runner
) -> None:
    """Issue 14: "The station AQI map, the city ranking and the PM2.5 surface use the current,
    unfinished hour (11:00 ``count 30, valid false``) instead of the latest complete valid
    hour": at 11:30 (CST) the views read 10:00, not the running 11:00."""
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    ten = datetime(2026, 11, 28, 2, tzinfo=UTC)  # 10:00 CST
    # 09:00 and 10:00 complete; the running 11:00 hour has 30 minutes so far
    store.write_observations(
        _minutes("S1", "pm25", ten - timedelta(hours=1), 150, 200.0), source=SOURCE
    )
    assert get("hourly").run(JobContext(database_url, runner, TZ), None, None).errors == []
    now = ten + timedelta(hours=1, minutes=30)  # 11:30 CST
    with psycopg.connect(database_url) as conn:
        running = derived.read_aggregates(
            conn, scope="station", period="PT1H", start=ten + timedelta(hours=1), end=now
        )
        assert list(running["count"]) == [30] and not running["valid"].any()  # the trap
        means = derived.latest_complete_hours(conn, now, what="mean", parameters=["pm25"])
        aqi = derived.latest_complete_hours(conn, now, what="aqi", scope="station")
        # at 10:59 the 10:00 hour is still running: 09:00 is the latest complete hour
        before = derived.latest_complete_hours(conn, ten + timedelta(minutes=59), what="mean")
    assert list(means["start"]) == [pd.Timestamp(ten)]
    assert means["value"].iloc[0] == pytest.approx(200.0)
    assert list(aqi["start"]) == [pd.Timestamp(ten)] and aqi["value"].iloc[0] > 200
    assert list(before["start"]) == [pd.Timestamp(ten - timedelta(hours=1))]


def test_a_daily_aqi_of_215_opens_an_aqi_alert(
    store: PostgresStore, database_url: str, runner: Runner
) -> None:
    """Issue 14: "no ``aqi`` alert opened for a station whose daily AQI was 215 (重度污染)":
    a whole day of PM2.5 at 165 µg/m³ (24-hour IAQI 215, HJ 633-2026) opens a critical
    ``aqi`` alert for the day."""
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    with psycopg.connect(database_url) as conn:
        now = derived.now(conn)
    yesterday = (pd.Timestamp(now).tz_convert(TZ).normalize() - pd.Timedelta(days=1)).tz_convert(
        "UTC"
    )
    store.write_observations(
        _minutes("S1", "pm25", yesterday.to_pydatetime(), 24 * 60, 165.0), source=SOURCE
    )
    ctx = JobContext(database_url, runner, TZ)
    for job in ("hourly", "daily"):
        assert get(job).run(ctx, None, None).errors == []
    with psycopg.connect(database_url) as conn:
        daily = derived.read_assessments(
            conn, kind="aqi-daily", start=yesterday, end=yesterday + pd.Timedelta(days=1)
        )
    assert list(daily["value"]) == [215] and list(daily["level"]) == [5]  # 重度污染
    assert get("alerts").run(ctx, None, None).errors == []
    with psycopg.connect(database_url) as conn:
        live = alert_store.list_alerts(conn, "live")
    (alert,) = [a for a in live if a["rule"] == "aqi" and a["parameter"] == "P1D"]
    assert alert["station"] == "S1" and alert["severity"] == "critical"
    assert "daily AQI 215" in alert["message"]


def test_alerts_never_judge_the_running_hour(
    store: PostgresStore, database_url: str, runner: Runner
) -> None:
    """Item 1: alerts use the latest complete hour: at 10:50 a running 10:00 hour whose
    50 minutes of SO₂ already make a valid mean above the 1-hour limit raises nothing until
    the hour is over; the complete 09:00 hour below the limit is the one judged."""
    from sensors.alerts import evaluate

    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    nine = datetime(2026, 11, 28, 1, tzinfo=UTC)  # 09:00 CST
    readings = _minutes("S1", "so2", nine, 60, 100.0)
    readings += _minutes("S1", "so2", nine + timedelta(hours=1), 50, 700.0)  # the running hour
    store.write_observations(readings, source=SOURCE)
    assert get("hourly").run(JobContext(database_url, runner, TZ), None, None).errors == []
    with psycopg.connect(database_url) as conn:
        hours = derived.read_aggregates(
            conn, scope="station", period="PT1H", start=nine, end=nine + timedelta(hours=2)
        )
        assert list(hours["valid"]) == [True, True]  # 50 minutes: already a valid mean
        running = alert_store.load_state(conn, nine + timedelta(hours=1, minutes=50))
        over = alert_store.load_state(conn, nine + timedelta(hours=2, minutes=1))
    assert [c for c in evaluate(running) if c.rule == "exceedance"] == []
    (c,) = [c for c in evaluate(over) if c.rule == "exceedance"]
    assert c.key == ("exceedance", "S1", "so2_1h")
