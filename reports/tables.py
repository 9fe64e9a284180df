"""The report's tables, built from frames with no I/O: the daily air-quality report (HJ 633-2026)
and the monthly surface-water quality report (GB 3838-2002).

Daily: each city's and station's AQI of the bureau's day, the primary pollutant, the category
(Chinese and English), every IAQI and daily concentration — the concentrations published as
HJ 633-2026 §4.2.2 rounds them before scoring (GB/T 8170, round half to even: whole µg/m³,
CO to 0.1 mg/m³). The AQI is :func:`sensors.standards.aqi.aqi` of the stored valid daily means
(and the O₃ daily maximum 8-hour mean), the same function the ``daily`` job stores. A daily
mean counts when it is valid (GB 3095-2026 Table 4: at least 20 valid hours); how many of the 24
hours were valid is stated for every station and pollutant short of 24.

Monthly: each water station's GB 3838-2002 class of the month (the stored ``water-monthly``
assessment), its target class (the station's ``target_class``, Class III when none), the items
worse than the target with how many times over the target limit (from the monthly means), the
class of the month before and the change; the days with data are stated.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Final, Literal

import pandas as pd

import access
from access import Action, Dataset, Grade
from sensors import cities as cities_std
from sensors import parameters
from sensors.standards import aqi as aqi_std
from sensors.standards import water as water_std

Kind = Literal["daily", "monthly"]
Cell = str | int | float | None

#: (label as printed, HJ 633 report key, stored parameter, stored period)
AIR_COLUMNS: Final = (
    ("SO2", "so2_24h", "so2", "P1D"),
    ("NO2", "no2_24h", "no2", "P1D"),
    ("CO", "co_24h", "co", "P1D"),
    ("O3-8h", "o3_8h", "o3", "P1D-MAX8H"),
    ("PM10", "pm10_24h", "pm10", "P1D"),
    ("PM2.5", "pm25_24h", "pm25", "P1D"),
)
#: GB 3095-2026 Table 4: a daily mean needs at least 20 valid hourly means
MIN_VALID_HOURS: Final = 20
#: the station column of a city's row in the daily report (the city's own, not a station)
CITY_WIDE: Final = "全市 City"
ROMAN: Final = {1: "Ⅰ", 2: "Ⅱ", 3: "Ⅲ", 4: "Ⅳ", 5: "Ⅴ", 6: "劣Ⅴ"}
NA: Final = "—"


@dataclass(frozen=True)
class Table:
    """One table: a ``title``, its column ``headers`` and ``rows`` of cells."""

    title: str
    headers: tuple[str, ...]
    rows: list[list[Cell]]
    #: relative column widths in print (``None``: the first wider, the rest equal)
    widths: tuple[float, ...] | None = None
    #: each column's number format in a workbook (``0.0``: one decimal shown, so CO's 1.0
    #: does not read as 1); ``None`` for a column or the whole: the spreadsheet's own
    formats: tuple[str | None, ...] | None = None


@dataclass(frozen=True)
class Report:
    """A report ready to render: title, period, tables, the statements on gaps and validity
    (``notes``) and the stations it holds (for the audit)."""

    kind: Kind
    title: str
    period: str
    tables: list[Table]
    notes: list[str]
    stations: tuple[str, ...] = ()
    #: the grades of the stations it holds, by station id
    grades: Mapping[str, Grade] = field(default_factory=dict)

    @property
    def grade(self) -> Grade:
        """The report's grade: its highest station grade (``public`` with none)."""
        return max(self.grades.values(), default=Grade.PUBLIC)


def exportable(principal: access.Principal, datasets: Iterable[Dataset]) -> dict[str, Grade]:
    """The stations (id → grade) whose data ``principal`` may download (``export``, as
    :func:`access.authorize` decides: anonymous callers public stations only)."""
    return {
        d.station: d.grade
        for d in datasets
        if d.station is not None and access.authorize(principal, Action.EXPORT, d)
    }


