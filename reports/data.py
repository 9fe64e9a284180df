"""The frames of a report, read through :mod:`store` (stations, their grades, the derived
aggregates and assessments), for the stations a principal may download."""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd

import access
from reports import tables
from reports.tables import Kind, Report
from store import derived, users


def _local_midnight(day: date, tz: str) -> datetime:
    """00:00 of ``day`` in the bureau's zone ``tz``, as an aware datetime."""
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz))


def _stations(
    store: Any, kind: str, principal: access.Principal
) -> tuple[list[Any], dict[str, Any]]:
    """The stations of ``kind`` that ``principal`` may export, and their grades."""
    with store.connection() as conn:
        grades = tables.exportable(principal, users.station_datasets(conn))
    found = [s for s in store.list_stations() if s.kind == kind and s.id in grades]
    return found, {s.id: grades[s.id] for s in found}


def daily(store: Any, day: date, tz: str, principal: access.Principal) -> Report:
    """The daily air-quality report of the bureau's ``day`` (in zone ``tz``) with the air
    stations ``principal`` may download and their cities."""
    stations, grades = _stations(store, "air", principal)
    frame = tables.station_frame(
        [{"id": s.id, "name": s.name, "city": str(s.attributes.get("city", ""))} for s in stations],
        ["id", "name", "city"],
    )
    start = _local_midnight(day, tz)
    end = start + timedelta(hours=1)  # the day's aggregates start at its local midnight
    parts = []
    with store.connection() as conn:
        for scope, subjects in (
            ("station", list(frame["id"])),
            ("city", sorted({c for c in frame["city"] if c})),
        ):
            for period in ("P1D", "P1D-MAX8H"):
                found = derived.read_aggregates(
                    conn, scope=scope, period=period, start=start, end=end, subjects=subjects
                )
                found["scope"], found["period"] = scope, period
                parts.append(found)
    aggregates = pd.concat([p for p in parts if len(p)] or [parts[0]], ignore_index=True)
    return tables.daily_report(day, frame, aggregates, grades)


def monthly(store: Any, day: date, tz: str, principal: access.Principal) -> Report:
    """The surface-water quality report of the month of ``day`` (in zone ``tz``) with the
    water stations ``principal`` may download."""
    stations, grades = _stations(store, "water", principal)
    frame = tables.station_frame(
        [
            {
                "id": s.id,
                "name": s.name,
                "water_body": str(s.attributes.get("water_body", "river")),
                "target_class": s.attributes.get("target_class", 3),
            }
            for s in stations
        ],
        ["id", "name", "water_body", "target_class"],
    )
    first = date(day.year, day.month, 1)
    before = (first - timedelta(days=1)).replace(day=1)
    ids = list(frame["id"])
    with store.connection() as conn:

        def classes(month: date) -> pd.DataFrame:
            start = _local_midnight(month, tz)
            return derived.read_assessments(
                conn,
                kind="water-monthly",
                start=start,
                end=start + timedelta(hours=1),
                scope="station",
                subjects=ids,
            )

        this, previous = classes(first), classes(before)
        start = _local_midnight(first, tz)
        means = derived.read_aggregates(
            conn,
            scope="station",
            period="P1M",
            start=start,
            end=start + timedelta(hours=1),
            subjects=ids,
        )
    days = calendar.monthrange(first.year, first.month)[1]
    return tables.monthly_report(first, frame, this, previous, means, days, grades)


def build(store: Any, kind: Kind, day: date, tz: str, principal: access.Principal) -> Report:
    """The ``daily`` or ``monthly`` report of ``day`` for ``principal``."""
    if kind == "daily":
        return daily(store, day, tz, principal)
    if kind == "monthly":
        return monthly(store, day, tz, principal)
    raise ValueError(f"unknown report {kind!r}: use daily or monthly")


def audit_object(report: Report) -> str:
    """The audit's object of a report: ``report:<kind>:<period>``."""
    return f"report:{report.kind}:{report.period}"
