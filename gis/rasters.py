"""Rasters: open GeoTIFF/COG or NetCDF lazily (dask chunks) with their CRS; band indices.

A NetCDF variable whose CRS is only a ``crs`` attribute (``EPSG:32719`` …, as the Sentinel-2
samples of PyPI ``xarray-spatial`` carry it) gets that CRS written the CF way — a documented
fix-up; a raster with no CRS at all is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
    path: str | Path, *, variable: str | None = None, chunks: Any = "auto", band: int | None = None
) -> xr.DataArray:
    """A raster as a lazily read, dask-chunked DataArray with its CRS (and ``nodata`` masked):
    GeoTIFF/COG through rioxarray, NetCDF through xarray (``variable`` names one).

    Raises
    ------
    GisError
        for a file that cannot be read, an unknown variable or band, or a raster without a CRS.
    """
    p = Path(path)
    try:
        if p.suffix.lower() in (".nc", ".nc4", ".netcdf"):
            ds = xr.open_dataset(p, chunks=chunks, engine=_netcdf_engine(p))
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
    return with_crs(da, str(p))


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
