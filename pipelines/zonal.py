"""Zonal statistics of many rasters × a layer's polygons on the Dask runner: one task per
raster (read lazily, window by window, by ``exactextract``), the results upserted into the
store by raster (and so time), layer and feature."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import geopandas as gpd
import pandas as pd
import rasterio

from gis.catalogue import RasterItem
from gis.errors import GisError
from gis.rasters import open_raster
from gis.zonal import zonal_stats
from pipelines.work import Touched
from store import db
from store import gis as gis_store


@dataclass(frozen=True)
class ZonalPlan:
    """One task: a raster, the layer and the statistics."""

    raster: RasterItem
    layer: str
    stats: tuple[str, ...]


#: GDAL's block cache per worker (MB; ``ECOSENSE_GDAL_CACHE_MB``, 0 for GDAL's default of 5 %
#: of the machine's memory, which Dask does not account for and which would take a worker over
#: its memory limit on a large raster; a larger cache is faster when polygons share blocks)
GDAL_CACHE_MB: Final = int(os.environ.get("ECOSENSE_GDAL_CACHE_MB", "64"))
# GDAL sizes its cache once, at first use, from the environment: set it before any task reads
os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHE_MB))


def zonal_rows(
    raster: RasterItem | str, layer: gpd.GeoDataFrame, stats: Sequence[str]
) -> pd.DataFrame:
    """The statistics of one raster (a catalogue item, or a path) over ``layer`` as the rows
    the store takes: ``feature, stat, value``."""
    cache = int(os.environ.get("ECOSENSE_GDAL_CACHE_MB", str(GDAL_CACHE_MB)))
    with rasterio.Env(**({"GDAL_CACHEMAX": cache} if cache > 0 else {})):
        if isinstance(raster, str):
            table = zonal_stats(raster, layer, stats)
        elif raster.variable is None and not raster.stacked:  # a GDAL file: by path
            table = zonal_stats(raster.path, layer, stats, band=raster.band)
        else:
            da = open_raster(
                raster.path,
                variable=raster.variable,
                band=raster.band,
                time=raster.time if raster.stacked else None,
            )
            table = zonal_stats(da, layer, stats)
    long = (
        table.rename_axis("feature")
        .reset_index()
        .melt(id_vars="feature", var_name="stat", value_name="value")
    )
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    return long


def zonal_task(url: str, plan: ZonalPlan) -> Touched:
    """Compute and store the statistics of one raster over the layer."""
    touched = Touched()
    with db.connect(url) as conn:
        layer = gis_store.load_layer(conn, plan.layer)
        try:
            table = zonal_rows(plan.raster, layer, plan.stats)
        except GisError as exc:  # say which raster over which layer
            raise GisError(f"raster {plan.raster.id} over layer {plan.layer}: {exc}") from exc
        rows = table.assign(raster=plan.raster.id, layer=plan.layer, time=plan.raster.time)
        touched.rows = gis_store.save_zonal(conn, rows)
    return touched


def plans(rasters: Sequence[RasterItem], layer: str, stats: Sequence[str]) -> list[ZonalPlan]:
    """One plan per raster."""
    return [ZonalPlan(r, layer, tuple(stats)) for r in rasters]
