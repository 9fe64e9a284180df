"""Surface water quality classes: GB 3838-2002, single-factor evaluation.

Source: GB 3838-2002 Tables 1 and 2; the tables and their use: ``docs/standards/water.md``.

- §5.1 single-factor evaluation: each parameter gets the best class whose limit it meets
  (Table 1; "≤" limits, DO a minimum, pH 6–9 for every class); where two classes share a
  limit, the better class (COD 15 → I). Worse than class V is 劣Ⅴ, reported as 6.
- The overall class is the worst over the basic items (MEE's 2011 surface-water evaluation
  method): Table 1 except water temperature, total nitrogen and faecal coliforms; for lakes
  and reservoirs total nitrogen counts too. TP has its own limits for lakes and reservoirs.
  TN is evaluated for lakes and reservoirs only (Table 1 gives no river limit): for a river
  it is left out of ``classes``; faecal coliforms are classed but not in the overall class.
- Exceedances: for each parameter worse than the target class, the multiple
  ``(C − limit) / limit`` over the target class's limit; none for pH and DO.
- Table 2, the supplementary items of centralised drinking-water sources (sulfate, chloride,
  nitrate as N, iron, manganese), has one limit each and no classes: a measured item either
  meets its limit or exceeds it (multiple over that limit, whatever the target class). They
  are never part of the overall class.

Parameter names: the dictionary's ``ph do codmn cod bod5 nh3n tp tn``, and ``cu zn fluoride se
as hg cd cr6 pb cyanide volatile_phenols petroleum anionic_surfactants sulfide
faecal_coliforms``, and Table 2's ``sulfate chloride nitrate fe mn``; mg/L (pH dimensionless,
faecal coliforms per litre). The metals are also accepted by the dictionary's codes for them in
water, ``water_cd`` … (:data:`DICTIONARY_CODES`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

WaterBody = Literal["river", "lake"]
WORSE_THAN_V: Final = 6

#: Table 1 upper limits for classes I–V (mg/L).
UPPER_LIMITS: Final[dict[str, tuple[float, float, float, float, float]]] = {
    "codmn": (2, 4, 6, 10, 15),
    "cod": (15, 15, 20, 30, 40),
    "bod5": (3, 3, 4, 6, 10),
    "nh3n": (0.15, 0.5, 1.0, 1.5, 2.0),
    "tp": (0.02, 0.1, 0.2, 0.3, 0.4),  # rivers; lakes below
    "tn": (0.2, 0.5, 1.0, 1.5, 2.0),  # lakes and reservoirs
    "cu": (0.01, 1.0, 1.0, 1.0, 1.0),
    "zn": (0.05, 1.0, 1.0, 2.0, 2.0),
    "fluoride": (1.0, 1.0, 1.0, 1.5, 1.5),
    "se": (0.01, 0.01, 0.01, 0.02, 0.02),
    "as": (0.05, 0.05, 0.05, 0.1, 0.1),
    "hg": (0.00005, 0.00005, 0.0001, 0.001, 0.001),
    "cd": (0.001, 0.005, 0.005, 0.005, 0.01),
    "cr6": (0.01, 0.05, 0.05, 0.05, 0.1),
    "pb": (0.01, 0.01, 0.05, 0.05, 0.1),
    "cyanide": (0.005, 0.05, 0.2, 0.2, 0.2),
    "volatile_phenols": (0.002, 0.002, 0.005, 0.01, 0.1),
    "petroleum": (0.05, 0.05, 0.05, 0.5, 1.0),
    "anionic_surfactants": (0.2, 0.2, 0.2, 0.3, 0.3),
    "sulfide": (0.05, 0.1, 0.2, 0.5, 1.0),
    "faecal_coliforms": (200, 2000, 10000, 20000, 40000),
}
TP_LAKE: Final = (0.01, 0.025, 0.05, 0.1, 0.2)
#: Table 1 dissolved-oxygen minimums for classes I–V (mg/L).
DO_MINIMUMS: Final = (7.5, 6, 5, 3, 2)
PH_RANGE: Final = (6.0, 9.0)
#: A value within this relative distance of a limit meets it: the floating-point noise of unit
#: conversion and averaging (the mean of three readings of 0.05 mg/L is 0.05000000000000001)
#: must not move a value at a limit into the next class. Far below any reported precision.
REL_TOLERANCE: Final = 1e-9
PARAMETERS: Final = ("ph", "do", *UPPER_LIMITS)
#: Table 2: supplementary items of centralised drinking-water sources, one limit each (mg/L;
#: nitrate as N).
SUPPLEMENTARY_LIMITS: Final[dict[str, float]] = {
    "sulfate": 250,
    "chloride": 250,
    "nitrate": 10,
    "fe": 0.3,
    "mn": 0.1,
}
SUPPLEMENTARY: Final = tuple(SUPPLEMENTARY_LIMITS)
#: Classed, but not part of the overall class.
NOT_IN_OVERALL: Final = frozenset({"faecal_coliforms"})
#: The parameter dictionary's codes of the Table 1 metals in water (``cd`` … name the soil
#: metals there, mg/kg): accepted wherever a Table 1 name is, and classed as that item.
DICTIONARY_CODES: Final[dict[str, str]] = {
    f"water_{m}": m for m in ("cu", "zn", "se", "as", "hg", "cd", "cr6", "pb", "fe", "mn")
}
#: The stream parameters a station's water class is computed from (Tables 1 and 2 names and the
#: dictionary's water metals).
STREAM_PARAMETERS: Final = (*PARAMETERS, *SUPPLEMENTARY, *DICTIONARY_CODES)


#: decimals of a published pH (GB 3838-2002 gives 6–9 in whole units; a meter reads to 0.01)
PH_DECIMALS: Final = 2


def publish_decimals(parameter: str) -> int:
    """The decimals a monthly mean of ``parameter`` is published to: pH to
    :data:`PH_DECIMALS`, any other Table 1 item to the precision of its most precise limit
    (rivers' and lakes'), at least one decimal (DO 7.5 → 1: 8.459 → 8.5; NH₃-N 0.15 → 2;
    TP 0.025 → 3; Hg 0.00005 → 5); an item without limits to 3."""
    code = DICTIONARY_CODES.get(parameter, parameter)
    if code == "ph":
        return PH_DECIMALS
    if code == "do":
        limits: tuple[float, ...] = DO_MINIMUMS
    elif code in UPPER_LIMITS:
        limits = UPPER_LIMITS[code] + (TP_LAKE if code == "tp" else ())
    elif code in SUPPLEMENTARY_LIMITS:
        limits = (SUPPLEMENTARY_LIMITS[code],)
    else:
        return 3
    exponents = (Decimal(str(v)).normalize().as_tuple().exponent for v in limits)
    return max(1, *(-e for e in exponents if isinstance(e, int)))


def publish(parameter: str, value: float) -> float:
    """A monthly mean as published: rounded to :func:`publish_decimals` (GB/T 8170, round
    half to even on the decimal spelling)."""
    step = Decimal(1).scaleb(-publish_decimals(parameter))
    return float(Decimal(repr(float(value))).quantize(step, rounding=ROUND_HALF_EVEN))


def _limits(parameter: str, water_body: WaterBody) -> tuple[float, ...]:
    if parameter == "tp" and water_body == "lake":
        return TP_LAKE
    return UPPER_LIMITS[DICTIONARY_CODES.get(parameter, parameter)]


def _check(parameter: str, water_body: str) -> None:
    if water_body not in ("river", "lake"):
        raise ValueError(f"water body must be 'river' or 'lake', not {water_body!r}")
    if DICTIONARY_CODES.get(parameter, parameter) not in (*PARAMETERS, *SUPPLEMENTARY):
        raise ValueError(
            f"GB 3838-2002 Tables 1 and 2 have no limit for {parameter!r}"
            f" ({', '.join((*PARAMETERS, *SUPPLEMENTARY))})"
        )


def is_supplementary(parameter: str) -> bool:
    """Whether ``parameter`` (a Table 2 name or its dictionary code) is a Table 2 item."""
    return DICTIONARY_CODES.get(parameter, parameter) in SUPPLEMENTARY_LIMITS


def meets_supplementary(parameter: str, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Whether each value (mg/L) of a Table 2 item meets its limit: 1.0 at or below it, 0.0
    above, NaN where missing or negative."""
    _check(parameter, "river")
    code = DICTIONARY_CODES.get(parameter, parameter)
    if code not in SUPPLEMENTARY_LIMITS:
        raise ValueError(f"{parameter!r} is not a GB 3838-2002 Table 2 item")
    v = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(v) & (v >= 0)
    meets = v <= SUPPLEMENTARY_LIMITS[code] * (1 + REL_TOLERANCE)
    return np.where(valid, meets.astype(np.float64), np.nan)


