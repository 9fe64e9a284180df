"""Stations in admin areas and watersheds; aggregates per region."""

from __future__ import annotations

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from gis.errors import GisError
from gis.layers import china_provinces
from gis.points import aggregate_by_region, regions_of

STATIONS = pd.DataFrame(
    {
        "id": ["BJ-1", "BJ-2", "SH-1", "SEA"],
        "lon": [116.40, 116.30, 121.47, 125.0],
        "lat": [39.90, 40.00, 31.23, 30.0],  # the last in the East China Sea
    }
)


def test_stations_in_provinces_and_city_means() -> None:
    regions = regions_of(STATIONS, china_provinces())
    assert regions[["BJ-1", "BJ-2", "SH-1"]].tolist() == ["CN-BJ", "CN-BJ", "CN-SH"]
    assert pd.isna(regions["SEA"])  # outside every province: no region
    values = pd.DataFrame(
        {"subject": ["BJ-1", "BJ-2", "SH-1", "SEA"], "value": [80.0, 100.0, 40.0, 5.0]}
    )
    means = aggregate_by_region(values, regions).set_index("region")
    assert means.loc["CN-BJ", "value"] == 90 and means.loc["CN-BJ", "stations"] == 2
    assert "SEA" not in means.index and len(means) == 2


def test_watershed_in_a_projected_crs_worst_class() -> None:
    basin = gpd.GeoDataFrame(
        {"name": ["upper", "lower"]},
        geometry=[shapely.box(116.0, 39.95, 117.0, 41.0), shapely.box(116.0, 39.0, 117.0, 39.95)],
        crs="EPSG:4326",
    ).to_crs("EPSG:32650")
    regions = regions_of(STATIONS, basin, "name")
    assert regions["BJ-2"] == "upper" and regions["BJ-1"] == "lower"
    classes = pd.DataFrame({"subject": ["BJ-1", "BJ-2"], "value": [3.0, 5.0]})
    worst = aggregate_by_region(classes, regions, "max").set_index("region")["value"]
    assert worst.to_dict() == {"lower": 3.0, "upper": 5.0}


def test_bad_input() -> None:
    with pytest.raises(GisError, match="lack lat"):
        regions_of(STATIONS.drop(columns=["lat"]), china_provinces())
    with pytest.raises(GisError, match="no column"):
        regions_of(STATIONS, china_provinces(), "iso")
