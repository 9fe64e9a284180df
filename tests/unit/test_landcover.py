"""Land-cover change areas per region, handed to carbon sinks."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
import xarray as xr

from carbon.sinks import Stock, check_changes, stock_difference
from gis.errors import GisError
from gis.landcover import transitions

CRS = "EPSG:32650"  # UTM 50N (Beijing), metres


def _raster(classes: np.ndarray) -> xr.DataArray:
    rows, cols = classes.shape
    return xr.DataArray(
        classes,
        dims=("y", "x"),
        coords={
            "y": 4_400_000 - 15 - 30 * np.arange(rows),
            "x": 440_000 + 15 + 30 * np.arange(cols),
        },
    ).rio.write_crs(CRS)


def test_transition_areas_per_region_feed_the_sinks() -> None:
    before = np.full((4, 6), 10, dtype="int32")  # forest everywhere (30 m cells)
    after = before.copy()
    after[:, 4:] = 40  # the two eastern columns become cropland
    after[0, 0] = 80  # and one cell water
    west = shapely.box(440_000, 4_399_880, 440_090, 4_400_000)  # columns 0-2
    east = shapely.box(440_090, 4_399_880, 440_180, 4_400_000)  # columns 3-5
    regions = gpd.GeoDataFrame({"code": ["110101", "110102"]}, geometry=[west, east], crs=CRS)
    table = transitions(_raster(before), _raster(after), regions, 2020, 2025, "code")
    area = table.set_index(["region", "from_class", "to_class"])["area"]
    cell = 30 * 30 / 10_000  # ha
    assert area[("110101", "10", "10")] == pytest.approx(11 * cell)
    assert area[("110101", "10", "80")] == pytest.approx(1 * cell)
    assert area[("110102", "10", "10")] == pytest.approx(4 * cell)
    assert area[("110102", "10", "40")] == pytest.approx(8 * cell)
    assert table["area"].sum() == pytest.approx(24 * cell)
    assert set(table["unit"]) == {"ha"} and set(table["start_year"]) == {2020}
    stocks = {
        "10": Stock("10", 100.0, "test"),
        "40": Stock("40", 40.0, "test"),
        "80": Stock("80", 0.0, "test"),
    }
    changes, bad = check_changes(table, "land-cover job")
    sinks, refused = stock_difference(changes, stocks)
    assert bad == [] and refused == []
    emitted = sinks.groupby("region")["co2_t_per_year"].sum()
    assert emitted["110102"] == pytest.approx(8 * cell * 60 * 44 / 12 / 5)


def test_rasters_must_share_a_projected_grid() -> None:
    a = _raster(np.ones((4, 6), dtype="int32"))
    regions = gpd.GeoDataFrame(
        geometry=[shapely.box(440_000, 4_399_880, 440_180, 4_400_000)], crs=CRS
    )
    with pytest.raises(GisError, match="not on one grid"):
        transitions(a, _raster(np.ones((4, 5), dtype="int32")), regions, 2020, 2025)
    geographic = a.rio.write_crs("EPSG:4326")
    with pytest.raises(GisError, match="projected CRS"):
        transitions(geographic, geographic, regions, 2020, 2025)
    with pytest.raises(GisError, match="not after"):
        transitions(a, a, regions, 2025, 2020)
