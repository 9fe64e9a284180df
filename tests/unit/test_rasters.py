"""Rasters: time stacks in Zarr and NetCDF, the catalogue's steps, reprojection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gis.catalogue import describe, stack
from gis.errors import GisError
from gis.rasters import open_raster, reproject, times
from gis.zonal import zonal_stats
from tests.unit.test_gis import _polygons_over


@pytest.fixture
def ndvi_stack() -> xr.DataArray:
    from gis.rasters import ndvi
    from tests.datasets import sentinel2_band

    scene = ndvi(open_raster(sentinel2_band("nir")), open_raster(sentinel2_band("red"))).compute()
    steps = pd.date_range("2026-05-01", periods=3, freq="MS")
    data = np.stack([scene.to_numpy() * f for f in (0.8, 1.0, 0.9)])
    da = xr.DataArray(
        data,
        dims=("time", "y", "x"),
        coords={"time": steps, "y": scene["y"].to_numpy(), "x": scene["x"].to_numpy()},
        name="ndvi",
    )
    out: xr.DataArray = da.rio.write_crs(scene.rio.crs)
    return out


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_time_stacks_register_step_by_step(
    ndvi_stack: xr.DataArray, tmp_path: Path, suffix: str
) -> None:
    path = tmp_path / f"ndvi{suffix}"
    ds = ndvi_stack.to_dataset()
    if suffix == ".zarr":
        ds.to_zarr(path, consolidated=False)
    else:
        ds.to_netcdf(path, engine="scipy")
    opened = open_raster(path)
    assert opened.dims == ("time", "y", "x") and opened.rio.crs.to_epsg() == 32719
    assert [t.month for t in times(opened)] == [5, 6, 7]
    items = stack(path, prefix="ndvi")
    assert [i.id for i in items] == [
        "ndvi-20260501T0000",
        "ndvi-20260601T0000",
        "ndvi-20260701T0000",
    ]
    assert all(i.stacked and i.time is not None and i.width == 300 for i in items)
    june = open_raster(path, time=items[1].time)
    zones = _polygons_over(june)
    np.testing.assert_allclose(
        zonal_stats(june, zones)["mean"], zonal_stats(ndvi_stack.isel(time=1), zones)["mean"]
    )
    with pytest.raises(GisError, match="a time stack"):
        describe(path)
    with pytest.raises(GisError, match="no step"):
        open_raster(path, time=pd.Timestamp("2026-05-15", tz="UTC"))


def test_reprojection_keeps_classes_with_nearest(ndvi_stack: xr.DataArray) -> None:
    scene = ndvi_stack.isel(time=0)
    wgs = reproject(scene, "EPSG:4326")
    assert wgs.rio.crs.to_epsg() == 4326
    classes = (scene > 0.3).astype("int32").rio.write_crs(scene.rio.crs)
    moved = reproject(classes, "EPSG:32619", resolution=20, resampling="nearest")
    assert set(np.unique(moved.to_numpy())) <= {0, 1} or set(np.unique(moved.to_numpy())) <= {
        0,
        1,
        moved.rio.nodata,
    }
    assert abs(moved.rio.resolution()[0]) == 20
    with pytest.raises(GisError, match="resampling"):
        reproject(scene, "EPSG:4326", resampling="cubic-spline")
