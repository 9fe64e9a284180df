"""Soil pollution risk: GB 15618-2018 (agricultural land) and GB 36600-2018 (development land).

Source: ``docs/standards/soil.md`` (secondary: values agree with several implementations).
Units mg/kg. pH bands: ≤ 5.5 · 5.5 < pH ≤ 6.5 · 6.5 < pH ≤ 7.5 · > 7.5.

- Screening values (风险筛选值, Table 1): Cd, Hg, As, Pb, Cr differ for paddy fields and other
  land; Cu for orchards and other land; Ni and Zn are the same for all land.
- Intervention values (风险管制值, Table 3): Cd, Hg, As, Pb, Cr; none for Cu, Ni, Zn.
- Classes: every metal at or below its screening value → ``priority_protection`` (优先保护);
  some above screening but all at or below intervention → ``safe_use`` (安全利用); any above
  its intervention value → ``strict_control`` (严格管控).

Land use ``paddy`` (水田), ``orchard`` (果园) or ``other`` (其他). For Cd, Hg, As, Pb, Cr an
orchard takes the ``other`` values; for Cu a paddy field does.

GB 36600-2018, development (construction) land, Table 1 metals only
(:func:`classify_development`): screening values (筛选值) and intervention values (管制值) for
class 1 land (第一类用地: housing, schools, hospitals, kindergartens, parks …) and class 2 land
(第二类用地: industry, logistics, roads, utilities …); As, Cd, Cr(VI), Cu, Pb, Hg, Ni in mg/kg
dry weight. At or below the screening value the risk is negligible; above it a detailed
investigation and risk assessment are needed; above the intervention value risk control or
remediation. Table 1 note ①: a regional natural arsenic background above the screening value
may be used as the screening value. Table 1's organic compounds and Table 2 are not
implemented (``docs/standards/soil.md`` says why).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from sensors.standards.water import REL_TOLERANCE

LandUse = Literal["paddy", "orchard", "other"]
RiskClass = Literal["priority_protection", "safe_use", "strict_control"]
METALS: Final = ("cd", "hg", "as", "pb", "cr", "cu", "ni", "zn")
#: Upper bounds of the first three pH bands; above the last is the fourth band.
PH_BANDS: Final = (5.5, 6.5, 7.5)

#: metal → land use → screening values per pH band.
SCREENING: Final[dict[str, dict[str, tuple[float, float, float, float]]]] = {
    "cd": {"paddy": (0.3, 0.4, 0.6, 0.8), "other": (0.3, 0.3, 0.3, 0.6)},
    "hg": {"paddy": (0.5, 0.5, 0.6, 1.0), "other": (1.3, 1.8, 2.4, 3.4)},
    "as": {"paddy": (30, 30, 25, 20), "other": (40, 40, 30, 25)},
    "pb": {"paddy": (80, 100, 140, 240), "other": (70, 90, 120, 170)},
    "cr": {"paddy": (250, 250, 300, 350), "other": (150, 150, 200, 250)},
    "cu": {"orchard": (150, 150, 200, 200), "other": (50, 50, 100, 100)},
    "ni": {"other": (60, 70, 100, 190)},
    "zn": {"other": (200, 200, 250, 300)},
}
#: metal → intervention values per pH band.
INTERVENTION: Final[dict[str, tuple[float, float, float, float]]] = {
    "cd": (1.5, 2.0, 3.0, 4.0),
    "hg": (2.0, 2.5, 4.0, 6.0),
    "as": (200, 150, 120, 100),
    "pb": (400, 500, 700, 1000),
    "cr": (800, 850, 1000, 1300),
}
RISK_CLASSES: Final[tuple[RiskClass, ...]] = ("priority_protection", "safe_use", "strict_control")


def ph_band(ph: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """0–3: the pH band of each value (bands closed on the right: pH 5.5 is band 0)."""
    return np.searchsorted(np.array(PH_BANDS), np.asarray(ph, dtype=np.float64), side="left")


def screening_value(metal: str, ph: float, land_use: LandUse) -> float:
    """The risk screening value of ``metal`` at ``ph`` for ``land_use`` (mg/kg)."""
    _check(metal, land_use)
    return float(_screening_row(metal, land_use)[int(ph_band(ph))])


def _screening_row(metal: str, land_use: str) -> tuple[float, float, float, float]:
    """The screening values of ``metal`` for ``land_use`` by pH band (``other`` where Table 1
    does not distinguish that use)."""
    by_use = SCREENING[metal]
    return by_use.get(land_use, by_use["other"])


def intervention_value(metal: str, ph: float) -> float | None:
    """The risk intervention value (mg/kg), or ``None`` for Cu, Ni and Zn."""
    _check(metal, "other")
    values = INTERVENTION.get(metal)
    return None if values is None else float(values[int(ph_band(ph))])


def _check(metal: str, land_use: str) -> None:
    if metal not in METALS:
        raise ValueError(f"GB 15618-2018 has no value for {metal!r} ({', '.join(METALS)})")
    if land_use not in ("paddy", "orchard", "other"):
        raise ValueError(f"land use must be paddy, orchard or other, not {land_use!r}")


@dataclass(frozen=True)
class SoilRisk:
    """``risk_class`` and, per metal, the ratio of its content to its screening value."""

    risk_class: RiskClass
    ratios: dict[str, float] = field(default_factory=dict)
    intervention_ratios: dict[str, float] = field(default_factory=dict)


def classify(metals: Mapping[str, float], ph: float, land_use: LandUse = "other") -> SoilRisk:
    """The risk class of one sample (contents in mg/kg).

    Raises
    ------
    ValueError
        for an unknown metal or land use, no metal at all, a negative or non-finite content,
        or a pH outside 0–14.
    """
    if not math.isfinite(ph) or not 0 <= ph <= 14:
        raise ValueError(f"pH {ph!r} is not between 0 and 14")
    if not metals:
        raise ValueError("no metal content given")
    ratios: dict[str, float] = {}
    intervention: dict[str, float] = {}
    for metal, content in metals.items():
        _check(metal, land_use)
        if isinstance(content, bool) or not math.isfinite(content) or content < 0:
            raise ValueError(f"{metal}: {content!r} is not a valid content (mg/kg)")
        ratios[metal] = content / screening_value(metal, ph, land_use)
        value = intervention_value(metal, ph)
        if value is not None:
            intervention[metal] = content / value
    if any(r > 1 for r in intervention.values()):
        risk: RiskClass = "strict_control"
    elif any(r > 1 for r in ratios.values()):
        risk = "safe_use"
    else:
        risk = "priority_protection"
    return SoilRisk(risk, ratios, intervention)


def classify_frame(frame: pd.DataFrame, land_use: LandUse = "other") -> pd.DataFrame:
    """:func:`classify` for every row of a frame with metal columns and a ``ph`` column:
    ``ratio_<metal>`` per metal and ``risk_class`` (missing contents are skipped; a row
    without pH or without any content gets no class)."""
    if "ph" not in frame.columns:
        raise ValueError("the frame needs a 'ph' column")
    metals = [str(c) for c in frame.columns if c != "ph"]
    for metal in metals:
        _check(metal, land_use)
    ph = frame["ph"].to_numpy(dtype=np.float64)
    band = np.clip(ph_band(np.nan_to_num(ph, nan=7.0)), 0, 3)
    out = pd.DataFrame(index=frame.index)
    above_screening = np.zeros(len(frame), dtype=bool)
    above_intervention = np.zeros(len(frame), dtype=bool)
    any_content = np.zeros(len(frame), dtype=bool)
    for metal in metals:
        content = frame[metal].to_numpy(dtype=np.float64)
        screening = np.array(_screening_row(metal, land_use))[band]
        ratio = content / screening
        out[f"ratio_{metal}"] = ratio
        any_content |= np.isfinite(content)
        above_screening |= ratio > 1
        if metal in INTERVENTION:
            above_intervention |= content / np.array(INTERVENTION[metal])[band] > 1
    risk = np.where(
        above_intervention,
        "strict_control",
        np.where(above_screening, "safe_use", "priority_protection"),
    ).astype(object)
    risk[~(any_content & np.isfinite(ph))] = None
    out["risk_class"] = risk
    return out


# --- GB 36600-2018: development (construction) land ----------------------------------------
DevelopmentRiskLevel = Literal["below_screening", "above_screening", "above_intervention"]
#: From the best to the worst.
DEVELOPMENT_RISKS: Final[tuple[DevelopmentRiskLevel, ...]] = (
    "below_screening",
    "above_screening",
    "above_intervention",
)
#: GB 36600-2018 Table 1 metals (basic items 1–7), mg/kg dry weight.
DEVELOPMENT_ITEMS: Final = ("as", "cd", "cr6", "cu", "pb", "hg", "ni")
#: item → (class 1 land, class 2 land) screening values (筛选值), mg/kg; As: see note ①
#: (:func:`development_values`).
DEVELOPMENT_SCREENING: Final[dict[str, tuple[float, float]]] = {
    "as": (20, 60),
    "cd": (20, 65),
    "cr6": (3.0, 5.7),
    "cu": (2000, 18000),
    "pb": (400, 800),
    "hg": (8, 38),
    "ni": (150, 900),
}
#: item → (class 1 land, class 2 land) intervention values (管制值), mg/kg.
DEVELOPMENT_INTERVENTION: Final[dict[str, tuple[float, float]]] = {
    "as": (120, 140),
    "cd": (47, 172),
    "cr6": (30, 78),
    "cu": (8000, 36000),
    "pb": (800, 2500),
    "hg": (33, 82),
    "ni": (600, 2000),
}
#: The parameter dictionary's codes accepted for a Table 1 item (``cr6`` alone is also the
#: water item there; a soil station's Cr(VI) is ``soil_cr6``).
DEVELOPMENT_CODES: Final[dict[str, str]] = {"soil_cr6": "cr6"}


def _development_item(item: str) -> str:
    code = DEVELOPMENT_CODES.get(item, item)
    if code not in DEVELOPMENT_ITEMS:
        raise ValueError(
            f"GB 36600-2018 Table 1 (metals) has no value for {item!r}"
            f" ({', '.join((*DEVELOPMENT_ITEMS, *DEVELOPMENT_CODES))})"
        )
    return code


def _land_class_index(land_class: int) -> int:
    if isinstance(land_class, bool) or land_class not in (1, 2):
        raise ValueError(f"GB 36600-2018 land class must be 1 or 2, not {land_class!r}")
    return int(land_class) - 1


def _is_content(value: object) -> bool:
    """Whether ``value`` is a valid content: a real number (not a bool), finite, ≥ 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    number = float(value)
    return math.isfinite(number) and number >= 0


