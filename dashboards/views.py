"""Pure helpers of the dashboard: station states, colours, the offline base map, the deck spec."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any, Final

import pandas as pd
import pydeck as pdk
from pandas.io.formats.style import Styler

from dashboards.i18n import lang, tr
from dashboards.palettes import STATUS
from sensors.errors import UnknownParameterError
from sensors.parameters import Domain, lookup

#: state → (label zh, label en, RGB: the colour-blind-safe :data:`dashboards.palettes.STATUS`)
STATES: Final[dict[str, tuple[str, str, tuple[int, int, int]]]] = {
    "online": ("在线", "online", STATUS["online"]),
    "delayed": ("延迟", "delayed", STATUS["delayed"]),
    "offline": ("离线", "offline", STATUS["offline"]),
    "no_data": ("无数据", "no data", STATUS["no_data"]),
    "sampled": ("采样点", "sampled", STATUS["sampled"]),
}


def state_name(state: str) -> str:
    """A station state's name in the current language (``离线`` / ``offline``)."""
    zh, en, _ = STATES[state]
    return tr(en, zh)


ONLINE_WITHIN: Final = timedelta(minutes=5)
OFFLINE_AFTER: Final = timedelta(hours=1)


def station_state(latest: datetime | None, now: datetime, kind: str = "air") -> str:
    """``online`` (data within 5 min), ``delayed`` (within 1 h), ``offline`` or ``no_data``;
    ``sampled`` for a station of a kind that is sampled, not streaming (a soil sampling point
    is never "offline": :func:`sensors.stations.is_continuous`)."""
    from sensors.stations import is_continuous

    if not is_continuous(kind):
        return "sampled"
    if latest is None or pd.isna(latest):
        return "no_data"
    age = now - latest
    if age <= ONLINE_WITHIN:
        return "online"
    if age <= OFFLINE_AFTER:
        return "delayed"
    return "offline"


def station_table(
    stations: pd.DataFrame, latest: pd.DataFrame, now: datetime | None = None
) -> pd.DataFrame:
    """Stations (id, name, kind, lon, lat) with their last reading time, state and colour."""
    now = now or datetime.now(UTC)
    last = (
        latest.groupby("station")["time"].max()
        if not latest.empty
        else pd.Series(dtype="datetime64[ns, UTC]")
    )
    out = stations.copy()
    out["last_time"] = out["id"].map(last)
    out["state"] = [
        station_state(t if not pd.isna(t) else None, now, str(k))
        for t, k in zip(out["last_time"], out["kind"], strict=True)
    ]
    out["colour"] = [[*list(STATES[s][2]), 230] for s in out["state"]]
    out["state_label"] = [state_name(s) for s in out["state"]]
    return out


@lru_cache(maxsize=1)
def basemap() -> dict[str, Any]:
    """China's provincial divisions and neighbouring countries (Natural Earth, shipped)."""
    text = resources.files("dashboards").joinpath("data/china_provinces.geojson").read_text("utf-8")
    doc: dict[str, Any] = json.loads(text)
    return doc


#: Sea colour of the offline map.
SEA: Final = "#dcebf5"


def map_style(tile_url: str | None = None) -> dict[str, Any]:
    """The MapLibre style under the layers: a plain sea, and raster tiles when a tile server is
    configured (``tile_url`` like ``http://tiles.intranet/{z}/{x}/{y}.png``).

    A style is always given: without one the chart would ask an internet tile service for its
    default style, which an intranet cannot reach.
    """
    style: dict[str, Any] = {
        "version": 8,
        "sources": {},
        "layers": [{"id": "sea", "type": "background", "paint": {"background-color": SEA}}],
    }
    if tile_url:
        style["sources"]["tiles"] = {"type": "raster", "tiles": [tile_url], "tileSize": 256}
        style["layers"].append({"id": "tiles", "type": "raster", "source": "tiles"})
    return style


def style_url(style: dict[str, Any]) -> str:
    """A style as a ``data:`` URL, so that the browser loads it without any server."""
    raw = json.dumps(style, separators=(",", ":")).encode()
    return "data:application/json;base64," + base64.b64encode(raw).decode()


