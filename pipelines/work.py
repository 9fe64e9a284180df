"""The units of work that jobs hand to Dask: one station, or one city, at a time.

Each function takes the database URL and a plain, picklable plan, opens its own connection
(so that it runs the same on a local cluster or a remote worker), reads what it needs, computes
with the pure code in :mod:`sensors` and :mod:`pipelines.aggregate`, and upserts the results
(:func:`store.derived.upsert`: a row changes only when its values do, so re-running is a
no-op). It returns counts and the periods it touched, for the next step.

Rules beyond GB 3095-2026 Table 4 (documented in the README):

- Table 4's completeness rules apply to **air** stations. At other stations (water,
  wastewater, CEMS, radiation, met, …) an hour is valid with at least one reading that passes
  QC, and a day with at least one valid hour: GB 3838 has no completeness rule, and automatic
  water stations sample every few hours.
- A city's value for a period is the mean of its stations' valid values; it is valid when at
  least 75 % of the city's stations that measure the parameter have a valid value
  (:data:`CITY_MIN_SHARE`). A city's stations are its public ambient-air stations
  (:func:`pipelines.jobs.city_members`): never a CEMS stack, a wastewater outlet, or a
  station graded above public.
- Readings a review invalidated (:mod:`store.reviews`) are left out of QC and of the means, as
  if never received: an hour whose readings were all invalidated has no value and is invalid.
- A stream, sample or parameter a task cannot compute with is reported as a warning
  (:meth:`Touched.isolate`) and the task goes on; only the database going away fails a task.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd

from carbon import cems
from pipelines import aggregate
from sensors import qc
from sensors.standards import aqi as aqi_std
from sensors.standards import noise as noise_std
from sensors.standards import soil as soil_std
from sensors.standards import water as water_std
from store import db, derived
from store import jobs as job_store
from store.db import Connection

logger = logging.getLogger(__name__)

#: Hours of readings read on each side of the touched ones, as context for the QC checks.
QC_CONTEXT: Final = timedelta(hours=6)
CITY_MIN_SHARE: Final = 0.75
AQI_POLLUTANTS: Final = ("so2", "no2", "co", "o3", "pm10", "pm25")
HOUR: Final = timedelta(hours=1)
#: Station kinds judged by Table 4's completeness rules.
TABLE4_KINDS: Final = frozenset({"air"})
DEFAULT_QC: Final = qc.QcConfig()


@dataclass(frozen=True)
class StreamPlan:
    """One source stream of a station's hourly means and the span of its touched readings."""

    stream_id: int
    parameter: str
    interval: str | None
    unit: str
    first: datetime
    last: datetime


@dataclass(frozen=True)
class StationPlan:
    """What an hourly task recomputes for one station."""

    station: str
    kind: str
    attributes: Mapping[str, Any]
    streams: tuple[StreamPlan, ...]