def publish(pollutant_key: str, value: float) -> float | int:
    """A concentration as published: HJ 633-2026 §4.2.2 input rounding (GB/T 8170 on the
    decimal spelling; whole µg/m³, CO to 0.1 mg/m³)."""
    decimals = 1 if pollutant_key.startswith("co_") else 0
    rounded: Decimal = aqi_std.round_gbt8170(value, decimals)
    return float(rounded) if decimals else int(rounded)


def _rows(frame: pd.DataFrame) -> Iterator[Any]:
    """The rows of ``frame`` as named tuples."""
    yield from frame.itertuples(index=False)


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


# ------------------------------------------------------------------------------ daily air
DAILY_HEADERS: Final = (
    "类型 Scope",
    "城市 City",
    "站点 Station",
    "空气质量指数 AQI",
    "首要污染物 Primary pollutant",
    "级别 Level",
    "类别 Category",
    "Category",
)


def _unit(key: str) -> str:
    return "mg/m³" if key.startswith("co_") else "μg/m³"


def daily_formats() -> tuple[str | None, ...]:
    """The daily table's number formats, column by column as :func:`daily_headers`: the
    concentrations as published (whole µg/m³, CO mg/m³ to 0.1), whole IAQIs and AQI."""
    out: list[str | None] = [None, None, None, "0", None, None, None, None]
    assert len(out) == len(DAILY_HEADERS)
    for _, key, _, _ in AIR_COLUMNS:
        out += ["0.0" if key.startswith("co_") else "0", "0"]
    out.append(None)
    return tuple(out)


def daily_headers() -> tuple[str, ...]:
    """The column headings of the daily table (concentration headings carry their unit)."""
    out: list[str] = list(DAILY_HEADERS)
    for label, key, _, _ in AIR_COLUMNS:
        out += [f"{label} ({_unit(key)})", f"{label} 分指数 IAQI"]
    out.append("有效小时 Valid hours")
    return tuple(out)


