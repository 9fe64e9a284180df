"""Dashboard pages of the environment's other domains: noise (GB 3096-2008), development-land
site investigations (GB 36600-2018), the radiation environment (ambient gamma dose rate
against each station's background band; radionuclides from laboratories) and climate (ambient
greenhouse-gas concentrations beside a region's accounted emissions and its targets) and
natural ecology (regional NDVI, vegetation cover and NDWI, their trends, land-cover change).

They only read what the jobs computed (``store.derived``): the noise stations' hourly LAeq,
their days' Ld and Ln (``P1D-LD``, ``P1D-LN``) and the daily assessment ``noise-daily``; every
station shown is one the caller may read (:class:`dashboards.session.Viewer`), and showing it
is audited.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pandas as pd
import streamlit as st

from dashboards.i18n import lang, tr
from dashboards.session import Viewer, data_table, described, sign_in
from dashboards.settings import DashboardSettings
from dashboards.views import deck, parameter_name, station_label, time_chart, unit_label
from sensors.parameters import all_parameters
from sensors.standards import noise, radiation
from store import derived
from store.postgres import PostgresStore

#: a noise station's state on the map → (colour RGB, English, Chinese)
NOISE_STATES: Final[dict[str, tuple[tuple[int, int, int], str, str]]] = {
    "compliant": ((46, 125, 50), "compliant", "达标"),
    "exceeding": ((198, 40, 40), "exceeding", "超标"),
    "none": ((150, 150, 150), "not assessed", "未评价"),
}
#: the checks of a ``noise-daily`` assessment → (English, Chinese)
CHECKS: Final = {
    "day": ("day LAeq (Ld)", "昼间等效声级 Ld"),
    "night": ("night LAeq (Ln)", "夜间等效声级 Ln"),
    "night_max": ("night maximum (Lmax)", "夜间最大声级 Lmax"),
}


def state_of(assessment: Mapping[Any, Any] | None) -> str:
    """``compliant``, ``exceeding`` or ``none`` for a station's latest ``noise-daily`` row."""
    if assessment is None:
        return "none"
    return "exceeding" if str(assessment.get("label") or "") else "compliant"


def check_name(check: str) -> str:
    en, zh = CHECKS.get(check, (check, check))
    return tr(en, zh)


def noise_map_table(
    stations: pd.DataFrame, latest: pd.DataFrame, tz: Any
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The map's stations (``id, name, lon, lat, zone``; ``latest``: each one's latest
    ``noise-daily`` assessment) with ``colour`` and ``state_label``, and the same as a table
    in words: station, zone, day, state, the checks failed."""
    rows = {str(r["subject"]): r for r in latest.to_dict("records")} if len(latest) else {}
    out = stations.copy()
    states = [state_of(rows.get(str(s))) for s in out["id"]]
    out["colour"] = [[*NOISE_STATES[s][0], 230] for s in states]
    out["state_label"] = [tr(NOISE_STATES[s][1], NOISE_STATES[s][2]) for s in states]
    table = pd.DataFrame(
        {
            tr("station", "站点"): out["id"],
            tr("name", "名称"): out["name"],
            tr("zone", "功能区"): out["zone"].replace("", "—"),
            tr("day", "日期"): [
                pd.Timestamp(rows[str(s)]["start"]).tz_convert(tz).strftime("%Y-%m-%d")
                if str(s) in rows
                else "—"
                for s in out["id"]
            ],
            tr("state", "状态"): out["state_label"],
            tr("exceeded", "超标项"): [
                tr(", ", "、").join(
                    check_name(c) for c in str(rows[str(s)]["label"] or "").split(",") if c
                )
                or "—"
                if str(s) in rows
                else "—"
                for s in out["id"]
            ],
        }
    )
    return out, table


def exceedance_table(rows: pd.DataFrame, names: Mapping[str, str], tz: Any) -> pd.DataFrame:
    """One line per check failed in ``rows`` (``noise-daily`` assessments): station, day,
    check, level, limit and exceedance in dB(A), newest first."""
    lines = []
    for r in rows.sort_values("start", ascending=False).to_dict("records"):
        details = r["details"] or {}
        for check in str(r["label"] or "").split(","):
            found = details.get(check)
            if not check or not isinstance(found, Mapping):
                continue
            lines.append(
                {
                    tr("station", "站点"): station_label(r["subject"], names),
                    tr("day", "日期"): pd.Timestamp(r["start"]).tz_convert(tz).strftime("%Y-%m-%d"),
                    tr("zone", "功能区"): details.get("zone", "—"),
                    tr("check", "评价项"): check_name(check),
                    tr("level, dB(A)", "声级 dB(A)"): found.get("level"),
                    tr("limit, dB(A)", "限值 dB(A)"): found.get("limit"),
                    tr("over by, dB", "超标 dB"): found.get("exceedance_db"),
                }
            )
    return pd.DataFrame(lines)


def _noise_stations(store: PostgresStore, who: Viewer) -> pd.DataFrame:
    rows = [s for s in store.list_stations() if s.kind == "noise" and s.id in who.stations]
    return pd.DataFrame(
        [
            {
                "id": s.id,
                "name": s.name,
                "lon": s.lon,
                "lat": s.lat,
                "zone": str(s.attributes.get("noise_zone", "") or ""),
                "day_start": s.attributes.get("day_start", 6),
                "night_start": s.attributes.get("night_start", 22),
            }
            for s in rows
        ],
        columns=["id", "name", "lon", "lat", "zone", "day_start", "night_start"],
    )


def _limits(zone: str, hours: noise.Hours, local_hours: pd.Index) -> list[float | None]:
    """The zone's limit for each local hour (day or night); ``None`` without a valid zone."""
    try:
        day, night = noise.limit(zone, "day"), noise.limit(zone, "night")
    except ValueError:
        return [None] * len(local_hours)
    return [day if hours.period(int(h)) == "day" else night for h in local_hours]


