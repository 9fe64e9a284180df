"""Points in polygons: which region (admin area, watershed, protection zone) each station lies
in, and per-region aggregates of station values — a city's AQI from the stations inside its
boundary, a basin's worst water class.

A station on a shared border belongs to the first region in the layer's order (documented and
deterministic); a station outside every region gets none and is reported.
"""

from __future__ import annotations

from collections.abc import Callable

import geopandas as gpd
import pandas as pd

from gis.errors import GisError
from gis.layers import read_layer


def regions_of(
    stations: pd.DataFrame, layer: gpd.GeoDataFrame, column: str | None = None
) -> pd.Series:
    """Region of each station (``stations`` with ``id, lon, lat`` in WGS 84): the ``column``
    of ``layer`` (its index when ``None``), ``NaN`` outside every region; indexed by station."""
    checked = read_layer(layer)
    missing = {"id", "lon", "lat"} - set(stations.columns)
    if missing:
        raise GisError(f"stations lack {', '.join(sorted(missing))}")
    if column is not None and column not in checked.columns:
        raise GisError(f"the layer has no column {column!r}")
    points = gpd.GeoDataFrame(
        {"id": stations["id"].to_numpy()},
        geometry=gpd.points_from_xy(stations["lon"], stations["lat"]),
        crs="EPSG:4326",
    ).to_crs(checked.crs)
    labels = checked[column] if column is not None else pd.Series(checked.index, checked.index)
    polygons = gpd.GeoDataFrame(
        {"region": labels.to_numpy(), "order": range(len(checked))},
        geometry=checked.geometry.to_numpy(),
        crs=checked.crs,
    )
    joined = gpd.sjoin(points, polygons, how="left", predicate="intersects")
    first = joined.sort_values("order").groupby("id", sort=False)["region"].first()
    out: pd.Series = first.reindex(stations["id"].to_numpy()).rename("region")
    return out


def aggregate_by_region(
    values: pd.DataFrame,
    regions: pd.Series,
    how: str | Callable[[pd.Series], float] = "mean",
) -> pd.DataFrame:
    """Per region (and ``start`` when ``values`` has it) the ``how`` (``mean``, ``max``, …) of
    ``values`` (``subject, value[, start]``) over the stations inside, with their count."""
    frame = values.assign(region=values["subject"].map(regions)).dropna(subset=["region"])
    keys = ["region", "start"] if "start" in frame.columns else ["region"]
    grouped = frame.groupby(keys)["value"]
    return pd.DataFrame({"value": grouped.agg(how), "stations": grouped.size()}).reset_index()
