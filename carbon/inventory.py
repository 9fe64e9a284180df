"""Inventories: every activity record accounted, one row per gas, traceable to the record and
the factors; rolled up by region level × sector × gas × scope × year.

- Fuel records are scope 1 (:func:`carbon.accounting.fuel_combustion`, the record's method);
  CH₄/N₂O under the IPCC method use Table 2.2 for energy industries (sector ``1.A.1…``), and
  are refused for other sectors until their tables are verified (the record is then reported).
- Process records (cement clinker, lime, crude steel produced) are scope 1 process CO₂
  (:func:`carbon.accounting.industrial_process`).
- Electricity records are scope 2, location-based (:func:`carbon.accounting.electricity`).
- A record is accounted with the factors of its start year (the bureau's calendar); one that
  spans several years is split between them in proportion to its duration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

import pandas as pd

from carbon import factors
from carbon.accounting import Emissions, electricity, fuel_combustion, industrial_process
from carbon.activity import ActivityRecord, Facility, Rejected
from carbon.errors import CarbonError
from carbon.regions import chain
from sensors.units import ureg

COLUMNS: Final = (
    "record",
    "facility",
    "region",
    "sector",
    "scope",
    "gas",
    "year",
    "tonnes",
    "co2e_t",
    "factor_ids",
    "fallbacks",
)
LEVELS: Final = ("county", "city", "province", "nation")


def _years(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[int, float]]:
    """(year, share of the period in it) for each calendar year of ``tz`` the period touches."""
    s, e = start.astimezone(tz), end.astimezone(tz)
    total = (e - s).total_seconds()
    out = []
    for year in range(s.year, e.year + 1):
        y0 = max(s, datetime(year, 1, 1, tzinfo=tz))
        y1 = min(e, datetime(year + 1, 1, 1, tzinfo=tz))
        share = (y1 - y0).total_seconds() / total
        if share > 0:
            out.append((year, share))
    return out


def _account_one(r: ActivityRecord, f: Facility, year: int, gwp: str) -> tuple[int, Emissions]:
    if r.activity == "electricity":
        mwh = ureg.Quantity(r.quantity, r.unit).to("MWh").magnitude
        return 2, electricity(mwh, f.region, year)
    if r.activity in factors.processes():
        return 1, industrial_process(
            r.activity, r.quantity, r.unit, f.region, year, r.emission_factor
        )
    table = "energy" if f.sector.startswith("1.A.1") else f"IPCC {f.sector}"
    return 1, fuel_combustion(
        r.activity,
        r.quantity,
        r.unit,
        method=r.method,
        region=f.region,
        year=year,
        gwp=gwp,
        sector=table,
        ncv=r.ncv,
        carbon_content=r.carbon_content,
        oxidation=r.oxidation,
    )


def account(
    records: Iterable[ActivityRecord],
    facilities: Iterable[Facility],
    gwp: str = factors.DEFAULT_GWP,
    tz: str = "Asia/Shanghai",
) -> tuple[pd.DataFrame, list[Rejected]]:
    """Emission rows (:data:`COLUMNS`) of every record, and the records that could not be
    accounted, with the reason (a missing factor, a unit that does not fit, …)."""
    zone = ZoneInfo(tz)
    known = {f.id: f for f in facilities}
    rows: list[dict[str, object]] = []
    rejected: list[Rejected] = []
    for r in records:
        f = known.get(r.facility)
        if f is None:
            rejected.append(Rejected(r.id, f"unknown facility {r.facility!r}"))
            continue
        try:
            parts = [
                (year, share, *_account_one(r, f, year, gwp))
                for year, share in _years(r.start, r.end, zone)
            ]
        except (CarbonError, ValueError) as exc:
            rejected.append(Rejected(r.id, str(exc)))
            continue
        for year, share, scope, e in parts:
            gases = [("CO2", e.co2_t, e.co2_t)]
            if e.ch4_t is not None:
                gases.append(("CH4", e.ch4_t, e.ch4_t * factors.gwp("CH4", gwp).value))
            if e.n2o_t is not None:
                gases.append(("N2O", e.n2o_t, e.n2o_t * factors.gwp("N2O", gwp).value))
            for gas, tonnes, co2e in gases:
                rows.append(
                    {
                        "record": r.id,
                        "facility": f.id,
                        "region": f.region,
                        "sector": f.sector,
                        "scope": scope,
                        "gas": gas,
                        "year": year,
                        "tonnes": tonnes * share,
                        "co2e_t": co2e * share,
                        "factor_ids": ";".join(e.factor_ids),
                        "fallbacks": ";".join(e.fallbacks),
                    }
                )
    return pd.DataFrame(rows, columns=list(COLUMNS)), rejected


def months(start: datetime, end: datetime, tz: ZoneInfo) -> list[tuple[datetime, float]]:
    """(first instant of the month in ``tz``, share of the period in it) for each calendar month
    the period [start, end) touches."""
    s, e = start.astimezone(tz), end.astimezone(tz)
    total = (e - s).total_seconds()
    out = []
    first = datetime(s.year, s.month, 1, tzinfo=tz)
    while first < e:
        after = datetime(first.year + first.month // 12, first.month % 12 + 1, 1, tzinfo=tz)
        share = (min(e, after) - max(s, first)).total_seconds() / total
        if share > 0:
            out.append((first, share))
        first = after
    return out


def split_months(records: Iterable[ActivityRecord], tz: str) -> list[ActivityRecord]:
    """Each record cut at the bureau's month boundaries, the quantity pro rata by duration (ids
    kept): accounted, the parts give monthly emissions that add up to the record's."""
    zone = ZoneInfo(tz)
    out = []
    for r in records:
        for first, share in months(r.start, r.end, zone):
            after = datetime(first.year + first.month // 12, first.month % 12 + 1, 1, tzinfo=zone)
            out.append(
                replace(
                    r,
                    start=max(r.start, first),
                    end=min(r.end, after),
                    quantity=r.quantity * share,
                )
            )
    return out


def region_at(region: str, level: str) -> str | None:
    """The region containing ``region`` at ``level`` (``None`` when it is coarser than that)."""
    if level not in LEVELS:
        raise CarbonError(f"level must be one of {', '.join(LEVELS)}")
    for r in chain(region):
        kind = (
            "nation"
            if r == "CN"
            else "province"
            if r.startswith("CN-")
            else "city"
            if r.isdigit() and r.endswith("00")
            else "county"
            if r.isdigit()
            else None
        )
        if kind == level:
            return r
    return None


def rollup(
    rows: pd.DataFrame, level: str, by: Sequence[str] = ("sector", "gas", "scope", "year")
) -> pd.DataFrame:
    """Totals (``tonnes``, ``co2e_t``) by region at ``level`` and ``by``; rows from regions
    coarser than ``level`` (a province-level facility in a city inventory) are left out:
    :func:`rollup_exclusions` lists them with the reason."""
    regions = rows["region"].map(lambda r: region_at(r, level))
    frame = rows.assign(region=regions).dropna(subset=["region"])
    keys = ["region", *by]
    return frame.groupby(keys, as_index=False)[["tonnes", "co2e_t"]].sum()


#: columns of :func:`region_totals`
REGION_TOTAL_COLUMNS: Final = ("region", "year", "gas", "sector", "tonnes", "facilities")


def region_totals(
    rows: pd.DataFrame, *, region: str | None = None, level: str = "province"
) -> pd.DataFrame:
    """Annual emissions by region, year, gas and sector from stored facility years.

    ``rows``: one row per facility, gas and bureau year (``facility``, ``gas``, ``year``,
    ``tonnes`` in t of the gas — t CO₂e for ``CO2e`` —, ``region``, ``sector``). With
    ``region`` (any level: ``CN``, ``CN-BJ``, ``110100``, ``110105``) the totals of the
    facilities inside it; without, the totals of every region at ``level`` (facilities whose
    region is coarser than ``level`` are in none, as in :func:`rollup`). Returns
    :data:`REGION_TOTAL_COLUMNS` (``facilities``: how many facilities the total holds), sorted
    by region, year, gas and sector.

    Raises
    ------
    CarbonError
        for an unknown ``region`` or ``level``.
    """
    from carbon.regions import chain

    if region is not None:
        chain(region)  # an unknown region is an error, not an empty answer
        inside = rows["region"].map(lambda r: region in chain(str(r)))
        frame = rows[inside.astype(bool)].assign(region=region)
    else:
        if level not in LEVELS:
            raise CarbonError(f"level must be one of {', '.join(LEVELS)}")
        frame = rows.assign(region=rows["region"].map(lambda r: region_at(str(r), level)))
        frame = frame.dropna(subset=["region"])
    if frame.empty:
        return pd.DataFrame(columns=list(REGION_TOTAL_COLUMNS))
    out = (
        frame.groupby(["region", "year", "gas", "sector"], as_index=False)
        .agg(tonnes=("tonnes", "sum"), facilities=("facility", "nunique"))
        .sort_values(["region", "year", "gas", "sector"], ignore_index=True)
    )
    out["year"] = out["year"].astype("int64")
    return out[list(REGION_TOTAL_COLUMNS)]


def rollup_exclusions(rows: pd.DataFrame, level: str) -> list[Rejected]:
    """What :func:`rollup` at ``level`` leaves out, with the reason: one entry per facility
    (or, for rows without one such as land-use sinks, per record) and region coarser than
    ``level`` (a province-level facility in a city inventory), with its t CO₂e. Those rows
    still count in a job's total; they are only missing from the regions of the roll-up."""
    if rows.empty:
        return []
    coarse = rows[rows["region"].map(lambda r: region_at(r, level)).isna()]
    if coarse.empty:
        return []
    facility = coarse["facility"] if "facility" in coarse else pd.Series("", index=coarse.index)
    who = [
        f"facility {f}" if isinstance(f, str) and f else f"record {r}"
        for f, r in zip(facility, coarse["record"], strict=True)
    ]
    totals = (
        coarse.assign(where=who)
        .groupby(["where", "region"], sort=True, as_index=False)["co2e_t"]
        .sum()
    )
    return [
        Rejected(
            str(where),
            f"region {region} is coarser than the {level} roll-up: {float(tonnes):,.3f} t CO2e"
            f" counted in the total but in no {level}",
        )
        for where, region, tonnes in totals[["where", "region", "co2e_t"]].itertuples(
            index=False, name=None
        )
    ]


def account_frame(
    records: pd.DataFrame,
    facilities: pd.DataFrame,
    gwp: str = factors.DEFAULT_GWP,
    tz: str = "Asia/Shanghai",
    method: str = "china",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Annual emissions per facility, activity and gas from many short records at once (hourly
    meter readings): ``records`` has ``facility, start`` (aware), ``activity, quantity, unit``;
    ``facilities`` has ``id, region, sector``. Each record must lie within one year (true of
    hourly and daily records).

    Emissions are linear in the quantity, so quantities are summed per facility, activity, unit
    and year first, and each sum is accounted by the same functions as :func:`account` — exact,
    and independent of the number of records. Returns the rows (``facility, activity, unit,
    region, sector, scope, gas, year, quantity, records, tonnes, co2e_t, factor_ids,
    fallbacks``) and the sums that could not be accounted, with the reason (``error``).

    Raises
    ------
    CarbonError
        for an unknown facility or a negative or missing quantity.
    """
    fac = facilities.set_index("id")[["region", "sector"]]
    quantity = records["quantity"].to_numpy(dtype="float64")
    if not (quantity >= 0).all():  # NaN fails too
        raise CarbonError("quantities must be non-negative numbers")
    years = pd.DatetimeIndex(records["start"]).tz_convert(tz).year
    sums = (
        pd.DataFrame(
            {
                "facility": records["facility"].to_numpy(),
                "activity": records["activity"].to_numpy(),
                "unit": records["unit"].to_numpy(),
                "year": years.to_numpy(),
                "quantity": quantity,
            }
        )
        .groupby(["facility", "activity", "unit", "year"], observed=True, sort=True)["quantity"]
        .agg(["sum", "count"])
        .reset_index()
        .rename(columns={"sum": "quantity", "count": "records"})
    )
    unknown = ~sums["facility"].isin(fac.index)
    if unknown.any():
        names = sorted(map(str, set(sums.loc[unknown, "facility"])))[:5]
        raise CarbonError(f"unknown facilities: {', '.join(names)}")
    sums["region"] = fac["region"].reindex(sums["facility"]).to_numpy()
    sums["sector"] = fac["sector"].reindex(sums["facility"]).to_numpy()
    gwps = {"CO2": 1.0, "CH4": factors.gwp("CH4", gwp).value, "N2O": factors.gwp("N2O", gwp).value}
    rows: list[dict[str, object]] = []
    failed: list[dict[str, object]] = []
    records_of_sums: list[dict[str, Any]] = sums.to_dict("records")  # type: ignore[assignment]
    for s in records_of_sums:
        day = datetime(int(s["year"]), 1, 1, tzinfo=ZoneInfo(tz))
        record = ActivityRecord(
            "sum", str(s["facility"]), day, day, str(s["activity"]), float(s["quantity"]),
            str(s["unit"]), method=method,
        )  # fmt: skip
        facility = Facility(str(s["facility"]), "", str(s["region"]), str(s["sector"]))
        try:
            scope, e = _account_one(record, facility, int(s["year"]), gwp)
        except (CarbonError, ValueError) as exc:
            failed.append({**s, "error": str(exc)})
            continue
        for gas, tonnes in (("CO2", e.co2_t), ("CH4", e.ch4_t), ("N2O", e.n2o_t)):
            if tonnes is None:
                continue
            rows.append(
                {
                    **s,
                    "scope": scope,
                    "gas": gas,
                    "tonnes": tonnes,
                    "co2e_t": tonnes * gwps[gas],
                    "factor_ids": ";".join(e.factor_ids),
                    "fallbacks": ";".join(e.fallbacks),
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(failed)
