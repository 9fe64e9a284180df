"""Aggregation with GB 3095-2026 Table 4 validity (pure pandas; no I/O).

Every function keeps invalid aggregates, flagged ``valid = False``, never drops them; raw
readings are not touched (§6.3). Periods are labelled by their start, in UTC; days, months and
years follow the bureau's time zone (``ECOSENSE_TIMEZONE``, China Standard Time by default).

Table 4 (``docs/standards/air.md``):

- 1-hour mean: at least 45 minutes of sampling in the hour;
- 24-hour mean: at least 20 hourly means that day;
- O₃ 8-hour mean: at least 6 hourly means in the 8 hours;
- monthly mean: at least 27 daily means (25 in February); annual mean: at least 324.

Noise levels (dB(A)) are not averaged arithmetically: ``how="energy"`` takes the energy
average ``10·log10(mean(10^(L/10)))`` (GB 3096-2008; :mod:`sensors.standards.noise`), and
``"max"``/``"min"`` keep the extreme (Lmax, Lmin); :func:`statistic_of` says which a parameter
takes. The validity rules are the same for every statistic.

The O₃ daily maximum 8-hour mean is the highest valid 8-hour mean among the 17 windows that
end between 08:00 and 24:00 of the day (HJ 663-2013 §4.1; ``docs/standards/air.md``), valid
with at least 14 valid windows (HJ 663-2013 Table 2).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from sensors.standards import noise

MIN_MINUTES_PER_HOUR: Final = 45
MIN_HOURS_PER_DAY: Final = 20
MIN_HOURS_PER_8H: Final = 6
MIN_WINDOWS_PER_DAY: Final = 14
MIN_DAYS_PER_MONTH: Final = 27
MIN_DAYS_IN_FEBRUARY: Final = 25
MIN_DAYS_PER_YEAR: Final = 324
DEFAULT_TIMEZONE: Final = "Asia/Shanghai"

COLUMNS: Final = ["value", "count", "valid"]

#: How shorter values become a period's value: arithmetic mean, energy average (levels in dB),
#: maximum or minimum.
How = Literal["mean", "energy", "max", "min"]


def statistic_of(parameter: str) -> How:
    """The statistic a parameter's periods take: the noise levels' (``laeq`` energy, ``lmax``
    maximum, ``lmin`` minimum), the mean for every other parameter."""
    return noise.AGGREGATION.get(parameter, "mean")


def _reduce(values: pd.Series, keys: Any, how: How) -> pd.Series:
    """``how`` of ``values`` per group of ``keys`` (NaN values left out)."""
    if how == "energy":  # 10·log10(mean(10^(L/10))): a mean of powers, no Python per group
        power = 10 ** (values.astype(np.float64) / 10)
        return power.groupby(keys).mean().apply(np.log10) * 10
    reduced: pd.Series = values.groupby(keys).agg(how)
    return reduced


def _series(frame: pd.DataFrame) -> tuple[pd.DatetimeIndex, pd.Series]:
    """Times (UTC) and values of the valid readings of ``frame`` (``time``, ``value`` and an
    optional boolean ``valid``: readings failing QC do not count)."""
    if not {"time", "value"} <= set(frame.columns):
        raise ValueError("readings need 'time' and 'value' columns")
    times = pd.DatetimeIndex(frame["time"])
    if times.tz is None:
        raise ValueError("reading times must be timezone-aware")
    keep = frame["value"].notna().to_numpy()
    if "valid" in frame.columns:
        keep = keep & frame["valid"].fillna(False).to_numpy(dtype=bool)
    values = pd.Series(
        frame["value"].to_numpy(dtype=np.float64)[keep], index=times[keep].tz_convert("UTC")
    )
    return pd.DatetimeIndex(values.index), values


def hourly(
    readings: pd.DataFrame, sample_minutes: float | None = None, how: How = "mean"
) -> pd.DataFrame:
    """Hourly means (or ``how``: energy averages, maxima, minima) of real-time or minute
    readings.

    ``count`` is the minutes of sampling: valid readings × ``sample_minutes`` (the minutes each
    reading stands for; default: the median spacing of the readings, at least 1, at most 60),
    counted once per minute of the hour. Valid with at least 45.
    """
    times, values = _series(readings)
    if values.empty:
        return pd.DataFrame(columns=COLUMNS, index=pd.DatetimeIndex([], tz="UTC", name="start"))
    if sample_minutes is None:
        spacing = np.diff(times.as_unit("ns").asi8) / 6e10
        spacing = spacing[spacing > 0]
        sample_minutes = float(np.clip(np.median(spacing), 1, 60)) if len(spacing) else 1.0
    hour = times.floor("h")
    minute = times.floor("min")
    # readings in the same minute count once; each counts sample_minutes, at most 60 in all
    distinct = pd.Series(minute, index=hour).groupby(level=0).nunique()
    minutes = np.minimum(distinct * sample_minutes, 60.0)
    out = pd.DataFrame({"value": _reduce(values, hour, how), "count": minutes})
    out["valid"] = out["count"] >= MIN_MINUTES_PER_HOUR
    out.index.name = "start"
    return out


def _hours(hourly_means: pd.DataFrame) -> pd.Series:
    """Valid hourly means on a complete UTC hour index (NaN where missing or invalid)."""
    if not isinstance(hourly_means.index, pd.DatetimeIndex) or hourly_means.index.tz is None:
        raise ValueError("hourly means need a timezone-aware DatetimeIndex")
    if "valid" in hourly_means:
        values = hourly_means["value"].where(hourly_means["valid"].fillna(False).astype(bool))
    else:
        values = hourly_means["value"].copy()
    values.index = pd.DatetimeIndex(values.index).tz_convert("UTC")
    if values.empty:
        return values
    full = pd.date_range(values.index.min(), values.index.max(), freq="h")
    return values.reindex(full)


def _summary(
    values: pd.Series, keys: Any, statistic: How, needed: Any, tz: str = "UTC"
) -> pd.DataFrame:
    """``value`` (``statistic`` of the non-missing values), ``count`` and ``valid``
    (``count ≥ needed``; ``needed`` may be a function of the periods) per group of ``keys``
    — aware times, or periods of wall-clock time in ``tz`` — labelled by its start in UTC."""
    grouped = values.groupby(keys)
    out = pd.DataFrame({"value": _reduce(values, keys, statistic), "count": grouped.count()})
    index = out.index
    if isinstance(index, pd.PeriodIndex):
        needed = needed(index) if callable(needed) else needed
        out.index = index.to_timestamp().tz_localize(tz)
    out["valid"] = out["count"] >= needed
    out.index = pd.DatetimeIndex(out.index).tz_convert("UTC")
    out.index.name = "start"
    return out


def _local_days(series: pd.Series, tz: str) -> pd.DatetimeIndex:
    """The start of each value's day in ``tz`` (aware)."""
    return day_starts(pd.DatetimeIndex(series.index), tz)