def noise_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """Noise stations by compliance on the map, a station's day and night levels against its
    zone's limits, and the exceedances of the last 30 days."""
    tz = settings.timezone
    st.title(tr("Environmental noise (GB 3096-2008)", "声环境质量 (GB 3096-2008)"))
    now = datetime.now(UTC)
    stations = _noise_stations(store, who)
    st.caption(
        "  ".join(
            f"<span style='color:rgb{c}' aria-hidden='true'>●</span> {tr(en, zh)}"
            for c, en, zh in NOISE_STATES.values()
        ),
        unsafe_allow_html=True,
    )
    st.caption(
        tr(
            "Each station's latest day against its functional zone's day and night limits,"
            " and the night maximum (night limit + 15 dB).",
            "各站最近一日对照其声功能区昼间、夜间限值及夜间最大声级（夜间限值 + 15 dB）。",
        )
    )
    if stations.empty:
        st.info(tr("No noise stations yet.", "暂无声环境监测站。"))
        return
    ids = list(stations["id"])
    with store.connection() as conn:
        judged = derived.read_assessments(
            conn,
            kind="noise-daily",
            start=now - timedelta(days=30),
            end=now + timedelta(days=1),
            subjects=ids,
        )
    latest = judged.sort_values("start").groupby("subject").tail(1) if len(judged) else judged
    shown, table = noise_map_table(stations, latest, tz)
    what = tr("Map of the noise stations by compliance", "声环境监测站达标状况地图")
    st.pydeck_chart(deck(shown, None, settings.tile_url), height=420, alt=described(what))
    data_table(table, what, key="noise_map_table")
    names = dict(zip(stations["id"], stations["name"], strict=True))
    choice = st.selectbox(
        tr("Station", "站点"),
        ids,
        format_func=lambda s: station_label(s, names),
        key="noise_station",
    )
    station = stations[stations["id"] == choice].iloc[0]
    zone = str(station["zone"])
    try:
        hours = noise.Hours(int(station["day_start"]), int(station["night_start"]))
    except (TypeError, ValueError):
        hours = noise.DEFAULT_HOURS
    if zone:
        st.caption(
            tr(
                f"Zone {zone}: day limit {noise.limit(zone, 'day'):g}, night limit"
                f" {noise.limit(zone, 'night'):g} dB(A); day {hours.day_start:02d}:00–"
                f"{hours.night_start:02d}:00",
                f"{zone} 类声功能区：昼间限值 {noise.limit(zone, 'day'):g}、夜间限值"
                f" {noise.limit(zone, 'night'):g} dB(A)；昼间 {hours.day_start:02d}:00–"
                f"{hours.night_start:02d}:00",
            )
        )
    else:
        st.warning(
            tr(
                "This station has no functional zone (attribute noise_zone): its levels are "
                "not assessed.",
                "该站未设声功能区（属性 noise_zone），其声级未作评价。",
            )
        )
    with store.connection() as conn:
        frames = {
            period: derived.read_aggregates(
                conn,
                scope="station",
                period=period,
                start=now - timedelta(days=back),
                end=now + timedelta(days=1),
                subjects=[choice],
                parameters=["laeq"],
            )
            for period, back in (("PT1H", 2), ("P1D-LD", 30), ("P1D-LN", 30))
        }
    hourly = frames["PT1H"]
    hourly = hourly[hourly["valid"]]
    st.subheader(tr("Hourly LAeq, last 48 hours", "近 48 小时小时等效声级"))
    if hourly.empty:
        st.info(tr("No hourly levels yet.", "暂无小时声级。"))
    else:
        local = pd.DatetimeIndex(hourly["start"]).tz_convert(tz)
        series = pd.DataFrame(
            {
                "LAeq": hourly["value"].round(1).to_numpy(),
                tr("limit", "限值"): _limits(zone, hours, local.hour),
            },
            index=local.tz_localize(None),
        )
        what = tr("Hourly LAeq against the zone's limit", "小时等效声级与限值")
        st.altair_chart(
            time_chart(series, y_label="dB(A)", x_label=tr("hour", "小时")),
            width="stretch",
        )
        data_table(series.reset_index(names=tr("hour", "小时")), what, key="noise_hourly")
    st.subheader(tr("Day and night levels", "昼间与夜间声级"))
    ld, ln = frames["P1D-LD"], frames["P1D-LN"]
    if ld.empty and ln.empty:
        st.info(tr("No daily levels yet.", "暂无日声级。"))
    else:
        days = pd.DataFrame(
            {
                "Ld": ld.set_index("start")["value"].round(1),
                "Ln": ln.set_index("start")["value"].round(1),
            }
        )
        if zone:
            days[tr("day limit", "昼间限值")] = noise.limit(zone, "day")
            days[tr("night limit", "夜间限值")] = noise.limit(zone, "night")
        days.index = pd.DatetimeIndex(days.index).tz_convert(tz).tz_localize(None)
        what = tr("Day and night levels against the zone's limits", "昼夜声级与限值")
        st.altair_chart(
            time_chart(days, y_label="dB(A)", x_label=tr("day", "日期"), fmt="%Y-%m-%d"),
            width="stretch",
        )
        data_table(days.reset_index(names=tr("day", "日期")), what, key="noise_days")
    st.subheader(tr("Exceedances, last 30 days", "近 30 日超标记录"))
    exceeded = judged[judged["label"].astype(str) != ""] if len(judged) else judged
    if exceeded.empty:
        st.info(tr("No exceedance in the last 30 days.", "近 30 日无超标。"))
    else:
        st.dataframe(exceedance_table(exceeded, names, tz), hide_index=True, width="stretch")
    who.shown_stations(ids)


