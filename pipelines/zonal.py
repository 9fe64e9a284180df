"""Zonal statistics of many rasters × a layer's polygons on the Dask runner: one task per
raster (read lazily, window by window, by ``exactextract``), the results upserted into the
store by raster (and so time), layer and feature."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd
import psycopg

from gis.catalogue import RasterItem
from gis.rasters import open_raster
from gis.zonal import zonal_stats
from pipelines.work import Touched
from store import gis as gis_store


@dataclass(frozen=True)
class ZonalPlan:
    """One task: a raster, the layer and the statistics."""

    raster: RasterItem
    layer: str
    stats: tuple[str, ...]


def zonal_task(url: str, plan: ZonalPlan) -> Touched:
    """Compute and store the statistics of one raster over the layer."""
    touched = Touched()
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        layer = gis_store.load_layer(conn, plan.layer)
        da = open_raster(
            plan.raster.path,
            variable=plan.raster.variable,
            band=plan.raster.band,
            time=plan.raster.time if plan.raster.stacked else None,
        )
        table = zonal_stats(da, layer, plan.stats)
        long = (
            table.rename_axis("feature")
            .reset_index()
            .melt(id_vars="feature", var_name="stat", value_name="value")
        )
        rows = long.assign(raster=plan.raster.id, layer=plan.layer, time=plan.raster.time)
        rows["value"] = pd.to_numeric(rows["value"], errors="coerce")
        touched.rows = gis_store.save_zonal(conn, rows)
    return touched


def plans(rasters: Sequence[RasterItem], layer: str, stats: Sequence[str]) -> list[ZonalPlan]:
    """One plan per raster."""
    return [ZonalPlan(r, layer, tuple(stats)) for r in rasters]