@dataclass
class Touched:
    """What a task changed: rows written, and per parameter the periods (UTC starts) touched;
    ``warnings``: data left out with the reason (one stream's or sample's bad data: reported,
    and the rest of the task and the job's mark go on)."""

    rows: int = 0
    periods: dict[str, set[datetime]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def attempt(self, what: str, compute: Callable[..., int], *args: Any) -> None:
        """Add the rows ``compute(*args)`` writes; if the data of ``what`` make it fail, report
        that as a warning (see :meth:`isolate`) and go on."""
        try:
            self.rows += compute(*args)
        except Exception as exc:  # one stream's (sample's, parameter's) data, not the task's
            self.isolate(what, exc)

    def isolate(self, what: str, exc: Exception) -> None:
        """Report ``exc``, raised by the data of ``what``, as a warning — unless it is the
        database going away, which fails the task (and holds the job's mark)."""
        if job_store.transient(exc):
            raise exc
        logger.warning("%s left out: %s: %s", what, type(exc).__name__, exc)
        self.warnings.append(f"{what} left out: {type(exc).__name__}: {exc}")

    def add(self, parameter: str, starts: Iterable[Any]) -> None:
        self.periods.setdefault(parameter, set()).update(
            pd.Timestamp(s).to_pydatetime() for s in starts
        )


def _frame(
    scope: str, subject: str, parameter: str, period: str, unit: str, agg: pd.DataFrame
) -> pd.DataFrame:
    """Aggregates (index ``start``; ``value, count, valid``) as rows of the ``aggregates`` table."""
    out = agg.reset_index().rename(columns={"index": "start"})
    out["scope"], out["subject"], out["parameter"] = scope, subject, parameter
    out["period"], out["unit"] = period, unit
    out["valid"] = out["valid"].astype(bool)
    return out


def _hours_between(first: datetime, last: datetime) -> pd.DatetimeIndex:
    return pd.date_range(
        pd.Timestamp(first).floor("h"), pd.Timestamp(last).floor("h"), freq="h", tz="UTC"
    )


# --------------------------------------------------------------------------- hourly
def station_hourly(url: str, plan: StationPlan, config: qc.QcConfig = DEFAULT_QC) -> Touched:
    """QC the touched readings of a station (with context), recompute the hourly means of the
    hours they fall in, the O₃ 8-hour means that include them, and the hourly AQI; soil
    stations get their samples classified instead."""
    touched = Touched()
    with db.connect(url) as conn:
        for sp in plan.streams:
            what = f"{plan.station} {sp.parameter} (stream {sp.stream_id})"
            touched.attempt(what, _stream_hourly, conn, plan, sp, config, touched)
        if plan.kind == "soil":
            touched.attempt(f"{plan.station} soil samples", _soil, conn, plan, touched)
        cems_hours = touched.periods.get("flue_co2", set()) | touched.periods.get(
            "flue_flow", set()
        )
        if plan.kind == "cems" and cems_hours:
            # a lasting condition (no valid hour yet) is reported, not held against the job's
            # mark; the hours are accounted once a valid hour arrives
            touched.attempt(f"{plan.station} CEMS CO2", _cems, conn, plan.station, cems_hours)
        hours = touched.periods.get("o3")
        if hours:
            what = f"{plan.station} o3 8-hour means"
            touched.attempt(what, _o3_8h, conn, "station", plan.station, hours)
        aqi_hours = set().union(*(touched.periods.get(p, set()) for p in AQI_POLLUTANTS))
        if aqi_hours:
            what = f"{plan.station} hourly AQI"
            touched.attempt(what, hourly_aqi, conn, "station", plan.station, aqi_hours)
    return touched


def _stream_hourly(
    conn: Connection,
    plan: StationPlan,
    sp: StreamPlan,
    config: qc.QcConfig,
    touched: Touched,
) -> int:
    """QC and hourly means of one source stream's touched hours; returns the rows written."""
    start = pd.Timestamp(sp.first).floor("h") - QC_CONTEXT
    end = pd.Timestamp(sp.last).floor("h") + HOUR + QC_CONTEXT
    found = derived.read_readings(conn, sp.stream_id, start, end)
    if found.empty:
        return 0
    # every hour of the window with a reading is recomputed (a QC verdict or a review may have
    # changed); readings a review invalidated are left out of QC and of the means
    hours = pd.DatetimeIndex(found["time"]).floor("h").unique()
    readings = found[~found["invalid"].to_numpy()].reset_index(drop=True)
    if readings.empty:
        mask = np.zeros(0, dtype=np.int64)
    else:
        mask = qc.check(readings["time"], readings["value"], sp.parameter, readings["flag"], config)
    changed = readings["mask"].to_numpy() != mask
    if changed.any():
        rows = pd.DataFrame(
            {"stream_id": sp.stream_id, "time": readings["time"][changed], "mask": mask[changed]}
        )
        written = derived.upsert(conn, "qc_flags", rows)
    else:
        written = 0
    readings["valid"] = mask == 0
    if sp.interval == "PT1H":  # a logger's own hourly means (HJ 212 2061)
        agg = pd.DataFrame(
            {
                "value": readings["value"].where(readings["valid"]).to_numpy(),
                "count": np.where(readings["valid"], 60.0, 0.0),
            },
            index=pd.DatetimeIndex(readings["time"]).floor("h"),
        )
        agg = agg[~agg.index.duplicated(keep="last")]
    else:
        times = pd.DatetimeIndex(readings["time"]).as_unit("ns").asi8
        spacing = np.diff(times) / 6e10  # minutes
        spacing = spacing[spacing > 0]
        sample = float(np.clip(np.median(spacing), 1, 60)) if len(spacing) else 1.0
        if sp.interval == "PT1M":
            sample = 1.0
        agg = aggregate.hourly(
            readings[["time", "value", "valid"]],
            sample_minutes=sample,
            how=aggregate.statistic_of(sp.parameter),
        )
    agg = agg.reindex(hours)  # an hour whose readings were all invalidated: no value, invalid
    agg["count"] = agg["count"].astype("float64").fillna(0.0)
    if "valid" in agg:
        agg["valid"] = agg["valid"].astype("boolean").fillna(False).astype(bool)
    if sp.interval == "PT1H" or plan.kind not in TABLE4_KINDS:
        agg["valid"] = agg["count"] > 0
    agg.index.name = "start"
    written += derived.upsert(
        conn, "aggregates", _frame("station", plan.station, sp.parameter, "PT1H", sp.unit, agg)
    )
    touched.add(sp.parameter, agg.index)
    return written


def _o3_8h(conn: Connection, scope: str, subject: str, hours: set[datetime]) -> int:
    """O₃ 8-hour running means of the windows that contain any of ``hours``."""
    first, last = min(hours), max(hours)
    means = derived.read_aggregates(
        conn,
        scope=scope,
        period="PT1H",
        start=first - 7 * HOUR,
        end=last + 8 * HOUR,
        subjects=[subject],
        parameters=["o3"],
    )
    if means.empty:
        return 0
    windows = aggregate.o3_8h(means.set_index("start")[["value", "valid"]])
    windows = windows[(windows.index >= first) & (windows.index <= last + 7 * HOUR)]
    # a window with no hour at all is not a period: leave it out
    windows = windows[windows["count"] > 0]
    unit = str(means["unit"].iloc[0])
    return derived.upsert(conn, "aggregates", _frame(scope, subject, "o3", "PT8H", unit, windows))


def _report_frame(
    conn: Connection,
    scope: str,
    subject: str,
    period: str,
    starts: Sequence[datetime],
    names: Mapping[str, tuple[str, str]],
) -> pd.DataFrame:
    """Valid values of ``names`` (report name → (parameter, period)) for each of ``starts``,
    one column per report name (NaN where missing or invalid)."""
    index = pd.DatetimeIndex(sorted(set(starts)), tz="UTC")
    out = pd.DataFrame(index=index)
    by_period: dict[str, list[str]] = {}
    for parameter, per in names.values():
        by_period.setdefault(per, []).append(parameter)
    step = _step(period)
    for per, params in by_period.items():
        found = derived.read_aggregates(
            conn,
            scope=scope,
            period=per,
            start=index.min().to_pydatetime(),
            end=(index.max() + step).to_pydatetime(),
            subjects=[subject],
            parameters=params,
        )
        found = found[found["valid"]]
        for name, (parameter, p2) in names.items():
            if p2 != per:
                continue
            series = found[found["parameter"] == parameter].set_index("start")["value"]
            out[name] = series.reindex(index)
    return out


def _step(period: str) -> timedelta:
    return HOUR if period.startswith("PT") else timedelta(days=1)


def _aqi_rows(
    scope: str, subject: str, kind: str, frame: pd.DataFrame, report: aqi_std.Report
) -> pd.DataFrame:
    scores = aqi_std.aqi_frame(frame, report=report)
    iaqi_cols = [c for c in scores.columns if c.startswith("iaqi_")]
    details = [
        {
            **{
                c[5:]: (None if pd.isna(v) else int(v)) for c, v in zip(iaqi_cols, row, strict=True)
            },
            **{
                f"c_{name}": (None if pd.isna(c) else float(c))
                for name, c in zip(frame.columns, crow, strict=True)
            },
        }
        for row, crow in zip(
            scores[iaqi_cols].itertuples(index=False, name=None),
            frame.itertuples(index=False, name=None),
            strict=True,
        )
    ]
    return pd.DataFrame(
        {
            "scope": scope,
            "subject": subject,
            "kind": kind,
            "start": frame.index,
            "value": scores["aqi"].to_numpy(dtype=object),
            "level": scores["level"].to_numpy(dtype=object),
            "label": scores["primary"].to_numpy(),
            "details": details,
        }
    )


def hourly_aqi(conn: Connection, scope: str, subject: str, hours: Iterable[datetime]) -> int:
    """HJ 633-2026 hourly AQI from the valid hourly means of ``hours``."""
    names = {f"{p}_1h": (p, "PT1H") for p in AQI_POLLUTANTS}
    frame = _report_frame(conn, scope, subject, "PT1H", list(hours), names)
    if frame.dropna(how="all").empty:
        frame = frame.iloc[0:0]
    rows = _aqi_rows(scope, subject, "aqi-hourly", frame, "hourly")
    return derived.upsert(conn, "assessments", rows)


def _soil(conn: Connection, plan: StationPlan, touched: Touched) -> int:
    """GB 15618-2018 risk class of each sample (readings of one time) touched at a soil station;
    land use from the station's ``land_use`` attribute (default ``other``)."""
    land_use = str(plan.attributes.get("land_use", "other"))
    times: set[pd.Timestamp] = set()
    values: dict[pd.Timestamp, dict[str, float]] = {}
    first = min(sp.first for sp in plan.streams)
    end = max(sp.last for sp in plan.streams) + timedelta(seconds=1)
    touched_times: set[pd.Timestamp] = set()
    for sp in plan.streams:
        r = derived.read_readings(conn, sp.stream_id, sp.first, sp.last + timedelta(seconds=1))
        touched_times.update(r["time"])
    # a sample is every parameter measured at its time, touched or not
    for stream_id, _station, parameter, interval, _statistic in job_store.measured_streams(
        conn, [plan.station]
    ):
        if interval is not None:
            continue
        r = derived.read_readings(conn, stream_id, first, end)
        r = r[r["time"].isin(touched_times)]
        times.update(r["time"])
        r = r[~r["invalid"].to_numpy()]  # invalidated by a review: not part of the sample
        for t, v in zip(r["time"], r["value"], strict=True):
            values.setdefault(t, {})[parameter] = float(v)
    if development_land_class(plan.attributes) is not None:
        return _development_soil(conn, plan, times, values, touched)
    if plan.attributes.get("land_class") not in (None, ""):
        touched.warnings.append(
            f"{plan.station}: land_class {plan.attributes['land_class']!r} is not 1 or 2"
            " (GB 36600-2018): its samples are not assessed"
        )
        return 0
    rows = []
    incomplete = []
    for t in sorted(times):
        sample = values.get(t, {})
        ph = sample.pop("ph", None)
        metals = {k: v for k, v in sample.items() if k in soil_std.METALS}
        if ph is None or not metals:
            incomplete.append(t)  # e.g. its pH invalidated: no class (any earlier one goes)
            continue
        try:
            risk = soil_std.classify(metals, ph, land_use)  # type: ignore[arg-type]
        except ValueError as exc:  # reported, not skipped silently
            touched.isolate(f"{plan.station} soil sample {t.isoformat()}", exc)
            continue
        rows.append(
            {
                "scope": "station",
                "subject": plan.station,
                "kind": "soil",
                "start": t,
                "value": soil_std.RISK_CLASSES.index(risk.risk_class) + 1,
                "level": soil_std.RISK_CLASSES.index(risk.risk_class) + 1,
                "label": risk.risk_class,
                "details": {"ph": ph, "land_use": land_use, "ratios": risk.ratios},
            }
        )
    written = derived.upsert(conn, "assessments", pd.DataFrame(rows)) if rows else 0
    return written + derived.delete_assessments(
        conn, scope="station", subject=plan.station, kind="soil", starts=incomplete
    )


def development_land_class(attributes: Mapping[str, Any]) -> int | None:
    """A soil station's GB 36600-2018 land class (attribute ``land_class``: 1 or 2), or
    ``None`` for farmland (GB 15618-2018) — a station without it, or with another value."""
    found = attributes.get("land_class")
    try:
        value = int(str(found).strip()) if found not in (None, "") else None
    except ValueError:
        return None
    return value if value in (1, 2) else None


def _development_soil(
    conn: Connection,
    plan: StationPlan,
    times: set[pd.Timestamp],
    values: dict[pd.Timestamp, dict[str, float]],
    touched: Touched,
) -> int:
    """GB 36600-2018 risk of each sample of a development-land sampling point (``land_class``
    1 or 2; ``arsenic_background`` in mg/kg where the region's is known): assessment kind
    ``soil-development``, value and level 1–3 (below screening, above screening, above
    intervention), label the risk, details the ratios, the items exceeded, the point's depth."""
    land_class = development_land_class(plan.attributes)
    assert land_class is not None
    background = plan.attributes.get("arsenic_background")

    def item(code: str) -> str:  # the dictionary's soil_cr6 is the standard's cr6
        return soil_std.DEVELOPMENT_CODES.get(code, code)

    rows = []
    incomplete = []
    for t in sorted(times):
        sample = values.get(t, {})
        items = {k: v for k, v in sample.items() if item(k) in soil_std.DEVELOPMENT_ITEMS}
        if not items:
            incomplete.append(t)
            continue
        try:
            risk = soil_std.classify_development(
                items,
                land_class,
                arsenic_background=None if background in (None, "") else float(background),
            )
        except (TypeError, ValueError) as exc:  # reported, not skipped silently
            touched.isolate(f"{plan.station} soil sample {t.isoformat()}", exc)
            continue
        assert risk.risk is not None
        level = soil_std.DEVELOPMENT_RISKS.index(risk.risk) + 1
        rows.append(
            {
                "scope": "station",
                "subject": plan.station,
                "kind": "soil-development",
                "start": t,
                "value": level,
                "level": level,
                "label": risk.risk,
                "details": {
                    "land_class": land_class,
                    "ratios": {
                        soil_std.DEVELOPMENT_CODES.get(k, k): r for k, r in risk.ratios.items()
                    },
                    "intervention_ratios": {
                        soil_std.DEVELOPMENT_CODES.get(k, k): r
                        for k, r in risk.intervention_ratios.items()
                    },
                    "exceedances": {
                        soil_std.DEVELOPMENT_CODES.get(k, k): e for k, e in risk.exceedances.items()
                    },
                    **{
                        k: plan.attributes[k]
                        for k in ("site", "point", "depth_m")
                        if plan.attributes.get(k) not in (None, "")
                    },
                },
            }
        )
    written = derived.upsert(conn, "assessments", pd.DataFrame(rows)) if rows else 0
    return written + derived.delete_assessments(
        conn, scope="station", subject=plan.station, kind="soil-development", starts=incomplete
    )


def _cems(conn: Connection, station: str, hours: set[datetime]) -> int:
    """CO₂ mass of the touched hours of a stack by the CEMS measurement method
    (:mod:`carbon.cems`): hourly means of ``flue_co2`` (mg/m³) × ``flue_flow`` (m³/s), the
    hours without a valid pair substituted and flagged (with 720 h of history for the rule)."""
    first, last = min(hours), max(hours)
    means = derived.read_aggregates(
        conn,
        scope="station",
        period="PT1H",
        start=first - cems.LOOKBACK_HOURS * HOUR,
        end=last + HOUR,
        subjects=[station],
        parameters=["flue_co2", "flue_flow"],
    )
    if means.empty:
        return 0
    grid = pd.date_range(means["start"].min(), last, freq="h", tz="UTC")
    wide = means.pivot(index="start", columns="parameter", values="value").reindex(grid)
    ok = means[means["valid"]].pivot(index="start", columns="parameter", values="value")
    ok = ok.reindex(index=grid, columns=["flue_co2", "flue_flow"])
    units = dict(zip(means["parameter"], means["unit"], strict=False))
    if "flue_co2" not in wide or "flue_flow" not in wide:
        return 0
    mass = cems.hourly_mass(
        grid,
        wide["flue_co2"].to_numpy(),
        wide["flue_flow"].to_numpy(),
        ok.notna().all(axis=1).to_numpy(),
        co2_unit=units["flue_co2"],
        flow_unit=units["flue_flow"],
    )
    mass = mass[mass.index >= pd.Timestamp(first)]
    rows = pd.DataFrame(
        {
            "source": "cems",
            "subject": station,
            "gas": "CO2",
            "period": "PT1H",
            "start": mass.index,
            "tonnes": mass["co2_t"].to_numpy(),
            "substitution": mass["substitution"].to_numpy(),
            "details": [{"method": "CEMS measurement (carbon.cems)"}] * len(mass),
        }
    )
    return derived.upsert(conn, "emissions", rows)


# --------------------------------------------------------------------------- daily
@dataclass(frozen=True)
class DailyPlan:
    """What a daily task recomputes for one station or city: days (UTC starts of the bureau's
    days) per parameter."""

    scope: str
    subject: str
    kind: str
    attributes: Mapping[str, Any]
    days: Mapping[str, tuple[datetime, ...]]
    tz: str = aggregate.DEFAULT_TIMEZONE


def _local_day(t: datetime, tz: str) -> pd.Timestamp:
    return pd.Timestamp(t).tz_convert(tz).floor("D", ambiguous=False, nonexistent="shift_forward")


def days_of(hours: Iterable[datetime], tz: str) -> tuple[datetime, ...]:
    """The bureau's days (UTC starts) that ``hours`` fall in."""
    return tuple(sorted({_local_day(h, tz).tz_convert("UTC").to_pydatetime() for h in hours}))


def subject_daily(url: str, plan: DailyPlan) -> Touched:
    """Daily means (and the O₃ daily maximum 8-hour mean) of the touched days, their months and
    years, the daily AQI, and for water stations the daily and monthly class."""
    touched = Touched()
    tz = plan.tz
    with db.connect(url) as conn:
        for parameter, days in plan.days.items():
            what = f"{plan.scope} {plan.subject} {parameter} daily"
            touched.attempt(what, _parameter_daily, conn, plan, parameter, days, touched)
        all_days = sorted(set().union(*(set(d) for d in plan.days.values()))) if plan.days else []
        if all_days and any(p in plan.days for p in AQI_POLLUTANTS):
            what = f"{plan.scope} {plan.subject} daily AQI"
            touched.attempt(what, daily_aqi, conn, plan.scope, plan.subject, all_days)
        if all_days and plan.kind == "water":
            what = f"{plan.scope} {plan.subject} water classes"
            touched.attempt(what, _water, conn, plan, all_days, tz)
        noise_days = sorted(set(plan.days.get("laeq", ())) | set(plan.days.get("lmax", ())))
        if noise_days and plan.kind == "noise":
            what = f"{plan.scope} {plan.subject} noise levels"
            touched.attempt(what, _noise, conn, plan, noise_days, tz, touched)
    return touched


def noise_hours(attributes: Mapping[str, Any]) -> noise_std.Hours:
    """A noise station's day and night (attributes ``day_start``, ``night_start``: local clock
    hours; GB 3096-2008's 06:00 and 22:00 by default).

    Raises
    ------
    ValueError
        for hours that are not whole hours 0–23 with the day first.
    """
    try:
        day, night = int(attributes.get("day_start", 6)), int(attributes.get("night_start", 22))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"day_start and night_start must be whole hours: {exc}") from exc
    return noise_std.Hours(day, night)