def _check_background(arsenic_background: float | None) -> None:
    if arsenic_background is not None and not _is_content(arsenic_background):
        raise ValueError(
            f"arsenic background {arsenic_background!r} is not a valid content (mg/kg)"
        )


def development_values(
    item: str, land_class: int = 1, *, arsenic_background: float | None = None
) -> tuple[float, float]:
    """(screening value, intervention value) of a GB 36600-2018 Table 1 item for class 1 or 2
    land, mg/kg. For arsenic, a regional natural background (mg/kg) above the screening value
    replaces it (Table 1 note ①); the intervention value stays.

    Raises
    ------
    ValueError
        for an unknown item, a land class other than 1 or 2, or a negative or non-finite
        background.
    """
    code = _development_item(item)
    k = _land_class_index(land_class)
    _check_background(arsenic_background)
    screening = float(DEVELOPMENT_SCREENING[code][k])
    if code == "as" and arsenic_background is not None and arsenic_background > screening:
        screening = float(arsenic_background)
    return screening, float(DEVELOPMENT_INTERVENTION[code][k])


def _above(value: npt.ArrayLike, limit: float) -> npt.NDArray[np.bool_]:
    """Whether each value is above ``limit``: a value within :data:`REL_TOLERANCE` of it meets
    it (NaN is above nothing)."""
    return np.asarray(value, dtype=np.float64) > limit * (1 + REL_TOLERANCE)


