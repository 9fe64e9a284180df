"""Rasters: open GeoTIFF/COG, NetCDF or Zarr lazily (dask chunks) with their CRS, single
scenes or time stacks; band indices; reprojection and resampling.

A NetCDF variable whose CRS is only a ``crs`` attribute (``EPSG:32719`` …, as the Sentinel-2
samples of PyPI ``xarray-spatial`` carry it) gets that CRS written the CF way — a documented
fix-up; a raster with no CRS at all is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rioxarray
import xarray as xr
from pyproj import CRS
from pyproj.exceptions import CRSError

from gis.errors import GisError


def with_crs(da: xr.DataArray, name: str = "the raster") -> xr.DataArray:
    """``da`` with its CRS set from ``.rio.crs`` or a ``crs`` attribute.

    Raises
    ------
    GisError
        when it has neither, or the attribute is not a CRS.
    """
    if da.rio.crs is not None:
        return da
    attr = da.attrs.get("crs")
    if attr is None:
        raise GisError(f"{name} has no CRS: write one (da.rio.write_crs) before use")
    text = str(attr).strip()
    if text.lower().startswith("+init=") and " " not in text:  # the old PROJ.4 spelling
        text = text[len("+init=") :].upper()
    try:
        crs = CRS.from_user_input(text)
    except CRSError as exc:
        raise GisError(f"{name}: crs attribute {attr!r} is not a CRS") from exc
    out = da.copy()
    out.attrs.pop("crs")
    written: xr.DataArray = out.rio.write_crs(crs)
    return written


def open_raster(
    path: str | Path,
    *,
    variable: str | None = None,
    chunks: Any = 1024,
    band: int | None = None,
    time: Any = None,
) -> xr.DataArray:
    """A raster as a lazily read, dask-chunked DataArray (``chunks`` cells a side by default
    1,024: a zonal window then reads a few megabytes, not a 128 MB "auto" chunk) with its CRS
    (and ``nodata`` masked):
    GeoTIFF/COG through rioxarray, NetCDF and Zarr through xarray (``variable`` names one). A
    time stack keeps its ``time`` dimension unless ``time`` picks one step (exactly).

    Raises
    ------
    GisError
        for a file that cannot be read, an unknown variable or band, or a raster without a CRS.
    """
    p = Path(path)
    try:
        if p.suffix.lower() in (".nc", ".nc4", ".netcdf", ".zarr"):
            if p.suffix.lower() == ".zarr":
                ds = xr.open_zarr(p, chunks=chunks, consolidated=False)
            else:
                ds = xr.open_dataset(p, chunks=chunks, engine=_netcdf_engine(p))
            # scalar variables are grid mappings (CF ``spatial_ref``, ``crs``): coordinates
            ds = ds.set_coords([v for v in ds.data_vars if ds[v].ndim == 0])
            names = list(ds.data_vars) if variable is None else [variable]
            if variable is not None and variable not in ds:
                raise GisError(
                    f"{p}: no variable {variable!r} (has {', '.join(map(str, ds.data_vars))})"
                )
            da = ds[names[0]]
        else:
            # opened lazily, then chunked by dimension name (rioxarray's own chunking passes
            # a tuple, which xarray deprecates)
            opened = rioxarray.open_rasterio(p, masked=True, cache=False)
            if not isinstance(opened, xr.DataArray):
                raise GisError(f"{p}: several subdatasets; open one of them")
            da = opened.chunk(
                chunks if isinstance(chunks, dict) else dict.fromkeys(opened.dims, chunks)
            )
    except GisError:
        raise
    except Exception as exc:  # corrupt or missing files: GDAL, netCDF and scipy errors
        raise GisError(f"cannot read {p}: {exc}") from exc
    if "band" in da.dims:
        if band is None and da.sizes["band"] == 1:
            da = da.squeeze("band", drop=True)
        elif band is not None:
            if band not in da["band"].values:
                raise GisError(f"{p}: no band {band}")
            da = da.sel(band=band, drop=True)
    if time is not None:
        if "time" not in da.dims:
            raise GisError(f"{p}: not a time stack")
        try:
            da = da.sel(time=_naive_utc(time))
        except KeyError:
            raise GisError(f"{p}: no step at {time}") from None
    return with_crs(da, str(p))


def _naive_utc(t: Any) -> Any:
    """An aware time as the naive UTC value xarray's time coordinates hold."""
    stamp = pd.Timestamp(t)
    return stamp.tz_convert("UTC").tz_localize(None) if stamp.tzinfo is not None else stamp


def times(da: xr.DataArray) -> list[pd.Timestamp]:
    """The steps of a time stack (aware, UTC); empty for a single scene."""
    if "time" not in da.dims:
        return []
    return [pd.Timestamp(t).tz_localize("UTC") for t in da["time"].to_numpy()]


def reproject(
    da: xr.DataArray,
    crs: str,
    resolution: float | None = None,
    resampling: str = "bilinear",
) -> xr.DataArray:
    """``da`` on a grid of ``crs`` (cell size ``resolution`` in its units, or chosen by GDAL),
    resampled by ``nearest`` (classes), ``bilinear`` or ``average``.

    Raises
    ------
    GisError
        for an unknown resampling.
    """
    from rasterio.enums import Resampling

    methods = {"nearest": Resampling.nearest, "bilinear": Resampling.bilinear,
               "average": Resampling.average}  # fmt: skip
    if resampling not in methods:
        raise GisError(f"resampling must be one of {', '.join(methods)}")
    source = with_crs(da)
    if resampling != "nearest":
        source = source.astype("float64")
    out: xr.DataArray = source.rio.reproject(
        crs, resolution=resolution, resampling=methods[resampling], nodata=np.nan
        if resampling != "nearest" else None,
    )  # fmt: skip
    return out


def _netcdf_engine(path: Path) -> str:
    with path.open("rb") as f:
        magic = f.read(4)
    return "scipy" if magic[:3] == b"CDF" else "h5netcdf"


def normalized_difference(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    """(a − b) / (a + b), NaN where both are 0; the grids must match."""
    if a.shape != b.shape:
        raise GisError(f"bands of different shapes {a.shape} and {b.shape}")
    a, b = a.astype("float64"), b.astype("float64")
    total = a + b
    out: xr.DataArray = (a - b) / total.where(total != 0)  # NaN where both are 0
    if a.rio.crs is not None:
        out = out.rio.write_crs(a.rio.crs)
    return out


def ndvi(nir: xr.DataArray, red: xr.DataArray) -> xr.DataArray:
    """NDVI = (NIR − red) / (NIR + red)."""
    return normalized_difference(nir, red).rename("ndvi")


def ndwi(green: xr.DataArray, nir: xr.DataArray) -> xr.DataArray:
    """NDWI (McFeeters) = (green − NIR) / (green + NIR)."""
    return normalized_difference(green, nir).rename("ndwi")
