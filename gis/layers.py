"""Vector layers: read GeoJSON, Shapefile or GeoPackage (or take a GeoDataFrame) with their
CRS and attributes, checked.

- A layer **without a CRS** is an error (a CRS is never guessed).
- An **empty or missing geometry** is an error naming the feature.
- An **invalid geometry** (a self-intersecting ring, a bow-tie) is repaired with shapely's
  ``make_valid``, keeping its polygonal part; the repaired features are listed in
  ``layer.attrs["repaired"]`` — a documented fix-up, never silent.

The default admin layer (:func:`china_provinces`) is the one the dashboard ships: China's
provincial-level divisions with ISO 3166-2 codes, made by ``scripts/make_basemap.py`` from the
Natural Earth admin-1 layer in Debian's ``qgis-common`` (public domain, generalised).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Final

import geopandas as gpd
import pandas as pd
import shapely

from gis.errors import GisError

#: An equal-area CRS for China (Albers, standard parallels 25° N and 47° N) for areas.
CHINA_ALBERS: Final = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +datum=WGS84 +units=m"


def read_layer(source: str | Path | gpd.GeoDataFrame, layer: str | None = None) -> gpd.GeoDataFrame:
    """A checked vector layer from a file (GeoJSON, Shapefile, GeoPackage; ``layer`` names one
    of a GeoPackage's layers) or a GeoDataFrame (copied). See the module for the checks.

    Raises
    ------
    GisError
        for an unreadable file, a layer without a CRS, or an empty geometry.
    """
    if isinstance(source, gpd.GeoDataFrame):
        frame = source.copy()
        name = "the layer"
    else:
        name = str(source)
        try:
            frame = gpd.read_file(source, layer=layer) if layer else gpd.read_file(source)
        except Exception as exc:  # pyogrio raises its own errors for corrupt or missing files
            raise GisError(f"cannot read {name}: {exc}") from exc
    if frame.crs is None:
        raise GisError(f"{name} has no CRS: give it one (e.g. EPSG:4326) before use")
    empty = frame.geometry.isna() | frame.geometry.is_empty
    if empty.any():
        which = ", ".join(map(str, frame.index[empty][:5]))
        raise GisError(f"{name}: features {which} have an empty or missing geometry")
    invalid = ~frame.geometry.is_valid
    repaired: list[object] = []
    if invalid.any():
        fixed = shapely.make_valid(frame.geometry[invalid].to_numpy())
        polygonal = [_polygonal(g) for g in fixed]
        frame.loc[invalid, frame.geometry.name] = polygonal
        repaired = list(frame.index[invalid])
    frame.attrs["repaired"] = repaired
    frame.attrs["source"] = name
    return frame


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """The polygonal part of a repaired geometry (make_valid may add stray lines or points)."""
    if isinstance(geom, shapely.GeometryCollection):
        parts = [g for g in geom.geoms if isinstance(g, shapely.Polygon | shapely.MultiPolygon)]
        if parts:
            return shapely.union_all(parts)
    return geom


def china_provinces() -> gpd.GeoDataFrame:
    """China's provincial-level divisions (``code`` ISO 3166-2, ``name_zh``, ``name_en``),
    EPSG:4326, indexed by code."""
    path = resources.files("dashboards").joinpath("data", "china_provinces.geojson")
    with resources.as_file(path) as p:
        frame = read_layer(p)
    frame = frame[frame["kind"] == "province"].drop(columns=["kind"])
    return frame.set_index("code").sort_index()


def areas_km2(layer: gpd.GeoDataFrame, crs: str = CHINA_ALBERS) -> pd.Series:
    """Each feature's area in km², computed in an equal-area CRS (China Albers by default)."""
    area: pd.Series = layer.to_crs(crs).area / 1e6
    return area


def in_wgs84(layer: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``layer`` in WGS 84 longitude/latitude (EPSG:4326, degrees, x = longitude): reprojected
    from its CRS; a layer without one is taken as it is."""
    return layer.to_crs(4326) if layer.crs is not None else layer


def feature_collection(layer: gpd.GeoDataFrame) -> dict[str, Any]:
    """``layer`` (indexed by feature name) as an RFC 7946 GeoJSON FeatureCollection: coordinates
    in WGS 84 longitude/latitude (degrees; reprojected), each feature's ``id`` its name, its
    attributes and its name (``feature``) as ``properties``."""
    named = in_wgs84(layer).rename_axis("feature")
    collection: dict[str, Any] = (
        named.reset_index().set_index("feature", drop=False).to_geo_dict(drop_id=False)
    )
    return collection