def _noise(
    conn: Connection, plan: DailyPlan, days: Sequence[datetime], tz: str, touched: Touched
) -> int:
    """A noise station's Ld, Ln and Ldn per day (energy averages of its valid hourly LAeq over
    the day's and the night's hours of the bureau's day, as aggregates ``P1D-LD``, ``-LN``,
    ``-LDN`` of ``laeq``) and the day's GB 3096-2008 assessment (``noise-daily``) against the
    station's ``noise_zone``: Ld and Ln against the zone's limits, and the night's highest
    hourly Lmax against the night limit + 15 dB. Without a zone the levels are stored and the
    assessment is left out (a warning)."""
    hours_of = noise_hours(plan.attributes)
    wanted = [pd.Timestamp(d) for d in days]
    found = derived.read_aggregates(
        conn,
        scope=plan.scope,
        period="PT1H",
        start=(min(wanted) - 2 * HOUR).to_pydatetime(),
        end=(max(wanted) + timedelta(days=1, hours=2)).to_pydatetime(),
        subjects=[plan.subject],
        parameters=["laeq", "lmax"],
    )
    found = found[found["valid"] & found["value"].notna()]
    starts = pd.DatetimeIndex(found["start"])
    local = starts.tz_convert(tz)
    day_of = aggregate.day_starts(starts, tz).tz_convert("UTC")
    night = hours_of.is_night(local.hour)
    levels: list[dict[str, Any]] = []
    judged: list[dict[str, Any]] = []
    raw = plan.attributes.get("noise_zone")
    try:
        zone = noise_std.normalise_zone(raw) if raw not in (None, "") else None
    except ValueError as exc:  # stored before zones were checked: levels kept, not assessed
        touched.warnings.append(f"{plan.subject}: {exc}")
        zone, raw = None, None
    ended = pd.Timestamp.now(tz="UTC")
    for day in wanted:
        on = (day_of == day) & (found["parameter"] == "laeq").to_numpy()
        day_levels = found["value"].to_numpy()[on & ~night]
        night_levels = found["value"].to_numpy()[on & night]
        ld, ln = noise_std.leq(day_levels), noise_std.leq(night_levels)
        both = len(day_levels) > 0 and len(night_levels) > 0
        for period, value, count in (
            ("P1D-LD", ld, len(day_levels)),
            ("P1D-LN", ln, len(night_levels)),
            ("P1D-LDN", noise_std.ldn(ld, ln, hours_of), min(len(day_levels), len(night_levels))),
        ):
            if count:
                levels.append(
                    {"period": period, "start": day, "value": value, "count": float(count)}
                )
        peaks = found["value"].to_numpy()[
            (day_of == day) & (found["parameter"] == "lmax").to_numpy() & night
        ]
        night_max = float(peaks.max()) if len(peaks) else None
        if zone is None or not (len(day_levels) or len(night_levels) or night_max is not None):
            continue
        if day + timedelta(days=1) > ended:  # the day is not over: judged once it is
            continue
        checks: dict[str, noise_std.Assessment] = {}
        if len(day_levels):
            checks["day"] = noise_std.assess(ld, zone, "day")
        if len(night_levels):
            checks["night"] = noise_std.assess(ln, zone, "night")
        if night_max is not None:
            checks["night_max"] = noise_std.assess_night_max(night_max, zone)
        exceeded = [k for k, a in checks.items() if not a.compliant]
        judged.append(
            {
                "scope": plan.scope,
                "subject": plan.subject,
                "kind": "noise-daily",
                "start": day,
                "value": len(exceeded),
                "level": 2 if exceeded else 1,
                "label": ",".join(exceeded),
                "details": {
                    "zone": zone,
                    "day_start": hours_of.day_start,
                    "night_start": hours_of.night_start,
                    "ldn": round(noise_std.ldn(ld, ln, hours_of), 1) if both else None,
                    **{
                        k: {
                            "level": round(a.level, 1),
                            "limit": a.limit,
                            "exceedance_db": round(a.exceedance_db, 1),
                            "compliant": a.compliant,
                        }
                        for k, a in checks.items()
                    },
                },
            }
        )
    rows = 0
    if levels:
        frame = pd.DataFrame(levels)
        for name, part in frame.groupby("period"):
            agg = part.set_index("start")[["value", "count"]].assign(valid=True)
            agg.index.name = "start"
            rows += derived.upsert(
                conn,
                "aggregates",
                _frame(plan.scope, plan.subject, "laeq", str(name), "dB(A)", agg),
            )
    if judged:
        rows += derived.upsert(conn, "assessments", pd.DataFrame(judged))
    if zone is None and raw in (None, "") and levels:
        touched.warnings.append(
            f"{plan.subject} has no noise_zone attribute (0, 1, 2, 3, 4a or 4b): its day and"
            " night levels are stored, but not assessed against GB 3096-2008"
        )
    return rows


