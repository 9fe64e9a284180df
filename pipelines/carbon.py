"""Carbon accounting over the store: the ``carbon-inventory`` job's task, activity records
derived from plant meters, and the CEMS check.

One task per facility recomputes the bureau's calendar years its new or changed activity
records touch: records are cut at month boundaries (:func:`carbon.inventory.split_months`),
accounted by :func:`carbon.inventory.account` with the factors of their year, and written to
``emissions`` (source ``calculation``, subject the facility) per gas (CO₂, CH₄, N₂O and CO₂e)
for each month (``P1M``) and year (``P1Y``). Each row's ``details`` carry the scope split, the
records, the factor ids with their versions and the fallbacks taken; when a re-run changes a
row's value (a corrected record, an updated factor library), ``details.previous`` keeps the old
value and factor ids, so the change can be compared. Rows of a recomputed year that no longer
arise (a record withdrawn) are deleted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import pandas as pd

from carbon import factors
from carbon.activity import Facility, daily_from_meter
from carbon.cems import calculated_for_hours, compare
from carbon.errors import CarbonError
from carbon.inventory import account, split_months
from pipelines.work import Touched
from store import activity, db, derived
from store.errors import NotFound

GASES: Final = ("CO2", "CH4", "N2O")
METHOD: Final = "calculation (carbon.inventory)"
#: relative tolerance under which a recomputed value counts as unchanged
SAME: Final = 1e-9


@dataclass(frozen=True)
class FacilityPlan:
    """What one task recomputes: a facility's calendar years (bureau time)."""

    facility: Facility
    years: tuple[int, ...]
    tz: str
    gwp: str = factors.DEFAULT_GWP


def _details(group: pd.DataFrame, facility: Facility, gwp: str) -> dict[str, Any]:
    ids = sorted({i for s in group["factor_ids"] for i in s.split(";") if i})
    return {
        "method": METHOD,
        "region": facility.region,
        "sector": facility.sector,
        "gwp": gwp,
        "scope": {str(k): float(v) for k, v in group.groupby("scope")["value"].sum().items()},
        "records": sorted(set(group["record"])),
        "factor_ids": ids,
        "factor_versions": factors.versions(ids),
        "fallbacks": sorted({f for s in group["fallbacks"] for f in s.split(";") if f}),
    }


def emission_rows(parts: pd.DataFrame, facility: Facility, gwp: str, tz: str) -> pd.DataFrame:
    """``emissions`` rows (P1M and P1Y, per gas and CO₂e) from accounted month parts
    (:data:`carbon.inventory.COLUMNS` plus ``month``, the month's first instant in ``tz``)."""
    if parts.empty:
        return pd.DataFrame()
    zone = ZoneInfo(tz)
    long = pd.concat(
        [
            parts.assign(value=parts["tonnes"]),
            parts.assign(gas="CO2e", value=parts["co2e_t"]),
        ],
        ignore_index=True,
    )
    long["year_start"] = [datetime(m.year, 1, 1, tzinfo=zone) for m in long["month"]]
    out: list[dict[str, Any]] = []
    for period, column in (("P1M", "month"), ("P1Y", "year_start")):
        for (gas, start), group in long.groupby(["gas", column], sort=True):
            out.append(
                {
                    "source": "calculation",
                    "subject": facility.id,
                    "gas": gas,
                    "period": period,
                    "start": pd.Timestamp(start).tz_convert("UTC"),  # type: ignore[arg-type]
                    "tonnes": float(group["value"].sum()),
                    "substitution": "",
                    "details": _details(group, facility, gwp),
                }
            )
    return pd.DataFrame(out)


def _carry_previous(rows: pd.DataFrame, old: pd.DataFrame) -> pd.DataFrame:
    """Record in ``details.previous`` the stored value a row replaces; keep the stored
    ``previous`` of a row whose value did not change."""
    if old.empty:
        return rows
    before = {(r["gas"], r["period"], pd.Timestamp(r["start"])): r for r in old.to_dict("records")}
    details: list[Any] = []
    for r in rows.to_dict("records"):
        d = dict(r["details"])
        o = before.get((r["gas"], r["period"], pd.Timestamp(r["start"])))
        if o is not None:
            same = abs(o["tonnes"] - r["tonnes"]) <= SAME * max(abs(o["tonnes"]), 1e-12)
            if not same:
                d["previous"] = {
                    "tonnes": o["tonnes"],
                    "factor_ids": o["details"].get("factor_ids", []),
                }
            elif "previous" in o["details"]:
                d["previous"] = o["details"]["previous"]
        details.append(d)
    out = rows.copy()
    out["details"] = details
    return out


