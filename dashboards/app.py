"""EcoSense dashboard (Streamlit): the live map, latest values and a time series, and the pages
of AQI, water classes, soil risk, alerts (acknowledged and closed there by an operator), data
review (a reviewer), carbon emissions, the one map, data completeness and the open-data portal
(:mod:`dashboards.opendata`: the catalogue with download links to the gateway).

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

from dashboards import duty, emissions, environment, i18n, onemap, opendata, quality, session
from dashboards.i18n import tr
from dashboards.session import Viewer, data_table, guarded
from dashboards.settings import DashboardSettings, from_environment
from dashboards.views import (
    STATES,
    deck,
    default_choice,
    parameter_label,
    reading_value,
    state_name,
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

# the tab icon stays an emoji: Streamlit fetches a Material Symbols tab icon from a font CDN
st.set_page_config(page_title="EcoSense", page_icon="🌏", layout="wide")
i18n.setup()  # ?lang=zh|en, kept across pages (navigation drops query parameters)
# Keyboard focus always visible (WCAG 2.4.7): Streamlit's date and time inputs draw their
# focused fields with `outline: none` and nothing else. A 3 px outline in a blue with a
# contrast of 8:1 against white (WCAG 1.4.11 asks for 3:1).
st.html(
    "<style>:focus-visible, [role='spinbutton']:focus"
    " { outline: 3px solid #1f4e9c !important; outline-offset: 1px !important; }</style>"
)


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


def _window_name(window: str) -> str:
    """``6 h`` / ``6 小时``."""
    n, unit = window.split()
    return tr(window, f"{n} {'小时' if unit == 'h' else '天'}")


def live_page() -> None:
    """The first page: the map of stations by state, latest values, a time series."""
    st.title(tr("EcoSense live monitoring", "EcoSense 生态环境感知"))
    st.caption(tr("Live readings from field devices", "站点实时监测"))

    who = _viewer()
    stations = _stations_frame(who.stations)
    if stations.empty:
        if not who.signed_in and who.store.list_stations(limit=1):
            st.info(
                tr(
                    f"No public stations. {session.sign_in()} to see more.",
                    f"暂无公开站点，{session.sign_in()}后可查看更多。",
                )
            )
            return
        st.info(
            tr(
                "No stations yet: import some with `ecosense stations import FILE`, "
                "or run `ecosense up --demo`.",
                "暂无站点：用 `ecosense stations import FILE` 导入，或运行 `ecosense up --demo`。",
            )
        )
        return

    latest_all = who.readable(_store().store.latest(), "station")
    station_ids = list(stations["id"])
    default_station, default_param = default_choice(latest_all, station_ids)

    with st.sidebar:
        st.header(tr("Station", "站点"))
        names = dict(zip(stations["id"], stations["name"], strict=True))
        station = st.selectbox(
            tr("Station", "站点"),
            station_ids,
            index=station_ids.index(default_station) if default_station else 0,
            format_func=lambda sid: f"{sid} — {names[sid]}",
            key="station",
        )
        window_label = st.radio(
            tr("Window", "时段"),
            list(WINDOWS),
            index=1,
            horizontal=True,
            format_func=_window_name,
            key="live_window",  # kept when the language changes (the label does)
        )
        st.markdown(  # the colour always with the state's name
            "  \n".join(
                f"<span style='color:rgb{STATES[k][2]}' aria-hidden='true'>●</span> {state_name(k)}"
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
        st.error(session.trouble(), icon=":material/warning:")


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
        col.metric(state_name(key), int(counts.get(key, 0)))

    left, right = st.columns([3, 2])
    with left:
        st.subheader(tr("Map", "站点地图"))
        what = tr(f"Map of {len(table)} stations by state", f"{len(table)} 个站点的状态地图")
        st.pydeck_chart(
            deck(table, station, settings.tile_url), height=520, alt=session.described(what)
        )
        data_table(  # the map's text alternative: each station and its state
            table.assign(
                last=table["last_time"].map(
                    lambda t: "—" if pd.isna(t) else t.tz_convert(tz).strftime("%Y-%m-%d %H:%M")
                )
            )[["id", "name", "state_label", "last", "lon", "lat"]].rename(
                columns={
                    "id": tr("station", "站点"),
                    "name": tr("name", "名称"),
                    "state_label": tr("state", "状态"),
                    "last": tr("latest reading", "最新读数"),
                    "lon": tr("longitude", "经度"),
                    "lat": tr("latitude", "纬度"),
                }
            ),
            what,
        )
    mine = latest[latest["station"] == station]
    with right:
        st.subheader(tr("Latest values", "最新数据"))
        if mine.empty:
            st.write(tr("No readings yet from this station.", "该站点暂无数据。"))
        else:
            newest = mine["time"].max().tz_convert(tz).strftime("%Y-%m-%d %H:%M:%S %Z")
            st.caption(f"{tr('Latest reading', '最新读数')}: {newest}")
            shown = pd.DataFrame(
                {
                    tr("parameter", "参数"): [parameter_label(p) for p in mine["parameter"]],
                    tr("value", "数值"): mine["value"].map(reading_value),
                    tr("flag", "标记"): mine["flag"],
                    tr("time", "时间"): mine["time"]
                    .dt.tz_convert(tz)
                    .dt.strftime("%Y-%m-%d %H:%M:%S"),
                }
            )
            st.dataframe(shown, hide_index=True, width="stretch")

    st.subheader(tr("Time series", "时间序列"))
    params = sorted(set(mine["parameter"]))
    if not params:
        st.write(tr("No series to draw yet.", "暂无可绘制的序列。"))
        return
    wanted = st.session_state.get("parameter")
    if wanted not in params:
        wanted = (
            default_param if station == default_station and default_param in params else params[0]
        )
    parameter = st.selectbox(
        tr("Parameter", "参数"),
        params,
        index=params.index(wanted),
        format_func=parameter_label,
        key="parameter",
    )
    frame = store.read_frame(station=station, parameter=parameter, start=now - window)
    if frame.empty:
        st.write(tr("No readings in this window.", "该时段内暂无数据。"))
        return
    series = frame.assign(time=frame["time"].dt.tz_convert(tz).dt.tz_localize(None))
    series = series.pivot_table(index="time", columns="basis", values="value", aggfunc="last")
    series.columns = [_basis_name(str(c)) for c in series.columns]
    what = tr(
        f"{parameter_label(parameter)} at {station}, time series",
        f"{station} 的{parameter_label(parameter)}时间序列",
    )
    st.altair_chart(
        time_chart(
            series, y_label=parameter_label(parameter), x_label=f"{tr('time', '时间')} ({tz.key})"
        ),
        width="stretch",
        alt=session.described(what),
    )
    data_table(series.rename_axis(tr("time", "时间")).reset_index(), what, key="live_series_table")


#: a reading's basis (:data:`sensors.observations.BASES`): as measured, or converted (HJ 212
#: ``-Zs`` values, 折算)
_BASES = {"measured": ("measured", "实测"), "converted": ("converted", "折算")}


def _basis_name(basis: str) -> str:
    en, zh = _BASES.get(basis, (basis, basis))
    return tr(en, zh)


def aqi_page() -> None:
    quality.aqi_page(_store().store, settings, _viewer())


def water_page() -> None:
    quality.water_page(_store().store, settings, _viewer())


def soil_page() -> None:
    quality.soil_page(_store().store, settings, _viewer())


def site_page() -> None:
    environment.site_page(_store().store, settings, _viewer())


def radiation_page() -> None:
    environment.radiation_page(_store().store, settings, _viewer())


def ecology_page() -> None:
    environment.ecology_page(_store().store, settings, _viewer())


def climate_page() -> None:
    environment.climate_page(_store().store, settings, _viewer())


def noise_page() -> None:
    environment.noise_page(_store().store, settings, _viewer())


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


def open_data_page() -> None:
    opendata.open_data_page(_store().store, settings, _viewer())


def _home() -> None:
    """The root address ``/``: nothing of its own (see :func:`_render`)."""


#: the live page, at its own address ``/live`` (the address the README and links give)
LIVE = st.Page(
    guarded(live_page), title=tr("Live", "实时监测"), icon=":material/public:", url_path="live"
)
#: the other pages: (page, English title, Chinese title, Material Symbols icon, address)
PAGES = (
    (aqi_page, "Air quality", "空气质量", "air", "aqi"),
    (water_page, "Water", "水质", "water_drop", "water"),
    (soil_page, "Soil", "土壤", "grass", "soil"),
    (site_page, "Sites", "建设用地", "location_city", "sites"),
    (noise_page, "Noise", "声环境", "volume_up", "noise"),
    (radiation_page, "Radiation", "辐射", "radiology", "radiation"),
    (alerts_page, "Alerts", "告警", "notifications_active", "alerts"),
    (review_page, "Review", "数据审核", "fact_check", "review"),
    (carbon_page, "Carbon", "碳排放", "factory", "carbon"),
    (climate_page, "Climate", "气候", "thermostat", "climate"),
    (ecology_page, "Ecology", "生态", "forest", "ecology"),
    (onemap_page, "One map", "一张图", "map", "onemap"),
    (completeness_page, "Completeness", "有效率", "bar_chart", "completeness"),
    (open_data_page, "Open data", "数据开放", "dataset", "open-data"),
)
# Every page stays in the navigation, signed in or not; each decides what it shows. The root
# address is a hidden default page that opens the live page: a default page is served at the
# root only, so the live page as the default would answer its own /live with "Page not found".
page = st.navigation(
    [
        st.Page(_home, title="EcoSense", url_path="home", default=True, visibility="hidden"),
        LIVE,
        *(
            st.Page(guarded(fn), title=tr(en, zh), icon=f":material/{icon}:", url_path=path)
            for fn, en, zh, icon, path in PAGES
        ),
    ],
    expanded=True,  # every page listed (past 10 Streamlit would fold some under "View more")
)


def _render() -> None:
    global viewer
    if not page.url_path:  # the root: the live page, at its own address (query kept)
        st.switch_page(LIVE, query_params=st.query_params.to_dict())
    i18n.switch()
    viewer = session.viewer(_store().store, settings, page.url_path)
    page.run()


guarded(_render)()