@dataclass(frozen=True)
class DevelopmentRisk:
    """One sample on development land (GB 36600-2018).

    ``risk``: the worst over the items (``None`` without any item); ``ratios`` and
    ``intervention_ratios``: content / screening value and content / intervention value per
    item; ``exceedances``: ``"intervention"`` or ``"screening"`` per item above a value (the
    higher one it is above); ``land_class`` 1 or 2. Keys are the items as given."""

    risk: DevelopmentRiskLevel | None
    ratios: dict[str, float] = field(default_factory=dict)
    intervention_ratios: dict[str, float] = field(default_factory=dict)
    exceedances: dict[str, Literal["screening", "intervention"]] = field(default_factory=dict)
    land_class: int = 1


def classify_development(
    values: Mapping[str, float],
    land_class: int = 1,
    *,
    arsenic_background: float | None = None,
) -> DevelopmentRisk:
    """GB 36600-2018 risk of one sample of development land: contents in mg/kg dry weight of
    ``as cd cr6 cu pb hg ni`` (``soil_cr6`` for ``cr6``).

    A content at or below a value (within :data:`~sensors.standards.water.REL_TOLERANCE`) is
    not above it. ``arsenic_background`` (mg/kg): the regional natural arsenic background,
    used as the arsenic screening value where it is higher (Table 1 note ①). An item above its
    intervention value counts as above intervention even where a high background keeps it
    below the arsenic screening value.

    Raises
    ------
    ValueError
        for a land class other than 1 or 2, an unknown item, a content that is negative,
        non-finite or a bool, or a negative or non-finite background.
    """
    _land_class_index(land_class)
    _check_background(arsenic_background)
    ratios: dict[str, float] = {}
    intervention_ratios: dict[str, float] = {}
    exceedances: dict[str, Literal["screening", "intervention"]] = {}
    for item, content in values.items():
        screening, intervention = development_values(
            item, land_class, arsenic_background=arsenic_background
        )
        if not _is_content(content):
            raise ValueError(f"{item}: {content!r} is not a valid content (mg/kg)")
        ratios[item] = content / screening
        intervention_ratios[item] = content / intervention
        if bool(_above(content, intervention)):
            exceedances[item] = "intervention"
        elif bool(_above(content, screening)):
            exceedances[item] = "screening"
    risk: DevelopmentRiskLevel | None
    if not values:
        risk = None
    elif "intervention" in exceedances.values():
        risk = "above_intervention"
    elif exceedances:
        risk = "above_screening"
    else:
        risk = "below_screening"
    return DevelopmentRisk(risk, ratios, intervention_ratios, exceedances, int(land_class))


