"""The ecology job on the Dask runner against the real store (issue 18, item 5): NDVI and NDWI
rasters registered with their quantity through the CLI, reduced per region (NDVI also to FVC)
and each region's trend (Mann-Kendall, Sen's slope per year); incremental and idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import psycopg
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from ecosense.cli import main
from pipelines.jobs import JobContext, get
from pipelines.runner import Runner
from store import gis as gis_store

pytestmark = pytest.mark.integration
YEARS = range(2019, 2026)


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    with Runner(local="threads", workers=2) as r:
        yield r


def _raster(path: Path, west: float, east: float) -> Path:
    """A 40 × 20 grid over 116–117° E, 39–39.5° N: ``west`` in its western half, ``east`` in
    its eastern half (NaN: no data)."""
    data = np.empty((20, 40), dtype="float32")
    data[:, :20], data[:, 20:] = west, east
    with rasterio.open(
        path, "w", driver="GTiff", height=20, width=40, count=1, dtype="float32",
        crs="EPSG:4326", transform=from_origin(116.0, 39.5, 0.025, 0.025), nodata=np.nan,
    ) as dst:  # fmt: skip
        dst.write(data, 1)
    return path


def _landcover(path: Path, changed: bool) -> Path:
    """Classes on a 20 × 20 grid of 100 m cells (1 ha) in UTM zone 50N: all cropland (1); when
    ``changed``, the west half's top 5 rows built up (3): 50 ha."""
    data = np.ones((20, 20), dtype="uint8")
    if changed:
        data[:5, :10] = 3
    with rasterio.open(
        path, "w", driver="GTiff", height=20, width=20, count=1, dtype="uint8",
        crs="EPSG:32650", transform=from_origin(500_000, 4_400_000, 100, 100), nodata=0,
    ) as dst:  # fmt: skip
        dst.write(data, 1)
    return path


def _utm(tmp: Path) -> Path:
    boxes = gpd.GeoDataFrame(
        {"name": ["plot-w", "plot-e"]},
        geometry=[
            shapely.box(500_000, 4_398_000, 501_000, 4_400_000),
            shapely.box(501_000, 4_398_000, 502_000, 4_400_000),
        ],
        crs="EPSG:32650",
    )
    boxes.to_file(tmp / "utm.geojson", driver="GeoJSON")
    return tmp / "utm.geojson"


def _layers(tmp: Path) -> tuple[Path, Path]:
    here = gpd.GeoDataFrame(
        {"name": ["west", "east"]},
        geometry=[shapely.box(116.0, 39.0, 116.5, 39.5), shapely.box(116.5, 39.0, 117.0, 39.5)],
        crs="EPSG:4326",
    )
    far = gpd.GeoDataFrame(  # Yunnan: no raster there
        {"name": ["kunming"]}, geometry=[shapely.box(102.5, 24.5, 103.0, 25.0)], crs="EPSG:4326"
    )
    here.to_file(tmp / "regions.geojson", driver="GeoJSON")
    far.to_file(tmp / "far.geojson", driver="GeoJSON")
    return tmp / "regions.geojson", tmp / "far.geojson"