def day_starts(times: pd.DatetimeIndex, tz: str) -> pd.DatetimeIndex:
    """The start of each time's day in ``tz`` (aware, in ``tz``)."""
    local = times.tz_convert(tz)
    return local.floor("D", ambiguous=False, nonexistent="shift_forward")


def daily(
    hourly_means: pd.DataFrame, tz: str = DEFAULT_TIMEZONE, how: How = "mean"
) -> pd.DataFrame:
    """24-hour means (or ``how``) of valid hourly means per day of ``tz``; valid with at least
    20."""
    hours = _hours(hourly_means)
    return _summary(hours, _local_days(hours, tz), how, MIN_HOURS_PER_DAY)


def o3_8h(hourly_means: pd.DataFrame) -> pd.DataFrame:
    """O₃ 8-hour running means, labelled by the start of their **last** hour (the window of
    hours h−7 … h); valid with at least 6 valid hourly means."""
    hours = _hours(hourly_means)
    rolling = hours.rolling(8, min_periods=1)
    out = pd.DataFrame({"value": rolling.mean(), "count": rolling.count().astype(int)})
    out["valid"] = out["count"] >= MIN_HOURS_PER_8H
    out.index.name = "start"
    return out


def o3_daily_max_8h(hourly_means: pd.DataFrame, tz: str = DEFAULT_TIMEZONE) -> pd.DataFrame:
    """The O₃ daily maximum 8-hour mean per day of ``tz``: the highest valid 8-hour mean of the
    windows ending 08:00 … 24:00 (last hours 07:00 … 23:00); ``count`` valid windows; valid with
    at least 14."""
    windows = o3_8h(hourly_means)
    windows = windows[pd.DatetimeIndex(windows.index).tz_convert(tz).hour >= 7]  # within the day
    good = windows["value"].where(windows["valid"])
    return _summary(good, _local_days(good, tz), "max", MIN_WINDOWS_PER_DAY)


