"""Air quality index: HJ 633-2026 (in force 2026-03-01, the default) and HJ 633-2012.

Pollutant names (the keys of a report): ``so2_24h, so2_1h, no2_24h, no2_1h, co_24h, co_1h,
o3_8h, o3_1h, pm10_24h, pm25_24h, pm10_1h, pm25_1h``; concentrations in µg/m³, CO in mg/m³.

HJ 633-2026 (tables, worked values and sources: ``docs/standards/air.md``):

- §4.2.2/§4.2.3: concentrations are first rounded per GB/T 8170 (round half to even) on their
  decimal representation, to integers, CO to one decimal;
- §4.2.4 formula (1) and Table 3: IAQI by linear interpolation between breakpoints; 1-hour
  PM10/PM2.5 are scored on the 24-hour breakpoints; Table 3 note b: SO₂ 1-hour above 800 counts
  as IAQI 200; note c: O₃ 8-hour above 800 counts as 300;
- §4.2.6: IAQI and AQI are rounded **up** to integers — computed exactly here (a value on a
  breakpoint lands on it: CO-24h 2.2 gives 55);
- formula (2): AQI = max IAQI; §4.3.1: primary pollutant(s) when AQI > 50, all of them on a tie;
- §4.2.2: daily report = 24-hour SO₂, NO₂, CO, PM10, PM2.5 and daily maximum 8-hour O₃;
  §4.2.3: hourly (real-time) report = the six 1-hour means;
- §5.3.1: with a pollutant missing or invalid, the AQI of the others is published when it is
  above 100; otherwise the AQI is NA (``None``) and only the single pollutants are reported.

HJ 633-2012: the same table except IAQI 100 at PM10 150 and PM2.5 75;
no input rounding; Table 1 note 2: SO₂ 1-hour above 800 is not scored and the SO₂ IAQI is the
24-hour one's; note 3: O₃ 8-hour above 800 is not scored and the O₃ 1-hour IAQI stands for it;
§5.1.2 daily report adds the daily maximum 1-hour O₃ (7 indicators); §5.1.3 real-time report
scores SO₂, NO₂, O₃, CO 1-hour, O₃ 8-hour running and PM10/PM2.5 24-hour running means
(1-hour PM is shown, not scored). HJ 633-2012 has no missing-pollutant rule: the AQI is the
highest IAQI of the indicators present.

Above the highest breakpoint neither version gives a formula: EcoSense reports IAQI 500
(the top of the scale). A negative or non-finite concentration is not a concentration:
:func:`iaqi` raises ``ValueError``; the vectorised functions give NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

Standard = Literal["HJ633-2026", "HJ633-2012"]
Report = Literal["hourly", "daily"]
DEFAULT_STANDARD: Final[Standard] = "HJ633-2026"
STANDARDS: Final = ("HJ633-2026", "HJ633-2012")

POLLUTANTS: Final = (
    "so2_24h",
    "so2_1h",
    "no2_24h",
    "no2_1h",
    "co_24h",
    "co_1h",
    "o3_8h",
    "o3_1h",
    "pm10_24h",
    "pm25_24h",
    "pm10_1h",
    "pm25_1h",
)

#: IAQI of each row of Table 3.
IAQI_STEPS: Final = (0, 50, 100, 150, 200, 300, 400, 500)

#: HJ 633-2026 Table 3 (µg/m³; CO mg/m³); ``None``: no breakpoint (notes b and c).
_TABLE_2026: Final[dict[str, tuple[float | None, ...]]] = {
    "so2_24h": (0, 50, 150, 475, 800, 1600, 2100, 2620),
    "so2_1h": (0, 150, 500, 650, 800, None, None, None),
    "no2_24h": (0, 40, 80, 180, 280, 565, 750, 940),
    "no2_1h": (0, 100, 200, 700, 1200, 2340, 3090, 3840),
    "co_24h": (0, 2, 4, 14, 24, 36, 48, 60),
    "co_1h": (0, 5, 10, 35, 60, 90, 120, 150),
    "o3_8h": (0, 100, 160, 215, 265, 800, None, None),
    "o3_1h": (0, 160, 200, 300, 400, 800, 1000, 1200),
    "pm10_24h": (0, 50, 120, 250, 350, 420, 500, 600),
    "pm25_24h": (0, 35, 60, 115, 150, 250, 350, 500),
}
#: HJ 633-2012 Table 1: as 2026 except the IAQI-100 row of PM10 and PM2.5.
_TABLE_2012: Final[dict[str, tuple[float | None, ...]]] = {
    **_TABLE_2026,
    "pm10_24h": (0, 50, 150, 250, 350, 420, 500, 600),
    "pm25_24h": (0, 35, 75, 115, 150, 250, 350, 500),
}
TABLES: Final[dict[str, dict[str, tuple[float | None, ...]]]] = {
    "HJ633-2026": _TABLE_2026,
    "HJ633-2012": _TABLE_2012,
}

#: Which column of the table scores each pollutant; ``None``: not scored under that version.
_COLUMN: Final[dict[str, dict[str, str | None]]] = {
    "HJ633-2026": {
        **{p: p for p in _TABLE_2026},
        "pm10_1h": "pm10_24h",  # §4.2.4: 1-hour PM on the 24-hour breakpoints
        "pm25_1h": "pm25_24h",
    },
    "HJ633-2012": {**{p: p for p in _TABLE_2012}, "pm10_1h": None, "pm25_1h": None},
}

#: The indicators of each report (the AQI is the maximum of their IAQI).
REPORTS: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "HJ633-2026": {
        "daily": ("so2_24h", "no2_24h", "co_24h", "pm10_24h", "pm25_24h", "o3_8h"),
        "hourly": ("so2_1h", "no2_1h", "co_1h", "o3_1h", "pm10_1h", "pm25_1h"),
    },
    "HJ633-2012": {
        "daily": ("so2_24h", "no2_24h", "co_24h", "pm10_24h", "pm25_24h", "o3_8h", "o3_1h"),
        "hourly": ("so2_1h", "no2_1h", "co_1h", "o3_1h", "o3_8h", "pm10_24h", "pm25_24h"),
    },
}
#: Keys a report accepts besides its indicators: shown (2012 1-hour PM) or substitutes
#: (2012 SO₂ 24-hour for a 1-hour value above 800).
_ALSO_ACCEPTED: Final[dict[str, dict[str, tuple[str, ...]]]] = {
    "HJ633-2026": {"daily": (), "hourly": ()},
    "HJ633-2012": {"daily": (), "hourly": ("pm10_1h", "pm25_1h", "so2_24h")},
}

#: Table 1 (both versions): level → (lowest AQI, Chinese and English category, colour).
CATEGORIES: Final = {
    1: (0, "优", "Excellent", "#00E400"),
    2: (51, "良", "Good", "#FFFF00"),
    3: (101, "轻度污染", "Lightly polluted", "#FF7E00"),
    4: (151, "中度污染", "Moderately polluted", "#FF0000"),
    5: (201, "重度污染", "Heavily polluted", "#99004C"),
    6: (301, "严重污染", "Severely polluted", "#7E0023"),
}
_LEVEL_FLOORS: Final = np.array([CATEGORIES[k][0] for k in range(2, 7)])


def _check_standard(standard: str) -> None:
    if standard not in TABLES:
        raise ValueError(f"unknown standard {standard!r}: use one of {', '.join(STANDARDS)}")


def _check_pollutant(pollutant: str) -> None:
    if pollutant not in POLLUTANTS:
        raise ValueError(f"unknown pollutant {pollutant!r}: use one of {', '.join(POLLUTANTS)}")


def round_gbt8170(value: float, decimals: int) -> Decimal:
    """``value`` rounded half to even on its decimal representation (GB/T 8170 修约):
    ``12.35`` → ``12.4`` at one decimal, although the binary float is 12.3499….
    """
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN)


def published(pollutant: str, concentration: float | None) -> float | None:
    """A concentration as published (HJ 633-2026 §4.2.2/§4.2.3, rounded per GB/T 8170 by
    :func:`round_gbt8170`): a whole number of µg/m³, CO (mg/m³) to one decimal —
    ``published("co_24h", 0.7973)`` is 0.8, ``published("no2_24h", 34.9661)`` is 35.
    ``None`` (or NaN) stays ``None``; ``pollutant`` is a report key such as ``pm25_24h``."""
    if concentration is None or not math.isfinite(concentration):
        return None
    return float(round_gbt8170(concentration, _decimals(pollutant)))


def _decimals(pollutant: str) -> int:
    return 1 if pollutant.startswith("co_") else 0


def _exact_iaqi(pollutant: str, c: Fraction, standard: str) -> int | None:
    """IAQI of an exact, non-negative concentration (after any input rounding)."""
    column = _COLUMN[standard][pollutant]
    if column is None:
        return None
    steps = TABLES[standard][column]
    if standard == "HJ633-2026":
        if column == "so2_1h" and c > 800:
            return 200  # Table 3 note b
        if column == "o3_8h" and c > 800:
            return 300  # Table 3 note c
    elif column in ("so2_1h", "o3_8h") and c > 800:
        return None  # HJ 633-2012 Table 1 notes 2 and 3: not scored
    if c == 0:
        return 0
    for k in range(1, len(steps)):
        hi = steps[k]
        if hi is None:
            break
        if c <= hi:
            lo = steps[k - 1]
            assert lo is not None
            exact = IAQI_STEPS[k - 1] + Fraction(IAQI_STEPS[k] - IAQI_STEPS[k - 1]) * (
                c - Fraction(lo)
            ) / (Fraction(hi) - Fraction(lo))
            return math.ceil(exact)
    return 500  # above the top breakpoint: the top of the scale (documented choice)


def iaqi(pollutant: str, concentration: float, standard: Standard = DEFAULT_STANDARD) -> int | None:
    """The individual air quality index of one concentration (µg/m³; CO mg/m³).

    ``None`` where the standard does not score it (HJ 633-2012: SO₂ 1-hour or O₃ 8-hour above
    800, 1-hour PM).

    Raises
    ------
    ValueError
        for an unknown pollutant or standard, or a negative or non-finite concentration.
    """
    _check_standard(standard)
    _check_pollutant(pollutant)
    if isinstance(concentration, bool) or not math.isfinite(concentration):
        raise ValueError(f"{pollutant}: concentration {concentration!r} is not a finite number")
    if concentration < 0:
        raise ValueError(f"{pollutant}: concentration {concentration} is negative")
    if standard == "HJ633-2026":
        c = Fraction(round_gbt8170(concentration, _decimals(pollutant)))
    else:
        c = Fraction(Decimal(str(concentration)))
    return _exact_iaqi(pollutant, c, standard)


@dataclass(frozen=True)
class AqiResult:
    """One report's air quality index.

    ``aqi`` is ``None`` (NA) where the standard says so; ``level`` 1–6; ``category`` as
    ``{"zh", "en"}``; ``colour`` as ``#RRGGBB``; ``primary`` the input keys with the highest IAQI
    when AQI > 50; ``iaqi`` per input key; ``missing`` the report's indicators not given.
    """

    aqi: int | None
    level: int | None
    category: dict[str, str] | None
    colour: str | None
    primary: tuple[str, ...]
    iaqi: dict[str, int | None] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    standard: str = DEFAULT_STANDARD
    report: str = "hourly"


def _indicators(standard: str, report: str, keys: Iterable[str]) -> tuple[str, ...]:
    """The indicators of ``report`` under ``standard``, after checking that every key is one
    of them (or a key the report also accepts)."""
    _check_standard(standard)
    if report not in ("hourly", "daily"):
        raise ValueError(f"unknown report {report!r}: use hourly or daily")
    indicators = REPORTS[standard][report]
    accepted = set(indicators) | set(_ALSO_ACCEPTED[standard][report])
    foreign = sorted(set(keys) - accepted)
    if foreign:
        raise ValueError(
            f"{', '.join(foreign)}: not an indicator of the {report} report under {standard}"
            f" ({', '.join(indicators)})"
        )
    return indicators


def level_of(aqi_value: int) -> int:
    """Table 1 level (1–6) of an AQI (0 counts as level 1)."""
    return 1 + sum(aqi_value >= floor for floor in (51, 101, 151, 201, 301))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def aqi(
    concentrations: Mapping[str, float | None],
    report: Report = "hourly",
    standard: Standard = DEFAULT_STANDARD,
) -> AqiResult:
    """The AQI of an hourly (real-time) or daily report.

    ``concentrations`` maps the report's pollutant names to values; a name missing, ``None``
    or NaN is a missing indicator (§5.3.1 under HJ 633-2026).

    Raises
    ------
    ValueError
        for a key that is not an indicator of that report under that standard, or an invalid
        concentration.
    """
    indicators = _indicators(standard, report, concentrations)
    scores: dict[str, int | None] = {}
    for name, value in concentrations.items():
        scores[name] = None if _missing(value) else iaqi(name, float(value), standard)  # type: ignore[arg-type]
    if standard == "HJ633-2012" and report == "hourly":
        so2_1h = concentrations.get("so2_1h")
        if not _missing(so2_1h) and scores.get("so2_1h") is None:
            # Table 1 note 2: SO₂ 1-hour above 800 → report the 24-hour IAQI
            scores["so2_1h"] = scores.get("so2_24h")
    scored = {k: v for k, v in scores.items() if k in indicators and v is not None}
    # 2012 note 3: O₃ 8-hour above 800 is not scored; the O₃ 1-hour IAQI (an indicator of both
    # 2012 reports) stands for it — it already counts in the maximum.
    missing = tuple(k for k in indicators if _missing(concentrations.get(k)))
    if not scored:
        return AqiResult(None, None, None, None, (), scores, missing, standard, report)
    value = max(scored.values())
    if missing and standard == "HJ633-2026" and value <= 100:
        return AqiResult(None, None, None, None, (), scores, missing, standard, report)  # §5.3.1
    level = level_of(value)
    _, zh, en, colour = CATEGORIES[level]
    primary = tuple(k for k, v in scored.items() if v == value) if value > 50 else ()
    return AqiResult(
        value, level, {"zh": zh, "en": en}, colour, primary, scores, missing, standard, report
    )


# ----------------------------------------------------------------------------- vectorised
FloatArray = npt.NDArray[np.float64]


def _round_half_even_decimal(values: FloatArray, decimals: int) -> FloatArray:
    """GB/T 8170 rounding of an array, equal to :func:`round_gbt8170` element by element.

    At 0 decimals ``np.rint`` is exact (a binary float is a tie only when its decimal
    representation is one). At 1 decimal, scaling by 10 may move a value across a tie: those
    near a tie are rounded through their decimal representation.
    """
    if decimals == 0:
        return np.rint(values)
    scaled = values * 10.0**decimals
    out = np.rint(scaled) / 10.0**decimals
    frac = scaled - np.floor(scaled)
    near_tie = np.isfinite(values) & (np.abs(frac - 0.5) < 1e-6)
    for i in np.flatnonzero(near_tie):
        out[i] = float(round_gbt8170(float(values[i]), decimals))
    return out


def iaqi_array(
    pollutant: str, concentrations: npt.ArrayLike, standard: Standard = DEFAULT_STANDARD
) -> FloatArray:
    """:func:`iaqi` over an array: float IAQI values (integers), NaN where not scored or where
    a concentration is missing, negative or non-finite. Exact, as the scalar function."""
    _check_standard(standard)
    _check_pollutant(pollutant)
    c = np.asarray(concentrations, dtype=np.float64)
    shape = c.shape
    c = c.ravel()
    out = np.full(c.shape, np.nan)
    column = _COLUMN[standard][pollutant]
    if column is None:
        return out.reshape(shape)
    valid = np.isfinite(c) & (c >= 0)
    if standard == "HJ633-2026":
        c = np.where(
            valid, _round_half_even_decimal(np.where(valid, c, 0.0), _decimals(pollutant)), np.nan
        )
    steps = [s for s in TABLES[standard][column] if s is not None]
    bps = np.array(steps, dtype=np.float64)
    levels = np.array(IAQI_STEPS[: len(steps)], dtype=np.int64)
    k = np.clip(np.searchsorted(bps, np.where(valid, c, 0.0), side="left"), 1, len(bps) - 1)
    if standard == "HJ633-2026":
        # inputs are whole numbers (CO tenths): formula (1) in integers, ceiling exactly
        scale = 10 ** _decimals(pollutant)
        ci = np.rint(np.where(valid, c, 0.0) * scale).astype(np.int64)
        bpi = np.rint(bps * scale).astype(np.int64)
        num = (levels[k] - levels[k - 1]) * (ci - bpi[k - 1])
        den = bpi[k] - bpi[k - 1]
        result = (levels[k - 1] - (-num // den)).astype(np.float64)
    else:
        lo, hi = bps[k - 1], bps[k]
        raw = levels[k - 1] + (levels[k] - levels[k - 1]) * (c - lo) / (hi - lo)
        result = np.ceil(raw)
        # ceil of a float: a value that should land exactly on an integer may sit a hair
        # above it (ceil one too high); recompute those exactly
        near = valid & (np.abs(raw - np.rint(raw)) < 1e-6) & (c <= bps[-1])
        for i in np.flatnonzero(near):
            exact = _exact_iaqi(pollutant, Fraction(Decimal(repr(float(c[i])))), standard)
            result[i] = np.nan if exact is None else exact
    result = np.where(c == 0, 0.0, result)
    over = c > bps[-1]
    if standard == "HJ633-2026" and column == "so2_1h":
        result = np.where(over, 200.0, result)
    elif standard == "HJ633-2026" and column == "o3_8h":
        result = np.where(over, 300.0, result)
    elif column in ("so2_1h", "o3_8h"):
        result = np.where(over, np.nan, result)  # 2012 notes 2 and 3: not scored
    else:
        result = np.where(over, 500.0, result)
    out = np.where(valid, result, np.nan)
    return out.reshape(shape)


def level_array(aqi_values: npt.ArrayLike) -> FloatArray:
    """Table 1 levels (1–6) of an array of AQI values; NaN stays NaN."""
    a = np.asarray(aqi_values, dtype=np.float64)
    levels = 1.0 + np.searchsorted(_LEVEL_FLOORS, a, side="right")
    return np.where(np.isnan(a), np.nan, levels)


def _nullable_int(values: FloatArray) -> Any:
    """Whole-number floats as a pandas ``Int64`` array, NaN as ``<NA>``."""
    return pd.array(values, dtype="Float64").astype("Int64")


def aqi_frame(
    frame: pd.DataFrame, report: Report = "hourly", standard: Standard = DEFAULT_STANDARD
) -> pd.DataFrame:
    """:func:`aqi` for every row of a DataFrame whose columns are pollutant names.

    Returns a DataFrame with the same index: ``iaqi_<pollutant>`` per indicator column given,
    ``aqi`` and ``level`` (nullable integers; NA where the standard says NA) and ``primary``
    (comma-separated, empty when AQI ≤ 50 or NA). The same rules as :func:`aqi`.
    """
    indicators = _indicators(standard, report, map(str, frame.columns))
    n = len(frame)
    scores: dict[str, FloatArray] = {
        str(col): iaqi_array(str(col), frame[col].to_numpy(dtype=np.float64), standard)
        for col in frame.columns
    }
    if standard == "HJ633-2012" and report == "hourly" and "so2_1h" in scores:
        given = np.isfinite(frame["so2_1h"].to_numpy(dtype=np.float64))
        substitute = scores.get("so2_24h", np.full(n, np.nan))
        scores["so2_1h"] = np.where(
            given & np.isnan(scores["so2_1h"]), substitute, scores["so2_1h"]
        )
    present = [p for p in indicators if p in scores]
    if present:
        matrix = np.column_stack([scores[p] for p in present])
        any_scored = ~np.all(np.isnan(matrix), axis=1)
        best = np.where(
            any_scored, np.nanmax(np.where(np.isnan(matrix), -1.0, matrix), axis=1), np.nan
        )
    else:
        matrix = np.empty((n, 0))
        best = np.full(n, np.nan)
    missing = np.zeros(n, dtype=bool)
    for p in indicators:
        if p not in frame.columns:
            missing[:] = True
        else:
            missing |= ~np.isfinite(frame[p].to_numpy(dtype=np.float64))
    if standard == "HJ633-2026":
        best = np.where(missing & (best <= 100), np.nan, best)  # §5.3.1
    out = pd.DataFrame(index=frame.index)
    for p in scores:
        out[f"iaqi_{p}"] = _nullable_int(scores[p])
    out["aqi"] = _nullable_int(best)
    out["level"] = _nullable_int(level_array(best))
    primary = np.full(n, "", dtype=object)
    if present:
        ties = (matrix == best[:, None]) & (best[:, None] > 50)
        # each row's set of tied pollutants as a bit code, named through a table of all sets
        code = (ties.astype(np.int64) << np.arange(len(present))).sum(axis=1)
        names = np.array(
            [
                ",".join(p for j, p in enumerate(present) if c >> j & 1)
                for c in range(2 ** len(present))
            ],
            dtype=object,
        )
        primary = names[code]
    out["primary"] = primary
    return out
