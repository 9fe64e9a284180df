"""Aggregation validity per GB 3095-2026 Table 4; invalid aggregates are kept and flagged."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

from pipelines import aggregate
from tests.datasets import no2_hourly


def minutes(start: str, n: int, step: str = "1min") -> pd.DataFrame:
    t = pd.date_range(start, periods=n, freq=step, tz="UTC")
    return pd.DataFrame({"time": t, "value": np.arange(n, dtype=float)})


def test_hourly_needs_45_minutes_of_sampling() -> None:
    """Table 4: 1-hour mean valid with at least 45 minutes of sampling in the hour."""
    frame = pd.concat([minutes("2026-11-01T00:00Z", 45), minutes("2026-11-01T01:00Z", 44)])
    out = aggregate.hourly(frame, sample_minutes=1)
    assert out["count"].tolist() == [45, 44]
    assert out["valid"].tolist() == [True, False]
    assert out["value"].iloc[0] == 22.0  # mean of 0 … 44; the invalid hour is kept


def test_hourly_counts_each_reading_as_its_sampling_interval() -> None:
    five = pd.concat(
        [minutes("2026-11-01T00:00Z", 9, "5min"), minutes("2026-11-01T01:00Z", 8, "5min")]
    )
    out = aggregate.hourly(five)  # spacing inferred: 5 minutes per reading
    assert out["count"].tolist() == [45, 40]
    assert out["valid"].tolist() == [True, False]


def test_readings_failing_qc_do_not_count() -> None:
    frame = minutes("2026-11-01T00:00Z", 50)
    frame["valid"] = True
    frame.loc[:9, "valid"] = False
    out = aggregate.hourly(frame, sample_minutes=1)
    assert (out["count"].iloc[0], bool(out["valid"].iloc[0])) == (40, False)


def hours(start: str, values: list[float], tz: str = "UTC") -> pd.DataFrame:
    t = pd.date_range(pd.Timestamp(start, tz=tz), periods=len(values), freq="h").tz_convert("UTC")
    v = pd.Series(values, index=t, dtype=float)
    return pd.DataFrame({"value": v, "valid": v.notna()})


def test_daily_needs_20_hours_on_the_bureau_day() -> None:
    """Table 4: 24-hour mean valid with at least 20 hourly means; days of Asia/Shanghai."""
    day1 = [1.0] * 20 + [np.nan] * 4
    day2 = [2.0] * 19 + [np.nan] * 5
    out = aggregate.daily(hours("2026-11-01T00:00", day1 + day2, "Asia/Shanghai"))
    assert out.index.tolist() == [
        pd.Timestamp("2026-10-31T16:00Z"),  # 2026-11-01 00:00 CST
        pd.Timestamp("2026-11-01T16:00Z"),
    ]
    assert out["count"].tolist() == [20, 19]
    assert out["valid"].tolist() == [True, False]
    utc = aggregate.daily(hours("2026-11-01T00:00", day1 + day2, "Asia/Shanghai"), tz="UTC")
    assert len(utc) == 3  # the same hours straddle three UTC days


def test_o3_8h_needs_6_hours_and_the_daily_maximum_uses_windows_ending_8_to_24() -> None:
    values = [float(h) for h in range(24)]
    values[3] = values[4] = values[5] = np.nan
    out = aggregate.o3_8h(hours("2026-07-01T00:00", values))
    # window ending with hour 7 covers 0 … 7: 5 valid hours → invalid; hour 8: 1 … 8: 5 → invalid
    assert out.loc["2026-07-01T07:00Z", "count"] == 5 and not out.loc["2026-07-01T07:00Z", "valid"]
    assert out.loc["2026-07-01T10:00Z", "count"] == 5 and not out.loc["2026-07-01T10:00Z", "valid"]
    assert out.loc["2026-07-01T11:00Z", "count"] == 6 and out.loc["2026-07-01T11:00Z", "valid"]
    daily = aggregate.o3_daily_max_8h(hours("2026-07-01T00:00", values), tz="UTC")
    # 17 windows end 08:00 … 24:00; those ending 08, 09, 10 and 11 h have 5 hours: 13 valid
    assert daily["count"].iloc[0] == 13 and not daily["valid"].iloc[0]
    assert daily["value"].iloc[0] == np.mean(range(16, 24))  # kept, flagged invalid
    values = [float(h) for h in range(24)]
    values[2] = values[3] = values[4] = np.nan  # windows with last hour 7, 8, 9 lack 3: 14 valid
    daily = aggregate.o3_daily_max_8h(hours("2026-07-01T00:00", values), tz="UTC")
    assert daily["count"].iloc[0] == 14 and daily["valid"].iloc[0]


def daily_frame(days: pd.DatetimeIndex, valid: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"value": 10.0, "valid": valid}, index=days.tz_convert("UTC"))


def test_monthly_27_days_and_25_in_february() -> None:
    days = pd.date_range("2026-01-01", "2026-03-31", freq="D", tz="Asia/Shanghai")
    valid = np.ones(len(days), dtype=bool)
    jan, feb = days.month == 1, days.month == 2
    valid[np.flatnonzero(jan)[:5]] = False  # January: 26 valid days
    valid[np.flatnonzero(feb)[:3]] = False  # February: 25
    valid[np.flatnonzero(days.month == 3)[:4]] = False  # March: 27
    out = aggregate.monthly(daily_frame(days, valid))
    assert out["count"].tolist() == [26, 25, 27]
    assert out["valid"].tolist() == [False, True, True]


def test_annual_324_days() -> None:
    days = pd.date_range("2025-01-01", "2026-12-31", freq="D", tz="Asia/Shanghai")
    valid = np.ones(len(days), dtype=bool)
    valid[np.flatnonzero(days.year == 2025)[:41]] = False  # 324 valid days
    valid[np.flatnonzero(days.year == 2026)[:42]] = False  # 323
    out = aggregate.annual(daily_frame(days, valid))
    assert out["count"].tolist() == [324, 323]
    assert out["valid"].tolist() == [True, False]


def test_real_no2_gaps_give_the_days_validity_counted_independently() -> None:
    """aqeval's real hourly NO₂ with its real gaps: every day is kept, valid exactly when it
    has at least 20 hourly values (counted here with a plain loop)."""
    data = no2_hourly().head(24 * 400)
    frame = pd.DataFrame(
        {"value": data["no2"].to_numpy(), "valid": data["no2"].notna().to_numpy()},
        index=pd.DatetimeIndex(data["date"]),
    )
    out = aggregate.daily(frame, tz="Asia/Shanghai")
    per_day: Counter[pd.Timestamp] = Counter()
    for t, v in zip(data["date"], data["no2"], strict=True):
        if not np.isnan(v):
            per_day[t.tz_convert("Asia/Shanghai").normalize()] += 1
    for start, row in out.iterrows():
        local_day = start.tz_convert("Asia/Shanghai")  # type: ignore[union-attr]
        assert row["count"] == per_day.get(local_day, 0)
        assert row["valid"] == (per_day.get(local_day, 0) >= 20)
    assert (~out["valid"]).sum() > 0 and out["valid"].sum() > 300  # real gaps, kept


def test_many_series_at_once_equal_one_at_a_time() -> None:
    """``daily_many`` and ``o3_daily_max_8h_many`` (one pass over many stations) give what
    ``daily`` and ``o3_daily_max_8h`` give per station, with gaps and QC failures."""
    rng = np.random.default_rng(3)
    frames = []
    for station in ("a", "b", "c"):
        t = pd.date_range("2026-01-01", periods=24 * 20, freq="h", tz="UTC")
        v = rng.gamma(3, 20, len(t))
        v[rng.random(len(t)) < 0.1] = np.nan
        frames.append(
            pd.DataFrame(
                {
                    "station": station,
                    "parameter": "o3",
                    "start": t,
                    "value": v,
                    "valid": rng.random(len(t)) > 0.1,
                }
            )
        )
    hourly_means = pd.concat(frames, ignore_index=True)
    days = aggregate.daily_many(hourly_means)
    maxima = aggregate.o3_daily_max_8h_many(hourly_means)
    for station in ("a", "b", "c"):
        one = hourly_means[hourly_means["station"] == station].set_index("start")[
            ["value", "valid"]
        ]
        for many, single in (
            (days, aggregate.daily(one)),
            (maxima, aggregate.o3_daily_max_8h(one)),
        ):
            got = many[many["station"] == station].set_index("start")
            np.testing.assert_allclose(got["value"], single["value"], equal_nan=True)
            assert list(got["count"]) == list(single["count"])
            assert list(got["valid"]) == list(single["valid"])