#: a development-land sample's risk (GB 36600-2018) → (colour RGB, English, Chinese)
SITE_RISKS: Final[dict[str, tuple[tuple[int, int, int], str, str]]] = {
    "below_screening": ((46, 125, 50), "at or below the screening values", "不超过筛选值"),
    "above_screening": ((239, 108, 0), "above a screening value", "超过筛选值"),
    "above_intervention": ((198, 40, 40), "above an intervention value", "超过管制值"),
}


def risk_name(risk: str) -> str:
    _colour, en, zh = SITE_RISKS.get(risk, ((150, 150, 150), risk, risk))
    return tr(en, zh)


def metal_name(item: str) -> str:
    """A GB 36600 item by name (``cr6`` is the soil's hexavalent chromium)."""
    return parameter_name("soil_cr6" if item == "cr6" else item, "soil")


def site_points(samples: pd.DataFrame, stations: pd.DataFrame) -> pd.DataFrame:
    """The sampling points of ``samples`` (the latest ``soil-development`` assessment of each
    station, a station being one depth of a point): per point its worst risk over its depths,
    where (``lon``, ``lat`` of its stations), the depths sampled and the items exceeded."""
    if samples.empty:
        return pd.DataFrame(columns=["id", "name", "lon", "lat", "risk", "depths", "exceeded"])
    where = stations.set_index("id")
    rows: dict[str, dict[str, Any]] = {}
    order = list(SITE_RISKS)
    for r in samples.to_dict("records"):
        details = r["details"] or {}
        point = str(details.get("point") or r["subject"])
        found = rows.setdefault(
            point,
            {
                "id": point,
                "name": point,
                "lon": where.loc[r["subject"], "lon"],
                "lat": where.loc[r["subject"], "lat"],
                "risk": "below_screening",
                "depths": [],
                "exceeded": set(),
            },
        )
        if order.index(str(r["label"])) > order.index(found["risk"]):
            found["risk"] = str(r["label"])
        if details.get("depth_m") is not None:
            found["depths"].append(float(details["depth_m"]))
        found["exceeded"].update(details.get("exceedances", {}))
    out = pd.DataFrame(list(rows.values()))
    out["depths"] = [", ".join(f"{d:g}" for d in sorted(ds)) or "—" for ds in out["depths"]]
    out["exceeded"] = [
        tr(", ", "、").join(metal_name(m) for m in sorted(e)) or "—" for e in out["exceeded"]
    ]
    out["colour"] = [[*SITE_RISKS[r][0], 230] for r in out["risk"]]
    out["state_label"] = [risk_name(r) for r in out["risk"]]
    return out.sort_values("id").reset_index(drop=True)


def site_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """Development-land sampling points (soil stations with a ``land_class``) on the map by
    their worst GB 36600-2018 risk over depths, and every sample by depth (soil points are
    ``sensitive``: signed-in readers only)."""
    tz = settings.timezone
    st.title(
        tr(
            "Development land: site investigations (GB 36600-2018)",
            "建设用地土壤调查 (GB 36600-2018)",
        )
    )
    st.caption(
        "  ".join(
            f"<span style='color:rgb{c}' aria-hidden='true'>●</span> {tr(en, zh)}"
            for c, en, zh in SITE_RISKS.values()
        ),
        unsafe_allow_html=True,
    )
    now = datetime.now(UTC)
    with store.connection() as conn:
        every = derived.read_assessments(
            conn,
            kind="soil-development",
            start=now - timedelta(days=3650),
            end=now + timedelta(days=1),
        )
    samples = every[every["subject"].isin(who.stations)] if len(every) else every
    if len(samples) < len(every) and not who.signed_in:
        st.info(
            tr(
                "🔒 Site investigations are sensitive data: sign in (in the sidebar) to see them.",
                f"🔒 建设用地调查数据为敏感数据，请在侧栏**{sign_in()}**后查看。",
            )
        )
    if samples.empty:
        if every.empty:
            st.info(
                tr(
                    "No site investigation yet: import a lab file of sampling points with"
                    " depth and land_class (see the README).",
                    "暂无建设用地调查：请导入含采样深度与用地类别（land_class）的实验室数据文件"
                    "（见 README）。",
                )
            )
        return
    latest = samples.sort_values("start").groupby("subject").tail(1)
    stations = pd.DataFrame(
        [
            {"id": s.id, "name": s.name, "lon": s.lon, "lat": s.lat}
            for s in store.list_stations()
            if s.id in set(latest["subject"])
        ],
        columns=["id", "name", "lon", "lat"],
    )
    sites = sorted({str((d or {}).get("site") or "—") for d in latest["details"]})
    site = st.selectbox(tr("Site", "地块"), sites, key="site_choice")
    latest = latest[[str((d or {}).get("site") or "—") == site for d in latest["details"]]]
    points = site_points(latest, stations)
    what = tr("Map of the sampling points by risk", "采样点风险地图")
    st.pydeck_chart(
        deck(points, None, settings.tile_url, fit=True), height=420, alt=described(what)
    )
    table = pd.DataFrame(
        {
            tr("point", "采样点"): points["id"],
            tr("depths, m", "深度 m"): points["depths"],
            tr("risk (worst depth)", "风险（最不利深度）"): points["state_label"],
            tr("items above a value", "超标项目"): points["exceeded"],
        }
    )
    data_table(table, what, key="site_points")
    st.subheader(tr("Samples by depth", "分层样品"))
    st.dataframe(
        pd.DataFrame(
            {
                tr("point", "采样点"): [
                    str((d or {}).get("point") or s)
                    for s, d in zip(latest["subject"], latest["details"], strict=True)
                ],
                tr("depth, m", "深度 m"): [(d or {}).get("depth_m") for d in latest["details"]],
                tr("land class", "用地类别"): [
                    (d or {}).get("land_class") for d in latest["details"]
                ],
                tr("sampled", "采样日期"): latest["start"]
                .dt.tz_convert(tz)
                .dt.strftime("%Y-%m-%d"),
                tr("risk", "风险"): [risk_name(str(v)) for v in latest["label"]],
                tr("ratio to screening value", "与筛选值之比"): [
                    ", ".join(
                        f"{k} {v:.2f}" for k, v in sorted((d or {}).get("ratios", {}).items())
                    )
                    for d in latest["details"]
                ],
            }
        ),
        hide_index=True,
        width="stretch",
    )
    who.shown_stations(latest["subject"])


