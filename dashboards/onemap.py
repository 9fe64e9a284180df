"""The one map (一张图): admin areas, stored layers (watersheds, protection zones), stations by
state, a raster overlay from the catalogue (NDVI …), a stored zonal-statistics result as a
choropleth of its layer's regions (with its table beside), the PM2.5 surface interpolated from
the stations, and a DEM in 3D — each switched on and off. Everything is drawn by deck.gl's own
layers from the page's data and ``data:`` URLs: no tile or style server, and no loaders.gl
worker, is asked for anything."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Final

import pandas as pd
import pydeck as pdk
import streamlit as st
from pydeck.types import String  # a literal, not an expression to evaluate

from dashboards.i18n import tr
from dashboards.mapview import (
    DemCells,
    dem_cells,
    layer_geojson,
    legend_url,
    provinces,
    raster_image,
    station_surface,
    zonal_choropleth,
)
from dashboards.palettes import hex_colour
from dashboards.session import Viewer, data_table, described
from dashboards.settings import DashboardSettings
from dashboards.views import (
    STALE_AFTER,
    STATES,
    basemap,
    current_rows,
    hour_label,
    map_style,
    shown_hours,
    station_table,
    style_url,
)
from gis.catalogue import RasterItem
from gis.errors import GisError
from gis.rasters import open_raster
from store import derived
from store import gis as gis_store
from store.postgres import PostgresStore

ADMIN_FILL = "properties.kind == 'province' ? [245, 241, 230, 120] : [228, 228, 228, 80]"
LAYER_COLOURS = ([0, 110, 200], [200, 80, 0], [120, 0, 160], [0, 140, 90])


#: the colour ramps a raster overlay can be drawn with (colour-blind safe, or grey)
OVERLAY_RAMPS = ["viridis", "cividis", "grey"]
#: the ramp of the PM2.5 surface (colour-blind safe; a concentration, not the AQI's categories)
PM25_RAMP = "viridis"
#: the range of the PM2.5 surface's colours (µg/m³)
PM25_RANGE = (0.0, 150.0)


def _ramp_name(ramp: str) -> str:
    return tr("grey", "灰度") if ramp == "grey" else ramp


#: zonal statistics (:data:`gis.zonal.STATS`) by name: English, Chinese
STAT_NAMES: Final = {
    "mean": ("mean", "平均值"), "sum": ("sum", "总和"), "count": ("cell count", "像元数"),
    "min": ("minimum", "最小值"), "max": ("maximum", "最大值"), "majority": ("majority", "众数"),
    "minority": ("minority", "最少值"), "frac": ("fraction per class", "各类占比"),
    "median": ("median", "中位数"), "stdev": ("standard deviation", "标准差"),
    "variety": ("number of classes", "类别数"),
}  # fmt: skip


def stat_name(stat: str) -> str:
    """A zonal statistic by name in the page's language (``mean`` → ``平均值``)."""
    en, zh = STAT_NAMES.get(stat, (stat, stat))
    return tr(en, zh)


def zonal_title(choice: str) -> str:
    """A stored zonal result ``LAYER:RASTER:STAT`` in words: ``ndvi-2026-07, mean by basins``
    / ``ndvi-2026-07 平均值（按 basins 分区）``; ``—`` as it is."""
    if choice.count(":") < 2:
        return choice
    layer, raster, stat = choice.split(":", 2)
    return tr(
        f"{raster}, {stat_name(stat)} by {layer}", f"{raster} {stat_name(stat)}（按 {layer} 分区）"
    )


def _open(item: RasterItem) -> Any:
    """A catalogue item's raster (one step of a time stack: its own)."""
    return open_raster(
        item.path, variable=item.variable, band=item.band, time=item.time if item.stacked else None
    )


@st.cache_data(ttl=600, show_spinner=False)
def _overlay(item: RasterItem, ramp: str) -> tuple[Any, ...]:
    try:
        return raster_image(_open(item), ramp)
    except ValueError as exc:
        raise GisError(str(exc)) from exc


