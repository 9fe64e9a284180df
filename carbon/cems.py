"""CEMS measurement method: CO₂ mass from a stack's hourly concentration and flue-gas flow.

Hourly mass (t) = CO₂ concentration (mg/m³, dry, standard state) × flue-gas flow (m³/h, dry,
standard state) × 10⁻⁹ (``docs/standards/carbon.md``). Hours that are missing or invalid (the
hourly means' validity, QC included) are **substituted and flagged**, by this rule
(EcoSense's, conservative — no national rule is implemented; it follows the
practice of CEMS reporting programmes of never under-reporting a gap):

1. a gap of at most :data:`SHORT_GAP_HOURS` hours with measured hours on both sides: each hour
   takes the mean of the mass of the measured hour just before and just after
   (``interpolated``);
2. any other gap (longer, or at the start or end of the series): each hour takes the highest
   measured hourly mass of the :data:`LOOKBACK_HOURS` hours before it, or, when there is none,
   the highest measured hourly mass of the whole series (``lookback_max``).

A series with no measured hour cannot be accounted by measurement: :class:`CarbonError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pandas as pd

from carbon.errors import CarbonError
from sensors.errors import UnitError
from sensors.units import convert

SHORT_GAP_HOURS: Final = 24
LOOKBACK_HOURS: Final = 720
MG_M3_TIMES_M3_H_TO_T: Final = 1e-9


def hourly_mass(
    hours: pd.DatetimeIndex,
    co2: npt.ArrayLike,
    flow: npt.ArrayLike,
    valid: npt.ArrayLike | None = None,
    *,
    co2_unit: str = "mg/m3",
    flow_unit: str = "m3/h",
) -> pd.DataFrame:
    """Hourly CO₂ mass of a stack over a complete grid of ``hours`` (aware, one per hour).

    Returns a DataFrame indexed by hour: ``co2_t`` (t), ``measured`` (bool) and
    ``substitution`` (``""``, ``"interpolated"`` or ``"lookback_max"``).

    Raises
    ------
    CarbonError
        when the hours are not a complete hourly grid, the lengths differ, a unit does not fit,
        or no hour is measured.
    """
    index = pd.DatetimeIndex(hours)
    if index.tz is None:
        raise CarbonError("CEMS hours must be timezone-aware")
    if len(index) > 1 and not (np.diff(index.as_unit("s").asi8) == 3600).all():
        raise CarbonError("CEMS hours must be a complete hourly grid (one row per hour)")
    c = np.asarray(co2, dtype=np.float64)
    f = np.asarray(flow, dtype=np.float64)
    if not len(c) == len(f) == len(index):
        raise CarbonError(f"{len(index)} hours, {len(c)} concentrations, {len(f)} flows")
    try:
        c = convert(c, co2_unit, "mg/m3")
        f = convert(f, flow_unit, "m3/h")
    except UnitError as exc:
        raise CarbonError(f"CEMS units {co2_unit!r}, {flow_unit!r}: {exc}") from exc
    ok = np.isfinite(c) & np.isfinite(f) & (c >= 0) & (f >= 0)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    if not ok.any():
        raise CarbonError("no measured hour: the measurement method cannot be used")
    mass = np.where(ok, c * f * MG_M3_TIMES_M3_H_TO_T, np.nan)
    rule = np.full(len(mass), "", dtype=object)
    for start, end in _gaps(ok):
        short = end - start <= SHORT_GAP_HOURS and start > 0 and end < len(mass)
        if short:
            mass[start:end] = (mass[start - 1] + mass[end]) / 2
            rule[start:end] = "interpolated"
            continue
        for i in range(start, end):
            window = mass[max(0, i - LOOKBACK_HOURS) : i][ok[max(0, i - LOOKBACK_HOURS) : i]]
            mass[i] = window.max() if len(window) else np.nanmax(np.where(ok, mass, np.nan))
        rule[start:end] = "lookback_max"
    return pd.DataFrame({"co2_t": mass, "measured": ok, "substitution": rule}, index=index)


def _gaps(ok: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """[start, end) of each run of unmeasured hours."""
    edges = np.diff(np.concatenate([[1], ok.astype(np.int8), [1]]))
    return list(zip(np.flatnonzero(edges == -1), np.flatnonzero(edges == 1), strict=True))


@dataclass(frozen=True)
class Comparison:
    """CEMS-measured against calculated emissions of one facility and period."""

    measured_t: float
    calculated_t: float
    relative_difference: float
    finding: bool
    threshold: float


def compare(measured_t: float, calculated_t: float, threshold: float = 0.05) -> Comparison:
    """The relative difference ``(measured − calculated) / calculated``; a finding when its
    magnitude is above ``threshold`` (default 5 %)."""
    if calculated_t <= 0:
        raise CarbonError(f"calculated emissions {calculated_t} t: nothing to compare against")
    diff = (measured_t - calculated_t) / calculated_t
    return Comparison(measured_t, calculated_t, diff, abs(diff) > threshold, threshold)


def calculated_for_hours(
    hours: pd.DatetimeIndex,
    months: Mapping[datetime, float],
    covered: Sequence[tuple[datetime, datetime]],
    tz: str = "Asia/Shanghai",
) -> tuple[float, npt.NDArray[np.bool_]]:
    """The calculated tonnes that belong to the CEMS ``hours`` (aware starts), and which of
    the hours have a calculation to be compared with.

    ``months`` maps the first instant of each calculated month (bureau time ``tz``) to its
    calculated tonnes; ``covered`` are the periods [start, end) its activity records cover.
    Each month contributes its tonnes × (CEMS hours in the month inside a covered period) /
    (hours of the month the records cover): CEMS and calculation are compared over the same
    hours, not a few measured hours against whole months.
    """
    zone = ZoneInfo(tz)
    t = pd.DatetimeIndex(hours).tz_convert("UTC").as_unit("ns").asi8
    compared = np.zeros(len(t), dtype=bool)
    total = 0.0
    for first, tonnes in months.items():
        local = first.astimezone(zone)
        after = datetime(local.year + local.month // 12, local.month % 12 + 1, 1, tzinfo=zone)
        spans = _merged(
            [(max(s, first), min(e, after)) for s, e in covered if s < after and e > first]
        )
        covered_h = sum((e - s).total_seconds() for s, e in spans) / 3600
        if covered_h <= 0:
            continue
        inside = np.zeros(len(t), dtype=bool)
        for s, e in spans:
            inside |= (t >= pd.Timestamp(s).value) & (t < pd.Timestamp(e).value)
        total += tonnes * int(inside.sum()) / covered_h
        compared |= inside
    return total, compared


def _merged(spans: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Overlapping periods joined, in order."""
    out: list[tuple[datetime, datetime]] = []
    for s, e in sorted(spans):
        if out and s <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out
