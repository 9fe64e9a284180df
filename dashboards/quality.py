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
from dashboards.session import SIGN_IN, Viewer
from dashboards.settings import DashboardSettings
from dashboards.views import (
    RISK_LABELS,
    ROMAN,
    STALE_AFTER,
    alert_period,
    aqi_stations,
    completeness,
    current_rows,
    daily_report,
    deck,
    latest_per_subject,
    ranking,
    shown_hours,
    water_parameter_label,
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
            f"🔒 Some stations' data are not public: **{SIGN_IN}** to see more. "
            "· 部分站点数据不公开。"
        )


def _no_results(what: str) -> None:
    st.info(
        f"No {what} yet: the scheduler in `ecosense up` computes them from the readings "
        "(or run `ecosense jobs run hourly` and `ecosense jobs run daily`)."
    )


def aqi_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """Station map in category colours, city ranking, the daily report table (the stations
    ``who`` may read)."""
    tz = settings.timezone
    st.title("Air quality · 空气质量指数 (HJ 633-2026)")
    now = datetime.now(UTC)
    stations = _stations(store, who)
    air = stations[stations["kind"] == "air"]
    with store.connection() as conn:  # each subject's latest valid complete hour
        hourly = _station_rows(derived.latest_complete_hours(conn, now, what="aqi"), who)
    st.caption(
        "  ".join(
            f"<span style='color:{c}'>■</span> {lo}+ {zh} {en}"
            for lo, zh, en, c in CATEGORIES.values()
        ),
        unsafe_allow_html=True,
    )
    if air.empty:
        st.info("No air stations yet.")
        return
    station_rows = hourly[hourly["scope"] == "station"]
    table = aqi_stations(air, station_rows, now, tz)
    left, right = st.columns([3, 2])
    with left:
        st.subheader("Hourly AQI by station · 站点小时 AQI")
        st.caption(
            f"{shown_hours(station_rows['start'], tz)} · Each station's latest complete valid"
            " hour (never the running hour) · 各站最近一个完整有效小时；grey · 灰色: none, or"
            f" older than {STALE_AFTER.total_seconds() / 3600:.0f} h · 无数据或超过2小时"
        )
        st.pydeck_chart(deck(table, None, settings.tile_url), height=480)
    with right:
        st.subheader("City ranking · 城市排名")
        cities = hourly[hourly["scope"] == "city"]
        if cities.empty:
            _no_results("city AQI")
        else:
            current = current_rows(cities, now)
            st.caption(
                shown_hours(current["start"], tz)
                + ("" if len(current) == len(cities) else " · unranked: out of date · 不参与排名")
            )
            st.dataframe(ranking(cities, now, tz), hide_index=True, width="stretch")
    st.subheader("Daily report · 日报")
    today = pd.Timestamp(now).tz_convert(tz).normalize()
    day = st.date_input("Day · 日期", value=(today - pd.Timedelta(days=1)).date(), key="aqi_day")
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
        _no_results("daily AQI for this day")
    else:
        names = dict(zip(stations["id"], stations["name"], strict=True))
        st.dataframe(daily_report(daily, names, tz), hide_index=True, width="stretch")
    if station_rows.empty:
        _no_results("hourly AQI")
    else:
        st.subheader("Latest hourly AQI · 最新小时 AQI")
        shown = table[["id", "name", "aqi", "hour", "state_label"]].rename(
            columns={"state_label": "category", "hour": "hour · 时段"}
        )
        st.dataframe(shown, hide_index=True, width="stretch")
    who.shown_stations(air["id"])


def water_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """GB 3838-2002 classes per water station (those ``who`` may read), daily and monthly."""
    tz = settings.timezone
    st.title("Water quality · 地表水水质类别 (GB 3838-2002)")
    now = datetime.now(UTC)
    stations = _stations(store, who)
    names = dict(zip(stations["id"], stations["name"], strict=True))
    month = st.date_input(
        "Month of · 月份", value=pd.Timestamp(now).tz_convert(tz).date(), key="water_month"
    )
    report_download(store, str(tz), who, "monthly", month)
    for kind, label, back in (
        ("water-daily", "Daily · 日", timedelta(days=7)),
        ("water-monthly", "Monthly · 月", timedelta(days=400)),
    ):
        st.subheader(label)
        every = _assessments(store, kind, now - back, now + timedelta(days=1))
        rows = _station_rows(every, who)
        _hidden_note(every, rows, who)
        if rows.empty:
            _no_results("water classes")
            continue
        latest = latest_per_subject(rows)
        who.shown_stations(latest["subject"])
        st.dataframe(
            pd.DataFrame(
                {
                    "station": latest["subject"],
                    "name": latest["subject"].map(names),
                    "period": latest["start"].dt.tz_convert(tz).dt.strftime("%Y-%m-%d"),
                    "class · 类别": [
                        ROMAN.get(int(v), "—") if pd.notna(v) else "—" for v in latest["value"]
                    ],
                    "worse than target · 超标项目": [
                        "、".join(water_parameter_label(p) for p in str(e).split(",") if p) or "—"
                        for e in latest["label"]
                    ],
                    "per parameter · 单项类别": [
                        ", ".join(
                            f"{water_parameter_label(p)} {ROMAN[c]}"
                            for p, c in sorted(d.get("classes", {}).items())
                        )
                        for d in latest["details"]
                    ],
                }
            ),
            hide_index=True,
            width="stretch",
        )