#: a gamma dose rate against its station's background band → (colour RGB, English, Chinese)
GAMMA_STATES: Final[dict[str, tuple[tuple[int, int, int], str, str]]] = {
    "within": ((46, 125, 50), "within the background band", "本底范围内"),
    "below": ((21, 101, 192), "below the background band", "低于本底范围"),
    "above": ((198, 40, 40), "above the background band", "高于本底范围"),
    "none": ((150, 150, 150), "no recent hour", "无近期数据"),
}
#: the parameters measured by laboratories in Bq (radionuclides), by code
RADIONUCLIDES: Final = tuple(p.code for p in all_parameters() if "Bq" in p.unit)


def background_of(attributes: Mapping[str, Any]) -> tuple[float, float]:
    """A radiation station's background band (attribute ``background``, nGy/h), else the
    national open-field range (:data:`sensors.standards.radiation.NATIONAL_OPEN_FIELD`)."""
    band = attributes.get("background")
    try:
        low, high = (float(b) for b in band)  # type: ignore[union-attr]
        radiation.background_status([], (low, high))
        return low, high
    except (TypeError, ValueError):
        return radiation.NATIONAL_OPEN_FIELD


def gamma_map_table(
    stations: pd.DataFrame, latest: pd.DataFrame, tz: Any
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The radiation stations (``id, name, lon, lat, low, high``) coloured by their latest
    valid hourly dose rate (``latest``: ``subject, start, value``) against their band, and the
    same in words."""
    rows = {str(r["subject"]): r for r in latest.to_dict("records")} if len(latest) else {}
    out = stations.copy()
    states = []
    for sid, low, high in zip(out["id"], out["low"], out["high"], strict=True):
        row = rows.get(str(sid))
        found = (
            radiation.background_status([row["value"]], (low, high))[0] if row is not None else None
        )
        states.append(found or "none")
    out["status"] = states
    out["colour"] = [[*GAMMA_STATES[s][0], 230] for s in states]
    out["state_label"] = [tr(GAMMA_STATES[s][1], GAMMA_STATES[s][2]) for s in states]
    table = pd.DataFrame(
        {
            tr("station", "站点"): out["id"],
            tr("name", "名称"): out["name"],
            tr("hour", "时段"): [
                pd.Timestamp(rows[str(s)]["start"]).tz_convert(tz).strftime("%Y-%m-%d %H:00")
                if str(s) in rows
                else "—"
                for s in out["id"]
            ],
            tr("dose rate, nGy/h", "剂量率 nGy/h"): [
                round(float(rows[str(s)]["value"]), 1) if str(s) in rows else None
                for s in out["id"]
            ],
            tr("background band, nGy/h", "本底范围 nGy/h"): [
                f"{lo:g}–{hi:g}" for lo, hi in zip(out["low"], out["high"], strict=True)
            ],
            tr("state", "状态"): out["state_label"],
        }
    )
    return out, table


def radiation_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """Each radiation station's latest ambient gamma dose rate against its background band on
    the map, a station's hourly dose rate with its band over the last 7 days, the gamma alerts
    (internal: to those who may read alerts), and the latest laboratory radionuclide results
    of the stations the caller may read."""
    tz = settings.timezone
    st.title(tr("Radiation environment", "辐射环境"))
    st.caption(
        "  ".join(
            f"<span style='color:rgb{c}' aria-hidden='true'>●</span> {tr(en, zh)}"
            for c, en, zh in GAMMA_STATES.values()
        ),
        unsafe_allow_html=True,
    )
    st.caption(
        tr(
            "Ambient gamma dose rate (air absorbed dose rate, nGy/h; HJ 61-2021) of each "
            "station's latest complete hour, against the station's reference background band "
            "(the national open-field range 2.4–340.8 nGy/h where it has none).",
            "各站最近一个完整小时的γ辐射空气吸收剂量率（nGy/h；HJ 61-2021），对照该站的参考"
            "本底范围（未设时取全国原野本底 2.4–340.8 nGy/h）。",
        )
    )
    now = datetime.now(UTC)
    readable = [s for s in store.list_stations() if s.id in who.stations]
    gamma = [s for s in readable if s.kind == "radiation"]
    stations = pd.DataFrame(
        [
            {"id": s.id, "name": s.name, "lon": s.lon, "lat": s.lat}
            | dict(zip(("low", "high"), background_of(s.attributes), strict=True))
            for s in gamma
        ],
        columns=["id", "name", "lon", "lat", "low", "high"],
    )
    ids = list(stations["id"])
    if stations.empty:
        st.info(tr("No radiation stations yet.", "暂无辐射站。"))
    else:
        with store.connection() as conn:
            hourly = derived.read_aggregates(
                conn,
                scope="station",
                period="PT1H",
                start=now - timedelta(days=7),
                end=now,
                subjects=ids,
                parameters=["gamma"],
            )
        hourly = hourly[hourly["valid"] & hourly["value"].notna()]
        latest = hourly.sort_values("start").groupby("subject").tail(1)
        shown, table = gamma_map_table(stations, latest, tz)
        what = tr("Map of the radiation stations' dose rates", "辐射站剂量率地图")
        st.pydeck_chart(deck(shown, None, settings.tile_url), height=420, alt=described(what))
        data_table(table, what, key="gamma_map_table")
        st.dataframe(table, hide_index=True, width="stretch")
        names = dict(zip(stations["id"], stations["name"], strict=True))
        choice = st.selectbox(
            tr("Station", "站点"),
            ids,
            format_func=lambda s: station_label(s, names),
            key="radiation_station",
        )
        st.subheader(
            tr("Hourly dose rate and background band, last 7 days", "近 7 日小时剂量率与本底范围")
        )
        mine = hourly[hourly["subject"] == choice]
        if mine.empty:
            st.info(tr("No hourly dose rates yet.", "暂无小时剂量率。"))
        else:
            row = stations[stations["id"] == choice].iloc[0]
            series = pd.DataFrame(
                {
                    tr("dose rate", "剂量率"): mine["value"].round(1).to_numpy(),
                    tr("band low", "本底下限"): float(row["low"]),
                    tr("band high", "本底上限"): float(row["high"]),
                },
                index=pd.DatetimeIndex(mine["start"]).tz_convert(tz).tz_localize(None),
            )
            what = tr("Hourly dose rate against the background band", "小时剂量率与本底范围")
            st.altair_chart(
                time_chart(series, y_label="nGy/h", x_label=tr("hour", "小时")), width="stretch"
            )
            data_table(series.reset_index(names=tr("hour", "小时")), what, key="gamma_series")
    st.subheader(tr("Gamma alerts", "γ辐射告警"))
    if who.may("alerts"):
        from store import alerts as alert_store

        with store.connection() as conn:
            live = alert_store.list_alerts(conn, "live", stations=ids)
        live = [a for a in live if a["rule"] == "gamma"]
        if live:
            who.shown("alerts", {"alerts": len(live)})
            st.dataframe(
                pd.DataFrame(
                    {
                        tr("station", "站点"): [a["station"] for a in live],
                        tr("since", "开始"): [
                            pd.Timestamp(a["opened_at"]).tz_convert(tz).strftime("%Y-%m-%d %H:%M")
                            for a in live
                        ],
                        tr("state", "状态"): [
                            tr("acknowledged", "已确认")
                            if a["state"] == "acknowledged"
                            else tr("open", "未处理")
                            for a in live
                        ],
                        tr("dose rate, nGy/h", "剂量率 nGy/h"): [a["value"] for a in live],
                        tr("message", "内容"): [
                            a["message"] if lang() == "en" else a["message_zh"] for a in live
                        ],
                    }
                ),
                hide_index=True,
                width="stretch",
            )
        else:
            st.info(tr("No live gamma alert.", "当前无γ辐射告警。"))
    else:
        st.info(
            tr(
                "🔒 Alerts are internal data: sign in (in the sidebar) to see them.",
                f"🔒 告警为内部数据，请在侧栏**{sign_in()}**后查看。",
            )
            if not who.signed_in
            else tr("Your role may not read alerts.", "您的角色无权查看告警。")
        )
    st.subheader(tr("Radionuclides (laboratory)", "放射性核素（实验室分析）"))
    latest_lab = (
        pd.concat([store.latest(s.id) for s in readable], ignore_index=True)
        if readable
        else pd.DataFrame(columns=["station", "parameter", "unit", "time", "value"])
    )
    lab = latest_lab[latest_lab["parameter"].isin(RADIONUCLIDES)] if len(latest_lab) else latest_lab
    if lab.empty:
        st.info(
            tr(
                "No radionuclide results yet: import a laboratory file (aerosol, water or soil).",
                "暂无放射性核素结果：请导入实验室分析文件（气溶胶、水或土壤）。",
            )
        )
    else:
        names_all = {s.id: s.name for s in readable}
        st.dataframe(
            pd.DataFrame(
                {
                    tr("station", "站点"): [station_label(s, names_all) for s in lab["station"]],
                    tr("radionuclide", "核素"): [parameter_name(p) for p in lab["parameter"]],
                    tr("value", "数值"): lab["value"].to_numpy(),
                    tr("unit", "单位"): lab["unit"].map(unit_label).to_numpy(),
                    tr("sampled", "采样时间"): pd.to_datetime(lab["time"], utc=True)
                    .dt.tz_convert(tz)
                    .dt.strftime("%Y-%m-%d"),
                }
            ),
            hide_index=True,
            width="stretch",
        )
        who.shown_stations(lab["station"])
    who.shown_stations(ids)


#: the ambient greenhouse gases (the dictionary's codes), in the order shown
GHG: Final = ("co2", "ch4", "n2o")


def region_of(attributes: Mapping[str, Any]) -> str | None:
    """A station's region (attribute ``region``: ``CN``, an ISO 3166-2 province ``CN-TJ`` or a
    GB/T 2260 code) when the accounts know it; ``None`` otherwise."""
    from carbon.errors import CarbonError
    from carbon.regions import chain

    region = attributes.get("region")
    if not isinstance(region, str) or not region:
        return None
    try:
        chain(region)
    except CarbonError:
        return None
    return region


def climate_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """A region's measured greenhouse-gas concentrations (hourly means of its stations' CO₂,
    CH₄ and N₂O over the last week) beside its accounted emissions per year and its peak and
    neutrality targets (regional emissions are ``internal``: signed-in readers)."""
    from carbon.errors import CarbonError
    from carbon.regions import chain
    from carbon.targets import track_region
    from dashboards.views import annual_by_part, emission_table, region_label
    from store import activity

    tz = settings.timezone
    st.title(tr("Climate: greenhouse gases", "应对气候变化：温室气体"))
    st.caption(
        tr(
            "Ambient concentrations measured at the region's stations (CO2 in ppm, CH4 and N2O in "
            "ppb, dry air) beside the emissions its facilities' activity data account for, and "
            "its peak and neutrality targets.",
            "区域内监测站实测的环境温室气体浓度（CO2 单位 ppm，CH4、N2O 单位 ppb，干空气）"
            "与其排放单位活动数据核算的排放量及达峰、中和目标对照。",
        )
    )
    now = datetime.now(UTC)
    readable = [s for s in store.list_stations() if s.id in who.stations]
    with store.connection() as conn:
        daily = derived.read_aggregates(  # hourly means of the last week: the chart's
            conn,
            scope="station",
            period="PT1H",
            start=now - timedelta(days=7),
            end=now,
            subjects=[s.id for s in readable],
            parameters=list(GHG),
        )
        targets = {t.region: t for t in activity.load_targets(conn)}
    measuring = set(daily["subject"]) if len(daily) else set()
    stations = {s.id: s for s in readable if s.id in measuring}
    regions_of = {sid: region_of(s.attributes) for sid, s in stations.items()}
    regions = sorted(
        {r for sid, found in regions_of.items() if found for r in chain(found)} | set(targets)
    )
    if not regions:
        st.info(
            tr(
                "No greenhouse-gas measurements yet: stations measuring co2, ch4 or n2o with a"
                " region attribute (e.g. CN-TJ) appear here once the hourly job has run.",
                "暂无温室气体监测数据：测量 co2、ch4 或 n2o 且设有 region 属性（如 CN-TJ）的站点，"
                "在小时均值计算后显示于此。",
            )
        )
        return
    region = st.selectbox(
        tr("Region", "区域"),
        regions,
        index=next((i for i, r in enumerate(regions) if r != "CN"), 0),
        format_func=lambda r: f"{region_label(r)} ({r})",
        key="climate_region",
    )
    inside = [sid for sid, r in regions_of.items() if r and region in chain(r)]
    st.subheader(tr("Measured concentrations", "实测浓度"))
    mine = daily[daily["subject"].isin(inside) & daily["valid"]] if len(daily) else daily
    if mine.empty:
        st.info(
            tr("No station of this region measures greenhouse gases.", "该区域暂无温室气体监测站。")
        )
    else:
        who.shown_stations(inside)
        cols = st.columns(len(GHG))
        for col, gas in zip(cols, GHG, strict=True):
            of_gas = mine[mine["parameter"] == gas].sort_values("start")
            if of_gas.empty:
                col.metric(parameter_label_of(gas), "—")
                continue
            last = of_gas[of_gas["start"] == of_gas["start"].max()]["value"].mean()
            col.metric(parameter_label_of(gas), f"{last:,.1f}")
        gas = st.radio(
            tr("Gas", "气体"),
            [g for g in GHG if (mine["parameter"] == g).any()],
            horizontal=True,
            format_func=parameter_label_of,
            key="climate_gas",
        )
        names = {sid: stations[sid].name for sid in inside}
        wide = mine[mine["parameter"] == gas].pivot_table(
            index="start", columns="subject", values="value"
        )
        wide.index = pd.DatetimeIndex(wide.index).tz_convert(tz).tz_localize(None)
        wide.columns = [station_label(c, names) for c in wide.columns]
        what = tr(
            f"Hourly mean {parameter_label_of(gas)} at the region's stations, last 7 days",
            f"区域内各站近 7 日{parameter_label_of(gas)}小时均值",
        )
        unit = unit_label(_unit(gas))
        st.altair_chart(
            time_chart(wide.round(2), y_label=unit, x_label=tr("hour", "小时")),
            width="stretch",
        )
        data_table(wide.round(2).reset_index(names=tr("hour", "小时")), what, key="climate_daily")
    st.subheader(tr("Accounted emissions and targets", "核算排放与目标"))
    if not who.may("region-emissions"):
        st.info(
            tr(
                "🔒 Regional emissions are internal data: sign in (in the sidebar) to see them.",
                f"🔒 区域排放为内部数据，请在侧栏**{sign_in()}**后查看。",
            )
            if not who.signed_in
            else tr("Your role may not read regional emissions.", "您的角色无权查看区域排放。")
        )
        return
    with store.connection() as conn:
        rows = derived.read_emissions(
            conn, source="calculation", start=datetime(1990, 1, 1, tzinfo=UTC), end=now
        )
    table = emission_table(rows, tz)
    co2e = table[table["gas"] == "CO2e"] if len(table) else table
    by_part = annual_by_part(co2e, region)
    if by_part.empty:
        st.info(tr("No accounted emissions in this region.", "该区域暂无核算排放。"))
    else:
        who.shown("region-emissions", {"region": region})
        annual = by_part.sum(axis=1, min_count=1).rename(tr("emissions (t CO2e)", "排放 (t CO2e)"))
        st.dataframe(
            annual.round(1).rename_axis(tr("year", "年份")).reset_index(),
            hide_index=True,
            width="stretch",
        )
    target = targets.get(region)
    if target is None:
        st.info(tr("No target for this region.", "该区域暂无目标。"))
        return
    complete = by_part[by_part.index < now.astimezone(tz).year] if not by_part.empty else by_part
    try:
        tracking = track_region(complete, target)
    except CarbonError:
        st.info(
            tr(
                f"Target: peak by {target.peak_year}, neutrality by {target.neutral_year}; too "
                "few complete years of emissions to track it.",
                f"目标：{target.peak_year} 年前达峰，{target.neutral_year} 年前碳中和；完整年份"
                "的排放数据不足，无法评估。",
            )
        )
        return
    m = st.columns(3)
    m[0].metric(tr("Peak target", "达峰目标"), target.peak_year)
    m[1].metric(
        tr("Projected peak", "预计达峰"),
        tracking.projected_peak_year,
        tr("on track", "按期") if tracking.peak_on_track else tr("late", "滞后"),
        delta_color="normal" if tracking.peak_on_track else "inverse",
    )
    m[2].metric(tr("Neutrality target", "中和目标"), target.neutral_year)


def _unit(code: str) -> str:
    from sensors.parameters import lookup

    return lookup(code).unit


def parameter_label_of(code: str) -> str:
    """A greenhouse gas by its formula and unit: ``CO2 (ppm)``."""
    return f"{code.upper()} ({unit_label(_unit(code))})"


#: a region's trend → (colour RGB, English, Chinese); Okabe-Ito colours, with words beside
TREND_STATES: Final[dict[str, tuple[tuple[int, int, int], str, str]]] = {
    "increasing": ((0, 158, 115), "rising (significant)", "显著上升"),
    "decreasing": ((213, 94, 0), "falling (significant)", "显著下降"),
    "no trend": ((170, 170, 170), "no significant trend", "无显著趋势"),
    "insufficient data": ((225, 225, 225), "too few years", "年份不足"),
}
#: the ecology quantities → (English, Chinese)
QUANTITY_NAMES: Final = {
    "ndvi": ("NDVI", "植被指数 NDVI"),
    "fvc": ("vegetation cover (FVC)", "植被覆盖度 FVC"),
    "ndwi": ("NDWI", "水体指数 NDWI"),
}


def region_name(feature: Any) -> str:
    """A layer's feature by name where it is a region code (``CN-AH`` → 安徽省 / Anhui), else
    as it is."""
    from dashboards.views import region_label

    return region_label(str(feature))


def trend_name(trend: str) -> str:
    _colour, en, zh = TREND_STATES.get(trend, ((0, 0, 0), trend, trend))
    return tr(en, zh)


def trend_table(trends: pd.DataFrame, tz: Any) -> pd.DataFrame:
    """A layer's trends of one quantity in words: region, years, slope per year, p, trend."""
    return pd.DataFrame(
        {
            tr("region", "区域"): [region_name(f) for f in trends["feature"]],
            tr("images", "影像期数"): trends["n"].to_numpy(),
            tr("from", "起"): [
                "—" if pd.isna(t) else pd.Timestamp(t).tz_convert(tz).strftime("%Y")
                for t in trends["first_time"]
            ],
            tr("to", "止"): [
                "—" if pd.isna(t) else pd.Timestamp(t).tz_convert(tz).strftime("%Y")
                for t in trends["last_time"]
            ],
            tr("Sen's slope per year", "Sen 斜率（每年）"): trends["slope_per_year"].round(4),
            "p": trends["p"].round(4),
            tr("trend", "趋势"): [trend_name(str(t)) for t in trends["trend"]],
        }
    )


