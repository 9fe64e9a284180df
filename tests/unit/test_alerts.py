"""Alert rules (pure): each rule at and around its threshold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from sensors.alerts import AlertRules, State, evaluate
from sensors.standards import radiation

NOW = datetime(2026, 11, 28, 10, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)


def state(**kw: Any) -> State:
    empty_agg = pd.DataFrame(columns=["subject", "parameter", "start", "value", "valid"])
    defaults: dict[str, Any] = {
        "now": NOW,
        "stations": {"S1": ("air", {}), "R1": ("radiation", {"background": [60, 120]})},
        "hourly": empty_agg,
        "daily": empty_agg,
        "aqi": pd.DataFrame(columns=["subject", "start", "value", "level", "label"]),
        "last_seen": {},
        "flatlined": pd.DataFrame(columns=["station", "parameter", "since"]),
        "gamma": pd.DataFrame(columns=["station", "time", "value"]),
    }
    defaults.update(kw)
    return State(**defaults)


def hours(parameter: str, values: list[float], valid: list[bool] | None = None) -> pd.DataFrame:
    last = pd.Timestamp(NOW).floor("h") - HOUR
    starts = [last - HOUR * (len(values) - 1 - i) for i in range(len(values))]
    return pd.DataFrame(
        {
            "subject": "S1",
            "parameter": parameter,
            "start": starts,
            "value": values,
            "valid": valid or [True] * len(values),
        }
    )


def rules_of(conditions: list[Any]) -> set[tuple[str, str, str]]:
    return {c.key for c in conditions}


def test_exceedance_of_the_one_hour_limit_by_area_class() -> None:
    # GB 3095-2026 Table 1, transitional: SO2 1 h is 500 (class 2), 150 (class 1)
    at_limit = evaluate(state(hourly=hours("so2", [500.0])))
    assert not at_limit
    over = evaluate(state(hourly=hours("so2", [600.0])))
    (c,) = over
    assert c.key == ("exceedance", "S1", "so2_1h") and c.severity == "warning"
    assert c.details["multiple"] == pytest.approx(0.2)
    class1 = state(hourly=hours("so2", [600.0]), stations={"S1": ("air", {"area_class": 1})})
    (c,) = evaluate(class1)
    assert c.details["limit"] == 150 and c.severity == "critical"  # 3× over


def test_only_valid_means_count() -> None:
    assert not evaluate(state(hourly=hours("so2", [900.0], [False])))


def test_daily_limit_for_particulates() -> None:
    day = pd.DataFrame(
        {
            "subject": ["S1"],
            "parameter": ["pm25"],
            "start": [NOW - 10 * HOUR],
            "value": [61.0],
            "valid": [True],
        }
    )
    (c,) = evaluate(state(daily=day))
    assert c.key == ("exceedance", "S1", "pm25_24h") and c.details["limit"] == 60


def test_sustained_exceedance_needs_every_hour() -> None:
    rules = AlertRules(sustained_hours=3)
    found = rules_of(evaluate(state(hourly=hours("no2", [201.0, 250.0, 210.0])), rules))
    assert ("sustained", "S1", "no2") in found
    broken = evaluate(state(hourly=hours("no2", [201.0, 199.0, 210.0])), rules)
    assert ("sustained", "S1", "no2") not in rules_of(broken)
    gap = evaluate(state(hourly=hours("no2", [201.0, 250.0])), rules)  # one hour missing
    assert ("sustained", "S1", "no2") not in rules_of(gap)
    # PM has no 1-hour limit: the 24-hour limit applies to each hour
    pm = rules_of(evaluate(state(hourly=hours("pm25", [61.0, 70.0, 80.0])), rules))
    assert ("sustained", "S1", "pm25") in pm


@pytest.mark.parametrize(
    ("level", "severity"), [(3, None), (4, "warning"), (5, "critical"), (6, "critical")]
)
def test_aqi_level(level: int, severity: str | None) -> None:
    aqi = pd.DataFrame(
        {
            "subject": ["S1"],
            "start": [NOW - HOUR],
            "value": [50 * level + 1],
            "level": [level],
            "label": ["pm25_1h"],
        }
    )
    found = evaluate(state(aqi=aqi))
    assert [c.severity for c in found] == ([severity] if severity else [])


def test_daily_aqi_raises_an_aqi_alert_of_its_own() -> None:
    """Issue 14: "no ``aqi`` alert opened for a station whose daily AQI was 215 (重度污染)"."""
    day = pd.DataFrame(
        {
            "subject": ["S1"],
            "start": [NOW - timedelta(days=1, hours=2)],
            "value": [215],
            "level": [5],
            "label": ["pm25_24h"],
        }
    )
    (c,) = evaluate(state(aqi_daily=day))
    assert c.key == ("aqi", "S1", "P1D") and c.severity == "critical"
    assert c.message.startswith("daily AQI 215 (level 5)")
    assert not evaluate(state(aqi_daily=day.assign(value=150, level=3)))


def test_offline_after_the_set_time() -> None:
    rules = AlertRules(offline_after=timedelta(minutes=30))
    assert not evaluate(state(last_seen={"S1": NOW - timedelta(minutes=29)}), rules)
    (c,) = evaluate(state(last_seen={"S1": NOW - timedelta(minutes=31)}), rules)
    assert c.key == ("offline", "S1", "") and c.value == pytest.approx(31)


def test_a_soil_sampling_point_raises_no_offline_alert() -> None:
    """Issue 14: "soil sampling points count as 'offline'"."""
    stations = {"S1": ("air", {}), "P1": ("soil", {})}
    seen = {"S1": NOW - timedelta(hours=2), "P1": NOW - timedelta(days=2)}
    found = evaluate(state(stations=stations, last_seen=seen))
    assert rules_of(found) == {("offline", "S1", "")}


def test_flatline() -> None:
    flat = pd.DataFrame({"station": ["S1"], "parameter": ["pm10"], "since": [NOW - HOUR / 2]})
    (c,) = evaluate(state(flatlined=flat))
    assert c.key == ("flatline", "S1", "pm10")


@pytest.mark.parametrize(
    ("value", "status"), [(59.9, "below"), (60.0, None), (120.0, None), (120.1, "above")]
)
def test_gamma_outside_the_station_background(value: float, status: str | None) -> None:
    gamma = pd.DataFrame({"station": ["R1"], "time": [NOW], "value": [value]})
    found = evaluate(state(gamma=gamma))
    assert [c.details["status"] for c in found] == ([status] if status else [])


def test_gamma_without_a_station_range_uses_the_national_one() -> None:
    gamma = pd.DataFrame(
        {"station": ["R2"], "time": [NOW], "value": [radiation.NATIONAL_OPEN_FIELD[1] + 1]}
    )
    (c,) = evaluate(state(gamma=gamma, stations={"R2": ("radiation", {})}))
    assert c.details["status"] == "above"


def _noise_hours(parameter: str, value: float, now: datetime) -> pd.DataFrame:
    last = pd.Timestamp(now).floor("h") - HOUR
    return pd.DataFrame(
        {
            "subject": "N1",
            "parameter": [parameter],
            "start": [last],
            "value": [value],
            "valid": True,
        }
    )


@pytest.mark.parametrize(
    ("now", "period", "limit"),
    [
        (NOW, "day", 55.0),  # last hour 17:00 CST
        (datetime(2026, 11, 28, 15, 20, tzinfo=UTC), "night", 45.0),  # 22:00 CST
    ],
)
def test_noise_laeq_against_the_zone_limit_of_its_hour(
    now: datetime, period: str, limit: float
) -> None:
    """GB 3096-2008: zone 1 is 55 by day, 45 by night; at the limit is no alert."""
    stations = {"N1": ("noise", {"noise_zone": "1"})}
    assert not evaluate(state(now=now, stations=stations, hourly=_noise_hours("laeq", limit, now)))
    (c,) = evaluate(state(now=now, stations=stations, hourly=_noise_hours("laeq", limit + 2, now)))
    assert c.key == ("noise", "N1", "laeq") and c.severity == "warning"
    assert c.details["period"] == period and c.details["limit"] == limit
    assert c.details["exceedance_db"] == 2.0
    loud = _noise_hours("laeq", limit + 10, now)
    assert evaluate(state(now=now, stations=stations, hourly=loud))[0].severity == "critical"
    # the station's own hours: a day ending at 23:00 makes 22:00 a day hour
    late = {"N1": ("noise", {"noise_zone": "1", "night_start": 23})}
    (c,) = evaluate(state(now=now, stations=late, hourly=_noise_hours("laeq", 57.0, now)))
    assert c.details["period"] == "day"
    # no zone, another kind, or a zone GB 3096 does not have: no judgement
    for attrs in ({}, {"noise_zone": "4"}):
        quiet = {"N1": ("noise", attrs)}
        assert not evaluate(state(now=now, stations=quiet, hourly=loud))
    assert not evaluate(state(now=now, stations={"N1": ("air", {})}, hourly=loud))


def test_noise_night_maximum_may_exceed_the_night_limit_by_15_db() -> None:
    night = datetime(2026, 11, 28, 15, 20, tzinfo=UTC)
    stations = {"N1": ("noise", {"noise_zone": "2"})}  # night 50: Lmax up to 65
    assert not evaluate(state(now=night, stations=stations, hourly=_noise_hours("lmax", 65, night)))
    (c,) = evaluate(state(now=night, stations=stations, hourly=_noise_hours("lmax", 66, night)))
    assert c.key == ("noise", "N1", "lmax") and c.details["limit"] == 65
    # by day the maximum rule does not apply
    assert not evaluate(state(stations=stations, hourly=_noise_hours("lmax", 90, NOW)))