def deck(
    stations: pd.DataFrame,
    selected: str | None = None,
    tile_url: str | None = None,
    fit: bool = False,
) -> pdk.Deck:
    """The map: the shipped base map, optional tiles, and stations coloured by state; with
    ``fit``, the view fits the stations (a site's boreholes) instead of all of China."""
    layers = [
        pdk.Layer(  # province outlines; filled unless tiles are drawn beneath
            "GeoJsonLayer",
            basemap(),
            id="basemap",
            stroked=True,
            filled=not tile_url,
            get_fill_color="properties.kind == 'province' ? [245, 241, 230] : [228, 228, 228]",
            get_line_color=[120, 120, 120],
            line_width_min_pixels=0.6,
            pickable=False,
        ),
        pdk.Layer(
            "ScatterplotLayer",
            stations,
            id="stations",
            get_position=["lon", "lat"],
            get_fill_color="colour",
            get_line_color=[40, 40, 40],
            stroked=True,
            line_width_min_pixels=1,
            radius_min_pixels=6,
            radius_max_pixels=14,
            get_radius=20000,
            pickable=True,
        ),
    ]
    if selected is not None and not stations.empty:
        chosen = stations[stations["id"] == selected]
        layers.append(
            pdk.Layer(
                "ScatterplotLayer",
                chosen,
                id="selected",
                get_position=["lon", "lat"],
                get_fill_color=[0, 0, 0, 0],
                get_line_color=[0, 90, 200],
                stroked=True,
                filled=False,
                line_width_min_pixels=3,
                radius_min_pixels=11,
                get_radius=30000,
            )
        )
    return pdk.Deck(
        layers=layers,
        initial_view_state=_fitted(stations)
        if fit and not stations.empty
        else pdk.ViewState(longitude=104.5, latitude=35.5, zoom=3.1),
        map_style=style_url(map_style(tile_url)),
        map_provider=None,
        tooltip={"text": "{name}\n{id}\n{state_label}"},
    )


def _fitted(stations: pd.DataFrame) -> pdk.ViewState:
    """A view that shows every station of ``stations`` (``lon``, ``lat``)."""
    import math

    west, east = float(stations["lon"].min()), float(stations["lon"].max())
    south, north = float(stations["lat"].min()), float(stations["lat"].max())
    span = max(east - west, north - south, 0.002)
    return pdk.ViewState(
        longitude=(west + east) / 2,
        latitude=(south + north) / 2,
        zoom=max(1.0, min(17.0, math.log2(360 / span) - 0.5)),
    )


def time_format(index: pd.Index) -> str:
    """The d3 time format of a chart's time axis over ``index``: real times, never the
    ":01 :02" seconds ticks a short span gets by default — ``%H:%M`` within two days,
    ``%m-%d %H:%M`` within two weeks, ``%Y-%m-%d`` within a year and a half, ``%Y-%m`` after."""
    if len(index) < 2:
        return "%Y-%m-%d %H:%M"
    span = pd.Timestamp(index.max()) - pd.Timestamp(index.min())
    if span <= pd.Timedelta(days=2):
        return "%H:%M"
    if span <= pd.Timedelta(days=14):
        return "%m-%d %H:%M"
    if span <= pd.Timedelta(days=550):
        return "%Y-%m-%d"
    return "%Y-%m"


def time_chart(
    frame: pd.DataFrame,
    *,
    y_label: str,
    x_label: str,
    mark: str = "line",
    fmt: str | None = None,
    stack: bool = True,
) -> Any:
    """An Altair chart of ``frame`` (index: naive local times; one series per column) whose
    time axis reads real times (:func:`time_format`, or ``fmt``), with a tooltip giving the
    full time of each point; bars are stacked unless ``stack`` is false (then side by side)."""
    import altair as alt

    fmt = fmt or time_format(frame.index)
    long = (
        frame.rename_axis("time")
        .reset_index()
        .melt(id_vars="time", var_name="series", value_name="value")
        .dropna(subset=["value"])
    )
    long["series"] = long["series"].astype(str)
    chart = alt.Chart(long)
    base = chart.mark_bar() if mark == "bar" else chart.mark_line(point=len(frame) < 60)
    return base.encode(
        x=alt.X("time:T", title=x_label, axis=alt.Axis(format=fmt, labelOverlap=True)),
        y=alt.Y("value:Q", title=y_label),
        color=alt.Color("series:N", title=None),
        xOffset="series:N" if mark == "bar" and not stack else alt.Undefined,
        tooltip=[
            alt.Tooltip("time:T", format="%Y-%m-%d %H:%M:%S", title=tr("time", "时间")),
            alt.Tooltip("series:N", title=tr("series", "系列")),
            alt.Tooltip("value:Q", format=",.4~g", title=y_label),
        ],
    )