def ecology_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """A layer's regions coloured by the trend of NDVI, vegetation cover or NDWI
    (Mann-Kendall, Sen's slope), a region's series, and the land-cover change areas between
    consecutive land-cover rasters (public: the one map's regional statistics)."""
    import pydeck as pdk

    from dashboards.views import basemap, map_style, style_url
    from store import gis as gis_store

    tz = settings.timezone
    st.title(tr("Natural ecology", "自然生态"))
    st.caption(
        tr(
            "Regional means of NDVI, fractional vegetation cover (dimidiate pixel model, NDVI "
            "0.05 bare soil to 0.95 full cover) and NDWI from the registered rasters, and each "
            "region's trend: Mann-Kendall test (significant at p < 0.05) with Sen's slope.",
            "基于已登记栅格的各区域植被指数 NDVI、植被覆盖度（像元二分模型，NDVI 0.05 为裸土、"
            "0.95 为全覆盖）与水体指数 NDWI 均值，及各区域变化趋势：Mann-Kendall 检验"
            "（p < 0.05 为显著）与 Sen 斜率。",
        )
    )
    with store.connection() as conn:
        layers = gis_store.ecology_layers(conn)
    if not layers:
        st.info(
            tr(
                "No ecology results yet: register NDVI or NDWI rasters with `ecosense gis raster "
                "FILE --time … --quantity ndvi` and a layer; the ecology job reduces them.",
                "暂无生态结果：用 `ecosense gis raster FILE --time … --quantity ndvi` 登记 NDVI"
                " 或 NDWI 栅格并导入图层，生态作业会计算区域统计。",
            )
        )
        return
    c1, c2 = st.columns(2)
    layer_name = c1.selectbox(tr("Layer", "图层"), layers, key="ecology_layer")
    quantity = c2.radio(
        tr("Quantity", "指标"),
        list(QUANTITY_NAMES),
        horizontal=True,
        format_func=lambda q: tr(*QUANTITY_NAMES[q]),
        key="ecology_quantity",
    )
    with store.connection() as conn:
        trends = gis_store.read_trends(conn, layer_name)
        series = gis_store.ecology_series(conn, layer_name, quantity)
        changes = gis_store.read_landcover(conn, layer_name)
        layer = gis_store.load_layer(conn, layer_name)
    trends = trends[trends["quantity"] == quantity]
    st.subheader(tr("Trends by region", "各区域变化趋势"))
    st.caption(
        "  ".join(
            f"<span style='color:rgb{c}' aria-hidden='true'>■</span> {tr(en, zh)}"
            for c, en, zh in TREND_STATES.values()
        ),
        unsafe_allow_html=True,
    )
    if trends.empty:
        st.info(tr("No trends of this quantity over this layer.", "该图层暂无此指标的趋势。"))
    else:
        by_feature = trends.set_index("feature")
        wgs = layer.to_crs("EPSG:4326")
        wgs = wgs[[wgs.geometry.name]].copy()
        names = [str(f) for f in layer.index]
        found = [str(by_feature["trend"].get(f, "insufficient data")) for f in names]
        wgs["fill"] = [[*TREND_STATES.get(t, TREND_STATES["no trend"])[0], 200] for t in found]
        wgs["name"] = [region_name(f) for f in names]
        wgs["id"] = [trend_name(t) for t in found]
        doc = wgs.reset_index(drop=True).__geo_interface__
        west, south, east, north = (float(v) for v in wgs.total_bounds)
        span = max(east - west, north - south, 1e-3)

        deck_map = pdk.Deck(
            layers=[
                pdk.Layer(
                    "GeoJsonLayer",
                    basemap(),
                    id="basemap",
                    stroked=True,
                    filled=False,
                    get_line_color=[120, 120, 120],
                    line_width_min_pixels=0.6,
                ),
                pdk.Layer(
                    "GeoJsonLayer",
                    doc,
                    id="trends",
                    stroked=True,
                    filled=True,
                    get_fill_color="properties.fill",
                    get_line_color=[60, 60, 60],
                    line_width_min_pixels=0.8,
                    pickable=True,
                ),
            ],
            initial_view_state=pdk.ViewState(
                longitude=(west + east) / 2,
                latitude=(south + north) / 2,
                zoom=max(1.0, min(12.0, math.log2(360 / span))),
            ),
            map_style=style_url(map_style(settings.tile_url)),
            map_provider=None,
            tooltip={"text": "{name}\n{id}"},
        )
        what = tr(
            f"Map of the regions by their {tr(*QUANTITY_NAMES[quantity])} trend",
            f"各区域{tr(*QUANTITY_NAMES[quantity])}趋势地图",
        )
        st.pydeck_chart(deck_map, height=440, alt=described(what))
        data_table(trend_table(trends, tz), what, key="ecology_trends")
    st.subheader(tr("A region's series", "区域时间序列"))
    if series.empty:
        st.info(tr("No regional means yet.", "暂无区域均值。"))
    else:
        regions = sorted(set(series["feature"].astype(str)))
        rising = (
            [str(f) for f in trends.sort_values("slope_per_year", ascending=False)["feature"]]
            if not trends.empty
            else []
        )
        region = st.selectbox(
            tr("Region", "区域"),
            regions,
            index=regions.index(rising[0]) if rising and rising[0] in regions else 0,
            format_func=region_name,
            key="ecology_region",
        )
        mine = series[series["feature"].astype(str) == region]
        frame = pd.DataFrame(
            {tr(*QUANTITY_NAMES[quantity]): mine["value"].round(4).to_numpy()},
            index=pd.DatetimeIndex(mine["time"]).tz_convert(tz).tz_localize(None),
        )
        what = tr(
            f"{region_name(region)}: regional mean per image",
            f"{region_name(region)}：各期区域均值",
        )
        label = tr(*QUANTITY_NAMES[quantity])
        chart = time_chart(frame, y_label=label, x_label=tr("time", "时间"), fmt="%Y-%m")
        st.altair_chart(chart, width="stretch")
        data_table(frame.reset_index(names=tr("time", "时间")), what, key="ecology_series")
    st.subheader(tr("Land-cover change", "土地覆盖变化"))
    moved = changes[changes["from_class"] != changes["to_class"]] if len(changes) else changes
    if moved.empty:
        st.info(
            tr(
                "No land-cover change over this layer (register two land-cover rasters with "
                "`--quantity landcover`).",
                "该图层暂无土地覆盖变化（用 `--quantity landcover` 登记两期土地覆盖栅格）。",
            )
        )
    else:
        st.dataframe(
            pd.DataFrame(
                {
                    tr("region", "区域"): [region_name(f) for f in moved["feature"]],
                    tr("period", "时段"): [
                        f"{a}–{b}"
                        for a, b in zip(moved["start_year"], moved["end_year"], strict=True)
                    ],
                    tr("from class", "原类别"): moved["from_class"].to_numpy(),
                    tr("to class", "现类别"): moved["to_class"].to_numpy(),
                    tr("area, ha", "面积 公顷"): moved["area_ha"].round(1).to_numpy(),
                }
            ),
            hide_index=True,
            width="stretch",
        )
