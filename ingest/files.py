"""Readings from files (CSV, Excel): tables turned into the same raw items live data use.

Two layouts are read, by their columns:

- **long**: one reading per row — ``station`` (or ``--station``), ``parameter``, ``time``,
  ``value``, optional ``unit`` and ``flag``;
- **wide**: one row per time (and station), one column per parameter — every column whose
  name is a parameter code (canonical or HJ 212) is a reading; a column ``unit:<code>``
  gives that parameter's unit, else it is the canonical one.

Lab results with coordinates (soil samples, …) add ``lon`` and ``lat`` columns (WGS 84
degrees) and optionally ``name`` and ``kind`` (default ``soil``): each sampling point becomes
a station, so that its readings have a home. Column names are matched case-insensitively.

A site investigation (GB 36600-2018, development land) adds ``depth`` (metres below ground):
each sample of a borehole at a depth is a station of its own, ``<point>-<depth>m`` (``BH01``
at 0.5 m is ``BH01-0.5m``), whose attributes ``point`` and ``depth_m`` say where it was taken.
The columns ``site``, ``land_class`` (1 or 2), ``arsenic_background`` (mg/kg) and ``land_use``
(farmland: ``paddy``, ``orchard``, ``other``) become attributes of the sampling points too.

Every cell but a value and a coordinate is text as written: station ``001`` stays ``001`` and
the HJ/T 212-2005 code ``011`` stays ``011`` (a number typed into an Excel cell is written
without a decimal part: ``1``, not ``1.0``); a station ``0`` is station ``0``, never
``--station``, which only fills rows without a station.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from sensors.errors import SensorsError, ValidationError
from sensors.parameters import lookup
from sensors.stations import Station

_LONG = {"parameter", "value"}
_RESERVED = {
    "station",
    "parameter",
    "time",
    "value",
    "unit",
    "flag",
    "lon",
    "lat",
    "name",
    "kind",
    "id",
    "site",
    "land_class",
    "arsenic_background",
    "land_use",
    "depth",
}
#: columns that become attributes of a sampling point
_ATTRIBUTES = ("site", "land_class", "arsenic_background", "land_use")


@dataclass
class FileReadings:
    """Raw reading items of a file, the row each came from, and sampling-point stations."""

    items: list[dict[str, Any]] = field(default_factory=list)
    rows: list[int] = field(default_factory=list)
    stations: list[Station] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)


def read_table(path: Path) -> pd.DataFrame:
    """A CSV (UTF-8, with or without BOM) or Excel (first sheet) file as a DataFrame."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
        if suffix in (".xlsx", ".xlsm", ".xls"):
            return pd.read_excel(path, dtype=object)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{path.name}: cannot read: {exc}") from exc
    raise ValidationError(f"{path.name}: expected a .csv or .xlsx file")


def _cell(value: Any, numeric: bool = False) -> Any:
    """A cell as JSON-like data: '' and NaN are missing; a value or coordinate cell
    (``numeric``) holding a number is a float, any other cell is text as written."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if numeric:
            try:
                return float(text)
            except ValueError:
                return text
        return text
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if not numeric and isinstance(value, int | float) and not isinstance(value, bool):
        # a number typed into an Excel cell: 1 (or 1.0) is the id "1"
        return str(int(value)) if float(value).is_integer() else str(value)
    return value


def table_readings(table: pd.DataFrame, station: str | None = None) -> FileReadings:
    """The raw reading items of a table (see the module's layouts); row numbers are 1-based
    lines of a CSV file (header = line 1)."""
    columns = {str(c).strip().lower(): c for c in table.columns}
    out = FileReadings()
    if "time" not in columns:
        raise ValidationError("the file needs a time column")
    if station is None and "station" not in columns and "id" not in columns:
        raise ValidationError("the file needs a station column, or give --station")
    long = set(columns) >= _LONG
    params: dict[str, str] = {}
    if not long:
        for name, original in columns.items():
            if name in _RESERVED or name.startswith("unit:"):
                continue
            try:
                lookup(name)
            except SensorsError:
                raise ValidationError(f"column {original!r} is not a parameter code") from None
            params[name] = original
        if not params:
            raise ValidationError("no parameter columns (long layout needs parameter, value)")
    has_points = {"lon", "lat"} <= set(columns)
    numeric = {"value", "lon", "lat", "depth", *params}
    seen_points: set[str] = set()
    for index, raw in enumerate(table.to_dict("records")):
        row = {k: _cell(raw[original], k in numeric) for k, original in columns.items()}
        line = index + 2
        sid = next((row[k] for k in ("station", "id") if row.get(k) is not None), station)
        sid = None if sid is None else str(sid)
        if sid is None:
            out.problems.append((line, "no station"))
            continue
        attributes = {k: row[k] for k in _ATTRIBUTES if row.get(k) is not None}
        if "land_class" in attributes and str(attributes["land_class"]).strip() not in ("1", "2"):
            out.problems.append(
                (
                    line,
                    f"land_class {attributes['land_class']!r} is not 1 (housing, schools, parks)"
                    " or 2 (industry, logistics, roads) of GB 36600-2018",
                )
            )
            continue
        if has_points and row.get("depth") is not None:
            depth = row["depth"]
            if not isinstance(depth, float) or not math.isfinite(depth) or depth < 0:
                out.problems.append((line, f"depth {depth!r} is not a depth in metres"))
                continue
            attributes |= {"point": sid, "depth_m": depth}
            sid = f"{sid}-{depth:g}m"
        if has_points and sid not in seen_points:
            try:
                name = str(row.get("name") or attributes.get("point") or sid)
                if "depth_m" in attributes:
                    name = f"{name} {attributes['depth_m']:g} m"
                out.stations.append(
                    Station(
                        sid,
                        name,
                        str(row.get("kind") or "soil"),
                        float(row["lon"]),
                        float(row["lat"]),
                        attributes,
                    )
                )
                seen_points.add(sid)
            except (ValidationError, TypeError, ValueError) as exc:
                out.problems.append((line, f"sampling point: {exc}"))
                continue
        base = {"station": sid, "time": row.get("time")}
        if long:
            item = {**base, "parameter": row.get("parameter"), "value": row.get("value")}
            for opt in ("unit", "flag"):
                if row.get(opt) is not None:
                    item[opt] = row[opt]
            out.items.append(item)
            out.rows.append(line)
            continue
        for name in params:
            value = row.get(name)
            if value is None:
                continue  # an empty cell is no reading
            item = {**base, "parameter": name, "value": value}
            unit = row.get(f"unit:{name}")
            if unit is not None:
                item["unit"] = unit
            if row.get("flag") is not None:
                item["flag"] = row["flag"]
            out.items.append(item)
            out.rows.append(line)
    return out