def _parameter_daily(
    conn: Connection,
    plan: DailyPlan,
    parameter: str,
    days: Sequence[datetime],
    touched: Touched,
) -> int:
    """Daily means (and for O₃ the daily maximum 8-hour mean) of one parameter's ``days``, and
    their months and year; returns the rows written."""
    tz = plan.tz
    first, last = min(days), max(days)
    start = pd.Timestamp(first) - 8 * HOUR
    end = pd.Timestamp(last) + timedelta(days=1, hours=2)  # a day is 23–25 h long
    hours = derived.read_aggregates(
        conn,
        scope=plan.scope,
        period="PT1H",
        start=start.to_pydatetime(),
        end=end.to_pydatetime(),
        subjects=[plan.subject],
        parameters=[parameter],
    )
    if hours.empty:
        return 0
    unit = str(hours["unit"].iloc[0])
    means = hours.set_index("start")[["value", "valid"]]
    wanted = {pd.Timestamp(d) for d in days}
    how = aggregate.statistic_of(parameter)
    day = aggregate.daily(means, tz, how)
    day = day[day.index.isin(wanted)]
    if plan.kind not in TABLE4_KINDS:
        day["valid"] = day["count"] > 0
    rows = derived.upsert(
        conn, "aggregates", _frame(plan.scope, plan.subject, parameter, "P1D", unit, day)
    )
    touched.add(parameter, day.index)
    if parameter == "o3":
        mx = aggregate.o3_daily_max_8h(means, tz)
        mx = mx[mx.index.isin(wanted)]
        rows += derived.upsert(
            conn, "aggregates", _frame(plan.scope, plan.subject, "o3", "P1D-MAX8H", unit, mx)
        )
    return rows + _months_and_year(conn, plan, parameter, unit, days)