def facility_inventory(url: str, plan: FacilityPlan) -> Touched:
    """Recompute and store the monthly and annual emissions of ``plan`` (see the module)."""
    zone = ZoneInfo(plan.tz)
    lo = datetime(min(plan.years), 1, 1, tzinfo=zone)
    hi = datetime(max(plan.years) + 1, 1, 1, tzinfo=zone)
    touched = Touched()
    with db.connect(url) as conn:
        records = activity.load_activity(conn, facilities=[plan.facility.id], start=lo, end=hi)
        parts = [
            p for p in split_months(records, plan.tz)
            if p.start.astimezone(zone).year in plan.years
        ]  # fmt: skip
        accounted: list[pd.DataFrame] = []
        for part in parts:
            rows, refused = account([part], [plan.facility], plan.gwp, plan.tz)
            touched.errors += [f"{r.where}: {r.reason}" for r in refused]
            if not rows.empty:
                month = part.start.astimezone(zone).replace(day=1, hour=0, minute=0, second=0)
                accounted.append(rows.assign(month=month.replace(microsecond=0)))
        frame = pd.concat(accounted, ignore_index=True) if accounted else pd.DataFrame()
        new = emission_rows(frame, plan.facility, plan.gwp, plan.tz)
        old = derived.read_emissions(
            conn, source="calculation", start=lo, end=hi, subject=plan.facility.id
        )
        old = old[old["period"].isin(["P1M", "P1Y"])]
        keep = set() if new.empty else {
            (g, p, pd.Timestamp(s)) for g, p, s in zip(
                new["gas"], new["period"], new["start"], strict=True
            )
        }  # fmt: skip
        stale = [
            (g, p, pd.Timestamp(s).to_pydatetime())
            for g, p, s in zip(old["gas"], old["period"], old["start"], strict=True)
            if (g, p, pd.Timestamp(s)) not in keep
        ]
        rows = _carry_previous(new, old) if not new.empty else new
        # the stale rows go and the new ones come in one transaction: a reader never sees a
        # year half recomputed, and a failure leaves the stored year as it was
        touched.rows += derived.replace_emissions(
            conn, "calculation", plan.facility.id, stale, rows
        )
        if not new.empty:
            touched.add("emissions", new["start"])
    return touched


def plans(
    facilities: Mapping[str, Facility], years: Mapping[str, set[int]], tz: str
) -> list[FacilityPlan]:
    """One plan per facility with years to recompute (facilities unknown to the store are
    left out: a record cannot reference one)."""
    return [
        FacilityPlan(facilities[f], tuple(sorted(ys)), tz)
        for f, ys in sorted(years.items())
        if f in facilities and ys
    ]


def meter_records(
    conn: derived.Connection,
    since: datetime | None,
    start: datetime | None,
    end: datetime | None,
    tz: str,
) -> tuple[int, list[str]]:
    """Derive and store the daily activity records of plant meters — stations with a
    ``facility`` attribute and ``meters`` (parameter → activity, e.g. ``{"fuel_gas_flow":
    "natural_gas", "power_active": "electricity"}``) — for the days whose hourly means changed
    after ``since`` (or that fall in [start, end)), by :func:`carbon.activity.daily_from_meter`.
    Returns the records stored or changed and the problems."""
    meters = activity.meter_stations(conn)
    if not meters:
        return 0, []
    zone = ZoneInfo(tz)
    ids = [m[0] for m in meters]
    if start is None and end is None:
        touched = derived.touched_aggregates(
            conn, scope="station", period="PT1H", since=since or datetime.min.replace(tzinfo=UTC)
        )
        touched = touched[touched["subject"].isin(ids)]
    else:
        lo, hi = start or datetime(1990, 1, 1, tzinfo=UTC), end or derived.now(conn)
        touched = derived.read_aggregates(
            conn, scope="station", period="PT1H", start=lo, end=hi, subjects=ids
        )
    changed, problems = 0, []
    for station, attrs in meters:
        for parameter, what in dict(attrs["meters"]).items():
            mine = touched[(touched["subject"] == station) & (touched["parameter"] == parameter)]
            if mine.empty:
                continue
            local = pd.DatetimeIndex(mine["start"]).tz_convert(zone).normalize()
            for day in sorted(set(local)):
                first = datetime(day.year, day.month, day.day, tzinfo=zone)
                hours = derived.read_aggregates(
                    conn, scope="station", period="PT1H", start=first,
                    end=first + timedelta(days=1), subjects=[station], parameters=[parameter],
                )  # fmt: skip
                try:
                    records, bad = daily_from_meter(
                        str(attrs["facility"]), station, parameter, str(what), hours, tz
                    )
                    n, refused = activity.save_activity(conn, records)
                except (CarbonError, NotFound) as exc:
                    problems.append(f"{station}/{parameter}: {exc}")
                    continue
                changed += n
                problems += [f"{r.where}: {r.reason}" for r in bad + refused]
    return changed, problems