def daily_report(
    day: date,
    stations: pd.DataFrame,
    aggregates: pd.DataFrame,
    grades: Mapping[str, Grade] | None = None,
) -> Report:
    """The daily air-quality report of the bureau's ``day``.

    ``stations``: ``id, name, city`` of the air stations to report; ``aggregates``: the stored
    aggregates of that day (``scope, subject, parameter, period, value, count, valid``;
    ``P1D`` and ``P1D-MAX8H``) of those stations and of their cities; ``grades``: the stations'
    grades (for the report's grade).
    """
    by_key: dict[tuple[str, str, str, str], tuple[float, float, bool]] = {}
    for r in _rows(aggregates):
        by_key[(str(r.scope), str(r.subject), str(r.parameter), str(r.period))] = (
            float(r.value) if _present(r.value) else math.nan,
            float(r.count),
            bool(r.valid),
        )
    notes: list[str] = []
    rows: list[list[Cell]] = []
    subjects: list[tuple[str, str, str, str]] = []  # scope, subject, city, shown name
    cities = sorted({str(c) for c in stations["city"] if str(c)})
    for city in cities:
        subjects.append(("city", city, cities_std.bilingual(city), cities_std.bilingual(city)))
    for s in _rows(stations.sort_values(["city", "id"])):
        subjects.append(
            ("station", str(s.id), cities_std.bilingual(str(s.city)), f"{s.id} {s.name}")
        )
    for scope, subject, city, shown in subjects:
        concentrations: dict[str, float | None] = {}
        published: dict[str, float | int | None] = {}
        hours: list[int] = []
        own: list[str] = []  # this subject's statements
        for label, key, parameter, period in AIR_COLUMNS:
            found = by_key.get((scope, subject, parameter, period))
            if found is None or math.isnan(found[0]):
                concentrations[key], published[key] = None, None
                if period == "P1D":
                    hours.append(0)
                    own.append(f"{shown} {label}: 0 of 24 hours valid (no daily value)")
                continue
            value, count, valid = found
            if period == "P1D":
                hours.append(int(count))
                if count < 24:
                    state = (
                        "daily mean valid"
                        if valid
                        else f"daily mean invalid: fewer than {MIN_VALID_HOURS} valid hours"
                    )
                    own.append(f"{shown} {label}: {int(count)} of 24 hours valid ({state})")
            elif not valid:
                own.append(f"{shown} {label}: not valid (too few valid 8-hour means)")
            concentrations[key] = value if valid else None
            published[key] = publish(key, value) if valid else None
        if not any(hours):
            own = [f"{shown}: 0 of 24 hours valid (no data) · 无有效数据"]
        notes += own
        if all(v is None for v in concentrations.values()):
            result = None
        else:
            result = aqi_std.aqi(
                {
                    k: (None if v is None else float(publish(k, v)))
                    for k, v in concentrations.items()
                },
                "daily",
            )
        # a city row is the city itself: its station column says so instead of repeating it
        row: list[Cell] = ["城市 City" if scope == "city" else "站点 Station", city]
        row.append(CITY_WIDE if scope == "city" else shown)
        if result is None or result.aqi is None:
            row += [NA, NA, NA, NA, NA]
            if result is not None:
                notes.append(
                    f"{shown}: AQI not published (HJ 633-2026 §5.3.1: "
                    f"{', '.join(result.missing)} missing and the others' AQI ≤ 100)"
                )
        else:
            assert result.level is not None and result.category is not None
            primary = "、".join(_pollutant_label(p) for p in result.primary) or NA
            row += [result.aqi, primary, result.level, result.category["zh"], result.category["en"]]
        for _, key, _, _ in AIR_COLUMNS:
            shown_value = published.get(key)
            score = None if result is None else result.iaqi.get(key)
            row += [NA if shown_value is None else shown_value, NA if score is None else score]
        row.append(f"{min(hours)}/24" if hours else NA)
        rows.append(row)
    station_ids = tuple(str(s) for s in stations["id"])
    if not station_ids:
        notes.append("No station may be shown in this report. · 无可显示的站点。")
    notes.insert(
        0,
        "Concentrations rounded per HJ 633-2026 §4.2.2 (GB/T 8170): μg/m³ whole numbers, CO "
        "mg/m³ to 0.1; IAQI and AQI rounded up (§4.2.6). Valid hours: the fewest of the "
        "pollutants' valid hours that day; a daily mean needs 20 (GB 3095-2026 Table 4). · "
        "浓度按 HJ 633-2026 修约；日均值至少需 20 个有效小时。",
    )
    return Report(
        "daily",
        "空气质量日报 Daily air quality report",
        day.isoformat(),
        [
            Table(
                "空气质量指数 AQI (HJ 633-2026)",
                daily_headers(),
                rows,
                (1.1, 1.1, 1.8, *([1.0] * (len(daily_headers()) - 3))),
                daily_formats(),
            )
        ],
        notes,
        station_ids,
        dict(grades or {}),
    )


def _pollutant_label(key: str) -> str:
    for label, k, _, _ in AIR_COLUMNS:
        if k == key:
            return label
    return key


# --------------------------------------------------------------------------- monthly water
MONTHLY_HEADERS: Final = (
    "站点 Station",
    "水质类别 Class",
    "目标类别 Target class",
    "超标项目 Items exceeding the target (times over)",
    "上月类别 Last month",
    "变化 Change",
    "有数据天数 Days with data",
)


def _class(value: Any) -> int | None:
    """A stored class (1–6) or ``None`` (missing, NA)."""
    if value is None or value is pd.NA or not _present(value):
        return None
    return int(value)


def _change(now: int | None, before: int | None) -> str:
    if now is None or before is None:
        return "无法比较 no comparison"
    if now < before:
        return "好转 better"
    if now > before:
        return "变差 worse"
    return "持平 unchanged"


def _water_name(code: str) -> str:
    """A water parameter by name in both languages (``高锰酸盐指数 Permanganate index (CODMn)``,
    ``pH值 pH``), never its code; an unknown code as it is."""
    try:
        p = parameters.lookup(code, "water")
    except (KeyError, ValueError):
        return code
    return f"{p.name_zh} {p.name_en}"