def _months_and_year(
    conn: Connection,
    plan: DailyPlan,
    parameter: str,
    unit: str,
    days: Sequence[datetime],
) -> int:
    tz = plan.tz
    local = pd.DatetimeIndex([pd.Timestamp(d) for d in days]).tz_convert(tz)
    years = sorted(set(local.year))
    rows = 0
    for year in years:
        y0 = pd.Timestamp(year=year, month=1, day=1, tz=tz)
        y1 = pd.Timestamp(year=year + 1, month=1, day=1, tz=tz)
        daily_means = derived.read_aggregates(
            conn,
            scope=plan.scope,
            period="P1D",
            start=y0.tz_convert("UTC").to_pydatetime(),
            end=y1.tz_convert("UTC").to_pydatetime(),
            subjects=[plan.subject],
            parameters=[parameter],
        )
        if daily_means.empty:
            continue
        frame = daily_means.set_index("start")[["value", "valid"]]
        how = aggregate.statistic_of(parameter)
        months = aggregate.monthly(frame, tz, how)
        wanted = {
            pd.Timestamp(year=t.year, month=t.month, day=1, tz=tz).tz_convert("UTC")
            for t in local
            if t.year == year
        }
        months = months[months.index.isin(wanted)]
        rows += derived.upsert(
            conn, "aggregates", _frame(plan.scope, plan.subject, parameter, "P1M", unit, months)
        )
        rows += derived.upsert(
            conn,
            "aggregates",
            _frame(
                plan.scope, plan.subject, parameter, "P1Y", unit, aggregate.annual(frame, tz, how)
            ),
        )
    return rows


