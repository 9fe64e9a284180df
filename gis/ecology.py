"""Ecology from imagery: fractional vegetation cover from NDVI, and the trend of a series of
values over time — Mann-Kendall test and Sen's slope per year (pure; no I/O).

Methods, constants and worked values: ``docs/standards/ecology.md``.

- **FVC** by the dimidiate pixel model (Gutman & Ignatov 1998): a pixel is a mix of bare soil
  and full vegetation, ``FVC = (NDVI − NDVIsoil) / (NDVIveg − NDVIsoil)`` clipped to [0, 1]
  (:func:`fvc`), a fraction (0–1, dimensionless). The end-members are constants
  (:data:`DEFAULT_NDVI_SOIL`, :data:`DEFAULT_NDVI_VEG`, EcoSense's defaults) or taken from the
  image, as the 5 % and 95 % quantiles of its valid NDVI (:func:`end_members`).
- **Trend** (:func:`trend`, :func:`trends`): the Mann-Kendall test (Mann 1945, Kendall 1975)
  through ``pymannkendall.original_test`` for the direction and its p-value, and Sen's (1968)
  slope from the actual times through ``scipy.stats.theilslopes``, in value units per year of
  365.25 days. pymannkendall's own slope counts steps, assuming equal spacing: with the gaps
  of real image series (a missing year, cloudy months) it is not a rate per year, so it is not
  used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Final, Literal, overload

import numpy as np
import numpy.typing as npt
import pandas as pd
import pymannkendall  # type: ignore[import-untyped]
import rioxarray  # noqa: F401  (registers the ``.rio`` accessor: the CRS of a DataArray)
import xarray as xr
from scipy.stats import theilslopes  # type: ignore[import-untyped]

Direction = Literal["increasing", "decreasing", "no trend"]

#: NDVI of bare soil, the end-member of FVC 0 (EcoSense's default; ecology.md says why).
DEFAULT_NDVI_SOIL: Final = 0.05
#: NDVI of full (dense, green) vegetation, the end-member of FVC 1 (EcoSense's default).
DEFAULT_NDVI_VEG: Final = 0.95
#: The quantiles of an image's valid NDVI taken as end-members by :func:`end_members`.
DEFAULT_QUANTILES: Final = (0.05, 0.95)
#: A year of the slope, days (the Julian year).
DAYS_PER_YEAR: Final = 365.25
_SECONDS_PER_YEAR: Final = DAYS_PER_YEAR * 86_400
#: The fewest valid values :func:`trend` accepts.
MIN_VALUES: Final = 4
#: Significance level of the Mann-Kendall test (two-sided).
ALPHA: Final = 0.05
#: The ``trend`` of a :func:`trends` row with fewer than :data:`MIN_VALUES` values.
INSUFFICIENT: Final = "insufficient data"
#: The columns of :func:`trends`.
TREND_COLUMNS: Final = (
    "feature",
    "n",
    "trend",
    "p",
    "tau",
    "z",
    "slope_per_year",
    "intercept",
    "significant",
    "start",
    "end",
)


# --- fractional vegetation cover -------------------------------------------------------------
def _check_end_members(ndvi_soil: float, ndvi_veg: float) -> tuple[float, float]:
    soil, veg = float(ndvi_soil), float(ndvi_veg)
    for name, value in (("ndvi_soil", soil), ("ndvi_veg", veg)):
        if not (math.isfinite(value) and -1.0 <= value <= 1.0):
            raise ValueError(f"{name} must be an NDVI, finite in [-1, 1], not {value!r}")
    if not veg > soil:
        raise ValueError(f"ndvi_veg ({veg}) must be greater than ndvi_soil ({soil})")
    return soil, veg


@overload
def fvc(ndvi: xr.DataArray, ndvi_soil: float = ..., ndvi_veg: float = ...) -> xr.DataArray: ...
@overload
def fvc(
    ndvi: npt.NDArray[Any], ndvi_soil: float = ..., ndvi_veg: float = ...
) -> npt.NDArray[np.float64]: ...
@overload
def fvc(ndvi: float, ndvi_soil: float = ..., ndvi_veg: float = ...) -> float: ...
def fvc(
    ndvi: xr.DataArray | npt.NDArray[Any] | float,
    ndvi_soil: float = DEFAULT_NDVI_SOIL,
    ndvi_veg: float = DEFAULT_NDVI_VEG,
) -> xr.DataArray | npt.NDArray[np.float64] | float:
    """Fractional vegetation cover (0–1, dimensionless) by the dimidiate pixel model:
    ``(NDVI − ndvi_soil) / (ndvi_veg − ndvi_soil)`` clipped to [0, 1], so NDVI at or below
    ``ndvi_soil`` is 0 and at or above ``ndvi_veg`` is 1; NaN stays NaN.

    ``ndvi`` is a number (→ a float), a numpy array (→ a float64 array) or a DataArray (→ a
    DataArray named ``fvc`` with the same coordinates and CRS; lazy stays lazy; NDVI's own
    attributes are not carried over).

    Raises
    ------
    ValueError
        when an end-member is not finite in [-1, 1], or ``ndvi_veg`` is not above
        ``ndvi_soil``.
    """
    soil, veg = _check_end_members(ndvi_soil, ndvi_veg)
    if isinstance(ndvi, xr.DataArray):
        out: xr.DataArray = ((ndvi.astype("float64") - soil) / (veg - soil)).clip(0.0, 1.0)
        out = out.rename("fvc")
        out.attrs = {}  # NDVI's long_name, units, nodata … do not describe FVC
        if ndvi.rio.crs is not None:
            out = out.rio.write_crs(ndvi.rio.crs)
        return out
    values = np.clip((np.asarray(ndvi, dtype=np.float64) - soil) / (veg - soil), 0.0, 1.0)
    if isinstance(ndvi, np.ndarray):
        return values
    return float(values)


def end_members(
    ndvi: xr.DataArray | npt.ArrayLike,
    low: float = DEFAULT_QUANTILES[0],
    high: float = DEFAULT_QUANTILES[1],
) -> tuple[float, float]:
    """``(ndvi_soil, ndvi_veg)`` from the image itself: the ``low`` and ``high`` quantiles
    (numpy's default, linear interpolation) of its valid (finite) NDVI — the 5 % and 95 %
    cumulative frequencies by default. Mask water, cloud, snow and nodata first: they are
    not soil, and pull ``ndvi_soil`` down. A lazy DataArray is computed.

    Raises
    ------
    ValueError
        for quantiles not ``0 ≤ low < high ≤ 1``, an image without valid pixels, or one whose
        two quantiles are equal (or not NDVI in [-1, 1]).
    """
    if not 0.0 <= low < high <= 1.0:
        raise ValueError(f"quantiles must be 0 <= low < high <= 1, not {low!r} and {high!r}")
    values = np.asarray(ndvi, dtype=np.float64).ravel()
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise ValueError("no valid NDVI pixels to take the end-members from")
    soil, veg = (float(q) for q in np.quantile(values, [low, high]))
    if soil == veg:
        raise ValueError(
            f"the {low:g} and {high:g} quantiles of the NDVI are equal ({soil}): "
            "no contrast between soil and vegetation"
        )
    return _check_end_members(soil, veg)


# --- trend ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Trend:
    """The trend of a series.

    ``n`` valid values from ``start`` to ``end`` (UTC); Mann-Kendall's ``trend`` (a direction
    when ``significant``, else ``no trend``), its two-sided ``p``-value, Kendall's ``tau``
    (``S / (n(n−1)/2)``) and ``z`` (with continuity correction); Sen's ``slope_per_year``
    (value units per year of 365.25 days) and ``intercept``, the Sen line's value at
    ``start`` (value units). ``significant``: ``p < alpha``.
    """

    n: int
    trend: Direction
    p: float
    tau: float
    z: float
    slope_per_year: float
    intercept: float
    significant: bool
    start: pd.Timestamp
    end: pd.Timestamp


def _utc(times: Iterable[Any]) -> pd.DatetimeIndex:
    """Aware times as a UTC index.

    Raises
    ------
    ValueError
        for a naive or missing time.
    """
    naive = "times must be timezone-aware (naive times are ambiguous)"
    if isinstance(times, pd.DatetimeIndex | pd.Series) and isinstance(
        times.dtype, pd.DatetimeTZDtype
    ):
        index = pd.DatetimeIndex(times)
    elif isinstance(times, pd.DatetimeIndex | pd.Series | np.ndarray) and times.dtype.kind == "M":
        raise ValueError(naive)
    else:
        stamps = [pd.Timestamp(t) for t in times]
        if any(pd.isna(s) for s in stamps):
            raise ValueError("a time is missing")
        if any(s.tzinfo is None for s in stamps):
            raise ValueError(naive)
        index = pd.DatetimeIndex([s.tz_convert("UTC") for s in stamps])
    if index.hasnans:
        raise ValueError("a time is missing")
    return index.tz_convert("UTC")


def _fit(times: pd.DatetimeIndex, values: npt.NDArray[np.float64], alpha: float) -> Trend:
    """The trend of the valid values (at least :data:`MIN_VALUES`) at UTC ``times``."""
    order = np.argsort(times.asi8, kind="stable")
    t, v = times[order], values[order]
    if t.has_duplicates:
        raise ValueError(f"times repeat ({t[t.duplicated()][0]}): one value per time")
    years = (t - t[0]).total_seconds().to_numpy(dtype=np.float64) / _SECONDS_PER_YEAR
    mk = pymannkendall.original_test(v, alpha=alpha)
    sen = theilslopes(v, years)
    p, z = float(mk.p), float(mk.z)
    significant = bool(p < alpha)
    direction: Direction = "no trend"
    if significant and z > 0:
        direction = "increasing"
    elif significant and z < 0:
        direction = "decreasing"
    return Trend(
        n=len(v),
        trend=direction,
        p=p,
        tau=float(mk.Tau),
        z=z,
        slope_per_year=float(sen.slope),
        intercept=float(sen.intercept),
        significant=significant,
        start=t[0],
        end=t[-1],
    )


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha!r}")


def _values(values: npt.ArrayLike, length: int) -> npt.NDArray[np.float64]:
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.shape[0] != length:
        raise ValueError(f"times and values differ in length ({length} and {v.shape})")
    if np.isinf(v).any():
        raise ValueError("values must be finite (or NaN for missing)")
    return v


def trend(
    times: pd.DatetimeIndex | Iterable[datetime | pd.Timestamp],
    values: npt.ArrayLike,
    alpha: float = ALPHA,
) -> Trend:
    """The Mann-Kendall trend and Sen's slope per year of ``values`` at ``times``.

    ``times`` are timezone-aware (a list of datetimes, a DatetimeIndex with a time zone), in
    any order and at any spacing, each at most once; missing (NaN) values are left out. Sen's
    slope is the median over all pairs of ``(vⱼ − vᵢ) / (tⱼ − tᵢ)``, ``t`` in years of 365.25
    days, so it is a rate per year whatever the spacing; the test itself uses only the order
    of the values in time.

    Raises
    ------
    ValueError
        for naive or missing times, a repeated time, times and values of different lengths,
        infinite values, ``alpha`` outside (0, 1), or fewer than 4 valid values.
    """
    _check_alpha(alpha)
    index = _utc(times)
    v = _values(values, len(index))
    keep = ~np.isnan(v)
    if int(keep.sum()) < MIN_VALUES:
        raise ValueError(f"a trend needs at least {MIN_VALUES} values, got {int(keep.sum())}")
    return _fit(index[keep], v[keep], alpha)


def trends(frame: pd.DataFrame, alpha: float = ALPHA) -> pd.DataFrame:
    """:func:`trend` of each feature of a long table (columns ``feature``, ``time``,
    ``value``; times aware): one row per feature, in order of first appearance, with the
    columns :data:`TREND_COLUMNS` (``start`` and ``end`` in UTC).

    A feature with fewer than 4 valid values is not an error: its row has its ``n``,
    ``trend`` ``"insufficient data"``, ``significant`` False and NaN (NaT) elsewhere.

    Raises
    ------
    ValueError
        for a missing column or feature label, naive times, a time repeated within a feature,
        infinite values, or ``alpha`` outside (0, 1).
    """
    _check_alpha(alpha)
    missing = [c for c in ("feature", "time", "value") if c not in frame.columns]
    if missing:
        raise ValueError(f"trends needs the columns feature, time, value (missing {missing})")
    if frame["feature"].isna().any():
        raise ValueError("a row has no feature")
    index = _utc(frame["time"])
    values = _values(frame["value"].to_numpy(dtype=np.float64, na_value=np.nan), len(index))
    rows: list[dict[str, Any]] = []
    groups = frame.groupby("feature", sort=False).indices if len(frame) else {}
    for feature, positions in groups.items():
        v = values[positions]
        keep = ~np.isnan(v)
        n = int(keep.sum())
        if n < MIN_VALUES:
            rows.append({"feature": feature, "n": n, "trend": INSUFFICIENT, "significant": False})
            continue
        try:
            fit = _fit(index[positions][keep], v[keep], alpha)
        except ValueError as exc:
            raise ValueError(f"feature {feature!r}: {exc}") from None
        rows.append({"feature": feature, **asdict(fit)})
    out = pd.DataFrame(rows, columns=list(TREND_COLUMNS))
    numeric = ["p", "tau", "z", "slope_per_year", "intercept"]
    out[numeric] = out[numeric].astype("float64")
    out["n"] = out["n"].astype("int64")
    out["significant"] = out["significant"].astype(bool)
    for column in ("start", "end"):
        out[column] = pd.to_datetime(out[column], utc=True)
    return out