def _daily_values(daily_means: pd.DataFrame, tz: str) -> pd.Series:
    valid = daily_means["valid"].fillna(False).to_numpy(dtype=bool)
    values = daily_means["value"].where(valid)
    # local wall-clock days, without the zone: periods carry none
    values.index = pd.DatetimeIndex(values.index).tz_convert(tz).tz_localize(None)
    return values


def monthly(
    daily_means: pd.DataFrame, tz: str = DEFAULT_TIMEZONE, how: How = "mean"
) -> pd.DataFrame:
    """Monthly means (or ``how``) of valid daily means (months of ``tz``); valid with at least
    27 (25 in February)."""
    values = _daily_values(daily_means, tz)
    months = pd.DatetimeIndex(values.index).to_period("M")
    return _summary(values, months, how, _days_needed, tz)


def _days_needed(months: pd.PeriodIndex) -> Any:
    return np.where(months.month == 2, MIN_DAYS_IN_FEBRUARY, MIN_DAYS_PER_MONTH)


def annual(
    daily_means: pd.DataFrame, tz: str = DEFAULT_TIMEZONE, how: How = "mean"
) -> pd.DataFrame:
    """Annual means (or ``how``) of valid daily means (years of ``tz``); valid with at least
    324."""
    values = _daily_values(daily_means, tz)
    years = pd.DatetimeIndex(values.index).to_period("Y")
    return _summary(values, years, how, MIN_DAYS_PER_YEAR, tz)


# ----------------------------------------------------------------------- many series at once
def daily_many(
    hourly_means: pd.DataFrame,
    tz: str = DEFAULT_TIMEZONE,
    keys: Sequence[str] = ("station", "parameter"),
) -> pd.DataFrame:
    """:func:`daily` for many series in one pass: ``hourly_means`` has the ``keys`` columns,
    ``start`` (aware), ``value`` and ``valid``; the answer has ``keys``, ``start`` (the day's
    start, UTC), ``value``, ``count`` and ``valid`` (≥ 20 valid hours), one row per series and
    day with at least one hour."""
    values = hourly_means["value"].where(hourly_means["valid"].fillna(False).astype(bool))
    days = day_starts(pd.DatetimeIndex(hourly_means["start"]), tz).tz_convert("UTC")
    grouped = values.groupby(
        [hourly_means[k] for k in keys] + [pd.Series(days, index=values.index, name="start")],
        observed=True,
        sort=True,
    )
    out = pd.DataFrame({"value": grouped.mean(), "count": grouped.count()}).reset_index()
    out["valid"] = out["count"] >= MIN_HOURS_PER_DAY
    return out


def o3_daily_max_8h_many(
    hourly_means: pd.DataFrame, tz: str = DEFAULT_TIMEZONE, keys: Sequence[str] = ("station",)
) -> pd.DataFrame:
    """:func:`o3_daily_max_8h` for many series in one pass. Each series must be a complete
    hourly grid (a row per hour, ``value`` NaN where missing), as :func:`daily_many`'s input
    but O₃ only; same answer layout."""
    frame = hourly_means.sort_values([*keys, "start"])
    values = frame["value"].where(frame["valid"].fillna(False).astype(bool))
    by = [frame[k] for k in keys]
    rolling = values.groupby(by, observed=True, sort=False).rolling(8, min_periods=1)
    means = rolling.mean().reset_index(level=list(range(len(keys))), drop=True)
    counts = rolling.count().reset_index(level=list(range(len(keys))), drop=True)
    good = means.where(counts >= MIN_HOURS_PER_8H)
    starts = pd.DatetimeIndex(frame["start"])
    within = starts.tz_convert(tz).hour >= 7  # windows ending 08:00 … 24:00
    days = day_starts(starts, tz).tz_convert("UTC")
    day_key = pd.Series(days, index=frame.index, name="start")
    grouped = good[within].groupby(
        [k[within] for k in by] + [day_key[within]], observed=True, sort=True
    )
    out = pd.DataFrame({"value": grouped.max(), "count": grouped.count()}).reset_index()
    out["valid"] = out["count"] >= MIN_WINDOWS_PER_DAY
    return out