def daily_aqi(conn: Connection, scope: str, subject: str, days: Iterable[datetime]) -> int:
    """HJ 633-2026 daily AQI from the valid daily means and O₃ daily maximum 8-hour mean."""
    names: dict[str, tuple[str, str]] = {
        f"{p}_24h": (p, "P1D") for p in AQI_POLLUTANTS if p != "o3"
    }
    names["o3_8h"] = ("o3", "P1D-MAX8H")
    frame = _report_frame(conn, scope, subject, "P1D", list(days), names)
    if frame.dropna(how="all").empty:
        return 0
    return derived.upsert(
        conn, "assessments", _aqi_rows(scope, subject, "aqi-daily", frame, "daily")
    )


def _water(conn: Connection, plan: DailyPlan, days: Sequence[datetime], tz: str) -> int:
    """GB 3838-2002 class per day and per month from the daily and monthly means (any count:
    GB 3838 sets no completeness rule); water body and target class from the station's
    ``water_body`` (``river``) and ``target_class`` (3) attributes."""
    body = str(plan.attributes.get("water_body", "river"))
    target = int(plan.attributes.get("target_class", 3))
    rows = 0
    local = pd.DatetimeIndex([pd.Timestamp(d) for d in days]).tz_convert(tz)
    months = sorted({pd.Timestamp(year=t.year, month=t.month, day=1, tz=tz) for t in local})
    for period, kind, starts in (
        ("P1D", "water-daily", [pd.Timestamp(d) for d in days]),
        ("P1M", "water-monthly", [m.tz_convert("UTC") for m in months]),
    ):
        found = derived.read_aggregates(
            conn,
            scope=plan.scope,
            period=period,
            start=min(starts).to_pydatetime(),
            end=(max(starts) + timedelta(days=32)).to_pydatetime(),
            subjects=[plan.subject],
            parameters=[p for p in water_std.STREAM_PARAMETERS if p != "tn" or body == "lake"],
        )
        found = found[found["start"].isin(starts) & (found["count"] > 0)]
        if found.empty:
            continue
        wide = found.pivot(index="start", columns="parameter", values="value")
        classes = water_std.classify_frame(wide, body, target)  # type: ignore[arg-type]
        class_cols = [c for c in classes.columns if c.startswith("class_")]
        meets_cols = [c for c in classes.columns if c.startswith("meets_")]
        details = [
            {
                "water_body": body,
                "target_class": target,
                "classes": {
                    c[6:]: int(v)
                    for c, v in zip(class_cols, r[: len(class_cols)], strict=True)
                    if not pd.isna(v)
                },
                **(
                    {
                        "supplementary": {
                            c[6:]: bool(v)
                            for c, v in zip(meets_cols, r[len(class_cols) :], strict=True)
                            if not pd.isna(v)
                        }
                    }
                    if meets_cols
                    else {}
                ),
            }
            for r in classes[class_cols + meets_cols].itertuples(index=False, name=None)
        ]
        overall = classes["overall"].to_numpy(dtype=object)
        rows += derived.upsert(
            conn,
            "assessments",
            pd.DataFrame(
                {
                    "scope": plan.scope,
                    "subject": plan.subject,
                    "kind": kind,
                    "start": wide.index,
                    "value": overall,
                    "level": overall,
                    "label": classes["exceeding"].to_numpy(),
                    "details": details,
                }
            ),
        )
    return rows


