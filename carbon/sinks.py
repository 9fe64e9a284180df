"""Land-use sinks by the IPCC stock-difference method (2006 Guidelines, Vol. 4, Ch. 2,
Eq. 2.5): the annual carbon stock change of an area is the difference of its stocks at two
times divided by the years between them,

    ΔC (t C/yr) = Σ area (ha) × (C_to − C_from) (t C/ha) / (end_year − start_year)

and its CO₂ flux is −ΔC × 44/12: negative is a removal (a sink), positive an emission.

Inputs are two tables a planner supplies or the GIS land-cover job writes:

- **changes**: ``region, from_class, to_class, start_year, end_year, area[, unit]`` — the area
  (``unit`` ``ha`` by default; ``km2``, ``m2`` and ``mu`` (亩) also) that was ``from_class``
  at ``start_year`` and ``to_class`` at ``end_year``; unchanged land (``from_class ==
  to_class``) contributes 0.
- **stocks**: ``class, carbon_t_per_ha, source`` — the carbon stock per hectare of each land
  class (the pools the planner counts: biomass, dead organic matter, soil), with its source.

**No default stocks are shipped.** IPCC 2006 Vol. 4 defaults depend on the climate zone,
ecological zone, soil and management (Tables 4.7, 5.9, 6.4, 2.3 …); none could be verified
here from two independent transcriptions, so the planner states the stocks and their source,
and a class without a stock is refused with the reason rather than guessed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pandas as pd
import pint

from carbon.activity import Rejected, read_table, require_columns
from carbon.errors import CarbonError
from carbon.regions import chain
from sensors.units import ureg

C_TO_CO2: Final = 44.0 / 12.0
#: IPCC 2006 category of land-use sinks and sources (AFOLU, Land).
SECTOR: Final = "3.B"
CHANGE_COLUMNS: Final = ("region", "from_class", "to_class", "start_year", "end_year", "area")
ROW_COLUMNS: Final = (
    "record",
    "region",
    "from_class",
    "to_class",
    "start_year",
    "end_year",
    "area_ha",
    "delta_c_t",
    "co2_t_per_year",
    "stock_sources",
)


@dataclass(frozen=True)
class Stock:
    """The carbon stock of a land class (t C/ha) and where it comes from."""

    land_class: str
    carbon_t_per_ha: float
    source: str


def read_stocks(path: Path) -> dict[str, Stock]:
    """Carbon stocks per land class from a CSV/Excel file.

    Raises
    ------
    CarbonError
        for a missing column, a class given twice, a stock that is not a non-negative number
        or one without a source.
    """
    frame = read_table(path)
    require_columns(frame, ("class", "carbon_t_per_ha", "source"), str(path))
    out: dict[str, Stock] = {}
    for i, row in enumerate(frame.to_dict("records"), start=2):
        where = f"{path.name} line {i}"
        name = str(row["class"]).strip()
        try:
            value = float(row["carbon_t_per_ha"])
        except ValueError:
            raise CarbonError(f"{where}: carbon_t_per_ha {row['carbon_t_per_ha']!r}") from None
        if not math.isfinite(value) or value < 0:
            raise CarbonError(f"{where}: carbon_t_per_ha must be a non-negative number")
        source = str(row["source"]).strip()
        if not name or not source:
            raise CarbonError(f"{where}: every stock needs a class and a source")
        if name in out:
            raise CarbonError(f"{where}: class {name!r} is given twice")
        out[name] = Stock(name, value, source)
    return out


#: how area units are spelt in land statistics, as pint expressions (亩 mu = 1/15 ha)
AREA_UNITS: Final = {
    "ha": "hectare",
    "hectare": "hectare",
    "km2": "km**2",
    "km²": "km**2",
    "m2": "m**2",
    "m²": "m**2",
    "mu": "(10000 / 15) * m**2",
    "亩": "(10000 / 15) * m**2",
}


def _area_ha(value: Any, unit: str) -> float:
    try:
        area = float(value)
        if (unit or "ha") not in AREA_UNITS:
            raise CarbonError(f"unit must be one of {', '.join(AREA_UNITS)}")
        q: pint.Quantity = area * ureg.Quantity(AREA_UNITS[unit or "ha"])  # type: ignore[type-arg]
        ha = float(q.to("hectare").magnitude)
    except (ValueError, pint.errors.PintError) as exc:
        raise CarbonError(f"area {value!r} {unit!r} is not an area ({exc})") from None
    if not math.isfinite(ha) or ha < 0:
        raise CarbonError(f"area {value!r} must be a non-negative number")
    return ha


def read_changes(path: Path) -> tuple[pd.DataFrame, list[Rejected]]:
    """Land-cover change areas from a CSV/Excel file (columns: the module's *changes*), checked
    row by row by :func:`check_changes`."""
    return check_changes(read_table(path), path.name)


def check_changes(
    frame: pd.DataFrame, name: str = "changes"
) -> tuple[pd.DataFrame, list[Rejected]]:
    """Check a table of land-cover change areas (the module's *changes*, as text or numbers;
    e.g. :func:`gis.landcover.transitions`): an unknown region, a period that does not move
    forward or an area that is not an area is rejected with its line; the good rows are kept
    (``record``, ``area_ha``)."""
    frame = frame.rename(columns=lambda c: str(c).strip().lower())
    require_columns(frame, CHANGE_COLUMNS, name)
    rows: list[dict[str, object]] = []
    rejected: list[Rejected] = []
    for i, row in enumerate(frame.to_dict("records"), start=2):
        try:
            region = str(row["region"]).strip()
            chain(region)
            start, end = int(row["start_year"]), int(row["end_year"])
            if end <= start:
                raise CarbonError(f"end_year {end} is not after start_year {start}")
            rows.append(
                {
                    "record": f"{name}:{i}",
                    "region": region,
                    "from_class": str(row["from_class"]).strip(),
                    "to_class": str(row["to_class"]).strip(),
                    "start_year": start,
                    "end_year": end,
                    "area_ha": _area_ha(row["area"], str(row.get("unit", "")).strip()),
                }
            )
        except (CarbonError, ValueError) as exc:
            rejected.append(Rejected(f"{name} line {i}", str(exc)))
    return pd.DataFrame(rows), rejected


def stock_difference(
    changes: pd.DataFrame, stocks: Mapping[str, Stock]
) -> tuple[pd.DataFrame, list[Rejected]]:
    """Carbon stock change and annual CO₂ flux (:data:`ROW_COLUMNS`) of every change row;
    rows whose classes have no stock are returned as rejected, with the class named."""
    rows: list[dict[str, object]] = []
    rejected: list[Rejected] = []
    records: list[dict[str, Any]] = changes.to_dict("records")  # type: ignore[assignment]
    for c in records:
        lacking = [k for k in (c["from_class"], c["to_class"]) if k not in stocks]
        if lacking:
            rejected.append(
                Rejected(str(c["record"]), f"no carbon stock for class {', '.join(lacking)}")
            )
            continue
        before, after = stocks[c["from_class"]], stocks[c["to_class"]]
        delta_c = float(c["area_ha"]) * (after.carbon_t_per_ha - before.carbon_t_per_ha)
        years = int(c["end_year"]) - int(c["start_year"])
        sources = sorted({before.source, after.source})
        rows.append(
            {
                **{k: c[k] for k in ROW_COLUMNS[:7]},
                "delta_c_t": delta_c,
                "co2_t_per_year": -delta_c * C_TO_CO2 / years,
                "stock_sources": "; ".join(sources),
            }
        )
    return pd.DataFrame(rows, columns=list(ROW_COLUMNS)), rejected


def annual_rows(sinks: pd.DataFrame) -> pd.DataFrame:
    """Sink rows as inventory rows (:data:`carbon.inventory.COLUMNS`): one per change row and
    year of its period [start_year, end_year), sector 3.B, scope 1, gas CO₂."""
    out: list[dict[str, object]] = []
    records: list[dict[str, Any]] = sinks.to_dict("records")  # type: ignore[assignment]
    for s in records:
        for year in range(int(s["start_year"]), int(s["end_year"])):
            out.append(
                {
                    "record": s["record"],
                    "facility": "",
                    "region": s["region"],
                    "sector": SECTOR,
                    "scope": 1,
                    "gas": "CO2",
                    "year": year,
                    "tonnes": s["co2_t_per_year"],
                    "co2e_t": s["co2_t_per_year"],
                    "factor_ids": f"stock-difference:{s['from_class']}→{s['to_class']}",
                    "fallbacks": "",
                }
            )
    return pd.DataFrame(out)
