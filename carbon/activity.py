"""Facilities and activity records: read from CSV or Excel, checked record by record.

Facilities: ``id, name, region, sector[, lon, lat]`` — ``region`` as in :mod:`carbon.regions`,
``sector`` an IPCC 2006 category code (``1.A.1.a`` public electricity and heat, ``1.A.2`` …,
``2.A.1`` cement, …). Activity records: ``facility, start, end, activity, quantity, unit[,
source, method, ncv, carbon_content, oxidation]`` — ``activity`` a fuel name of the factor
library (burnt), a process (``cement_clinker``, ``lime``, ``crude_steel``: the mass produced;
an optional ``emission_factor`` column in tCO₂/t overrides the default), or ``electricity``
(purchased, scope 2); the period is [start, end).

Bad records are not skipped silently: each is reported with its line and reason
(:class:`Rejected`), the good ones are kept.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

import pandas as pd

from carbon import factors
from carbon.errors import CarbonError
from carbon.regions import chain
from sensors.errors import UnitError
from sensors.units import parse_unit

_SECTOR: Final = re.compile(r"^[1-5](\.[A-Z](\.\d+(\.[a-z](\.[ivx]+)?)?)?)?$")
ACTIVITIES_OTHER: Final = ("electricity",)


@dataclass(frozen=True)
class Facility:
    """An emitting facility."""

    id: str
    name: str
    region: str
    sector: str
    lon: float | None = None
    lat: float | None = None


@dataclass(frozen=True)
class ActivityRecord:
    """One activity over a period [start, end) (aware times)."""

    id: str
    facility: str
    start: datetime
    end: datetime
    activity: str
    quantity: float
    unit: str
    source: str = ""
    method: str = "china"
    ncv: float | None = None
    carbon_content: float | None = None
    oxidation: float | None = None
    emission_factor: float | None = None


@dataclass(frozen=True)
class Rejected:
    """A record left out, and why."""

    where: str
    reason: str


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Excel table as text, column names stripped and lower-cased."""
    try:
        if path.suffix.lower() in (".xlsx", ".xls"):
            frame = pd.read_excel(path, dtype=str)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as exc:
        raise CarbonError(f"cannot read {path}: {exc}") from exc
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    return frame.fillna("")


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise :class:`CarbonError` naming the ``columns`` ``frame`` lacks."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise CarbonError(f"{what}: missing columns {', '.join(missing)}")


def _number(text: str, name: str) -> float | None:
    if text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise CarbonError(f"{name} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise CarbonError(f"{name} {text!r} is not a number")
    return value


def known_activities() -> set[str]:
    """Every activity a record may name: the library's fuels (burnt) and processes (product
    made), and ``electricity`` (purchased)."""
    return {*factors.fuels(), *factors.processes(), *ACTIVITIES_OTHER}


def facility_from(row: dict[str, Any]) -> Facility:
    """A facility from a row of text (checks region and sector)."""
    fid = row["id"].strip()
    if not fid:
        raise CarbonError("empty facility id")
    region = row["region"].strip()
    chain(region)  # raises for an unknown region
    sector = row["sector"].strip()
    if not _SECTOR.match(sector):
        raise CarbonError(f"sector {sector!r} is not an IPCC 2006 category code (e.g. 1.A.1.a)")
    return Facility(
        fid,
        row.get("name", "").strip() or fid,
        region,
        sector,
        _number(row.get("lon", ""), "lon"),
        _number(row.get("lat", ""), "lat"),
    )


def read_facilities(path: Path) -> tuple[list[Facility], list[Rejected]]:
    """Facilities of a CSV/Excel file; rows with errors are rejected with their line."""
    frame = read_table(path)
    require_columns(frame, ("id", "region", "sector"), str(path))
    out: list[Facility] = []
    rejected: list[Rejected] = []
    seen: set[str] = set()
    for i, row in enumerate(frame.to_dict("records"), start=2):
        where = f"{path.name} line {i}"
        try:
            f = facility_from({str(k): str(v) for k, v in row.items()})
            if f.id in seen:
                raise CarbonError(f"facility {f.id} appears twice")
            seen.add(f.id)
            out.append(f)
        except CarbonError as exc:
            rejected.append(Rejected(where, str(exc)))
    return out, rejected


def _time(text: str, tz: ZoneInfo, name: str) -> datetime:
    try:
        t = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CarbonError(f"{name} {text!r} is not an ISO 8601 date or time") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=tz)


def record_from(
    row: dict[str, str], rid: str | None, facilities: dict[str, Facility], tz: ZoneInfo
) -> ActivityRecord:
    """An activity record from a row of text, checked against the facilities and the library.
    Its id: the row's ``id`` column, else ``rid``, else ``facility/activity/start``."""
    facility = row["facility"].strip()
    if facility not in facilities:
        raise CarbonError(f"unknown facility {facility!r}")
    start = _time(row["start"], tz, "start")
    end = _time(row["end"], tz, "end")
    if end <= start:
        raise CarbonError(f"the period ends ({end.isoformat()}) before it starts")
    activity = row["activity"].strip()
    if activity not in known_activities():
        raise CarbonError(
            f"unknown activity {activity!r}: a fuel ({', '.join(factors.fuels())}), a process"
            f" ({', '.join(factors.processes())}) or electricity"
        )
    quantity = _number(row["quantity"], "quantity")
    if quantity is None:
        raise CarbonError("no quantity")
    if quantity < 0:
        raise CarbonError(f"negative quantity {quantity}")
    unit = row["unit"].strip()
    try:
        parse_unit(unit)
    except UnitError:
        raise CarbonError(f"unknown unit {unit!r}") from None
    method = row.get("method", "").strip() or "china"
    if method not in ("china", "ipcc"):
        raise CarbonError(f"method must be china or ipcc, not {method!r}")
    if row.get("id", "").strip():
        rid = row["id"].strip()
    elif rid is None:  # the natural key: one record per facility, activity and start
        rid = f"{facility}/{activity}/{start.isoformat()}"
    return ActivityRecord(
        rid,
        facility,
        start,
        end,
        activity,
        quantity,
        unit,
        row.get("source", "").strip(),
        method,
        _number(row.get("ncv", ""), "ncv"),
        _number(row.get("carbon_content", ""), "carbon_content"),
        _number(row.get("oxidation", ""), "oxidation"),
        _number(row.get("emission_factor", ""), "emission_factor"),
    )