# --------------------------------------------------------------------------- cities
@dataclass(frozen=True)
class CityPlan:
    """A city's stations and the periods (UTC starts) of ``period`` to recompute per parameter."""

    city: str
    stations: tuple[str, ...]
    period: str
    starts: Mapping[str, tuple[datetime, ...]]


def city_means(url: str, plan: CityPlan) -> Touched:
    """A city's means over its stations for the touched periods (see the module's rule), then
    its hourly AQI (for ``PT1H``)."""
    touched = Touched()
    with db.connect(url) as conn:
        for parameter, starts in plan.starts.items():
            what = f"city {plan.city} {parameter} {plan.period}"
            touched.attempt(what, _city_parameter, conn, plan, parameter, starts, touched)
        if plan.period == "PT1H":
            hours = touched.periods.get("o3")
            if hours:
                what = f"city {plan.city} o3 8-hour means"
                touched.attempt(what, _o3_8h, conn, "city", plan.city, hours)
            aqi_hours = set().union(*(touched.periods.get(p, set()) for p in AQI_POLLUTANTS))
            if aqi_hours:
                what = f"city {plan.city} hourly AQI"
                touched.attempt(what, hourly_aqi, conn, "city", plan.city, aqi_hours)
    return touched


def _city_parameter(
    conn: Connection,
    plan: CityPlan,
    parameter: str,
    starts: Sequence[datetime],
    touched: Touched,
) -> int:
    """One parameter's city means for ``starts``; returns the rows written."""
    step = _step(plan.period)
    found = derived.read_aggregates(
        conn,
        scope="station",
        period=plan.period,
        start=min(starts),
        end=max(starts) + step,
        subjects=list(plan.stations),
        parameters=[parameter],
    )
    found = found[found["start"].isin([pd.Timestamp(s) for s in starts])]
    if found.empty:
        return 0
    # stations measuring the parameter: those with any aggregate in the periods
    n_stations = found["subject"].nunique()
    good = found[found["valid"]]
    grouped = good.groupby("start")["value"]
    agg = pd.DataFrame({"value": grouped.mean(), "count": grouped.count()})
    agg = agg.reindex(pd.DatetimeIndex(sorted(found["start"].unique())))
    agg["count"] = agg["count"].fillna(0.0).astype(float)
    needed = max(1, math.ceil(CITY_MIN_SHARE * n_stations))
    agg["valid"] = agg["count"] >= needed
    agg.index.name = "start"
    unit = str(found["unit"].iloc[0])
    touched.add(parameter, agg.index)
    return derived.upsert(
        conn, "aggregates", _frame("city", plan.city, parameter, plan.period, unit, agg)
    )
