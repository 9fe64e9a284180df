"""Dashboard pages over what the jobs computed: AQI, water classes, soil risk, alerts and data
completeness. They only read (``store.derived``, ``store.alerts``); nothing heavy runs here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import streamlit as st

from dashboards import duty
from dashboards.downloads import report_download
from dashboards.i18n import tr
from dashboards.session import Viewer, data_table, described, sign_in
from dashboards.settings import DashboardSettings
from dashboards.views import (
    STALE_AFTER,
    aqi_stations,
    completeness,
    current_rows,
    daily_report,
    deck,
    land_use_label,
    latest_per_subject,
    parameter_name,
    ranking,
    risk_label,
    shown_hours,
    station_label,
    water_class_table,
)
from sensors.standards.aqi import CATEGORIES
from store import alerts as alert_store
from store import derived
from store.postgres import PostgresStore


def _stations(store: PostgresStore, who: Viewer) -> pd.DataFrame:
    """The stations ``who`` may read."""
    rows = [s for s in store.list_stations() if s.id in who.stations]
    return pd.DataFrame(
        [
            {
                "id": s.id,
                "name": s.name,
                "kind": s.kind,
                "lon": s.lon,
                "lat": s.lat,
                "city": s.attributes.get("city", ""),
            }
            for s in rows
        ],
        columns=["id", "name", "kind", "lon", "lat", "city"],
    )


def _assessments(
    store: PostgresStore, kind: str, start: datetime, end: datetime, scope: str | None = None
) -> pd.DataFrame:
    with store.connection() as conn:
        return derived.read_assessments(conn, kind=kind, start=start, end=end, scope=scope)


def _station_rows(frame: pd.DataFrame, who: Viewer) -> pd.DataFrame:
    """``frame`` (assessments or aggregates with ``scope``, ``subject``) without the station
    rows of stations ``who`` may not read; other scopes (cities) are kept."""
    if frame.empty:
        return frame
    keep = (frame["scope"] != "station") | frame["subject"].isin(who.stations)
    return frame[keep]


def _hidden_note(before: pd.DataFrame, after: pd.DataFrame, who: Viewer) -> None:
    """Say so when rows were left out for an anonymous visitor (signing in may show them)."""
    if not who.signed_in and len(after) < len(before):
        st.info(
            tr(
                f"🔒 Some stations' data are not public: **{sign_in()}** to see more.",
                f"🔒 部分站点数据不公开：**{sign_in()}**后可查看更多。",
            )
        )


def _no_results(what: str) -> None:
    """Say that nothing of ``what`` (already in the page's language) was computed yet."""
    st.info(
        tr(
            f"No {what} yet: the scheduler in `ecosense up` computes them from the readings "
            "(or run `ecosense jobs run hourly` and `ecosense jobs run daily`).",
            f"暂无{what}：`ecosense up` 的调度器会根据读数计算"
            "（或运行 `ecosense jobs run hourly` 和 `ecosense jobs run daily`）。",
        )
    )


def _category_legend() -> None:
    """The HJ 633 category colours, each with its AQI floor and its words (never colour alone)."""
    st.caption(
        "  ".join(
            f"<span style='color:{c}' aria-hidden='true'>■</span> {lo}+ {tr(en, zh)}"
            for lo, zh, en, c in CATEGORIES.values()
        ),
        unsafe_allow_html=True,
    )


def aqi_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """Station map in category colours, city ranking, the daily report table (the stations
    ``who`` may read)."""
    tz = settings.timezone
    st.title(tr("Air quality index (HJ 633-2026)", "空气质量指数 (HJ 633-2026)"))
    now = datetime.now(UTC)
    stations = _stations(store, who)
    air = stations[stations["kind"] == "air"]
    hourly = latest_hourly_aqi(store, who, now)  # each subject's latest valid complete hour
    _category_legend()
    if air.empty:
        st.info(tr("No air stations yet.", "暂无空气站。"))
        return
    station_rows = hourly[hourly["scope"] == "station"]
    table = aqi_stations(air, station_rows, now, tz)
    left, right = st.columns([3, 2])
    with left:
        st.subheader(tr("Hourly AQI by station", "站点小时 AQI"))
        hours = f"{STALE_AFTER.total_seconds() / 3600:.0f}"
        st.caption(
            f"{shown_hours(station_rows['start'], tz)} · "
            + tr(
                "Each station's latest complete valid hour (never the running hour); grey: none,"
                f" or older than {hours} h",
                "各站最近一个完整有效小时（不用当前未结束的小时）；"
                f"灰色：无数据或超过 {hours} 小时",
            )
        )
        what = tr("Map of the stations' hourly AQI", "站点小时 AQI 地图")
        st.pydeck_chart(deck(table, None, settings.tile_url), height=480, alt=described(what))
        data_table(_aqi_table(table), what, key="aqi_map_table")  # its numbers, with words
    with right:
        st.subheader(tr("City ranking", "城市排名"))
        city_ranking(hourly, now, tz)
    st.subheader(tr("Daily report", "日报"))
    today = pd.Timestamp(now).tz_convert(tz).normalize()
    day = st.date_input(
        tr("Day", "日期"), value=(today - pd.Timedelta(days=1)).date(), key="aqi_day"
    )
    report_download(store, str(tz), who, "daily", day)
    start = pd.Timestamp(day).tz_localize(tz)
    daily = _station_rows(
        _assessments(
            store,
            "aqi-daily",
            start.tz_convert("UTC"),
            (start + pd.Timedelta(days=1)).tz_convert("UTC"),
        ),
        who,
    )
    if daily.empty:
        _no_results(tr("daily AQI for this day", "该日的日 AQI"))
    else:
        names = dict(zip(stations["id"], stations["name"], strict=True))
        st.dataframe(daily_report(daily, names, tz), hide_index=True, width="stretch")
    if station_rows.empty:
        _no_results(tr("hourly AQI", "小时 AQI"))
    else:
        st.subheader(tr("Latest hourly AQI", "最新小时 AQI"))
        st.dataframe(_aqi_table(table), hide_index=True, width="stretch")
    who.shown_stations(air["id"])


def latest_hourly_aqi(store: PostgresStore, who: Viewer, now: datetime) -> pd.DataFrame:
    """Each subject's latest valid complete hourly AQI (stations ``who`` may read, and every
    city: city AQI is public), as :func:`store.derived.latest_complete_hours` reads them."""
    with store.connection() as conn:
        return _station_rows(derived.latest_complete_hours(conn, now, what="aqi"), who)


def city_ranking(hourly: pd.DataFrame, now: datetime, tz: Any) -> None:
    """The cities of ``hourly`` (:func:`latest_hourly_aqi`) ranked from the cleanest air, with
    the hour shown; cities whose hour is out of date follow, unranked."""
    cities = hourly[hourly["scope"] == "city"]
    if cities.empty:
        _no_results(tr("city AQI", "城市 AQI"))
        return
    current = current_rows(cities, now)
    st.caption(
        shown_hours(current["start"], tz)
        + (
            ""
            if len(current) == len(cities)
            else tr(" · unranked: out of date", " · 数据过旧，不参与排名")
        )
    )
    st.dataframe(ranking(cities, now, tz), hide_index=True, width="stretch")


def _aqi_table(table: pd.DataFrame) -> pd.DataFrame:
    """The stations' hourly AQI as the map shows it: AQI, the category in words, the hour."""
    from dashboards.views import category_label

    return pd.DataFrame(
        {
            tr("station", "站点"): table["id"],
            tr("name", "名称"): table["name"],
            "AQI": table["aqi"],
            tr("category", "类别"): [
                "—" if stale else category_label(lv)
                for lv, stale in zip(table["level"], table["stale"], strict=True)
            ],
            tr("primary pollutant", "首要污染物"): table["primary"].replace("", "—"),
            tr("hour", "时段"): table["hour"],
            tr("out of date", "数据过旧"): [tr("yes", "是") if s else "" for s in table["stale"]],
        }
    )


def water_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """GB 3838-2002 classes per water station (those ``who`` may read), daily and monthly."""
    tz = settings.timezone
    st.title(tr("Surface water quality class (GB 3838-2002)", "地表水水质类别 (GB 3838-2002)"))
    now = datetime.now(UTC)
    stations = _stations(store, who)
    names = dict(zip(stations["id"], stations["name"], strict=True))
    month = st.date_input(
        tr("Month of", "月份"), value=pd.Timestamp(now).tz_convert(tz).date(), key="water_month"
    )
    report_download(store, str(tz), who, "monthly", month)
    for kind, label, back in (
        ("water-daily", tr("Daily", "日"), timedelta(days=7)),
        ("water-monthly", tr("Monthly", "月"), timedelta(days=400)),
    ):
        st.subheader(label)
        every, rows = water_classes(store, who, kind, now - back, now)
        _hidden_note(every, rows, who)
        if rows.empty:
            _no_results(tr("water classes", "水质类别"))
            continue
        latest = latest_per_subject(rows)
        who.shown_stations(latest["subject"])
        st.dataframe(water_class_table(latest, names, tz), hide_index=True, width="stretch")


def water_classes(
    store: PostgresStore, who: Viewer, kind: str, start: datetime, now: datetime
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``kind`` (``water-daily``, ``water-monthly``) classes from ``start``: all of them,
    and those of the stations ``who`` may read."""
    every = _assessments(store, kind, start, now + timedelta(days=1))
    return every, _station_rows(every, who)


def soil_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """GB 15618-2018 risk class of each soil station's latest sample (the stations ``who``
    may read; soil stations are ``sensitive`` by default)."""
    tz = settings.timezone
    st.title(
        tr("Agricultural soil pollution risk (GB 15618-2018)", "农用地土壤污染风险 (GB 15618-2018)")
    )
    now = datetime.now(UTC)
    every = _assessments(store, "soil", now - timedelta(days=3650), now + timedelta(days=1))
    rows = _station_rows(every, who)
    _hidden_note(every, rows, who)
    if rows.empty:
        if every.empty:
            _no_results(
                tr(
                    "soil risk classes (soil stations with metal contents and pH)",
                    "土壤风险类别（需土壤站的重金属含量和 pH）",
                )
            )
        return
    latest = latest_per_subject(rows)
    who.shown_stations(latest["subject"])
    names = {s.id: s.name for s in store.list_stations()}
    st.dataframe(
        pd.DataFrame(
            {
                tr("station", "站点"): [station_label(s, names) for s in latest["subject"]],
                tr("sampled", "采样日期"): latest["start"]
                .dt.tz_convert(tz)
                .dt.strftime("%Y-%m-%d"),
                tr("risk class", "风险类别"): [risk_label(v) for v in latest["label"]],
                "pH": [d.get("ph") for d in latest["details"]],
                tr("land use", "用地类型"): [
                    land_use_label(d.get("land_use")) for d in latest["details"]
                ],
                tr("ratio to screening value", "与筛选值之比"): [
                    ", ".join(
                        f"{parameter_name(m, 'soil')} {r:.2f}"
                        for m, r in sorted(d.get("ratios", {}).items())
                    )
                    for d in latest["details"]
                ],
            }
        ),
        hide_index=True,
        width="stretch",
    )


def alerts_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """Live and recent alerts (``internal``) with their life cycle: only those of stations
    ``who`` may read; an operator acknowledges and closes them here with a comment
    (:mod:`dashboards.duty`); the abandoned webhook events (``sensitive``) to those who may
    read them."""
    tz = settings.timezone
    st.title(tr("Alerts", "告警"))
    if who.refuse("alerts"):
        return
    with store.connection() as conn:
        live = alert_store.list_alerts(conn, "live")
        closed = alert_store.list_alerts(conn, "closed", limit=100)
        abandoned = (
            alert_store.list_notifications(conn, "abandoned", limit=100)
            if who.may("webhook-events")
            else []
        )
    # an alert names its station: only those of stations the caller may read
    live = [r for r in live if not r["station"] or r["station"] in who.stations]
    closed = [r for r in closed if not r["station"] or r["station"] in who.stations]
    shown_ids = {r["id"] for r in live + closed}
    abandoned = [e for e in abandoned if e["alert_id"] in shown_ids]
    who.shown("alerts", {"alerts": len(shown_ids)})
    who.shown_stations(r["station"] for r in live + closed if r["station"])
    if abandoned:
        who.shown("webhook-events", {"events": len(abandoned)})

    names = {s.id: s.name for s in store.list_stations()}

    def table(rows: list[dict[str, Any]]) -> pd.DataFrame:
        return duty.alert_table(rows, tz, names)

    cols = st.columns(3)
    cols[0].metric(tr("Open", "未处理"), sum(r["state"] == "open" for r in live))
    cols[1].metric(tr("Acknowledged", "已确认"), sum(r["state"] == "acknowledged" for r in live))
    cols[2].metric(tr("Critical", "严重"), sum(r["severity"] == "critical" for r in live))
    st.subheader(tr("Live alerts", "当前告警"))
    if live:
        st.dataframe(table(live), hide_index=True, width="stretch")
    else:
        st.success(tr("No live alerts", "无告警"))
    duty.alert_actions(who, live, tz, names)
    st.subheader(tr("Recently closed", "最近关闭"))
    if closed:
        st.dataframe(table(closed), hide_index=True, width="stretch")
    if abandoned:
        st.subheader(tr("Webhook events abandoned", "推送失败的事件"))
        st.caption(
            tr(
                "Refused by the webhook at every attempt; listed by"
                " `GET /api/v1/alerts/webhooks?state=abandoned` (analyst and up).",
                "每次推送均被拒绝；可用 `GET /api/v1/alerts/webhooks?state=abandoned`"
                " 查询（分析员及以上）。",
            )
        )
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        tr("event id", "事件编号"): e["id"],
                        tr("alert", "告警"): e["alert_id"],
                        tr("event", "事件"): duty.alert_state_name(e["event"]),
                        tr("attempts", "尝试次数"): e["attempts"],
                        tr("abandoned", "放弃时间"): e["abandoned_at"]
                        .astimezone(tz)
                        .strftime("%Y-%m-%d %H:%M"),
                        tr("last error", "最后错误"): e["last_error"],
                    }
                    for e in abandoned
                ]
            ),
            hide_index=True,
            width="stretch",
        )


def completeness_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """Share of valid hourly means per station (those ``who`` may read) and parameter."""
    st.title(tr("Data completeness", "数据有效率"))
    label = st.radio(
        tr("Window", "时段"),
        ["24 h", "7 d", "30 d"],
        horizontal=True,
        key="completeness_window",
        format_func=lambda w: tr(w, w.replace(" h", " 小时").replace(" d", " 天")),
    )
    hours = {"24 h": 24, "7 d": 24 * 7, "30 d": 24 * 30}[label]
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with store.connection() as conn:
        hourly = derived.read_aggregates(
            conn, scope="station", period="PT1H", start=now - timedelta(hours=hours), end=now
        )
    every = hourly
    hourly = who.readable(hourly, "subject")
    _hidden_note(every, hourly, who)
    table = completeness(hourly, hours)
    if table.empty:
        if every.empty:
            _no_results(tr("hourly means", "小时均值"))
        return
    who.shown_stations(table.index)
    st.caption(
        tr(
            "Valid hourly means (≥ 45 minutes of valid readings, GB 3095-2026 Table 4) as a share"
            f" of the last {hours} hours, per station and parameter (%).",
            f"有效小时均值（每小时至少 45 分钟有效数据，GB 3095-2026 表 4）占最近 {hours} 小时的"
            "比例，按站点和参数（%）。",
        )
    )
    shown = table.reset_index().rename(columns={"subject": tr("station", "站点")})
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            str(c): st.column_config.ProgressColumn(
                parameter_name(str(c)), min_value=0, max_value=100, format="%.0f%%"
            )
            for c in table.columns
        },
    )
