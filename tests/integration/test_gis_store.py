"""The one map in the store: layers and rasters imported through the CLI, zonal statistics on
the Dask runner stored by raster (time), layer and feature — equal to exactextract's."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import shapely

from ecosense.cli import main
from gis.layers import read_layer
from gis.rasters import open_raster
from gis.zonal import zonal_stats
from store import gis as gis_store
from tests.datasets import sentinel2_band

pytestmark = pytest.mark.integration


@pytest.fixture
def env(cli_env: Path) -> Path:
    return cli_env


def _zones(tmp_path: Path) -> Path:
    nir = open_raster(sentinel2_band("nir"))
    west, south, east, north = nir.rio.transform_bounds("EPSG:4326")
    w, h = east - west, north - south
    zones = gpd.GeoDataFrame(
        {"name": ["field", "slope"], "kind": ["farm", "hill"]},
        geometry=[
            shapely.box(west + 0.1 * w, south + 0.1 * h, west + 0.5 * w, south + 0.6 * h),
            shapely.box(west + 0.5 * w, south + 0.3 * h, east - 0.1 * w, north - 0.1 * h),
        ],
        crs="EPSG:4326",
    )
    path = tmp_path / "zones.geojson"
    zones.to_file(path, driver="GeoJSON")
    return path


def test_layers_rasters_and_zonal_statistics_in_the_store(
    env: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["gis", "layer", "china-provinces", "--name", "provinces"]) == 0
    assert main(["gis", "layer", str(_zones(env)), "--name", "zones", "--key", "name"]) == 0
    item = {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": "s2-scene",
        "properties": {"datetime": "2026-07-01T10:30:00Z"},
        "assets": {
            "nir": {"href": str(sentinel2_band("nir")), "type": "application/x-netcdf"},
            "red": {"href": str(sentinel2_band("red")), "type": "application/x-netcdf"},
            "thumbnail": {"href": "thumb.png", "type": "image/png"},
        },
    }
    (env / "item.json").write_text(json.dumps(item))
    assert main(["gis", "raster", str(env / "item.json")]) == 0
    out = capsys.readouterr().out
    assert "layer provinces: 34 features" in out and "raster s2-scene-nir: 300 x 200" in out

    assert main(["gis", "zonal", "--layer", "zones", "--stats", "mean,count,max"]) == 0
    out, err = capsys.readouterr()
    assert "zonal: rasters 2/2" in err and "0 errors" in out
    with psycopg.connect(database_url) as conn:
        stored = gis_store.read_zonal(conn, layer="zones")
        layer = gis_store.load_layer(conn, "zones")
        provinces = gis_store.load_layer(conn, "provinces")
    assert list(layer.index) == ["field", "slope"] and set(layer["kind"]) == {"farm", "hill"}
    assert provinces.loc["CN-BJ", "name_zh"] == "北京市"
    expected = zonal_stats(open_raster(sentinel2_band("nir")), read_layer(_zones(env)), ["mean"])
    got = stored[(stored["raster"] == "s2-scene-nir") & (stored["stat"] == "mean")]
    np.testing.assert_allclose(got["value"].to_numpy(), expected["mean"].to_numpy(), rtol=1e-12)
    assert str(got["time"].iloc[0]) == "2026-07-01 10:30:00+00:00"
    assert len(stored) == 2 * 2 * 3  # rasters × features × statistics

    # a raster outside every polygon of the layer: a clear error, the run reports it
    assert main(["gis", "zonal", "--layer", "provinces", "--raster", "s2-scene-red"]) == 1
    out, err = capsys.readouterr()
    # which raster over which layer, and the count in the last line (trial findings)
    assert "raster s2-scene-red over layer provinces: the raster lies outside every polygon" in err
    assert err.strip().splitlines()[-1] == (
        "ecosense: error: 1 of 1 rasters failed (listed above); the others are stored"
    )
    assert out.startswith("zonal: 1 rasters over layer provinces, 0 rows written, 1 errors, ")


def test_bad_layers_and_rasters(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shp = env / "nocrs.shp"
    gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 1, 1)], crs="EPSG:3857").to_file(shp)
    shp.with_suffix(".prj").unlink()  # a Shapefile without its .prj has no CRS
    assert main(["gis", "layer", str(shp), "--name", "bad"]) == 1
    assert "has no CRS" in capsys.readouterr().err
    (env / "broken.tif").write_bytes(b"II*\x00broken")
    assert main(["gis", "raster", str(env / "broken.tif")]) == 1
    assert "cannot read" in capsys.readouterr().err
    assert main(["gis", "zonal", "--layer", "nowhere"]) == 1
    assert "no layer 'nowhere'" in capsys.readouterr().err


def test_a_time_stack_gives_one_result_per_step(
    env: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import pandas as pd
    import xarray as xr

    nir = open_raster(sentinel2_band("nir")).compute()
    steps = pd.date_range("2026-05-01", periods=3, freq="MS", tz="UTC").tz_localize(None)
    data = np.stack([nir.to_numpy() * f for f in (1.0, 1.1, 1.2)])
    stack = xr.DataArray(
        data, dims=("time", "y", "x"),
        coords={"time": steps, "y": nir["y"].to_numpy(), "x": nir["x"].to_numpy()}, name="nir",
    ).rio.write_crs(nir.rio.crs)  # fmt: skip
    stack.to_dataset().to_zarr(env / "nir.zarr", consolidated=False)
    assert main(["gis", "layer", str(_zones(env)), "--name", "zones", "--key", "name"]) == 0
    assert main(["gis", "raster", str(env / "nir.zarr"), "--stack", "--id", "nir"]) == 0
    assert main(["gis", "zonal", "--layer", "zones", "--stats", "mean"]) == 0
    capsys.readouterr()
    with psycopg.connect(database_url) as conn:
        means = gis_store.read_zonal(conn, layer="zones", stat="mean", feature="field")
    assert [t.month for t in means["time"]] == [5, 6, 7]
    ratios = means["value"].to_numpy() / means["value"].iloc[0]
    np.testing.assert_allclose(ratios, [1.0, 1.1, 1.2], rtol=1e-9)