def classify_array(
    parameter: str, values: npt.ArrayLike, water_body: WaterBody = "river"
) -> npt.NDArray[np.float64]:
    """The single-factor class (1–5, 6 for 劣Ⅴ) of each value; NaN where a value is missing or
    negative, and for TN in a river (no river limit).

    Raises
    ------
    ValueError
        for a Table 2 item (no classes: :func:`meets_supplementary`) or an unknown one.
    """
    _check(parameter, water_body)
    if is_supplementary(parameter):
        raise ValueError(f"{parameter!r} is a Table 2 item: it has one limit and no classes")
    v = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(v) & (v >= 0)
    if parameter == "tn" and water_body == "river":
        return np.full(v.shape, np.nan)
    up, down = 1 + REL_TOLERANCE, 1 - REL_TOLERANCE
    if parameter == "ph":
        inside = (v >= PH_RANGE[0] * down) & (v <= PH_RANGE[1] * up)
        out = np.where(inside, 1.0, float(WORSE_THAN_V))
    elif parameter == "do":  # a minimum: the first class whose minimum the value reaches
        mins = np.array(DO_MINIMUMS) * down
        out = 1.0 + np.sum(v[..., None] < mins[None, ...], axis=-1)
    else:  # the first class whose limit is not exceeded: equal limits give the better class
        lims = np.array(_limits(parameter, water_body)) * up
        out = 1.0 + np.searchsorted(lims, v, side="left").astype(np.float64)
    return np.where(valid, out, np.nan)