def read_activity(
    path: Path,
    facilities: Iterable[Facility],
    tz: str = "Asia/Shanghai",
    natural_ids: bool = False,
) -> tuple[list[ActivityRecord], list[Rejected]]:
    """Activity records of a CSV/Excel file (times without offset are in ``tz``); bad rows and
    records overlapping another of the same facility and activity are rejected, with reasons.
    Record ids are ``file:line`` (a job's inputs) or, with ``natural_ids`` (records kept in the
    store, re-imported after corrections), ``facility/activity/start``; an ``id`` column wins."""
    frame = read_table(path)
    require_columns(frame, ("facility", "start", "end", "activity", "quantity", "unit"), str(path))
    known = {f.id: f for f in facilities}
    zone = ZoneInfo(tz)
    records: list[ActivityRecord] = []
    rejected: list[Rejected] = []
    for i, row in enumerate(frame.to_dict("records"), start=2):
        rid = None if natural_ids else f"{path.name}:{i}"
        try:
            records.append(record_from({str(k): str(v) for k, v in row.items()}, rid, known, zone))
        except CarbonError as exc:
            rejected.append(Rejected(f"{path.name} line {i}", str(exc)))
    kept, overlapping = drop_overlaps(records)
    return kept, rejected + overlapping


def drop_overlaps(records: list[ActivityRecord]) -> tuple[list[ActivityRecord], list[Rejected]]:
    """Records whose period overlaps an earlier-listed record of the same facility and activity
    are rejected (counting both would count the activity twice)."""
    kept: list[ActivityRecord] = []
    rejected: list[Rejected] = []
    by_key: dict[tuple[str, str], list[ActivityRecord]] = {}
    for r in records:
        others = by_key.setdefault((r.facility, r.activity), [])
        clash = next((o for o in others if r.start < o.end and o.start < r.end), None)
        if clash is not None:
            rejected.append(
                Rejected(r.id, f"{r.facility} {r.activity}: period overlaps record {clash.id}")
            )
            continue
        others.append(r)
        kept.append(r)
    return kept, rejected


#: hourly mean rate unit → the unit of one hour of it
METER_UNITS: Final = {
    "Nm3/h": "Nm3",
    "m3/h": "m3",
    "t/h": "t",
    "kg/h": "kg",
    "kW": "kWh",
    "MW": "MWh",
}


def daily_from_meter(
    facility: str,
    station: str,
    parameter: str,
    activity: str,
    hourly: pd.DataFrame,
    tz: str = "Asia/Shanghai",
) -> tuple[list[ActivityRecord], list[Rejected]]:
    """Daily activity records of a plant meter from its hourly mean rates (``start`` UTC,
    ``value``, ``valid``, ``unit``: a rate of :data:`METER_UNITS`): per bureau day, the mean of
    the valid hourly rates × the hours of the day — missing or invalid hours take the day's
    mean, and the record's ``source`` says how many hours were measured. A day without a valid
    hour gives no record but a :class:`Rejected`. Record ids: ``stream:station/parameter/day``,
    so that a recomputed day replaces its record."""
    if activity not in known_activities():
        raise CarbonError(f"{station}/{parameter}: unknown activity {activity!r}")
    zone = ZoneInfo(tz)
    records: list[ActivityRecord] = []
    rejected: list[Rejected] = []
    if hourly.empty:
        return records, rejected
    local = pd.DatetimeIndex(hourly["start"]).tz_convert(zone)
    for day, group in hourly.groupby(local.normalize()):
        first = pd.Timestamp(day)
        start = datetime(first.year, first.month, first.day, tzinfo=zone)
        end = start + timedelta(days=1)  # wall-clock arithmetic: the next local midnight
        where = f"stream:{station}/{parameter}/{start.date()}"
        units = set(group["unit"])
        if len(units) != 1 or next(iter(units)) not in METER_UNITS:
            rejected.append(
                Rejected(where, f"rate unit {sorted(units)} not one of {', '.join(METER_UNITS)}")
            )
            continue
        ok = group[group["valid"]]
        if ok.empty:
            rejected.append(Rejected(where, "no valid hour that day"))
            continue
        # elapsed time (23 or 25 h on a daylight-saving day): aware datetimes of one zone
        # subtract as wall clocks, so through UTC
        hours = (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 3600.0
        records.append(
            ActivityRecord(
                where,
                facility,
                start,
                end,
                activity,
                float(ok["value"].mean()) * hours,
                METER_UNITS[next(iter(units))],
                f"stream {station}/{parameter}: {len(ok)} of {hours:g} hours measured",
            )
        )
    return records, rejected