def monthly_report(
    month: date,
    stations: pd.DataFrame,
    classes: pd.DataFrame,
    previous: pd.DataFrame,
    means: pd.DataFrame,
    days_in_month: int,
    grades: Mapping[str, Grade] | None = None,
) -> Report:
    """The surface-water quality report of ``month`` (its first day).

    ``stations``: ``id, name, water_body, target_class`` of the water stations; ``classes`` and
    ``previous``: the ``water-monthly`` assessments (``subject, value``) of the month and of
    the month before; ``means``: the month's ``P1M`` aggregates (``subject, parameter, value,
    count``; ``count`` the days with data); ``days_in_month``: the month's length.
    """
    now = {str(r.subject): r.value for r in _rows(classes)}
    before = {str(r.subject): r.value for r in _rows(previous)}
    notes: list[str] = [
        "Classes per GB 3838-2002 single-factor evaluation of the monthly means (worst basic "
        "item); times over = (mean − target-class limit) / limit. · 按 GB 3838-2002 单因子评价。"
    ]
    rows: list[list[Cell]] = []
    mean_rows: list[list[Cell]] = []
    shown_parameters = sorted(
        {str(p) for p in means["parameter"]} if len(means) else set(),
        key=lambda p: (
            water_std.STREAM_PARAMETERS.index(p) if p in water_std.STREAM_PARAMETERS else 999
        ),
    )
    for s in _rows(stations.sort_values("id")):
        sid = str(s.id)
        shown = f"{sid} {s.name}"
        target = int(s.target_class) if _present(s.target_class) else 3
        body: water_std.WaterBody = "lake" if str(s.water_body) == "lake" else "river"
        own = means[means["subject"] == sid] if len(means) else means
        values = {
            str(r.parameter): float(r.value)
            for r in _rows(own)
            if _present(r.value) and str(r.parameter) in water_std.STREAM_PARAMETERS
        }
        days = int(own["count"].max()) if len(own) else 0
        this, last = _class(now.get(sid)), _class(before.get(sid))
        exceeding = NA
        if values:
            found = water_std.classify(
                {water_std.DICTIONARY_CODES.get(k, k): v for k, v in values.items()}, body, target
            )
            if found.exceedances:
                exceeding = "; ".join(
                    f"{_water_name(p)} ({x:.2f})" for p, x in sorted(found.exceedances.items())
                )
            else:
                exceeding = "无 none"
        if this is None:
            notes.append(f"{shown}: no class this month (no data) · 本月无数据")
        if days < days_in_month:
            notes.append(f"{shown}: {days} of {days_in_month} days with data")
        rows.append(
            [
                shown,
                NA if this is None else ROMAN[this],
                ROMAN[target],
                exceeding,
                NA if last is None else ROMAN[last],
                _change(this, last),
                f"{days}/{days_in_month}",
            ]
        )
        mean_rows.append(
            [
                shown,
                *(
                    NA if p not in values else water_std.publish(p, values[p])
                    for p in shown_parameters
                ),
            ]
        )
    tables = [
        Table(
            "地表水水质类别 Water class (GB 3838-2002)",
            MONTHLY_HEADERS,
            rows,
            (2.0, 1.0, 1.0, 3.0, 1.0, 1.2, 1.0),
        )
    ]
    if shown_parameters:
        notes.append(
            "Monthly means rounded for publication (GB/T 8170): pH to 0.01, the others to the "
            "precision of their GB 3838-2002 Table 1 limits (at least 0.1). · 月均值修约：pH 保留"
            "两位小数，其余按 GB 3838-2002 表 1 限值的精度（至少一位小数）。"
        )
        tables.append(
            Table(
                "月均值 Monthly means (mg/L; pH dimensionless)",
                ("站点 Station", *(_water_name(p) for p in shown_parameters)),
                mean_rows,
            )
        )
    station_ids = tuple(str(s) for s in stations["id"])
    if not station_ids:
        notes.append("No station may be shown in this report. · 无可显示的站点。")
    return Report(
        "monthly",
        "地表水水质月报 Monthly surface-water quality report",
        f"{month.year:04d}-{month.month:02d}",
        tables,
        notes,
        station_ids,
        dict(grades or {}),
    )


def station_frame(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> pd.DataFrame:
    """A frame of station rows with exactly ``columns`` (empty when there are none)."""
    return pd.DataFrame(list(rows), columns=list(columns))