@st.cache_data(ttl=600, show_spinner=False)
def _dem(item: RasterItem) -> DemCells:
    try:
        return dem_cells(_open(item))
    except ValueError as exc:
        raise GisError(str(exc)) from exc


@st.cache_resource(show_spinner=False)
def _provinces() -> Any:
    return provinces(basemap())


def _legend(ramp: str, lo: float, hi: float, what: str) -> None:
    """A colour bar of ``ramp`` from ``lo`` to ``hi``, with the numbers in words."""
    words = tr(
        f"{what}: {lo:.4g} (left) … {hi:.4g} (right), {_ramp_name(ramp)}",
        f"{what}：{lo:.4g}（左）… {hi:.4g}（右），{_ramp_name(ramp)}",
    )
    st.image(legend_url(ramp), width=256, alt=tr(f"Colour bar: {words}", f"色带：{words}"))
    st.caption(words)


def _state_legend() -> None:
    """The station states' colours, each with its name (never colour alone)."""
    st.caption(
        "  ".join(
            f"<span style='color:{hex_colour(rgb)}' aria-hidden='true'>●</span> {tr(en, zh)}"
            for zh, en, rgb in STATES.values()
        ),
        unsafe_allow_html=True,
    )


def onemap_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """The page (see the module); stations, their states and the PM2.5 surface only from
    the stations ``who`` may read."""
    st.title(tr("One map", "一张图"))
    tz = settings.timezone
    now = datetime.now(UTC)
    with store.connection() as conn:
        names = gis_store.layers(conn)
        rasters = gis_store.load_rasters(conn)
        results = gis_store.zonal_results(conn)
        hourly = derived.latest_complete_hours(  # each station's latest valid complete hour
            conn, now, what="mean", scope="station", parameters=["pm25"]
        )
    hourly = who.readable(hourly, "subject")
    stations = pd.DataFrame(
        [
            {"id": s.id, "name": s.name, "kind": s.kind, "lon": s.lon, "lat": s.lat}
            for s in store.list_stations()
            if s.id in who.stations
        ],
        columns=["id", "name", "kind", "lon", "lat"],
    )
    by_id = {r.id: r for r in rasters}
    with st.sidebar:
        st.header(tr("Layers", "图层"))
        show_admin = st.checkbox(tr("Admin areas", "行政区划"), value=True)
        show_stations = st.checkbox(tr("Stations", "站点"), value=True)
        chosen_layers = st.multiselect(tr("Stored layers", "专题图层"), names, default=names[:2])
        choices = ["—", *by_id]
        # ?overlay=ID&dem=ID&zonal=LAYER:RASTER:STAT in the address picks them (a view to
        # bookmark or share); with none, the newest raster is overlaid
        asked_overlay = st.query_params.get("overlay")
        asked_dem = st.query_params.get("dem")
        asked_zonal = st.query_params.get("zonal")
        overlay = st.selectbox(
            tr("Raster overlay", "栅格叠加"),
            choices,
            index=choices.index(asked_overlay)
            if asked_overlay in choices
            else (0 if asked_dem or asked_zonal else len(by_id)),
        )
        ramp = st.radio(
            tr("Colours", "色带"), OVERLAY_RAMPS, horizontal=True, format_func=_ramp_name
        )
        show_pm25 = st.checkbox(tr("PM2.5 surface (IDW)", "PM2.5 插值面 (IDW)"), value=True)
        dem = st.selectbox(
            tr("DEM in 3D", "三维地形"),
            choices,
            index=choices.index(asked_dem) if asked_dem in choices else 0,
        )
        zonal_choices = ["—", *(f"{r.layer}:{r.raster}:{r.stat}" for r in results.itertuples())]
        zonal = st.selectbox(
            tr("Zonal results (layer:raster:statistic)", "分区统计（图层:栅格:统计量）"),
            zonal_choices,
            index=zonal_choices.index(asked_zonal) if asked_zonal in zonal_choices else 0,
        )
    layers: list[pdk.Layer] = []
    view = pdk.ViewState(longitude=104.5, latitude=35.5, zoom=3.1, pitch=0)
    notes: list[str] = []
    legends: list[tuple[str, float, float, str]] = []
    #: the numbers each drawn layer shows (the map's text alternative): layer, what, low, high
    numbers: list[dict[str, Any]] = []
    zonal_table: pd.DataFrame | None = None
    pm25_table: pd.DataFrame | None = None
    station_rows: pd.DataFrame | None = None
    if dem != "—":
        try:
            cells = _dem(by_id[dem])
        except GisError as exc:
            st.error(f"{dem}: {exc}")
        else:
            # extruded cells, drawn by deck.gl itself: its TerrainLayer needs loaders.gl's
            # worker, which is fetched from a CDN (and cannot decode on the page)
            layers.append(
                pdk.Layer(
                    "PolygonLayer", cells.cells, id="dem", get_polygon="polygon",
                    get_elevation="elevation", get_fill_color="colour", extruded=True,
                    filled=True, stroked=False, wireframe=False, pickable=False,
                )
            )  # fmt: skip
            view = _view_over(cells.bounds, pitch=50)
            notes.append(
                tr(
                    f"{dem}: terrain in 3D, {len(cells.cells):,} cells of {cells.factor}×"
                    f"{cells.factor} DEM cells, heights in metres at true scale (drag with the"
                    " right button to tilt)",
                    f"{dem}：三维地形，{len(cells.cells):,} 个单元（每个由 {cells.factor}×"
                    f"{cells.factor} 个 DEM 像元合成），高程单位为米，按真实比例"
                    "（按住右键拖动可倾斜）",
                )
            )
            what = tr(f"{dem} height (m)", f"{dem} 高程 (m)")
            legends.append(("cividis", cells.lo, cells.hi, what))
            numbers.append(_numbers(dem, what, cells.lo, cells.hi))
    if show_admin:
        layers.append(
            pdk.Layer(
                "GeoJsonLayer", basemap(), id="admin", stroked=True, filled=True,
                get_fill_color=ADMIN_FILL,
                get_line_color=[120, 120, 120], line_width_min_pixels=0.6,
            )
        )  # fmt: skip
    if overlay != "—":
        try:
            image, bounds, lo, hi = _overlay(by_id[overlay], ramp)
        except GisError as exc:
            st.error(f"{overlay}: {exc}")
        else:
            layers.append(
                pdk.Layer("BitmapLayer", id="overlay", image=String(image), bounds=bounds)
            )
            notes.append(
                tr(
                    f"{overlay}: {lo:.3g} … {hi:.3g} ({_ramp_name(ramp)} colours)",
                    f"{overlay}：{lo:.3g} … {hi:.3g}（{_ramp_name(ramp)}色带）",
                )
            )
            legends.append((ramp, lo, hi, overlay))
            numbers.append(_numbers(overlay, tr("raster overlay", "栅格叠加"), lo, hi))
            if dem == "—":
                view = _view_over(bounds)
    zonal_layer = zonal.split(":", 1)[0] if zonal != "—" else None
    for i, name in enumerate(chosen_layers):
        if name == zonal_layer:  # drawn as the choropleth, on top
            continue
        with store.connection() as conn:
            layer = gis_store.load_layer(conn, name)
        colour = LAYER_COLOURS[i % len(LAYER_COLOURS)]
        layers.append(
            pdk.Layer(
                "GeoJsonLayer", layer_geojson(layer), id=f"layer-{name}", stroked=True,
                filled=True, get_fill_color=[*colour, 40], get_line_color=colour,
                line_width_min_pixels=1.5, pickable=True,
            )
        )  # fmt: skip
    if zonal != "—":
        layer_name, raster_id, stat = zonal.split(":", 2)
        try:
            with store.connection() as conn:
                regions = gis_store.load_layer(conn, layer_name)
                stored = gis_store.read_zonal(conn, layer=layer_name, stat=stat, raster=raster_id)
            values = stored.set_index("feature")["value"]
            doc, lo, hi = zonal_choropleth(regions, values, stat)
        except (GisError, ValueError) as exc:
            st.error(f"{zonal}: {exc}")
        else:
            layers.append(
                pdk.Layer(
                    "GeoJsonLayer", doc, id="zonal", stroked=True, filled=True,
                    get_fill_color="properties.fill", get_line_color=[60, 60, 60],
                    line_width_min_pixels=1, pickable=True,
                )
            )  # fmt: skip
            what = zonal_title(zonal)
            legends.append(("viridis", lo, hi, what))
            numbers.append(_numbers(zonal, what, lo, hi))
            zonal_table = _zonal_table(regions, values, stat)
            if dem == "—" and overlay == "—":
                west, south, east, north = regions.to_crs("EPSG:4326").total_bounds
                view = _view_over([float(west), float(south), float(east), float(north)])
    if show_pm25:
        current = current_rows(hourly, now)
        points = current.merge(stations, left_on="subject", right_on="id")
        surface = station_surface(points, regions=_provinces())
        if surface is None:
            hours = f"{STALE_AFTER.total_seconds() / 3600:.0f}"
            notes.append(
                tr(
                    "PM2.5 surface: needs a valid complete hour of PM2.5 from at least 3 stations"
                    f" within {hours} h",
                    f"PM2.5 插值面：需要至少 3 个站点在 {hours} 小时内有完整有效的 PM2.5 小时值",
                )
            )
        else:
            grid, cv = surface
            low, high = PM25_RANGE
            image, bounds, _, _ = raster_image(grid, PM25_RAMP, low, high)  # µg/m³
            layers.append(pdk.Layer("BitmapLayer", id="pm25", image=String(image), bounds=bounds))
            hours = shown_hours(points["start"], tz)
            notes.append(
                tr(
                    f"PM2.5 surface ({hours}) from {len(cv.predicted)} stations, {cv.method}:"
                    f" leave-one-out RMSE {cv.rmse:.1f} µg/m³, bias {cv.bias:+.1f} µg/m³; drawn"
                    " over the provinces that hold a station",
                    f"PM2.5 插值面（{hours}），{len(cv.predicted)} 个站点，{cv.method}：留一法"
                    f"交叉验证 RMSE {cv.rmse:.1f} µg/m³，偏差 {cv.bias:+.1f} µg/m³；仅绘制有站点"
                    "的省份",
                )
            )
            what = tr("PM2.5 surface (µg/m³)", "PM2.5 插值面 (µg/m³)")
            legends.append((PM25_RAMP, low, high, what))
            numbers.append(
                _numbers("pm25", what, float(points["value"].min()), float(points["value"].max()))
            )
            pm25_table = _pm25_table(points, tz)
            who.shown_stations(points["subject"])
    if show_stations and not stations.empty:
        table = station_table(stations, who.readable(store.latest(), "station"), now)
        who.shown_stations(table["id"])
        station_rows = _station_rows(table, tz)
        layers.append(
            pdk.Layer(
                "ScatterplotLayer", table, id="stations", get_position=["lon", "lat"],
                get_fill_color="colour", get_line_color=[40, 40, 40], stroked=True,
                line_width_min_pixels=1, radius_min_pixels=5, radius_max_pixels=12,
                get_radius=20000, pickable=True,
            )
        )  # fmt: skip
    chart = pdk.Deck(
        layers=layers,
        initial_view_state=view,
        map_style=style_url(map_style(settings.tile_url)),
        map_provider=None,
        tooltip={"text": "{name}\n{id}"},
    )
    what = tr("One map", "一张图")
    if zonal_table is None:
        st.pydeck_chart(chart, height=640, alt=described(what))
    else:
        left, right = st.columns([3, 2])
        with left:
            st.pydeck_chart(chart, height=640, alt=described(what))
        with right:
            title = zonal_title(zonal)
            st.subheader(title)
            st.dataframe(
                zonal_table, hide_index=True, height=600, alt=tr("Data table: ", "数据表：") + title
            )
    if station_rows is not None:
        _state_legend()
    for ramp_name, lo, hi, legend_what in legends:
        _legend(ramp_name, lo, hi, legend_what)
    for note in notes:
        st.caption(note)
    if numbers:  # the map's text alternative: the range of each layer drawn
        data_table(_numbers_table(numbers), what, key="onemap_layers_table")
    if pm25_table is not None:
        data_table(pm25_table, tr("PM2.5 at the stations", "各站 PM2.5"), key="onemap_pm25_table")
    if station_rows is not None:
        data_table(station_rows, tr("Stations by state", "站点状态"), key="onemap_stations_table")


