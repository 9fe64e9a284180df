"""Land-cover change: the area of each class transition per region between two land-cover
rasters, the table :mod:`carbon.sinks` takes (``region, from_class, to_class, start_year,
end_year, area, unit``).

The two rasters must share a grid (CRS, transform, shape) — a different grid is an error, not
a silent resampling, since resampling classes changes areas. Cells are combined into one
transition code ``from × 10⁶ + to`` and the per-region class fractions come from
``exactextract`` (exact partial coverage at region borders); area = fraction × covered cells ×
cell area, so the CRS must be projected (metres). Nodata in either epoch is left out.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from gis.errors import GisError
from gis.rasters import open_raster, with_crs
from gis.zonal import zonal_stats

_BASE = 1_000_000


def _load(r: str | Path | xr.DataArray, name: str) -> xr.DataArray:
    da = open_raster(r) if isinstance(r, str | Path) else with_crs(r, name)
    if da.ndim != 2:
        raise GisError(f"{name}: one band of classes, not {da.dims}")
    return da


def transitions(
    before: str | Path | xr.DataArray,
    after: str | Path | xr.DataArray,
    regions: gpd.GeoDataFrame,
    start_year: int,
    end_year: int,
    region_column: str | None = None,
) -> pd.DataFrame:
    """Area (ha) of each ``from_class → to_class`` per region (the ``region_column`` of
    ``regions``, else their index), between the rasters of ``start_year`` and ``end_year``.

    Raises
    ------
    GisError
        for rasters on different grids, a geographic CRS, a period that does not move forward,
        or the errors of :func:`gis.zonal.zonal_stats`.
    """
    if end_year <= start_year:
        raise GisError(f"end_year {end_year} is not after start_year {start_year}")
    a, b = _load(before, "the first land-cover raster"), _load(after, "the second")
    if (
        a.shape != b.shape
        or a.rio.crs != b.rio.crs
        or not np.allclose(a[a.rio.x_dim], b[b.rio.x_dim])
        or not np.allclose(a[a.rio.y_dim], b[b.rio.y_dim])
    ):
        raise GisError("the two land-cover rasters are not on one grid (CRS, transform, shape)")
    if not a.rio.crs.is_projected:
        raise GisError("areas need a projected CRS (metres): reproject both rasters first")
    x, y = a.to_numpy(), b.to_numpy()
    valid = np.isfinite(x) & np.isfinite(y) if x.dtype.kind == "f" else np.ones(x.shape, bool)
    for da in (a, b):
        if da.rio.nodata is not None:
            valid &= da.to_numpy() != da.rio.nodata
    code = np.where(
        valid, np.nan_to_num(x).astype("int64") * _BASE + np.nan_to_num(y).astype("int64"), -1
    )
    combined = xr.DataArray(code, dims=a.dims, coords=a.coords).rio.write_crs(a.rio.crs)
    combined = combined.rio.write_nodata(-1)
    stats = zonal_stats(combined, regions, ["count", "frac"])
    cell_ha = abs(a.rio.resolution()[0] * a.rio.resolution()[1]) / 10_000
    labels = regions[region_column] if region_column else regions.index
    names = dict(zip(regions.index, map(str, labels), strict=True))
    rows = []
    for index, row in stats.iterrows():
        for column, share in row.items():
            if not str(column).startswith("frac_") or not share:
                continue
            value = int(str(column)[len("frac_") :])
            if value < 0:
                continue
            rows.append(
                {
                    "region": names[index],
                    "from_class": str(value // _BASE),
                    "to_class": str(value % _BASE),
                    "start_year": start_year,
                    "end_year": end_year,
                    "area": float(share) * float(row["count"]) * cell_ha,
                    "unit": "ha",
                }
            )
    return pd.DataFrame(
        rows,
        columns=["region", "from_class", "to_class", "start_year", "end_year", "area", "unit"],
    )
