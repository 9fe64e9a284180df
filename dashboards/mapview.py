"""Pure helpers of the one-map page, all drawn by deck.gl's own layers with nothing fetched
from any server (no tiles, no loaders.gl worker):

- rasters as ``data:`` PNG images on a Web Mercator grid (:func:`raster_image`): the map is
  Web Mercator, and a BitmapLayer stretches its image linearly between the corners, so an image
  in another grid (WGS 84 degrees, UTM) would be drawn away from where it belongs; no-data is
  transparent;
- a DEM in 3D as extruded cells (:func:`dem_cells`), decimated to at most :data:`MAX_CELLS`,
  each cell's corners exact in longitude/latitude, coloured by height (cividis);
- zonal results as a choropleth of the layer's polygons (:func:`zonal_choropleth`);
- the PM2.5 surface interpolated from stations (:func:`station_surface`).

The colour ramps are :data:`dashboards.palettes.RAMPS` (colour-blind safe, or grey), the
dashboard's one table of them.
"""

from __future__ import annotations

import base64
import io
import math
import warnings
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr
from affine import Affine
from PIL import Image

from dashboards.i18n import tr
from dashboards.palettes import RAMPS
from gis.interpolate import CrossValidation, idw, idw_cv
from gis.layers import CHINA_ALBERS

#: the longer side of a raster overlay's image (pixels)
MAX_PIXELS: Final = 512
#: the most cells a DEM is drawn with in 3D
MAX_CELLS: Final = 20_000
#: Web Mercator's latitude limit (degrees): the map cannot show beyond it
MERCATOR_LAT: Final = 85.0511287798066
WEB_MERCATOR: Final = "EPSG:3857"