def parameter_name(code: str, domain: Domain | None = None) -> str:
    """A parameter's name in the current language: ``细颗粒物 PM2.5`` / ``PM2.5``; an unknown
    code as it is."""
    try:
        p = lookup(code, domain) if domain else lookup(code)
    except (UnknownParameterError, KeyError, ValueError):
        return code
    return tr(p.name_en, p.name_zh)


#: the symbols of the AQI pollutants, written beside their Chinese names (as bulletins do)
SYMBOLS: Final = {
    "so2": "SO₂",
    "no2": "NO₂",
    "co": "CO",
    "o3": "O₃",
    "pm10": "PM10",
    "pm25": "PM2.5",
}


#: units as :mod:`sensors.units` writes them (ASCII) → as a reader writes them
_UNIT_TEXT: Final = (
    ("degC", "°C"),
    ("deg", "°"),
    ("ug", "µg"),
    ("uS", "µS"),
    ("m3", "m³"),
)


def unit_label(unit: str) -> str:
    """A unit for reading: ``ug/m3`` → ``µg/m³``, ``degC`` → ``°C``, ``mg/m3`` → ``mg/m³``,
    ``Nm3/h`` → ``Nm³/h``, ``uS/cm`` → ``µS/cm``; ``pH`` (no unit) → an empty text."""
    if unit == "pH":
        return ""
    for ascii_text, shown in _UNIT_TEXT:
        unit = unit.replace(ascii_text, shown)
    return unit


def reading_value(value: Any) -> Any:
    """A reading rounded for reading: three significant figures (35.127 → 35.1, 7.979 →
    7.98, 0.8534 → 0.853), whole numbers from 1000 up; a missing value as it is."""
    if value is None or pd.isna(value):
        return value
    v = float(value)
    return float(round(v)) if abs(v) >= 1000 else float(f"{v:.3g}")


def parameter_label(code: str) -> str:
    """A parameter's name and unit in the current language: ``PM2.5 (µg/m³)`` in English,
    ``细颗粒物 PM2.5 (µg/m³)`` in Chinese (an AQI pollutant's symbol beside its name), for
    ``pm25`` (:func:`unit_label`); an unknown code as it is."""
    try:
        p = lookup(code)
    except (UnknownParameterError, KeyError, ValueError):
        return code
    symbol = SYMBOLS.get(p.code)
    zh = f"{p.name_zh} {symbol}" if symbol else p.name_zh
    unit = unit_label(p.unit)
    return f"{tr(p.name_en, zh)} ({unit})" if unit else tr(p.name_en, zh)


def default_choice(latest: pd.DataFrame, station_ids: list[str]) -> tuple[str | None, str | None]:
    """The station and parameter the dashboard opens on: a station that is sending now — of
    those whose latest reading is within an hour of the newest, the first (by id) measuring
    PM2.5, else the first — and its first parameter, PM2.5 when it has one. (A station imported
    from an old file, however early its id sorts, is not what a live page opens on.)"""
    if latest.empty:
        return (station_ids[0] if station_ids else None), None
    newest = pd.to_datetime(latest["time"], utc=True).groupby(latest["station"]).max()
    current = sorted(newest.index[newest >= newest.max() - pd.Timedelta(hours=1)])
    with_pm25 = set(latest.loc[latest["parameter"] == "pm25", "station"])
    station = next((s for s in current if s in with_pm25), current[0])
    params = sorted(set(latest.loc[latest["station"] == station, "parameter"]))
    return station, ("pm25" if "pm25" in params else params[0])


# --------------------------------------------------------------------------- AQI, water, soil
#: Grey for a station without an AQI (NA, or no data yet).
NO_AQI: Final = (170, 170, 170)
ROMAN: Final = {1: "Ⅰ", 2: "Ⅱ", 3: "Ⅲ", 4: "Ⅳ", 5: "Ⅴ", 6: "劣Ⅴ"}
#: GB 15618-2018 risk class → (Chinese, English) name
RISK_NAMES: Final = {
    "priority_protection": ("优先保护类", "priority protection"),
    "safe_use": ("安全利用类", "safe use"),
    "strict_control": ("严格管控类", "strict control"),
}