def classify_development_frame(
    frame: pd.DataFrame, land_class: int = 1, arsenic_background: float | None = None
) -> pd.DataFrame:
    """:func:`classify_development` for every row of a frame whose columns are items (mg/kg):
    ``ratio_<item>`` per item (content / screening value), ``risk`` (string; NA for a row
    without any content) and ``exceeding`` (the items above a value, comma-separated in column
    order). Missing contents (NaN) are skipped.

    Raises
    ------
    ValueError
        as :func:`classify_development`, for a negative or infinite cell and for repeated
        columns.
    """
    _land_class_index(land_class)
    _check_background(arsenic_background)
    if not frame.columns.is_unique:
        raise ValueError("the frame has repeated item columns")
    out = pd.DataFrame(index=frame.index)
    n = len(frame)
    above_screening = np.zeros(n, dtype=bool)
    above_intervention = np.zeros(n, dtype=bool)
    any_content = np.zeros(n, dtype=bool)
    exceeding: list[list[str]] = [[] for _ in range(n)]
    for column in frame.columns:
        item = str(column)
        screening, intervention = development_values(
            item, land_class, arsenic_background=arsenic_background
        )
        content = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isinf(content) | (content < 0)
        if bad.any():
            row = frame.index[int(np.flatnonzero(bad)[0])]
            raise ValueError(f"{item}: {content[bad][0]!r} is not a valid content (row {row!r})")
        out[f"ratio_{item}"] = content / screening
        any_content |= ~np.isnan(content)
        over_screening = _above(content, screening)
        over_intervention = _above(content, intervention)
        above_screening |= over_screening
        above_intervention |= over_intervention
        for i in np.flatnonzero(over_screening | over_intervention):
            exceeding[i].append(item)
    risk = np.where(
        above_intervention,
        "above_intervention",
        np.where(above_screening, "above_screening", "below_screening"),
    ).astype(object)
    risk[~any_content] = pd.NA
    out["risk"] = pd.array(risk, dtype="string")
    out["exceeding"] = [",".join(e) for e in exceeding]
    return out