def block_mean(da: xr.DataArray, factor: int) -> xr.DataArray:
    """``da`` (2-D, with a CRS) averaged over blocks of ``factor`` × ``factor`` cells, no-data
    (NaN) left out of each mean. The last row and column of blocks are padded with no-data,
    not dropped, so the result covers exactly the raster's extent or a little more: nothing
    of the raster is cut off at its right or bottom edge. Lazy for a dask-backed ``da``."""
    if factor <= 1:
        return da
    xd, yd = da.rio.x_dim, da.rio.y_dim
    transform = da.rio.transform()
    crs = da.rio.crs
    pad_x, pad_y = -da.sizes[xd] % factor, -da.sizes[yd] % factor
    data = da.astype("float64").drop_vars([xd, yd], errors="ignore")
    if pad_x or pad_y:
        data = data.pad({xd: (0, pad_x), yd: (0, pad_y)}, constant_values=np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a block of no-data only: NaN
        out = data.coarsen({xd: factor, yd: factor}, boundary="exact").mean()  # NaN skipped
    coarse = transform * Affine.scale(factor)
    width, height = out.sizes[xd], out.sizes[yd]
    out = out.assign_coords(
        {
            xd: coarse.c + coarse.a * (np.arange(width) + 0.5),
            yd: coarse.f + coarse.e * (np.arange(height) + 0.5),
        }
    )
    written: xr.DataArray = out.rio.write_crs(crs).rio.write_transform(coarse)
    return written


def to_web_mercator(da: xr.DataArray, max_pixels: int = MAX_PIXELS) -> xr.DataArray:
    """``da`` (2-D, with a CRS) on a Web Mercator grid of at most ``max_pixels`` on its longer
    side, no-data as NaN (cells outside the raster's footprint too); clipped to the latitudes
    Web Mercator can show (±85.05°)."""
    from pyproj import CRS
    from rasterio.enums import Resampling
    from rasterio.warp import calculate_default_transform

    source = da
    if da.rio.crs is not None and CRS.from_user_input(da.rio.crs).is_geographic:
        _, south, _, north = da.rio.bounds()
        if south < -MERCATOR_LAT or north > MERCATOR_LAT:  # the poles are at infinity
            lo, hi = max(south, -MERCATOR_LAT), min(north, MERCATOR_LAT)
            ys = da[da.rio.y_dim]
            source = da.sel({da.rio.y_dim: ys[(ys >= lo) & (ys <= hi)]})
    # first averaged down in blocks (cheap, lazy), at most 2 source cells an image pixel
    factor = max(source.rio.width, source.rio.height) // (2 * max_pixels)
    source = block_mean(source, factor) if factor > 1 else source.astype("float64")
    _, width, height = calculate_default_transform(
        source.rio.crs, WEB_MERCATOR, source.rio.width, source.rio.height, *source.rio.bounds()
    )
    scale = max(width, height) / max_pixels
    if scale > 1:
        width, height = max(1, round(width / scale)), max(1, round(height / scale))
    out: xr.DataArray = source.rio.reproject(
        WEB_MERCATOR,
        shape=(int(height), int(width)),
        resampling=Resampling.average if scale > 1 else Resampling.bilinear,
        nodata=np.nan,
    )
    return out


def _png(rgba: npt.NDArray[np.uint8]) -> str:
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def lonlat_bounds(da: xr.DataArray) -> list[float]:
    """[west, south, east, north] (degrees) of a Web Mercator raster's corners: deck.gl's
    BitmapLayer bounds, between which it stretches the image linearly in Web Mercator."""
    west, south, east, north = (float(v) for v in da.rio.bounds())
    r = 6378137.0  # the sphere of Web Mercator (m)
    return [
        math.degrees(west / r),
        math.degrees(2 * math.atan(math.exp(south / r)) - math.pi / 2),
        math.degrees(east / r),
        math.degrees(2 * math.atan(math.exp(north / r)) - math.pi / 2),
    ]


def colourise(
    values: npt.NDArray[np.float64],
    vmin: float,
    vmax: float,
    ramp: str = "viridis",
    alpha: int = 200,
) -> npt.NDArray[np.uint8]:
    """RGBA of ``values`` on ``ramp`` between ``vmin`` and ``vmax``; NaN transparent."""
    rgba = np.zeros((*values.shape, 4), dtype=np.uint8)
    rgba[..., :3] = ramp_colours(values, vmin, vmax, ramp)
    rgba[..., 3] = np.where(np.isfinite(values), alpha, 0).astype(np.uint8)
    return rgba


def ramp_colours(
    values: npt.NDArray[np.float64], vmin: float, vmax: float, ramp: str = "viridis"
) -> npt.NDArray[np.uint8]:
    """RGB (last axis) of ``values`` on ``ramp`` between ``vmin`` and ``vmax`` (clipped; NaN
    as ``vmin``)."""
    stops = RAMPS[ramp]
    span = (vmax - vmin) or 1.0
    t = np.nan_to_num(np.clip((np.asarray(values, dtype="float64") - vmin) / span, 0, 1), nan=0.0)
    positions = [p for p, _ in stops]
    rgb = np.zeros((*t.shape, 3), dtype=np.uint8)
    for channel in range(3):
        rgb[..., channel] = np.round(
            np.interp(t, positions, [c[channel] for _, c in stops])
        ).astype(np.uint8)
    return rgb


def legend_image(ramp: str, width: int = 256, height: int = 14) -> npt.NDArray[np.uint8]:
    """A horizontal colour bar of ``ramp`` (RGB, low values on the left)."""
    row = ramp_colours(np.linspace(0.0, 1.0, width), 0.0, 1.0, ramp)
    return np.repeat(row[np.newaxis, :, :], height, axis=0)


def legend_url(ramp: str) -> str:
    """:func:`legend_image` as a ``data:`` PNG URL (drawn by the page itself: no media file
    to fetch, and so none to miss after a rerun)."""
    bar = legend_image(ramp)
    rgba = np.concatenate([bar, np.full((*bar.shape[:2], 1), 255, np.uint8)], axis=2)
    return _png(rgba)


def raster_image(
    da: xr.DataArray, ramp: str = "viridis", vmin: float | None = None, vmax: float | None = None
) -> tuple[str, list[float], float, float]:
    """A raster as a ``data:`` PNG on a Web Mercator grid (no-data transparent), its corners'
    longitude/latitude and the value range drawn (by default the 2nd–98th percentiles).

    Raises
    ------
    ValueError
        for a raster that is not 2-D, or has no valid cell.
    """
    if da.ndim != 2:
        raise ValueError(f"one band at a time: the raster has dimensions {da.dims}")
    merc = to_web_mercator(da)
    values = merc.to_numpy()
    if not np.isfinite(values).any():
        raise ValueError("the raster has no valid cell")
    lo = float(np.nanpercentile(values, 2)) if vmin is None else vmin
    hi = float(np.nanpercentile(values, 98)) if vmax is None else vmax
    return _png(colourise(values, lo, hi, ramp)), lonlat_bounds(merc), lo, hi


@dataclass(frozen=True)
class DemCells:
    """A DEM as cells to extrude: ``cells`` has ``polygon`` (the 4 corners, lon/lat degrees),
    ``elevation`` (m), ``colour`` (RGB on cividis between ``lo`` and ``hi``); ``factor`` source
    cells a side make one drawn cell."""

    cells: pd.DataFrame
    lo: float
    hi: float
    factor: int
    bounds: list[float]


def dem_cells(dem: xr.DataArray, max_cells: int = MAX_CELLS, ramp: str = "cividis") -> DemCells:
    """A DEM (2-D, metres, with a CRS) as at most ``max_cells`` cells for deck.gl's extruded
    PolygonLayer: block means of ``factor`` × ``factor`` source cells, each cell's corners
    transformed exactly from the DEM's CRS to longitude/latitude (no resampling); no-data
    cells are left out.

    Raises
    ------
    ValueError
        for a DEM that is not 2-D or has no valid cell.
    """
    from pyproj import Transformer

    if dem.ndim != 2:
        raise ValueError(f"a DEM has one band: this one has dimensions {dem.dims}")
    if max_cells < 1:
        raise ValueError("max_cells must be positive")
    factor = max(1, math.ceil(math.sqrt(dem.rio.width * dem.rio.height / max_cells)))
    while math.ceil(dem.rio.width / factor) * math.ceil(dem.rio.height / factor) > max_cells:
        factor += 1
    coarse = block_mean(dem, factor)
    heights = np.asarray(coarse.to_numpy(), dtype="float64")
    transform = coarse.rio.transform()
    rows, cols = np.nonzero(np.isfinite(heights))
    if rows.size == 0:
        raise ValueError("the DEM has no valid cell")
    # the 4 corners of each cell: (col, row), (col+1, row), (col+1, row+1), (col, row+1)
    corner_cols = np.stack([cols, cols + 1, cols + 1, cols], axis=1).astype("float64")
    corner_rows = np.stack([rows, rows, rows + 1, rows + 1], axis=1).astype("float64")
    xs = transform.c + transform.a * corner_cols + transform.b * corner_rows
    ys = transform.f + transform.d * corner_cols + transform.e * corner_rows
    to_lonlat = Transformer.from_crs(coarse.rio.crs, "EPSG:4326", always_xy=True)
    lon, lat = to_lonlat.transform(xs, ys)
    lon, lat = np.round(lon, 6), np.round(lat, 6)
    values = heights[rows, cols]
    lo, hi = float(values.min()), float(values.max())
    colours = ramp_colours(values, lo, hi, ramp)
    polygons = np.stack([lon, lat], axis=2).tolist()
    cells = pd.DataFrame(
        {
            "polygon": polygons,
            "elevation": np.round(values, 1),
            "colour": colours.tolist(),
        }
    )
    bounds = [float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max())]
    return DemCells(cells, lo, hi, factor, bounds)


