"""Alert rules over the derived series (pure: frames in, conditions out; no I/O).

Rules (:class:`AlertRules`; thresholds as in the README):

- ``exceedance``: the latest valid complete hourly mean of SO₂, NO₂, CO or O₃ above its
  GB 3095-2026 1-hour limit, or the latest valid complete daily mean of any Table 1 pollutant
  above its 24-hour limit (the store reads complete hours and days only), for the station's
  area class (attribute ``area_class``, default 2);
- ``aqi``: the hourly AQI of the station's latest valid complete hour (the running hour is
  never used; an hour that ended more than 2 hours ago is not current), or the daily AQI of
  its latest valid complete day, at or above a level (default 4, 中度污染; 5 重度污染 and up
  critical); the hourly alert has parameter ``""``, the daily one ``P1D``;
- ``sustained``: the last ``sustained_hours`` (default 3) hourly means all valid and above the
  limit (the 1-hour limit, or the 24-hour one where Table 1 has no 1-hour limit);
- ``offline``: a station with readings in the last 7 days but none for ``offline_after``
  (default 30 minutes); never a sampled station (soil: :func:`sensors.stations.is_continuous`);
- ``flatline``: a QC flatline flag in the last hour (a stuck sensor);
- ``gamma``: the latest ambient gamma dose rate outside the station's background range
  (attribute ``background`` as ``[low, high]`` nGy/h; the national open-field range otherwise);
- ``noise``: at a noise station with a ``noise_zone``, the LAeq of its latest valid complete
  hour above the zone's GB 3096-2008 limit for that hour (day or night by the station's
  ``day_start``/``night_start``, local hours of ``AlertRules.tz``), or a night hour's Lmax
  above the night limit + 15 dB(A) (parameter ``laeq`` or ``lmax``; levels in dB(A)).

The rules live here, beside the standards they apply (GB 3095, the radiation background), and
not in ``pipelines/``: the store's alert repository (:mod:`store.alerts`) loads a
:class:`State` and keeps the :class:`Condition` records, and ``store`` may import ``sensors``
but not ``pipelines``. Concentrations in µg/m³ (CO mg/m³), gamma dose rates in nGy/h.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import pandas as pd

from sensors.alert_text import ONE_HOUR_LIMITS, describe
from sensors.standards import gb3095, noise, radiation
from sensors.stations import is_continuous

DAILY_LIMITS: Final = ("so2", "no2", "co", "pm10", "pm25")
AQI_COLUMNS: Final = ["subject", "start", "value", "level", "label"]


@dataclass(frozen=True)
class AlertRules:
    """Thresholds of the rules."""

    aqi_level: int = 4
    sustained_hours: int = 3
    offline_after: timedelta = timedelta(minutes=30)
    offline_lookback: timedelta = timedelta(days=7)
    #: the bureau's time zone: a noise station's day and night hours are its local hours
    tz: str = "Asia/Shanghai"


@dataclass(frozen=True)
class Condition:
    """A rule that holds now for a station (and parameter)."""

    rule: str
    station: str
    parameter: str
    severity: str
    message: str
    value: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.station, self.parameter)


@dataclass(frozen=True)
class State:
    """What the rules look at (frames as loaded by :func:`store.alerts.load_state`)."""

    now: datetime
    stations: Mapping[str, tuple[str, Mapping[str, Any]]]
    hourly: pd.DataFrame  # subject, parameter, start, value, valid (last hours)
    daily: pd.DataFrame  # subject, parameter, start, value, valid (latest day each)
    aqi: pd.DataFrame  # subject, start, value, level, label (latest complete valid hour each)
    last_seen: Mapping[str, datetime]  # station → latest reading time
    flatlined: pd.DataFrame  # station, parameter, since
    gamma: pd.DataFrame  # station, time, value (latest each)
    #: subject, start, value, level, label (latest complete valid day each)
    aqi_daily: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(
            columns=["subject", "start", "value", "level", "label"]
        )
    )


class _Row:
    """A record's fields as attributes (typed ``Any``)."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.__dict__.update(record)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = frame.to_dict("records")  # type: ignore[assignment]
    return rows


def _limit(parameter: str, averaging: gb3095.Averaging, area: Any, on: datetime) -> float | None:
    try:
        return gb3095.limit(parameter, averaging, 1 if str(area) == "1" else 2, on.date())
    except ValueError:
        return None


def _condition(
    rule: str,
    station: str,
    parameter: str,
    severity: str,
    value: float | None,
    details: Mapping[str, Any],
) -> Condition:
    """A condition whose ``message`` (English) is composed from its fields
    (:func:`sensors.alert_text.describe`, which writes the Chinese one the same way)."""
    message = describe(rule, parameter, value, details, "en")
    assert message is not None, (rule, parameter, details)
    return Condition(rule, station, parameter, severity, message, value, details)


