"""Agricultural soil pollution risk: GB 15618-2018 (risk screening and intervention values).

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
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

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