def station_surface(
    latest: pd.DataFrame, cells: int = 120, regions: Any = None
) -> tuple[xr.DataArray, CrossValidation] | None:
    """IDW surface (China Albers, about ``cells`` across) of the latest station values
    (``lon, lat, value``) with its leave-one-out error; ``None`` under 3 stations.

    With ``regions`` (a GeoDataFrame with a CRS: the admin areas), the surface covers the
    regions that hold a station and is no-data outside them, so it ends at their borders, not
    at a rectangle around the stations; without, or when no region holds a station, it covers
    the stations' extent and a margin of a tenth."""
    import shapely
    from pyproj import Transformer

    frame = latest.dropna(subset=["lon", "lat", "value"])
    if len(frame) < 3:
        return None
    x, y = Transformer.from_crs("EPSG:4326", CHINA_ALBERS, always_xy=True).transform(
        frame["lon"].to_numpy(), frame["lat"].to_numpy()
    )
    area = None
    if regions is not None and len(regions):
        shapes = regions.to_crs(CHINA_ALBERS).geometry.to_numpy()
        holding = [g for g in shapes if shapely.contains_xy(g, x, y).any()]
        if holding:
            area = shapely.union_all(holding)
    bounds: tuple[float, float, float, float]
    if area is None:
        pad = 0.1 * max(np.ptp(x), np.ptp(y), 50_000.0)
        bounds = (x.min() - pad, y.min() - pad, x.max() + pad, y.max() + pad)
    else:
        west, south, east, north = (float(v) for v in area.bounds)
        bounds = (west, south, east, north)
    cell = max(bounds[2] - bounds[0], bounds[3] - bounds[1]) / cells
    values = frame["value"].to_numpy(dtype="float64")
    surface = idw(x, y, values, CHINA_ALBERS, cell=cell, bounds=bounds, name="value")
    if area is not None:
        gx, gy = np.meshgrid(surface[surface.rio.x_dim], surface[surface.rio.y_dim])
        shapely.prepare(area)
        surface = surface.where(shapely.contains_xy(area, gx, gy))
    return surface, idw_cv(x, y, values, CHINA_ALBERS)