@dataclass(frozen=True)
class WaterClass:
    """``overall`` 1–5 (6 for 劣Ⅴ; ``None`` without a counted parameter), ``classes`` per
    Table 1 parameter, ``exceedances`` (multiple over the target class's limit) per parameter
    worse than the target class and per Table 2 item above its limit, ``supplementary``
    (Table 2 item → whether it meets its limit)."""

    overall: int | None
    classes: dict[str, int] = field(default_factory=dict)
    exceedances: dict[str, float] = field(default_factory=dict)
    target_class: int = 3
    supplementary: dict[str, bool] = field(default_factory=dict)


def classify(
    values: Mapping[str, float],
    water_body: WaterBody = "river",
    target_class: int = 3,
) -> WaterClass:
    """Single-factor evaluation of one sample (mg/L; pH dimensionless).

    Raises
    ------
    ValueError
        for an unknown parameter or water body, a target class outside 1–5, or a negative or
        non-finite value.
    """
    if target_class not in (1, 2, 3, 4, 5):
        raise ValueError(f"target class must be 1–5, not {target_class!r}")
    classes: dict[str, int] = {}
    exceedances: dict[str, float] = {}
    supplementary: dict[str, bool] = {}
    for parameter, value in values.items():
        _check(parameter, water_body)
        if isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{parameter}: {value!r} is not a valid concentration")
        if is_supplementary(parameter):
            limit = SUPPLEMENTARY_LIMITS[DICTIONARY_CODES.get(parameter, parameter)]
            supplementary[parameter] = bool(meets_supplementary(parameter, [value])[0])
            if not supplementary[parameter]:
                exceedances[parameter] = (value - limit) / limit
            continue
        found = classify_array(parameter, [value], water_body)[0]
        if math.isnan(found):
            continue  # TN in a river: not evaluated
        classes[parameter] = int(found)
        if found > target_class and parameter not in ("ph", "do"):  # beyond the tolerance
            limit = _limits(parameter, water_body)[target_class - 1]
            exceedances[parameter] = (value - limit) / limit
    counted = [c for p, c in classes.items() if p not in NOT_IN_OVERALL]
    return WaterClass(
        max(counted) if counted else None, classes, exceedances, target_class, supplementary
    )


def classify_frame(
    frame: pd.DataFrame, water_body: WaterBody = "river", target_class: int = 3
) -> pd.DataFrame:
    """:func:`classify` for every row of a frame whose columns are parameters: a column
    ``class_<parameter>`` each, ``overall`` (nullable integers) and ``exceeding`` (the
    parameters worse than the target class and the Table 2 items above their limits,
    comma-separated); a Table 2 item gets a column ``meets_<item>`` (nullable booleans)
    instead of a class."""
    if target_class not in (1, 2, 3, 4, 5):
        raise ValueError(f"target class must be 1–5, not {target_class!r}")
    out = pd.DataFrame(index=frame.index)
    counted = []
    exceeding = [[] for _ in range(len(frame))]  # type: list[list[str]]
    for column in frame.columns:
        parameter = str(column)
        if is_supplementary(parameter):
            meets = meets_supplementary(parameter, frame[column].to_numpy(dtype=np.float64))
            out[f"meets_{parameter}"] = pd.array(meets, dtype="Float64").astype("boolean")
            for i in np.flatnonzero(meets == 0.0):
                exceeding[i].append(parameter)
            continue
        classes = classify_array(parameter, frame[column].to_numpy(dtype=np.float64), water_body)
        out[f"class_{parameter}"] = pd.array(classes, dtype="Float64").astype("Int64")
        if parameter not in NOT_IN_OVERALL:
            counted.append(classes)
        if parameter not in ("ph", "do"):
            for i in np.flatnonzero(classes > target_class):
                exceeding[i].append(parameter)
    if counted:
        stacked = np.column_stack(counted)
        has = ~np.all(np.isnan(stacked), axis=1)
        overall = np.where(has, np.nanmax(np.where(np.isnan(stacked), 0, stacked), axis=1), np.nan)
    else:
        overall = np.full(len(frame), np.nan)
    out["overall"] = pd.array(overall, dtype="Float64").astype("Int64")
    out["exceeding"] = [",".join(e) for e in exceeding]
    return out