#: the finding of a facility whose stacks measure CO₂ but which has no calculated emissions
WITHOUT_CALCULATION: Final = "CEMS without calculation"
#: the finding of a measured total that differs from the calculated one beyond the threshold
DIFFERENCE: Final = "difference above threshold"


def cems_check(
    conn: derived.Connection,
    start: datetime,
    end: datetime,
    threshold: float = 0.05,
    tz: str = "Asia/Shanghai",
) -> pd.DataFrame:
    """Per facility with a CEMS stack (a station whose ``facility`` attribute names it): CO₂
    measured by CEMS (hourly rows, substituted hours counted) against the calculated CO₂ of
    scope 1 over the months starting in [start, end). Columns: ``facility, stations,
    measured_t, substituted_hours, calculated_t, relative_difference, finding, threshold,
    reason, compared_hours``.

    Both sides cover the same hours (:func:`carbon.cems.calculated_for_hours`): the CEMS hours
    inside the periods the facility's scope-1 activity records cover, and each calculated
    month's share for those hours (``compared_hours``) — a stack measured for two days is not
    held against twelve months of calculation.

    ``finding`` is true and ``reason`` says why for a relative difference above ``threshold``
    (:data:`DIFFERENCE`) and for a facility whose stacks measured CO₂ but which has no
    calculated scope-1 CO₂ in the period (:data:`WITHOUT_CALCULATION`: ``calculated_t`` 0,
    ``relative_difference`` NaN) — the case the check exists to flag. A facility with no
    measured CO₂ is left out."""
    out: list[dict[str, Any]] = []
    for facility, stations in activity.stacks(conn).items():
        measured = pd.concat(
            [
                derived.read_emissions(conn, source="cems", start=start, end=end, subject=s)
                for s in stations
            ]
        )
        measured = measured[(measured["period"] == "PT1H") & (measured["gas"] == "CO2")]
        if measured.empty:
            continue
        calc = derived.read_emissions(
            conn, source="calculation", start=start, end=end, subject=facility
        )
        calc = calc[(calc["period"] == "P1M") & (calc["gas"] == "CO2")]
        months = {
            pd.Timestamp(t).to_pydatetime(): float(d.get("scope", {}).get("1", 0.0))
            for t, d in zip(calc["start"], calc["details"], strict=True)
        }
        covered = [
            (r.start, r.end)
            for r in activity.load_activity(conn, facilities=[facility], start=start, end=end)
            if r.activity != "electricity"  # scope 2: not what the stack measures
        ]
        calculated, compared = calculated_for_hours(
            pd.DatetimeIndex(measured["start"]), months, covered, tz
        )
        if calculated > 0:  # compared over the hours both sides cover
            measured = measured[compared]
        measured_t = float(measured["tonnes"].sum())
        row: dict[str, Any] = {
            "facility": facility,
            "stations": ", ".join(stations),
            "measured_t": measured_t,
            "substituted_hours": int((measured["substitution"] != "").sum()),
            "threshold": threshold,
            "compared_hours": int(compared.sum()) if calculated > 0 else 0,
        }
        if calculated <= 0:
            row |= {
                "calculated_t": 0.0,
                "relative_difference": math.nan,
                "finding": True,
                "reason": WITHOUT_CALCULATION,
            }
        else:
            c = compare(measured_t, calculated, threshold)
            row |= {
                "calculated_t": c.calculated_t,
                "relative_difference": c.relative_difference,
                "finding": c.finding,
                "reason": DIFFERENCE if c.finding else "",
            }
        out.append(row)
    columns = [
        "facility", "stations", "measured_t", "substituted_hours", "calculated_t",
        "relative_difference", "finding", "threshold", "reason", "compared_hours",
    ]  # fmt: skip
    return pd.DataFrame(out, columns=columns)