def provinces(doc: dict[str, Any]) -> Any:
    """The provincial divisions of the shipped base map (GeoJSON ``doc``, WGS 84) as a
    GeoDataFrame: the regions a station surface is clipped to."""
    import geopandas as gpd

    found = [f for f in doc["features"] if f["properties"].get("kind") == "province"]
    return gpd.GeoDataFrame.from_features(found, crs="EPSG:4326")


def layer_geojson(layer: Any) -> dict[str, Any]:
    """A stored layer (GeoDataFrame) as GeoJSON in WGS 84 for deck.gl."""
    wgs = layer.to_crs("EPSG:4326").reset_index()
    doc: dict[str, Any] = wgs.__geo_interface__
    return doc


#: fill of a region without a zonal value (RGBA)
NO_VALUE_FILL: Final = (160, 160, 160, 60)


def zonal_choropleth(
    layer: Any, values: pd.Series, label: str, ramp: str = "viridis"
) -> tuple[dict[str, Any], float, float]:
    """A stored layer (GeoDataFrame indexed by feature name) as GeoJSON in WGS 84 whose
    features carry ``fill`` (RGBA on ``ramp`` between the lowest and highest of ``values``,
    a zonal statistic by feature name; grey and faint where a feature has none), ``name``
    (the feature) and ``id`` (``label`` and the value, for the tooltip); with that range.

    Raises
    ------
    ValueError
        when no feature of the layer has a value.
    """
    by_feature = pd.to_numeric(values, errors="coerce").reindex(layer.index.astype(str))
    finite = by_feature.dropna()
    if finite.empty:
        raise ValueError("no feature of the layer has a value")
    lo, hi = float(finite.min()), float(finite.max())
    rgb = ramp_colours(by_feature.to_numpy(dtype="float64"), lo, hi, ramp)
    wgs = layer.to_crs("EPSG:4326")
    wgs = wgs[[wgs.geometry.name]].copy()
    names = [str(f) for f in layer.index]
    wgs["fill"] = [
        [*map(int, c), 210] if np.isfinite(v) else list(NO_VALUE_FILL)
        for c, v in zip(rgb, by_feature.to_numpy(dtype="float64"), strict=True)
    ]
    wgs["name"] = names
    wgs["id"] = [
        f"{label} = {v:.4g}" if np.isfinite(v) else tr(f"{label}: no value", f"{label}：无值")
        for v in by_feature.to_numpy(dtype="float64")
    ]
    doc: dict[str, Any] = wgs.reset_index(drop=True).__geo_interface__
    return doc, lo, hi
