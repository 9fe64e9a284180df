"""Noise (GB 3096-2008) through ingest and the Dask jobs on the real store: hourly LAeq by
energy average, the day's Ld, Ln and Ldn, and the day's assessment against the station's zone
(issue 18, item 3)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import psycopg
import pytest
from fastapi.testclient import TestClient

from ecosense.app import create_app
from pipelines.jobs import JobContext, get
from pipelines.runner import Runner
from sensors.observations import Observation, Source
from sensors.standards import noise
from sensors.stations import Station
from store import derived
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
#: 00:00 China Standard Time, 20 November 2026.
T0 = datetime(2026, 11, 19, 16, tzinfo=UTC)
CST = ZoneInfo("Asia/Shanghai")


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    with Runner(local="threads", workers=2) as r:
        yield r


def _minute_levels(t: datetime) -> tuple[float, float]:
    """(LAeq, Lmax) of the minute starting at ``t``: day 50/56 dB(A) in turn, night 44/48;
    Lmax a few dB above, and a night-time event peaking at 62 dB(A) from 02:28 to 02:32."""
    local = t.astimezone(CST)
    night = local.hour < 6 or local.hour >= 22
    m = local.minute
    laeq = (44.0, 48.0)[m % 2] if night else (50.0, 56.0)[m % 2]
    lmax = laeq + 6 + (m % 3)
    if local.hour == 2 and 28 <= m <= 32:
        lmax = (58.0, 60.0, 62.0, 61.0, 59.0)[m - 28]
    return laeq, lmax


def _ctx(url: str, runner: Runner) -> JobContext:
    return JobContext(url, runner, "Asia/Shanghai", overlap=timedelta(0))


def _aggregates(url: str, period: str, subject: str = "N1") -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        return derived.read_aggregates(
            conn,
            scope="station",
            period=period,
            start=T0 - timedelta(days=1),
            end=T0 + timedelta(days=3),
            subjects=[subject],
            parameters=["laeq"],
        ).set_index("start")


def test_noise_levels_and_assessment_of_a_day(
    store: PostgresStore, database_url: str, runner: Runner
) -> None:
    store.upsert_stations(
        [
            Station("N1", "Housing estate", "noise", 116.4, 39.9, {"noise_zone": "1"}),
            Station("N2", "No zone", "noise", 116.5, 39.9),
        ]
    )
    minutes = [T0 + timedelta(minutes=m) for m in range(24 * 60)]
    rows = [(t, *_minute_levels(t)) for t in minutes]
    obs = [Observation("N1", "laeq", t, a) for t, a, _ in rows]
    obs += [Observation("N1", "lmax", t, b) for t, _, b in rows]
    store.write_observations(obs, source=Source("http", "test"))
    # a gateway sends levels as "dB" or "dB(A)": both are dB(A)
    token = store.add_device("meter-n2", "N2")
    ctx = ServiceContext(
        store, hash_secret("admin"), ZoneInfo("Asia/Shanghai"), max_past=timedelta(days=3650)
    )
    sent: list[dict[str, Any]] = [
        {
            "station": "N2",
            "parameter": "LA" if i % 2 else "laeq",  # HJ 212-2017 Table B.3's code, or ours
            "time": (T0 + timedelta(hours=10, minutes=i)).isoformat(),
            "value": 52.0 + i % 4,
            "unit": "dB" if i % 2 else "dB(A)",
        }
        for i in range(60)
    ]
    with TestClient(create_app(ctx)) as client:
        answer = client.post(
            "/api/v1/observations",
            json={"observations": [*sent, {**sent[0], "value": 500.0}]},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 200 and answer.json()["accepted"] == 60  # 500 dB: impossible
    jobs = _ctx(database_url, runner)
    for name in ("hourly", "daily"):
        report = get(name).run(jobs, None, None)
        assert report.errors == [], report.errors

    hourly = _aggregates(database_url, "PT1H")
    frame = pd.DataFrame(rows, columns=["time", "laeq", "lmax"]).set_index("time")
    by_hour = frame["laeq"].groupby(pd.DatetimeIndex(frame.index).floor("h"))
    for hour, levels in by_hour:
        assert hourly.loc[hour, "value"] == pytest.approx(noise.leq(levels.to_numpy()))
        assert hourly.loc[hour, "value"] != pytest.approx(levels.mean())  # not arithmetic
    local_hours = pd.DatetimeIndex(frame.index).tz_convert(CST).hour
    night = (local_hours < 6) | (local_hours >= 22)
    ld = noise.leq(frame["laeq"].to_numpy()[~night])
    ln = noise.leq(frame["laeq"].to_numpy()[night])
    assert _aggregates(database_url, "P1D-LD").loc[T0, "value"] == pytest.approx(ld)
    assert _aggregates(database_url, "P1D-LN").loc[T0, "value"] == pytest.approx(ln)
    assert _aggregates(database_url, "P1D-LDN").loc[T0, "value"] == pytest.approx(noise.ldn(ld, ln))
    assert _aggregates(database_url, "P1D").loc[T0, "value"] == pytest.approx(
        noise.leq(frame["laeq"].to_numpy())
    )
    assert math.isclose(ld, 53.96, abs_tol=0.01) and math.isclose(ln, 46.45, abs_tol=0.01)

    with psycopg.connect(database_url) as conn:
        judged = derived.read_assessments(
            conn, kind="noise-daily", start=T0, end=T0 + timedelta(days=1), subjects=["N1", "N2"]
        ).set_index("subject")
    assert list(judged.index) == ["N1"]  # N2 has no zone: levels stored, not assessed
    day = judged.loc["N1"]
    assert day["label"] == "night,night_max" and day["value"] == 2 and day["level"] == 2
    details = day["details"]
    assert details["zone"] == "1" and details["day"]["compliant"]
    assert details["day"]["limit"] == 55 and details["night"]["limit"] == 45
    assert details["night"]["exceedance_db"] == pytest.approx(round(ln - 45, 1))
    assert details["night_max"] == {
        "level": 62.0,
        "limit": 60.0,
        "exceedance_db": 2.0,
        "compliant": False,
    }
    n2 = _aggregates(database_url, "PT1H", "N2")
    levels = np.array([52.0 + i % 4 for i in range(60)])
    assert n2["value"].iloc[0] == pytest.approx(noise.leq(levels))

    # idempotent: a second run and a full recompute change nothing
    before = _aggregates(database_url, "P1D-LN")
    for name in ("hourly", "daily"):
        assert get(name).run(jobs, None, None).rows == 0
    get("daily").run(jobs, T0, T0 + timedelta(days=1))
    pd.testing.assert_frame_equal(
        _aggregates(database_url, "P1D-LN").drop(columns=["computed_at"], errors="ignore"),
        before.drop(columns=["computed_at"], errors="ignore"),
    )
