"""Environmental noise: GB 3096-2008 limits by acoustic functional zone, energy averages of
A-weighted levels, and the day/night assessment (pure; no I/O).

Source: GB 3096-2008 Table 1; the table and its use: ``docs/standards/noise.md``.

- Levels are A-weighted sound pressure levels in dB(A). A level is a logarithm: levels are
  averaged by energy, ``10·log10(mean(10^(L/10)))`` (:func:`leq`), never arithmetically.
- Zones ``0``, ``1``, ``2``, ``3``, ``4a``, ``4b``; periods ``day`` (昼间, 06:00–22:00 by
  default) and ``night`` (夜间, 22:00–06:00), whose hours the local government may set
  (:class:`Hours`).
- Exceedance is the difference ``LAeq − limit`` in dB (not a ratio); at the limit is
  compliant.
- Night-time sudden noise: its maximum level may exceed the zone's night limit by at most
  15 dB(A) (:data:`NIGHT_MAX_EXCESS`, :func:`assess_night_max`).
- Ldn: the day-night level of a day, its night hours weighted with a 10 dB penalty
  (:func:`ldn`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

Period = Literal["day", "night"]
ZONES: Final = ("0", "1", "2", "3", "4a", "4b")
PERIODS: Final[tuple[Period, ...]] = ("day", "night")

#: GB 3096-2008 Table 1: zone → (day, night) limits, LAeq in dB(A).
LIMITS: Final[dict[str, tuple[float, float]]] = {
    "0": (50, 40),
    "1": (55, 45),
    "2": (60, 50),
    "3": (65, 55),
    "4a": (70, 55),
    "4b": (70, 60),
}
#: GB 3096-2008 §5.3: a night-time sudden noise's maximum level may exceed the zone's night
#: limit by at most this much, dB(A).
NIGHT_MAX_EXCESS: Final = 15.0
#: Ldn's penalty on night-time levels, dB.
NIGHT_PENALTY: Final = 10.0
#: A level within this of a limit (dB) meets it: floating-point noise of energy averaging
#: (``leq([55, 55])`` is 55.00000000000001), far below the 0.1 dB levels are reported to.
TOLERANCE_DB: Final = 1e-9


def normalise_zone(value: object) -> str:
    """A functional zone as the table names it: ``"4A"``, ``" 4a "`` → ``"4a"``; ``2`` →
    ``"2"``.

    Raises
    ------
    ValueError
        for a zone GB 3096-2008 does not have (``4`` alone is split into 4a and 4b).
    """
    text = str(value).strip().lower()
    if text.endswith(".0"):
        text = text[:-2]
    if text not in LIMITS:
        raise ValueError(
            f"noise zone must be one of {', '.join(ZONES)} (GB 3096-2008), not {value!r}"
        )
    return text


def limit(zone: object, period: str) -> float:
    """The zone's LAeq limit for ``period`` (``day`` or ``night``), dB(A).

    Raises
    ------
    ValueError
        for an unknown zone or period.
    """
    if period not in PERIODS:
        raise ValueError(f"period must be 'day' or 'night', not {period!r}")
    day, night = LIMITS[normalise_zone(zone)]
    return day if period == "day" else night


def leq(levels: npt.ArrayLike, weights: npt.ArrayLike | None = None) -> float:
    """The energy average of levels (dB): ``10·log10(Σ wᵢ·10^(Lᵢ/10) / Σ wᵢ)``; ``weights``
    (e.g. the durations each level stands for) default to equal. Missing (NaN) levels are
    left out; NaN when none is left."""
    values = np.asarray(levels, dtype=np.float64).ravel()
    w = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != values.shape:
        raise ValueError("levels and weights differ in length")
    keep = np.isfinite(values) & np.isfinite(w) & (w > 0)
    if not keep.any():
        return math.nan
    v, w = values[keep], w[keep]
    top = float(v.max())  # factor out the largest level: no overflow at any level
    return top + 10 * math.log10(float(np.sum(w * 10 ** ((v - top) / 10)) / np.sum(w)))


@dataclass(frozen=True)
class Hours:
    """The day's hours: day from ``day_start`` to ``night_start`` (local clock hours, 0–23),
    night the rest (GB 3096-2008: 06–22 and 22–06 unless the local government sets others)."""

    day_start: int = 6
    night_start: int = 22

    def __post_init__(self) -> None:
        for h in (self.day_start, self.night_start):
            if isinstance(h, bool) or not isinstance(h, int) or not 0 <= h <= 23:
                raise ValueError(f"day and night start at whole hours 0-23, not {h!r}")
        if self.day_start >= self.night_start:
            raise ValueError("the day must start before the night (e.g. 6 and 22)")

    def period(self, hour: int) -> Period:
        """``day`` or ``night`` for a local clock hour (the hour starting at ``hour``)."""
        return "day" if self.day_start <= hour < self.night_start else "night"

    def is_night(self, hours: npt.ArrayLike) -> npt.NDArray[np.bool_]:
        """For local clock hours (0–23), whether each is a night hour."""
        h = np.asarray(hours)
        return ~((h >= self.day_start) & (h < self.night_start))

    @property
    def day_hours(self) -> int:
        return self.night_start - self.day_start

    @property
    def night_hours(self) -> int:
        return 24 - self.day_hours


DEFAULT_HOURS: Final = Hours()


def ldn(ld: float, ln: float, hours: Hours = DEFAULT_HOURS) -> float:
    """The day-night level (dB(A)) from the day's Ld and Ln: the energy average over 24 h with
    the night hours' levels raised by :data:`NIGHT_PENALTY`; NaN if either is missing."""
    if not (math.isfinite(ld) and math.isfinite(ln)):
        return math.nan
    return leq([ld, ln + NIGHT_PENALTY], [hours.day_hours, hours.night_hours])


@dataclass(frozen=True)
class Assessment:
    """One level against its limit: ``exceedance_db`` = level − limit (negative: the margin
    below it), ``compliant`` when the level is at or below the limit."""

    level: float
    limit: float
    exceedance_db: float
    compliant: bool


def _assess(level: float, lim: float) -> Assessment:
    if isinstance(level, bool) or not math.isfinite(level):
        raise ValueError(f"not a sound level: {level!r}")
    return Assessment(level, lim, level - lim, level <= lim + TOLERANCE_DB)


def assess(laeq: float, zone: object, period: str) -> Assessment:
    """An LAeq (dB(A)) against the zone's limit for ``period``.

    Raises
    ------
    ValueError
        for an unknown zone or period, or a level that is not a finite number.
    """
    return _assess(laeq, limit(zone, period))


def assess_night_max(lmax: float, zone: object) -> Assessment:
    """A night-time maximum level (dB(A)) against the zone's night limit plus
    :data:`NIGHT_MAX_EXCESS` (GB 3096-2008 §5.3)."""
    return _assess(lmax, limit(zone, "night") + NIGHT_MAX_EXCESS)


#: How hourly (and daily) values of each noise parameter are formed from shorter ones: LAeq by
#: energy average, Lmax by the maximum, Lmin by the minimum; the percentile levels L5 … L95
#: by the arithmetic mean of the shorter intervals' levels (an approximation: the true hourly
#: percentile needs the level distribution, which devices do not send).
AGGREGATION: Final[dict[str, Literal["energy", "max", "min"]]] = {
    "laeq": "energy",
    "lmax": "max",
    "lmin": "min",
}


def energy_mean(values: npt.ArrayLike) -> float:
    """:func:`leq` of equal-weight levels, for ``pandas`` group aggregation."""
    return leq(np.asarray(values, dtype=np.float64))