#: GB 15618-2018 land uses → (Chinese, English) name
LAND_USES: Final = {
    "paddy": ("水田", "paddy"),
    "orchard": ("果园", "orchard"),
    "other": ("其他", "other"),
}


def land_use_label(key: Any) -> str:
    """A soil sample's land use in the current language; an unknown one as it is."""
    found = LAND_USES.get(str(key))
    return str(key or "—") if found is None else tr(found[1], found[0])


def risk_label(key: Any) -> str:
    """A soil risk class in the current language; ``—`` for none."""
    found = RISK_NAMES.get(str(key)) if isinstance(key, str) else None
    return "—" if found is None else tr(found[1], found[0])


def aqi_colour(level: Any) -> list[int]:
    """RGBA of an AQI level's category colour (HJ 633 Table 1), grey without a level."""
    from sensors.standards.aqi import CATEGORIES

    if level is None or pd.isna(level):
        return [*NO_AQI, 230]
    hex_colour = CATEGORIES[int(level)][3]
    return [int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)] + [230]


def category_label(level: Any) -> str:
    """An AQI category's words in the current language: ``良`` / ``Good`` for level 2; ``—``
    without a level (the words always stand beside the category's colour)."""
    from sensors.standards.aqi import CATEGORIES

    if level is None or pd.isna(level):
        return "—"
    _, zh, en, _ = CATEGORIES[int(level)]
    return tr(en, zh)


def latest_per_subject(frame: pd.DataFrame) -> pd.DataFrame:
    """The row with the latest ``start`` of each ``subject``."""
    if frame.empty:
        return frame
    return frame.sort_values("start").groupby("subject", as_index=False).tail(1)


#: a station's latest complete hour is shown in its colour until it ended more than this ago
STALE_AFTER: Final = timedelta(hours=2)


def is_stale(start: Any, now: datetime) -> bool:
    """Whether the complete hour starting at ``start`` is too old to be "current": it ended
    (``start + 1 h``) more than :data:`STALE_AFTER` before ``now``; no hour at all is stale."""
    if start is None or pd.isna(start):
        return True
    return bool(now - (pd.Timestamp(start) + pd.Timedelta(hours=1)) > STALE_AFTER)