def soil_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """GB 15618-2018 risk class of each soil station's latest sample (the stations ``who``
    may read; soil stations are ``sensitive`` by default)."""
    tz = settings.timezone
    st.title("Soil · 农用地土壤污染风险 (GB 15618-2018)")
    now = datetime.now(UTC)
    every = _assessments(store, "soil", now - timedelta(days=3650), now + timedelta(days=1))
    rows = _station_rows(every, who)
    _hidden_note(every, rows, who)
    if rows.empty:
        if every.empty:
            _no_results("soil risk classes (soil stations with metal contents and pH)")
        return
    latest = latest_per_subject(rows)
    who.shown_stations(latest["subject"])
    st.dataframe(
        pd.DataFrame(
            {
                "station": latest["subject"],
                "sampled": latest["start"].dt.tz_convert(tz).dt.strftime("%Y-%m-%d"),
                "risk class · 风险类别": latest["label"].map(RISK_LABELS),
                "pH": [d.get("ph") for d in latest["details"]],
                "land use": [d.get("land_use") for d in latest["details"]],
                "ratio to screening value": [
                    ", ".join(f"{m} {r:.2f}" for m, r in sorted(d.get("ratios", {}).items()))
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
    st.title("Alerts · 告警")
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

    def table(rows: list[dict[str, Any]]) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "id": r["id"],
                    "state": r["state"],
                    "severity": r["severity"],
                    "rule": r["rule"],
                    "station": r["station"],
                    "parameter": r["parameter"],
                    "message": r["message"],
                    "hour or day · 时段": alert_period(r["parameter"], r["details"], tz),
                    "opened": r["opened_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                    "last seen": r["last_seen"].astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                    "life cycle · 处理过程": duty.lifecycle(r, tz),
                }
                for r in rows
            ]
        )

    cols = st.columns(3)
    cols[0].metric("Open · 未处理", sum(r["state"] == "open" for r in live))
    cols[1].metric("Acknowledged · 已确认", sum(r["state"] == "acknowledged" for r in live))
    cols[2].metric("Critical · 严重", sum(r["severity"] == "critical" for r in live))
    st.subheader("Live · 当前")
    if live:
        st.dataframe(table(live), hide_index=True, width="stretch")
    else:
        st.success("No live alerts · 无告警")
    duty.alert_actions(who, live, tz)
    st.subheader("Recently closed · 最近关闭")
    if closed:
        st.dataframe(table(closed), hide_index=True, width="stretch")
    if abandoned:
        st.subheader("Webhook events abandoned · 推送失败")
        st.caption(
            "Refused by the webhook at every attempt; listed by"
            " `GET /api/v1/alerts/webhooks?state=abandoned` (analyst and up)."
        )
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "event id": e["id"],
                        "alert": e["alert_id"],
                        "event": e["event"],
                        "attempts": e["attempts"],
                        "abandoned": e["abandoned_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                        "last error": e["last_error"],
                    }
                    for e in abandoned
                ]
            ),
            hide_index=True,
            width="stretch",
        )


def completeness_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """Share of valid hourly means per station (those ``who`` may read) and parameter."""
    st.title("Data completeness · 数据有效率")
    label = st.radio(
        "Window · 时段", ["24 h", "7 d", "30 d"], horizontal=True, key="completeness_window"
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
            _no_results("hourly means")
        return
    who.shown_stations(table.index)
    st.caption(
        "Valid hourly means (≥ 45 minutes of valid readings, GB 3095-2026 Table 4) as a share of"
        f" the last {hours} hours, per station and parameter (%)."
    )
    shown = table.reset_index().rename(columns={"subject": "station"})
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            str(c): st.column_config.ProgressColumn(
                str(c), min_value=0, max_value=100, format="%.0f%%"
            )
            for c in table.columns
        },
    )
