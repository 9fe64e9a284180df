"""Ambient air concentration limits: GB 3095-2026 (in force 2026-03-01).

Source: GB 3095-2026 Table 1; the table and its use: ``docs/standards/air.md``.
Class 1 areas are national parks and nature reserves, class 2 the rest. Table 1 gives
transitional limits until 2030-12-31 and final limits from 2031-01-01. Gases are at
298.15 K and 1013.25 hPa; particulates at actual conditions. Units µg/m³, CO mg/m³.

Averaging times: ``annual``, ``24h``, ``8h`` (O₃ daily maximum 8-hour mean) and ``1h``.
The exceedance multiple (超标倍数) is ``(C − limit) / limit`` for a concentration above its
limit, 0 otherwise.
"""

from __future__ import annotations

from datetime import date
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

Averaging = Literal["annual", "24h", "8h", "1h"]
AreaClass = Literal[1, 2]
#: The last day of the transitional limits.
TRANSITION_ENDS: Final = date(2030, 12, 31)

#: (pollutant, averaging) → ((class 1, class 2) transitional, (class 1, class 2) final).
LIMITS: Final[dict[tuple[str, str], tuple[tuple[float, float], tuple[float, float]]]] = {
    ("so2", "annual"): ((20, 60), (20, 20)),
    ("so2", "24h"): ((50, 150), (50, 50)),
    ("so2", "1h"): ((150, 500), (150, 150)),
    ("no2", "annual"): ((40, 40), (30, 30)),
    ("no2", "24h"): ((80, 80), (50, 50)),
    ("no2", "1h"): ((200, 200), (200, 200)),
    ("co", "24h"): ((4, 4), (4, 4)),
    ("co", "1h"): ((10, 10), (10, 10)),
    ("o3", "8h"): ((100, 160), (100, 160)),
    ("o3", "1h"): ((160, 200), (160, 200)),
    ("pm10", "annual"): ((40, 60), (20, 50)),
    ("pm10", "24h"): ((50, 120), (50, 100)),
    ("pm25", "annual"): ((15, 30), (10, 25)),
    ("pm25", "24h"): ((35, 60), (25, 50)),
}


def limit(pollutant: str, averaging: Averaging, area_class: AreaClass, on: date) -> float:
    """The limit for ``pollutant`` (``so2 no2 co o3 pm10 pm25``) over ``averaging`` in an area of
    ``area_class`` on day ``on`` (transitional limits until 2030-12-31).

    Raises
    ------
    ValueError
        for a pollutant/averaging pair Table 1 does not list, or an area class other than 1, 2.
    """
    if (pollutant, averaging) not in LIMITS:
        pairs = ", ".join(f"{p} {a}" for p, a in LIMITS)
        raise ValueError(f"GB 3095-2026 has no {averaging} limit for {pollutant!r} ({pairs})")
    if area_class not in (1, 2):
        raise ValueError(f"area class must be 1 or 2, not {area_class!r}")
    transitional, final = LIMITS[(pollutant, averaging)]
    return float((transitional if on <= TRANSITION_ENDS else final)[area_class - 1])


def exceedance_multiple(
    concentrations: npt.ArrayLike,
    pollutant: str,
    averaging: Averaging,
    area_class: AreaClass,
    on: date,
) -> npt.NDArray[np.float64]:
    """``(C − limit) / limit`` where C exceeds the limit, 0 where it does not, NaN where C is
    missing (vectorised; a scalar in gives a 0-d array)."""
    s = limit(pollutant, averaging, area_class, on)
    c = np.asarray(concentrations, dtype=np.float64)
    return np.where(np.isnan(c), np.nan, np.maximum(c - s, 0.0) / s)


def exceeds(
    concentrations: npt.ArrayLike,
    pollutant: str,
    averaging: Averaging,
    area_class: AreaClass,
    on: date,
) -> npt.NDArray[np.bool_]:
    """Whether each concentration is above its limit (a value equal to the limit complies)."""
    c = np.asarray(concentrations, dtype=np.float64)
    return np.asarray(c > limit(pollutant, averaging, area_class, on))
