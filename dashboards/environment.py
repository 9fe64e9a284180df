"""Dashboard pages of the environment's other domains: noise (GB 3096-2008) and development-
land site investigations (GB 36600-2018).

They only read what the jobs computed (``store.derived``): the noise stations' hourly LAeq,
their days' Ld and Ln (``P1D-LD``, ``P1D-LN``) and the daily assessment ``noise-daily``; every
station shown is one the caller may read (:class:`dashboards.session.Viewer`), and showing it
is audited.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import pandas as pd
import streamlit as st

from dashboards.i18n import tr
from dashboards.session import Viewer, data_table, described, sign_in
from dashboards.settings import DashboardSettings
from dashboards.views import deck, station_label, time_chart
from sensors.standards import noise
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
    out["exceeded"] = [", ".join(sorted(e)) or "—" for e in out["exceeded"]]
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
                f"🔒 Site investigations are sensitive data: **{sign_in()}** in the sidebar to"
                " see them.",
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
    st.pydeck_chart(deck(points, None, settings.tile_url), height=420, alt=described(what))
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
