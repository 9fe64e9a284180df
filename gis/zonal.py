"""Zonal statistics with ``exactextract`` (exact fractional coverage of each cell).

:func:`zonal_stats` is the contract's entry point: one row per polygon, in the polygons' order
and with their index, one column per statistic named as asked (``frac`` and ``unique`` give
one column per class, ``frac_<class>``). Polygons in another CRS are reprojected to the
raster's; a raster or layer without a CRS is an error; a raster that no polygon touches is an
error (every answer would be empty).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Final

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
import xarray as xr
from exactextract import exact_extract
from exactextract.raster import RasterioRasterSource

from gis.errors import GisError
from gis.layers import read_layer
from gis.rasters import open_raster, with_crs

#: raster files exactextract reads itself through GDAL
GDAL_FILES: Final = (".tif", ".tiff", ".vrt", ".img")
STATS: Final = ("mean", "sum", "count", "min", "max", "majority", "minority", "frac", "median",
                "stdev", "variety")  # fmt: skip


def zonal_stats(
    raster: str | Path | xr.DataArray,
    polygons: str | Path | gpd.GeoDataFrame,
    stats: Sequence[str] = ("mean",),
    *,
    band: int | None = None,
) -> pd.DataFrame:
    """Statistics of ``raster`` (a path or a DataArray with a CRS; one band, or ``band`` of a
    file) over each polygon. A GeoTIFF/COG path is read by exactextract through GDAL, window by
    window (fast, and light on memory); NetCDF, Zarr and DataArrays through xarray.

    Raises
    ------
    GisError
        for an unknown statistic, a raster or layer without a CRS, an empty geometry, a raster
        of several bands, or a raster outside every polygon.
    """
    unknown = [s for s in stats if s not in STATS]
    if unknown:
        raise GisError(f"unknown statistics {', '.join(unknown)}: one of {', '.join(STATS)}")
    ops = list(stats) + (["unique"] if "frac" in stats else [])
    layer = read_layer(polygons)
    if isinstance(raster, str | Path) and Path(raster).suffix.lower() in GDAL_FILES:
        # read by exactextract through GDAL: only the header is needed here (no dask graph)
        try:
            dataset = rasterio.open(raster)
        except rasterio.errors.RasterioIOError as exc:
            raise GisError(f"cannot read {raster}: {exc}") from exc
        with dataset:
            if dataset.crs is None:
                raise GisError(f"{raster} has no CRS: write one before use")
            if (dataset.count > 1 and band is None) or (band or 1) > dataset.count:
                raise GisError(f"{raster} has {dataset.count} bands: choose one (band=…)")
            layer = _in_crs(layer, dataset.crs, tuple(dataset.bounds))
            source = RasterioRasterSource(dataset, band_idx=band or 1)
            out = exact_extract(source, layer.reset_index(drop=True), ops, output="pandas")
    else:
        da = open_raster(raster, band=band) if isinstance(raster, str | Path) else with_crs(raster)
        if da.ndim != 2:
            raise GisError(f"one band at a time: the raster has dimensions {da.dims}")
        layer = _in_crs(layer, da.rio.crs, da.rio.bounds())
        out = exact_extract(da, layer.reset_index(drop=True), ops, output="pandas")
    out.index = layer.index
    if "frac" not in stats:
        return pd.DataFrame(out)
    # exactextract gives each polygon's classes ("unique") and their fractions as arrays
    fracs = [
        dict(zip(np.asarray(u).tolist(), np.asarray(f, dtype="float64").tolist(), strict=True))
        for u, f in zip(out["unique"], out["frac"], strict=True)
    ]
    classes = sorted({c for f in fracs for c in f})
    wide = pd.DataFrame(
        [[f.get(c, 0.0) for c in classes] for f in fracs],
        index=out.index,
        columns=[f"frac_{_label(c)}" for c in classes],
    )
    columns: list[pd.DataFrame | pd.Series] = []
    for s in stats:
        columns.append(wide if s == "frac" else out[s])
    return pd.concat(columns, axis=1)


def _in_crs(layer: gpd.GeoDataFrame, crs: object, bounds: tuple[float, ...]) -> gpd.GeoDataFrame:
    """``layer`` in the raster's CRS; an error when no polygon touches the raster."""
    if not layer.crs.equals(crs):
        layer = layer.to_crs(crs)
    if not layer.intersects(shapely.box(*bounds)).any():
        raise GisError("the raster lies outside every polygon")
    return layer


def _label(value: object) -> str:
    """A class value as a column suffix: ``3`` for 3.0."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