def test_regional_series_and_trends(cli_env: Path, database_url: str, runner: Runner) -> None:
    regions, far = _layers(cli_env)
    assert main(["gis", "layer", str(regions), "--name", "regions", "--key", "name"]) == 0
    assert main(["gis", "layer", str(far), "--name", "far", "--key", "name"]) == 0
    for year in YEARS[:-1]:  # the west greens 0.02 a year; the east stays at 0.6
        path = _raster(cli_env / f"ndvi-{year}.tif", 0.30 + 0.02 * (year - 2019), 0.6)
        when = f"{year}-07-01T00:00:00+08:00"
        args = ["gis", "raster", str(path), "--time", when, "--quantity", "ndvi"]
        assert main([*args, "--id", f"ndvi-{year}"]) == 0
    wet = _raster(cli_env / "ndwi-2024.tif", -0.2, 0.1)
    args = ["gis", "raster", str(wet), "--time", "2024-07-01T00:00:00+08:00"]
    assert main([*args, "--quantity", "ndwi", "--id", "ndwi-2024"]) == 0
    assert main(["gis", "layer", str(_utm(cli_env)), "--name", "utm", "--key", "name"]) == 0
    for year, changed in ((2020, False), (2025, True)):
        path = _landcover(cli_env / f"lc-{year}.tif", changed)
        args = ["gis", "raster", str(path), "--time", f"{year}-01-01T00:00:00+08:00"]
        assert main([*args, "--quantity", "landcover", "--id", f"lc-{year}"]) == 0
    other = _raster(cli_env / "dem.tif", 50.0, 60.0)  # no quantity: not the ecology job's
    # found by the new user's trial: an unscaled "NDVI" (3.5) went into the trends; land
    # cover in degrees was only caught by the job
    scaled = _raster(cli_env / "ndvi-x1000.tif", 3.5, 3.5)
    args = ["gis", "raster", str(scaled), "--time", "2018-07-01T00:00:00+08:00"]
    assert main([*args, "--quantity", "ndvi", "--id", "ndvi-unscaled"]) == 0
    geo = _raster(cli_env / "lc-degrees.tif", 1.0, 2.0)
    args = ["gis", "raster", str(geo), "--time", "2022-07-01T00:00:00+08:00"]
    assert main([*args, "--quantity", "landcover", "--id", "lc-degrees"]) == 1
    assert main(["gis", "raster", str(other), "--time", "2024-07-01T00:00:00+08:00"]) == 0

    ctx = JobContext(database_url, runner, "Asia/Shanghai", overlap=timedelta(0))
    report = get("ecology").run(ctx, None, None)
    assert report.errors == [], report.errors
    # 7 NDVI + 1 NDWI rasters × 3 layers, one land-cover pair × 3 layers; not the DEM
    assert report.tasks == 8 * 3 + 3
    assert any(
        "ndvi-unscaled over layer regions: no cell lies in [-1, 1]" in w for w in report.warnings
    )
    assert any("outside layer far" in w for w in report.warnings)
    assert any("ndwi over regions: fewer than 4 values" in w for w in report.warnings)
    with psycopg.connect(database_url) as conn:
        ndvi = gis_store.ecology_series(conn, "regions", "ndvi").set_index(["feature", "raster"])
        fvc = gis_store.ecology_series(conn, "regions", "fvc").set_index(["feature", "raster"])
        trends = gis_store.read_trends(conn, "regions").set_index(["quantity", "feature"])
        assert gis_store.read_zonal(conn, layer="far").empty
        changes = gis_store.read_landcover(conn, "utm").set_index(
            ["feature", "from_class", "to_class"]
        )
        assert gis_store.read_landcover(conn, "regions").empty  # elsewhere: a warning
        assert gis_store.read_zonal(conn, layer="regions", raster="dem").empty
    assert ndvi.loc[("west", "ndvi-2019"), "value"] == pytest.approx(0.30, abs=1e-6)
    assert ndvi.loc[("east", "ndvi-2023"), "value"] == pytest.approx(0.6, abs=1e-6)
    # FVC = (NDVI − 0.05) / (0.95 − 0.05)
    assert fvc.loc[("west", "ndvi-2019"), "value"] == pytest.approx(0.25 / 0.9, abs=1e-6)
    west = trends.loc[("ndvi", "west")]
    assert west["trend"] == "increasing" and west["significant"] and west["n"] == 6  # not 3.5
    assert west["slope_per_year"] == pytest.approx(0.02, rel=2e-3)  # 365 or 366 days apart
    assert trends.loc[("fvc", "west"), "slope_per_year"] == pytest.approx(0.02 / 0.9, rel=2e-3)
    east = trends.loc[("ndvi", "east")]
    assert east["trend"] == "no trend" and not east["significant"]
    assert east["slope_per_year"] == pytest.approx(0.0, abs=1e-9)
    assert trends.loc[("ndwi", "west"), "trend"] == "insufficient data"
    assert changes.loc[("plot-w", "1", "3"), "area_ha"] == pytest.approx(50.0)
    assert changes.loc[("plot-w", "1", "1"), "area_ha"] == pytest.approx(150.0)
    assert changes.loc[("plot-e", "1", "1"), "area_ha"] == pytest.approx(200.0)
    assert set(changes["start_year"]) == {2020} and set(changes["end_year"]) == {2025}
    assert any("land cover lc-2020 → lc-2025 over layer far" in w for w in report.warnings)

    # idempotent: nothing new, nothing written; a full recompute changes no value
    assert get("ecology").run(ctx, None, None).rows == 0
    full = get("ecology").run(
        ctx, datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    )
    assert full.errors == [] and full.rows == 0
    # incremental: a new year is computed alone, and the trend takes it in
    path = _raster(cli_env / "ndvi-2025.tif", 0.42, 0.6)
    args = ["gis", "raster", str(path), "--time", "2025-07-01T00:00:00+08:00"]
    assert main([*args, "--quantity", "ndvi", "--id", "ndvi-2025"]) == 0
    later = get("ecology").run(ctx, None, None)
    assert later.errors == [] and later.tasks == 3  # one raster × three layers
    with psycopg.connect(database_url) as conn:
        trends = gis_store.read_trends(conn, "regions").set_index(["quantity", "feature"])
    assert trends.loc[("ndvi", "west"), "n"] == 7
