"""EcoSense dashboard (Streamlit): the live map, latest values and a time series, and the pages
of AQI, water classes, soil risk, alerts (acknowledged and closed there by an operator), data
review (a reviewer), carbon emissions, the one map and data completeness.

Run by ``ecosense up``; standalone: ``streamlit run dashboards/app.py`` with the same
``ECOSENSE_*`` settings. It reads stations, latest values and series from store/; it writes
only the duty officer's decisions (:mod:`dashboards.duty`), through the same store functions
as the API.
Every page decides what its caller may see through :mod:`dashboards.session` (one
:func:`access.authorize`): anonymous visitors see public data only; a page that fails shows a
short message, never a traceback.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from dashboards import duty, emissions, onemap, quality, session
from dashboards.session import Viewer, guarded
from dashboards.settings import DashboardSettings, from_environment
from dashboards.views import (
    STATES,
    deck,
    default_choice,
    parameter_label,
    station_table,
    time_chart,
)
from store import OpenedStore, open_store

WINDOWS = {
    "1 h": timedelta(hours=1),
    "6 h": timedelta(hours=6),
    "24 h": timedelta(hours=24),
    "7 d": timedelta(days=7),
}

st.set_page_config(page_title="EcoSense", page_icon="🌏", layout="wide")


@st.cache_resource
def _settings() -> DashboardSettings:
    return from_environment()


@st.cache_resource
def _store() -> OpenedStore:
    s = _settings()
    return open_store(database_url=s.database_url, data_dir=s.data_dir, migrate=False, max_size=4)


def _stations_frame(readable: frozenset[str]) -> pd.DataFrame:
    """The stations of ``readable`` (those the caller may read)."""
    rows = [s for s in _store().store.list_stations() if s.id in readable]
    return pd.DataFrame(
        [{"id": s.id, "name": s.name, "kind": s.kind, "lon": s.lon, "lat": s.lat} for s in rows],
        columns=["id", "name", "kind", "lon", "lat"],
    )


settings = _settings()
tz = settings.timezone
#: the caller of this run's page render (set below, before the page runs)
viewer: Viewer | None = None


def _viewer() -> Viewer:
    assert viewer is not None
    return viewer


def live_page() -> None:
    """The first page: the map of stations by state, latest values, a time series."""
    st.title("EcoSense · 生态环境感知")
    st.caption("Live readings from field devices · 站点实时监测")

    who = _viewer()
    stations = _stations_frame(who.stations)
    if stations.empty:
        if not who.signed_in and who.store.list_stations(limit=1):
            st.info(f"No public stations. · 暂无公开站点。 {session.SIGN_IN} to see more.")
            return
        st.info(
            "No stations yet: import some with `ecosense stations import FILE`, "
            "or run `ecosense up --demo`."
        )
        return

    latest_all = who.readable(_store().store.latest(), "station")
    station_ids = list(stations["id"])
    default_station, default_param = default_choice(latest_all, station_ids)

    with st.sidebar:
        st.header("Station · 站点")
        names = dict(zip(stations["id"], stations["name"], strict=True))
        station = st.selectbox(
            "Station",
            station_ids,
            index=station_ids.index(default_station) if default_station else 0,
            format_func=lambda sid: f"{sid} — {names[sid]}",
            key="station",
        )
        window_label = st.radio("Window · 时段", list(WINDOWS), index=1, horizontal=True)
        st.markdown(
            "  \n".join(
                f"<span style='color:rgb{STATES[k][2]}'>●</span> {STATES[k][0]} {STATES[k][1]}"
                for k in STATES
            ),
            unsafe_allow_html=True,
        )
    who.shown_stations(station_ids)  # the map and its states show every listed station
    live(who, station, WINDOWS[window_label], default_station, default_param)


@st.fragment(run_every="5s")
def live(
    who: Viewer,
    station: str,
    window: timedelta,
    default_station: str | None,
    default_param: str | None,
) -> None:
    """The map, latest values and series, refreshed every 5 s (audited by the page render;
    the caller is checked again on each refresh)."""
    try:
        _live(who, station, window, default_station, default_param)
    except Exception:
        session.logger.exception("the live fragment failed")
        st.error(session.TROUBLE, icon="⚠️")


def _live(
    who: Viewer,
    station: str,
    window: timedelta,
    default_station: str | None,
    default_param: str | None,
) -> None:
    store = _store().store
    if session.current(store, settings) != who.principal:
        st.rerun(scope="app")  # signed out, disabled or expired: render the page anew
    now = datetime.now(UTC)
    latest = who.readable(store.latest(), "station")
    table = station_table(_stations_frame(who.stations), latest, now)
    counts = table["state"].value_counts()
    cols = st.columns(len(STATES))
    for col, key in zip(cols, STATES, strict=True):
        col.metric(f"{STATES[key][1]} · {STATES[key][0]}", int(counts.get(key, 0)))

    left, right = st.columns([3, 2])
    with left:
        st.subheader("Map · 站点地图")
        st.pydeck_chart(deck(table, station, settings.tile_url), height=520)
    mine = latest[latest["station"] == station]
    with right:
        st.subheader("Latest values · 最新数据")
        if mine.empty:
            st.write("No readings yet from this station.")
        else:
            newest = mine["time"].max().tz_convert(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
            st.caption(f"Latest reading · 最新读数: {newest}")
            shown = pd.DataFrame(
                {
                    "parameter": [parameter_label(p) for p in mine["parameter"]],
                    "value": mine["value"].round(3),
                    "flag": mine["flag"],
                    "time": mine["time"].dt.tz_convert(tz).dt.strftime("%Y-%m-%d %H:%M:%S"),
                }
            )
            st.dataframe(shown, hide_index=True, width="stretch")

    st.subheader("Time series · 时间序列")
    params = sorted(set(mine["parameter"]))
    if not params:
        st.write("No series to draw yet.")
        return
    wanted = st.session_state.get("parameter")
    if wanted not in params:
        wanted = (
            default_param if station == default_station and default_param in params else params[0]
        )
    parameter = st.selectbox(
        "Parameter · 参数",
        params,
        index=params.index(wanted),
        format_func=parameter_label,
        key="parameter",
    )
    frame = store.read_frame(station=station, parameter=parameter, start=now - window)
    if frame.empty:
        st.write("No readings in this window.")
        return
    series = frame.assign(time=frame["time"].dt.tz_convert(tz).dt.tz_localize(None))
    series = series.pivot_table(index="time", columns="basis", values="value", aggfunc="last")
    st.altair_chart(
        time_chart(series, y_label=parameter_label(parameter), x_label=f"time ({tz.key})"),
        width="stretch",
    )


def aqi_page() -> None:
    quality.aqi_page(_store().store, settings, _viewer())


def water_page() -> None:
    quality.water_page(_store().store, settings, _viewer())


def soil_page() -> None:
    quality.soil_page(_store().store, settings, _viewer())


def alerts_page() -> None:
    quality.alerts_page(_store().store, settings, _viewer())


def review_page() -> None:
    duty.review_page(_store().store, settings, _viewer())


def carbon_page() -> None:
    emissions.carbon_page(_store().store, settings, _viewer())


def onemap_page() -> None:
    onemap.onemap_page(_store().store, settings, _viewer())


def completeness_page() -> None:
    quality.completeness_page(_store().store, settings, _viewer())


def _home() -> None:
    """The root address ``/``: nothing of its own (see :func:`_render`)."""


#: the live page, at its own address ``/live`` (the address the README and links give)
LIVE = st.Page(guarded(live_page), title="Live · 实时监测", icon="🌏", url_path="live")
# Every page stays in the navigation, signed in or not; each decides what it shows. The root
# address is a hidden default page that opens the live page: a default page is served at the
# root only, so the live page as the default would answer its own /live with "Page not found".
page = st.navigation(
    [
        st.Page(_home, title="EcoSense", url_path="home", default=True, visibility="hidden"),
        LIVE,
        st.Page(guarded(aqi_page), title="Air quality · 空气质量", icon="🌫️", url_path="aqi"),
        st.Page(guarded(water_page), title="Water · 水质", icon="💧", url_path="water"),
        st.Page(guarded(soil_page), title="Soil · 土壤", icon="🌱", url_path="soil"),
        st.Page(guarded(alerts_page), title="Alerts · 告警", icon="🚨", url_path="alerts"),
        st.Page(guarded(review_page), title="Review · 数据审核", icon="✅", url_path="review"),
        st.Page(guarded(carbon_page), title="Carbon · 碳排放", icon="🏭", url_path="carbon"),
        st.Page(guarded(onemap_page), title="One map · 一张图", icon="🗺️", url_path="onemap"),
        st.Page(
            guarded(completeness_page),
            title="Completeness · 有效率",
            icon="📊",
            url_path="completeness",
        ),
    ]
)


def _render() -> None:
    global viewer
    if not page.url_path:  # the root: the live page, at its own address (query kept)
        st.switch_page(LIVE, query_params=st.query_params.to_dict())
    viewer = session.viewer(_store().store, settings, page.url_path)
    page.run()


guarded(_render)()