def _zonal_table(regions: Any, values: pd.Series, stat: str) -> pd.DataFrame:
    """The zonal result by region, as a table beside the map (its text alternative): the
    feature, its names when the layer has them, the value (empty when it has none); headings
    in the page's language."""
    region = tr("Region", "区域")
    table = pd.DataFrame({region: [str(f) for f in regions.index]})
    headings = {
        "name_zh": tr("Chinese name", "中文名称"),
        "name_en": tr("English name", "英文名称"),
        "name": tr("name", "名称"),
    }
    for column, heading in headings.items():  # names other than the feature's own
        if column in regions.columns:
            names = regions[column].astype(str).to_numpy()
            if (names != table[region].to_numpy()).any():
                table[heading] = names
    value = stat_name(stat)
    table[value] = pd.to_numeric(values, errors="coerce").reindex(table[region]).to_numpy()
    return table.sort_values(value, ascending=False, na_position="last")


def _numbers(layer: str, what: str, lo: float, hi: float) -> dict[str, Any]:
    return {"layer": layer, "what": what, "lo": lo, "hi": hi}


def _numbers_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The layers drawn and the range of each (its legend's numbers), in the page's language."""
    return pd.DataFrame(rows, columns=["layer", "what", "lo", "hi"]).rename(
        columns={
            "layer": tr("layer", "图层"),
            "what": tr("shows", "内容"),
            "lo": tr("lowest", "最低"),
            "hi": tr("highest", "最高"),
        }
    )


def _pm25_table(points: pd.DataFrame, tz: Any) -> pd.DataFrame:
    """The station values the PM2.5 surface is interpolated from (µg/m³), with their hour."""
    return pd.DataFrame(
        {
            tr("station", "站点"): points["subject"].astype(str),
            tr("name", "名称"): points["name"].astype(str),
            tr("hour", "小时"): [hour_label(t, tz) for t in points["start"]],
            "PM2.5 (µg/m³)": pd.to_numeric(points["value"], errors="coerce").round(1),
            tr("longitude", "经度"): points["lon"],
            tr("latitude", "纬度"): points["lat"],
        }
    ).sort_values("PM2.5 (µg/m³)", ascending=False)


def _station_rows(table: pd.DataFrame, tz: Any) -> pd.DataFrame:
    """Each station on the map with its state in words and its latest reading's time."""
    last = table["last_time"].map(
        lambda t: "—" if pd.isna(t) else t.tz_convert(tz).strftime("%Y-%m-%d %H:%M")
    )
    return pd.DataFrame(
        {
            tr("station", "站点"): table["id"],
            tr("name", "名称"): table["name"],
            tr("state", "状态"): table["state_label"],
            tr("latest reading", "最新读数"): last,
            tr("longitude", "经度"): table["lon"],
            tr("latitude", "纬度"): table["lat"],
        }
    )


def _view_over(bounds: list[float], pitch: int = 0) -> pdk.ViewState:
    """A view that shows ``bounds`` (WGS 84)."""
    west, south, east, north = bounds
    span = max(east - west, north - south, 1e-3)
    return pdk.ViewState(
        longitude=(west + east) / 2,
        latitude=(south + north) / 2,
        zoom=max(1.0, min(15.0, math.log2(360 / span))),
        pitch=pitch,
    )