def current_rows(frame: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """The rows of ``frame`` (with a ``start``) whose complete hour is not stale
    (:func:`is_stale`); an empty frame keeps its columns."""
    if frame.empty:
        return frame
    return frame[[not is_stale(t, now) for t in frame["start"]]]


def hour_label(start: Any, tz: Any) -> str:
    """``2026-12-02 10:00–11:00 CST``: the hour starting at ``start`` in the zone ``tz``."""
    if start is None or pd.isna(start):
        return "—"
    t = pd.Timestamp(start).tz_convert(tz)
    return f"{t:%Y-%m-%d %H:%M}–{t + pd.Timedelta(hours=1):%H:%M} {t.tzname()}"


def shown_hours(starts: pd.Series, tz: Any) -> str:
    """What a view's caption says about the hours it shows, in the current language: ``Hour
    shown: 2026-12-02 10:00–11:00 CST``, and how many subjects show an earlier hour when they
    differ."""
    head = tr("Hour shown", "时段")
    if starts.empty:
        return f"{head}: —"
    newest = starts.max()
    older = int((starts < newest).sum())
    text = f"{head}: {hour_label(newest, tz)}"
    if older:
        text += tr(f" ({older} earlier)", f"（{older} 个更早）")
    return text


def alert_period(parameter: str, details: Any, tz: Any) -> str:
    """The hour or day an alert's value belongs to, in the zone ``tz``: ``2026-12-02
    10:00–11:00 CST`` for an hourly value, ``2026-12-01`` for a daily one (parameter ``P1D``
    or ``…_24h``); ``—`` when the alert names none (offline, flatline…)."""
    start = (details or {}).get("start")
    if not start:
        return "—"
    t = pd.Timestamp(start)
    if parameter == "P1D" or parameter.endswith("_24h"):
        return f"{t.tz_convert(tz):%Y-%m-%d}"
    return hour_label(t, tz)


def aqi_stations(
    stations: pd.DataFrame,
    latest: pd.DataFrame,
    now: datetime | None = None,
    tz: Any = UTC,
) -> pd.DataFrame:
    """Stations (id, name, kind, lon, lat) with their latest complete hourly AQI (``latest``:
    one row per subject, as :func:`store.derived.latest_complete_hours` reads them): ``aqi``,
    ``level``, ``hour`` (its label in ``tz``), ``stale`` (the hour ended more than
    :data:`STALE_AFTER` ago), ``colour`` (the category's; grey when stale or without an AQI)
    and ``state_label`` (for the map's tooltip)."""
    now = now or datetime.now(UTC)
    by = (
        latest.set_index("subject")
        if not latest.empty
        else pd.DataFrame(columns=["value", "level", "label", "start"])
    )
    out = stations.copy()
    out["aqi"] = out["id"].map(by["value"]) if not by.empty else pd.NA
    out["level"] = out["id"].map(by["level"]) if not by.empty else pd.NA
    out["primary"] = (
        out["id"].map(by["label"]).fillna("").map(primary_label) if not by.empty else ""
    )
    starts = out["id"].map(by["start"]) if not by.empty else pd.Series(pd.NaT, index=out.index)
    out["hour"] = [hour_label(t, tz) for t in starts]
    out["stale"] = [is_stale(t, now) for t in starts]
    out["colour"] = [
        aqi_colour(None if stale else v)
        for v, stale in zip(out["level"], out["stale"], strict=True)
    ]
    out["state_label"] = [
        f"AQI {'NA' if pd.isna(a) else int(a)} · {category_label(lv)}"
        + (f" · {p}" if p else "")
        + f" · {h}"
        + (f" · {tr('out of date', '数据过旧')}" if stale and h != "—" else "")
        for a, lv, p, h, stale in zip(
            out["aqi"], out["level"], out["primary"], out["hour"], out["stale"], strict=True
        )
    ]
    return out


def city_label(city: str) -> str:
    """A city by name in the current language (``郑州`` / ``Zhengzhou``;
    :func:`sensors.cities.label`)."""
    from sensors import cities

    return cities.label(city, lang())


#: the roles (:class:`access.Role`, by their CLI names) by their Chinese names, as the duty
#: pages name them (值班员（operator）, 审核员（reviewer）, 分析员)
ROLE_NAMES_ZH: Final = {
    "viewer": "查看员",
    "analyst": "分析员",
    "reviewer": "审核员",
    "operator": "值班员",
    "admin": "管理员",
}


def role_label(role: Any) -> str:
    """A role (:class:`access.Role`, or its name) in the current language: ``值班员`` /
    ``operator``; ``—`` for none."""
    if role is None:
        return "—"
    name = str(getattr(role, "label", role))
    return tr(name, ROLE_NAMES_ZH.get(name, name))


#: a stored name written in both languages, Chinese first: ``郑州空气站（模拟） Zhengzhou air
#: (simulated)``, ``济南钢厂 Jinan steel``
_BILINGUAL: Final = re.compile(
    r"^(?P<zh>[^A-Za-z]*[\u3400-\u9fff][^A-Za-z]*?)\s+(?P<en>[A-Za-z].*)$"
)


def station_name(name: Any) -> str:
    """A station's (or plant's) stored name in the current language: the Chinese or the
    English half of a name written in both (``郑州空气站（模拟）`` / ``Zhengzhou air
    (simulated)``), any other name as it is."""
    text = "" if name is None or (isinstance(name, float) and name != name) else str(name)
    found = _BILINGUAL.match(text.strip())
    if found is None:
        return text.strip()
    return tr(found["en"].strip(), found["zh"].strip())


def station_label(sid: Any, names: Mapping[str, Any]) -> str:
    """A station (or plant) by name, its id beside it: ``郑州空气站（模拟） (SIM-ZHENGZHOU)``;
    the id alone when ``names`` has none (an empty text for none)."""
    if sid is None or sid == "" or (isinstance(sid, float) and sid != sid):
        return ""
    name = station_name(names.get(str(sid)))
    return f"{name} ({sid})" if name and name != sid else str(sid)


def dashes(frame: pd.DataFrame, precision: int = 1) -> Styler:
    """``frame`` to show in ``st.dataframe`` with "—" for a missing value (not ``None``), the
    numbers kept numbers (they sort as numbers) and shown to ``precision`` decimals."""
    return frame.style.format(na_rep="—", precision=precision)


def primary_label(codes: str) -> str:
    """AQI primary pollutants (``pm10_1h``) by name in the current language: ``PM10 (1 h)`` /
    ``可吸入颗粒物（1小时）`` (:func:`sensors.alert_text.primary_names`)."""
    from sensors.alert_text import primary_names

    return primary_names(codes or "", lang())


def ranking(latest: pd.DataFrame, now: datetime | None = None, tz: Any = None) -> pd.DataFrame:
    """Subjects ranked from the cleanest air (lowest AQI) to the worst; NA last. With ``now``
    (and ``tz``), each row says its hour and the subjects whose hour is stale
    (:func:`is_stale`) are not ranked: they follow, marked out of date, without a rank. Column
    headings in the current language (``AQI`` in both)."""
    rank, city, category, primary, hour = (
        tr("rank", "排名"),
        tr("city", "城市"),
        tr("category", "类别"),
        tr("primary pollutant", "首要污染物"),
        tr("hour", "时段"),
    )
    columns = [rank, city, "AQI", category, primary]
    if now is not None:
        columns.append(hour)
    if latest.empty:
        return pd.DataFrame(columns=columns)
    stale = (
        pd.Series([is_stale(t, now) for t in latest["start"]], index=latest.index)
        if now is not None
        else pd.Series(False, index=latest.index)
    )
    ordered = (
        latest.assign(_stale=stale)
        .sort_values(["_stale", "value", "subject"], na_position="last")
        .reset_index(drop=True)
    )
    current = int((~ordered["_stale"]).sum())
    out = pd.DataFrame(
        {
            rank: pd.array(
                [i if i <= current else pd.NA for i in range(1, len(ordered) + 1)], dtype="Int64"
            ),
            city: ordered["subject"].map(city_label),
            "AQI": ordered["value"],
            category: [category_label(v) for v in ordered["level"]],
            primary: ordered["label"].map(primary_label).replace("", "—"),
        }
    )
    if now is not None:
        out[hour] = [
            hour_label(t, tz or UTC) + (f" · {tr('out of date', '数据过旧')}" if old else "")
            for t, old in zip(ordered["start"], ordered["_stale"], strict=True)
        ]
    return out


def daily_report(daily: pd.DataFrame, names: dict[str, str], tz: Any) -> pd.DataFrame:
    """The HJ 633 daily report table: per station and day the AQI, category, primary
    pollutants, each IAQI and the concentrations it was computed from, rounded for
    publication (:func:`sensors.standards.aqi.published`: µg/m³ whole, CO mg/m³ one
    decimal). Column headings in the current language (``AQI``, ``IAQI`` and pollutant codes
    in both)."""
    from sensors.standards.aqi import published

    rows = []
    for r in daily.to_dict("records"):
        details = r["details"] or {}
        row: dict[str, Any] = {
            tr("station / city", "站点/城市"): (
                r["subject"] if r["subject"] in names else city_label(r["subject"])
            ),
            tr("name", "名称"): names.get(r["subject"], ""),
            tr("date", "日期"): pd.Timestamp(r["start"]).tz_convert(tz).strftime("%Y-%m-%d"),
            "AQI": r["value"],
            tr("category", "类别"): category_label(r["level"]),
            tr("primary pollutant", "首要污染物"): primary_label(r["label"] or "") or "—",
        }
        for key in sorted(details):
            if key.startswith("c_"):
                continue
            row[f"IAQI {key}"] = details[key]
            row[key] = published(key, details.get(f"c_{key}"))
        rows.append(row)
    return pd.DataFrame(rows)


def water_class_table(latest: pd.DataFrame, names: Mapping[str, str], tz: Any) -> pd.DataFrame:
    """GB 3838-2002 classes (``latest``: one assessment row per station) as the water pages
    show them: station, name, period (its day in ``tz``), class in Roman numerals, the
    parameters worse than the target class and each parameter's class, by name."""
    return pd.DataFrame(
        {
            tr("station", "站点"): latest["subject"],
            tr("name", "名称"): latest["subject"].map(names),
            tr("period", "时段"): latest["start"].dt.tz_convert(tz).dt.strftime("%Y-%m-%d"),
            tr("class", "类别"): [
                ROMAN.get(int(v), "—") if pd.notna(v) else "—" for v in latest["value"]
            ],
            tr("worse than target (or a Table 2 limit)", "超标项目"): [
                tr(", ", "、").join(water_parameter_label(p) for p in str(e).split(",") if p) or "—"
                for e in latest["label"]
            ],
            tr("per parameter", "单项类别"): [
                tr(", ", "，").join(
                    f"{water_parameter_label(p)} {ROMAN[c]}"
                    for p, c in sorted(d.get("classes", {}).items())
                )
                for d in latest["details"]
            ],
        }
    )


def completeness(hourly: pd.DataFrame, hours: int) -> pd.DataFrame:
    """Per subject × parameter, the share (%) of the last ``hours`` hours with a valid hourly
    mean (GB 3095-2026 Table 4); NaN where the subject has no such parameter."""
    if hourly.empty:
        return pd.DataFrame()
    valid = hourly[hourly["valid"]].groupby(["subject", "parameter"]).size()
    share = (100.0 * valid / hours).clip(upper=100).round(1)
    table = share.unstack("parameter")
    measured = hourly.groupby(["subject", "parameter"]).size().unstack("parameter").notna()
    table = table.reindex(index=measured.index, columns=measured.columns).fillna(0.0)
    return table.where(measured)  # blank where a station does not measure the parameter


EMISSION_COLUMNS: Final = ("facility", "gas", "period", "start", "tonnes", "region", "sector")


def emission_table(rows: pd.DataFrame, tz: Any) -> pd.DataFrame:
    """Calculated emissions as stored (``subject, gas, period, start, tonnes, details``) →
    :data:`EMISSION_COLUMNS`, the start in the bureau's time zone, the facility's region and
    sector taken from the details the job recorded."""
    if rows.empty:
        return pd.DataFrame(columns=list(EMISSION_COLUMNS))
    details = rows["details"].map(lambda d: d or {})
    return pd.DataFrame(
        {
            "facility": rows["subject"].to_numpy(),
            "gas": rows["gas"].to_numpy(),
            "period": rows["period"].to_numpy(),
            "start": pd.DatetimeIndex(rows["start"]).tz_convert(tz),
            "tonnes": rows["tonnes"].to_numpy(dtype="float64"),
            "region": details.map(lambda d: d.get("region", "")).to_numpy(),
            "sector": details.map(lambda d: d.get("sector", "")).to_numpy(),
        }
    )


def emissions_by(table: pd.DataFrame, by: str, level: str = "province") -> pd.DataFrame:
    """Totals (t) per ``start`` and ``by`` (``sector``, or ``region`` rolled up to ``level``),
    wide: one column per sector or region."""
    from carbon.inventory import region_at

    if table.empty:
        return pd.DataFrame()
    frame = table
    if by == "region":
        frame = table.assign(region=table["region"].map(lambda r: region_at(r, level)))
        frame = frame.dropna(subset=["region"])
    wide = frame.pivot_table(index="start", columns=by, values="tonnes", aggfunc="sum")
    return wide.fillna(0.0)


def left_out_of(table: pd.DataFrame, level: str) -> pd.Series:
    """Facility → tonnes that :func:`emissions_by` at ``level`` leaves out of every region
    (the facility's region is coarser than ``level``: a province-level plant in a city view)."""
    from carbon.inventory import region_at

    if table.empty:
        return pd.Series(dtype="float64")
    coarse = table[table["region"].map(lambda r: region_at(r, level)).isna()]
    return coarse.groupby("facility")["tonnes"].sum()


def annual_of_region(table: pd.DataFrame, region: str) -> pd.Series:
    """Annual emissions (t) of the facilities inside ``region`` (any level), by year, from
    ``P1Y`` rows of one gas."""
    from carbon.regions import chain

    if table.empty:
        return pd.Series(dtype="float64")
    inside = table["region"].map(lambda r: region in chain(r))
    years = table[inside & (table["period"] == "P1Y")]
    return years.groupby(years["start"].map(lambda t: t.year))["tonnes"].sum()


def annual_by_part(table: pd.DataFrame, region: str) -> pd.DataFrame:
    """Annual emissions (t) of the facilities inside ``region`` from ``P1Y`` rows of one gas,
    year × part: the sub-region one level below ``region`` holding the facility (a province of
    ``CN``, a city of a province), or the facility itself when it sits at ``region``'s own
    level; NaN where a part has no emissions that year (:func:`carbon.targets.track_region`)."""
    from carbon.regions import chain

    if table.empty:
        return pd.DataFrame()

    def part(facility: Any, of: Any) -> str | None:
        regions = chain(str(of))
        if region not in regions:
            return None
        at = regions.index(region)
        return regions[at - 1] if at > 0 else str(facility)

    years = table[table["period"] == "P1Y"]
    if years.empty:
        return pd.DataFrame()
    parts = pd.Series(
        [part(f, r) for f, r in zip(years["facility"], years["region"], strict=True)],
        index=years.index,
        dtype="object",
    )
    inside = years.assign(part=parts, year=years["start"].map(lambda t: t.year)).dropna(
        subset=["part"]
    )
    if inside.empty:
        return pd.DataFrame()
    return inside.pivot_table(index="year", columns="part", values="tonnes", aggfunc="sum")


#: regional power grids (``grid:<name>`` regions of ``carbon/data/grid.csv``) → (Chinese,
#: English) name
GRIDS: Final = {
    "north": ("华北电网", "North China grid"),
    "northeast": ("东北电网", "Northeast China grid"),
    "east": ("华东电网", "East China grid"),
    "central": ("华中电网", "Central China grid"),
    "northwest": ("西北电网", "Northwest China grid"),
    "south": ("南方电网", "China Southern grid"),
    "southwest": ("西南电网", "Southwest China grid"),
}


@lru_cache(maxsize=1)
def region_names() -> dict[str, tuple[str, str]]:
    """Region code → (Chinese, English) name: ``CN`` and every province (ISO 3166-2 code), from
    the shipped admin layer (Natural Earth's ``name_zh``/``name_en``)."""
    names = {"CN": ("中国", "China")}
    for f in basemap()["features"]:
        props = f["properties"]
        if props.get("kind") == "province":
            names[props["code"]] = (props["name_zh"], props["name_en"])
    return names


def region_label(code: str) -> str:
    """A region by name in the current language: ``北京市`` / ``Beijing`` for ``CN-BJ``,
    ``中国`` / ``China`` for ``CN``, a city or county code with its province's name
    (``北京市 · 110105``), a regional grid by name; other codes as they are."""
    from carbon.regions import PROVINCES

    names = region_names()
    if code in names:
        zh, en = names[code]
        return tr(en, zh)
    if code.startswith("grid:") and code[5:] in GRIDS:
        zh, en = GRIDS[code[5:]]
        return tr(en, zh)
    province = PROVINCES.get(code[:2]) if len(code) == 6 and code.isdigit() else None
    if province in names:
        zh, en = names[province]
        return f"{tr(en, zh)} · {code}"
    return code


def sector_label(code: str) -> str:
    """A sector by name in the current language: ``公用电力和热力生产 (1.A.1.a)`` /
    ``Public electricity and heat production (1.A.1.a)`` (:func:`carbon.sectors.name`); a code
    without a name as it is."""
    from carbon.sectors import name

    found = name(code)
    return code if found is None else f"{tr(found[1], found[0])} ({code})"


def water_parameter_label(code: str) -> str:
    """A water parameter by name in the current language: ``高锰酸盐指数`` / ``Permanganate
    index (CODMn)`` for ``codmn``; an unknown code as it is."""
    try:
        p = lookup(code, "water")
    except UnknownParameterError:  # not a known parameter: show the code
        return code
    return tr(p.name_en, p.name_zh)


def target_chart(history: pd.Series, projection: pd.Series, required: pd.Series) -> pd.DataFrame:
    """The trajectory chart's frame: year → history, projection and required path (t), the
    columns named in the current language."""
    names = (tr("history", "历史"), tr("projection", "预测"), tr("required path", "目标路径"))
    frame = pd.DataFrame(dict(zip(names, (history, projection, required), strict=True)))
    if not history.empty and not projection.empty:  # join the projection to the last year
        frame.loc[history.index[-1], list(names[1:])] = history.iloc[-1]
    frame.index = frame.index.astype(int)
    return frame.sort_index()
