"""The one map · 一张图: admin areas, stored layers (watersheds, protection zones), stations by
state, a raster overlay from the catalogue (NDVI …), the PM2.5 surface interpolated from the
stations, and a DEM in 3D — each switched on and off. Everything is drawn from ``data:`` URLs:
no tile or style server is asked for anything."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pydeck as pdk
import streamlit as st
from pydeck.types import String  # a literal, not an expression to evaluate

from dashboards.mapview import (
    TERRAIN_DECODER,
    layer_geojson,
    raster_image,
    station_surface,
    terrain_image,
)
from dashboards.session import Viewer
from dashboards.settings import DashboardSettings
from dashboards.views import (
    STALE_AFTER,
    basemap,
    current_rows,
    map_style,
    shown_hours,
    station_table,
    style_url,
)
from gis.errors import GisError
from gis.rasters import open_raster
from store import derived
from store import gis as gis_store
from store.postgres import PostgresStore

ADMIN_FILL = "properties.kind == 'province' ? [245, 241, 230, 120] : [228, 228, 228, 80]"
LAYER_COLOURS = ([0, 110, 200], [200, 80, 0], [120, 0, 160], [0, 140, 90])


@st.cache_data(ttl=600, show_spinner=False)
def _overlay(path: str, variable: str | None, band: int | None, ramp: str) -> tuple[Any, ...]:
    return raster_image(open_raster(path, variable=variable, band=band), ramp)


@st.cache_data(ttl=600, show_spinner=False)
def _terrain(path: str, variable: str | None, band: int | None) -> tuple[str, list[float]]:
    return terrain_image(open_raster(path, variable=variable, band=band))


def onemap_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """The page (see the module); stations, their states and the PM2.5 surface only from
    the stations ``who`` may read."""
    st.title("One map · 一张图")
    tz = settings.timezone
    now = datetime.now(UTC)
    with store.connection() as conn:
        names = gis_store.layers(conn)
        rasters = gis_store.load_rasters(conn)
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
        st.header("Layers · 图层")
        show_admin = st.checkbox("Admin areas · 行政区划", value=True)
        show_stations = st.checkbox("Stations · 站点", value=True)
        chosen_layers = st.multiselect("Stored layers · 专题图层", names, default=names[:2])
        choices = ["—", *by_id]
        # ?overlay=ID&dem=ID in the address picks them (a view to bookmark or share)
        asked_overlay = st.query_params.get("overlay")
        overlay = st.selectbox(
            "Raster overlay · 栅格叠加",
            choices,
            index=choices.index(asked_overlay) if asked_overlay in choices else len(by_id),
        )
        ramp = st.radio("Colours · 色带", ["ndvi", "grey"], horizontal=True)
        show_pm25 = st.checkbox("PM2.5 surface (IDW) · PM2.5插值", value=True)
        asked_dem = st.query_params.get("dem")
        dem = st.selectbox(
            "DEM in 3D · 三维地形",
            choices,
            index=choices.index(asked_dem) if asked_dem in choices else 0,
        )
    layers: list[pdk.Layer] = []
    view = pdk.ViewState(longitude=104.5, latitude=35.5, zoom=3.1, pitch=0)
    notes: list[str] = []
    if dem != "—":
        item = by_id[dem]
        try:
            image, bounds = _terrain(item.path, item.variable, item.band)
        except GisError as exc:
            st.error(f"{dem}: {exc}")
        else:
            layers.append(
                pdk.Layer(
                    "TerrainLayer", id="dem", elevation_data=String(image), bounds=bounds,
                    elevation_decoder=TERRAIN_DECODER, texture=None, wireframe=False,
                    # decode on the page: loaders.gl's worker would be fetched from a CDN
                    load_options={"worker": False},
                )
            )  # fmt: skip
            view = _view_over(bounds, pitch=50)
            notes.append(f"{dem}: terrain in 3D (drag with the right button to tilt)")
    if show_admin:
        layers.append(
            pdk.Layer(
                "GeoJsonLayer", basemap(), id="admin", stroked=True, filled=True,
                get_fill_color=ADMIN_FILL,
                get_line_color=[120, 120, 120], line_width_min_pixels=0.6,
            )
        )  # fmt: skip
    if overlay != "—":
        item = by_id[overlay]
        try:
            image, bounds, lo, hi = _overlay(item.path, item.variable, item.band, ramp)
        except GisError as exc:
            st.error(f"{overlay}: {exc}")
        else:
            layers.append(
                pdk.Layer("BitmapLayer", id="overlay", image=String(image), bounds=bounds)
            )
            notes.append(f"{overlay}: {lo:.3g} … {hi:.3g} ({ramp} colours)")
            if dem == "—":
                view = _view_over(bounds)
    for i, name in enumerate(chosen_layers):
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
    if show_pm25:
        current = current_rows(hourly, now)
        points = current.merge(stations, left_on="subject", right_on="id")
        surface = station_surface(points)
        if surface is None:
            notes.append(
                "PM2.5 surface: needs a valid complete hour of PM2.5 from at least 3 stations"
                f" within {STALE_AFTER.total_seconds() / 3600:.0f} h"
            )
        else:
            grid, cv = surface
            image, bounds, _, _ = raster_image(grid, "pm25", 0.0, 150.0)  # µg/m³
            layers.append(pdk.Layer("BitmapLayer", id="pm25", image=String(image), bounds=bounds))
            notes.append(
                f"PM2.5 surface ({shown_hours(points['start'], tz)}) from {len(cv.predicted)}"
                f" stations, {cv.method}: leave-one-out RMSE {cv.rmse:.1f} µg/m³,"
                f" bias {cv.bias:+.1f}"
            )
            who.shown_stations(points["subject"])
    if show_stations and not stations.empty:
        table = station_table(stations, who.readable(store.latest(), "station"), now)
        who.shown_stations(table["id"])
        layers.append(
            pdk.Layer(
                "ScatterplotLayer", table, id="stations", get_position=["lon", "lat"],
                get_fill_color="colour", get_line_color=[40, 40, 40], stroked=True,
                line_width_min_pixels=1, radius_min_pixels=5, radius_max_pixels=12,
                get_radius=20000, pickable=True,
            )
        )  # fmt: skip
    st.pydeck_chart(
        pdk.Deck(
            layers=layers,
            initial_view_state=view,
            map_style=style_url(map_style(settings.tile_url)),
            map_provider=None,
            tooltip={"text": "{name}\n{id}"},
        ),
        height=640,
    )
    for note in notes:
        st.caption(note)


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