def evaluate(state: State, rules: AlertRules = AlertRules()) -> list[Condition]:
    """Every condition that holds now (pure)."""
    out: list[Condition] = []
    area = {s: attrs.get("area_class", 2) for s, (_k, attrs) in state.stations.items()}
    # exceedance of the 1-hour limits (latest valid hour) and 24-hour limits (latest valid day)
    checks: tuple[tuple[pd.DataFrame, gb3095.Averaging, tuple[str, ...]], ...] = (
        (state.hourly, "1h", ONE_HOUR_LIMITS),
        (state.daily, "24h", DAILY_LIMITS),
    )
    for frame, averaging, pollutants in checks:
        if frame.empty:
            continue
        good = frame[frame["valid"] & frame["parameter"].isin(pollutants)]
        latest = good.sort_values("start").groupby(["subject", "parameter"]).tail(1)
        for row in map(_Row, _records(latest)):
            lim = _limit(row.parameter, averaging, area.get(row.subject, 2), row.start)
            if lim is not None and row.value > lim:
                multiple = (row.value - lim) / lim
                out.append(
                    _condition(
                        "exceedance",
                        str(row.subject),
                        f"{row.parameter}_{averaging}",
                        "critical" if multiple >= 1 else "warning",
                        float(row.value),
                        {"limit": lim, "multiple": multiple, "start": row.start.isoformat()},
                    )
                )
    # sustained exceedance: the last N hours all valid and above the limit
    n = rules.sustained_hours
    if not state.hourly.empty and n > 0:
        last_hour = pd.Timestamp(state.now).floor("h") - pd.Timedelta(hours=1)
        wanted = pd.date_range(last_hour - pd.Timedelta(hours=n - 1), last_hour, freq="h")
        for (subject, parameter), g in state.hourly.groupby(["subject", "parameter"]):
            span: gb3095.Averaging = "1h" if parameter in ONE_HOUR_LIMITS else "24h"
            lim = _limit(str(parameter), span, area.get(str(subject), 2), state.now)
            if lim is None:
                continue
            g = g.set_index("start").reindex(wanted)
            if g["valid"].fillna(False).astype(bool).all() and (g["value"] > lim).all():
                out.append(
                    _condition(
                        "sustained",
                        str(subject),
                        str(parameter),
                        "critical",
                        float(g["value"].iloc[-1]),
                        {"limit": lim, "hours": n},
                    )
                )
    # AQI level: the latest complete valid hour, and the latest complete valid day
    for frame, parameter, what in ((state.aqi, "", "hourly"), (state.aqi_daily, "P1D", "daily")):
        for row in map(_Row, _records(frame)):
            if pd.isna(row.value) or pd.isna(row.level) or row.level < rules.aqi_level:
                continue
            out.append(
                _condition(
                    "aqi",
                    str(row.subject),
                    parameter,
                    "critical" if row.level >= 5 else "warning",
                    float(row.value),
                    {
                        "level": int(row.level),
                        "primary": row.label,
                        "start": row.start.isoformat(),
                        "report": what,
                    },
                )
            )
    # offline
    for station, seen in state.last_seen.items():
        kind = state.stations.get(station, ("", {}))[0]
        if not is_continuous(kind):  # a sampling point (soil) is sampled, never "offline"
            continue
        if state.now - seen > rules.offline_after:
            minutes = (state.now - seen).total_seconds() / 60
            out.append(
                _condition(
                    "offline",
                    station,
                    "",
                    "warning",
                    minutes,
                    {"last_seen": seen.isoformat()},
                )
            )
    for row in map(_Row, _records(state.flatlined)):
        out.append(
            _condition(
                "flatline",
                str(row.station),
                str(row.parameter),
                "warning",
                None,
                {"since": row.since.isoformat()},
            )
        )
    for row in map(_Row, _records(state.gamma)):
        attrs = state.stations.get(str(row.station), ("", {}))[1]
        background = tuple(attrs.get("background") or radiation.NATIONAL_OPEN_FIELD)
        status = radiation.background_status(
            [row.value], (float(background[0]), float(background[1]))
        )[0]
        if status in ("below", "above"):
            out.append(
                _condition(
                    "gamma",
                    str(row.station),
                    "gamma",
                    "critical" if status == "above" else "warning",
                    float(row.value),
                    {"background": list(background), "status": status},
                )
            )
    out.extend(_noise(state, rules))
    return out


def _noise(state: State, rules: AlertRules) -> list[Condition]:
    """The ``noise`` rule (module docstring): a station without a valid ``noise_zone`` (or
    with impossible hours) is not judged."""
    from zoneinfo import ZoneInfo

    if state.hourly.empty:
        return []
    frame = state.hourly[state.hourly["valid"] & state.hourly["parameter"].isin(("laeq", "lmax"))]
    latest = frame.sort_values("start").groupby(["subject", "parameter"]).tail(1)
    out: list[Condition] = []
    for row in map(_Row, _records(latest)):
        kind, attrs = state.stations.get(str(row.subject), ("", {}))
        if kind != "noise" or attrs.get("noise_zone") in (None, ""):
            continue
        try:
            zone = noise.normalise_zone(attrs["noise_zone"])
            hours = noise.Hours(int(attrs.get("day_start", 6)), int(attrs.get("night_start", 22)))
        except (TypeError, ValueError):
            continue
        period = hours.period(row.start.astimezone(ZoneInfo(rules.tz)).hour)
        if row.parameter == "laeq":
            found = noise.assess(float(row.value), zone, period)
        elif period == "night":
            found = noise.assess_night_max(float(row.value), zone)
        else:
            continue
        if found.compliant:
            continue
        out.append(
            _condition(
                "noise",
                str(row.subject),
                str(row.parameter),
                "critical" if found.exceedance_db >= 10 else "warning",
                float(row.value),
                {
                    "limit": found.limit,
                    "exceedance_db": round(found.exceedance_db, 1),
                    "zone": zone,
                    "period": period,
                    "start": row.start.isoformat(),
                },
            )
        )
    return out
