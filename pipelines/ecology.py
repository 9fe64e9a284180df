"""The ecology job's work (issue 18, natural ecology): the regional means of NDVI, fractional
vegetation cover (from NDVI, :func:`gis.ecology.fvc`) and NDWI of every raster registered with
a ``quantity``, over every stored layer — one Dask task per (raster, layer), read window by
window by ``exactextract`` — and then each region's trend of each quantity (Mann-Kendall and
Sen's slope per year, :func:`gis.ecology.trends`).

Results: ``zonal_stats`` rows (``stat`` ``mean`` for the raster's own quantity, ``fvc_mean``
for FVC), and ``ecology_trends`` (one row per layer, feature and quantity). Incremental: a run
computes the (raster, layer) pairs of the rasters and layers registered (again) since its
mark, and the trends of the layers and quantities they touch; a second run finds nothing to
do. A raster outside a layer (another part of the world) is a warning, not an error. With a
range, it recomputes the rasters whose time is in it.
"""

from __future__ import annotations

from dataclasses import dataclass
from zoneinfo import ZoneInfo

import pandas as pd

from gis import ecology, landcover
from gis.catalogue import RasterItem
from gis.errors import GisError
from gis.rasters import open_raster
from gis.zonal import zonal_stats
from pipelines.work import Touched
from store import db
from store import gis as gis_store

#: the quantities whose trends a raster of each registered quantity touches
TOUCHES: dict[str, tuple[str, ...]] = {"ndvi": ("ndvi", "fvc"), "ndwi": ("ndwi",)}


@dataclass(frozen=True)
class EcologyPlan:
    """One task: a raster registered with a quantity, over one layer."""

    raster: RasterItem
    layer: str


def _long(table: pd.DataFrame, stat: str) -> pd.DataFrame:
    return (
        table.rename_axis("feature")
        .reset_index()
        .melt(id_vars="feature", var_name="stat", value_name="value")
        .assign(stat=stat)
    )


def regional_means(raster: RasterItem, layer: pd.DataFrame) -> pd.DataFrame:
    """The mean of ``raster`` over each feature of ``layer`` (``stat`` ``mean``), and for an
    NDVI raster the mean FVC (``fvc_mean``): rows ``feature, stat, value``. A normalised
    difference lies in [−1, 1]: cells outside it (fill values, an unscaled product) are no
    data.

    Raises
    ------
    GisError
        when no cell of the raster is a valid index (a raster of something else).
    """
    da = open_raster(
        raster.path,
        variable=raster.variable,
        band=raster.band,
        time=raster.time if raster.stacked else None,
    )
    index = da.where((da >= -1) & (da <= 1))
    if not bool(index.notnull().any()):
        raise GisError(
            f"no cell lies in [-1, 1]: not a normalised difference ({raster.quantity}); scale"
            " the product first"
        )
    frames = [_long(zonal_stats(index, layer, ["mean"]), "mean")]
    if raster.quantity == "ndvi":
        frames.append(_long(zonal_stats(ecology.fvc(index), layer, ["mean"]), "fvc_mean"))
    out = pd.concat(frames, ignore_index=True)
    out["value"] = pd.to_numeric(out["value"], errors="coerce")
    return out


def ecology_task(url: str, plan: EcologyPlan) -> Touched:
    """Compute and store one raster's regional means over one layer."""
    touched = Touched()
    with db.connect(url) as conn:
        layer = gis_store.load_layer(conn, plan.layer)
        try:
            table = regional_means(plan.raster, layer)
        except GisError as exc:  # the raster's data: reported, the others and the mark go on
            if "outside every polygon" in str(exc):  # another part of the world: nothing to do
                touched.warnings.append(f"raster {plan.raster.id} lies outside layer {plan.layer}")
            else:
                touched.warnings.append(f"raster {plan.raster.id} over layer {plan.layer}: {exc}")
            return touched
        rows = table.assign(raster=plan.raster.id, layer=plan.layer, time=plan.raster.time)
        touched.rows = gis_store.save_zonal(conn, rows)
    if touched.rows:  # a series changed: its trends are recomputed
        for q in TOUCHES.get(plan.raster.quantity or "", ()):
            touched.add(f"{plan.layer}\t{q}", [plan.raster.time])
    return touched


def layer_trends(url: str, layer: str, quantity: str) -> tuple[int, list[str]]:
    """Recompute and store the trends of ``quantity`` over ``layer``; returns the rows written
    and the features with too few values for a trend (reported, not failed)."""
    with db.connect(url) as conn:
        series = gis_store.ecology_series(conn, layer, quantity)
        # two rasters of one time (tiles, a re-registration under another id): their mean
        means = series.groupby(["feature", "time"], as_index=False, sort=False)["value"].mean()
        found = ecology.trends(pd.DataFrame(means)[["feature", "time", "value"]])
        short = [str(f) for f in found.loc[found["trend"] == ecology.INSUFFICIENT, "feature"]]
        rows = found.rename(columns={"start": "first_time", "end": "last_time"})
        return gis_store.save_trends(conn, layer, quantity, rows), short


@dataclass(frozen=True)
class LandcoverPlan:
    """One task: two consecutive land-cover rasters (classes) over one layer."""

    earlier: RasterItem
    later: RasterItem
    layer: str
    #: the bureau's time zone: the rasters' years are its years
    tz: str = "Asia/Shanghai"


def landcover_task(url: str, plan: LandcoverPlan) -> Touched:
    """The area (ha) of each class transition per feature of the layer between the two
    rasters (:func:`gis.landcover.transitions`), stored in place of the pair's earlier ones;
    rasters that cannot be compared (not on one grid, a geographic CRS) are a warning."""
    touched = Touched()
    a, b = plan.earlier, plan.later
    assert a.time is not None and b.time is not None
    what = f"land cover {a.id} → {b.id} over layer {plan.layer}"
    with db.connect(url) as conn:
        layer = gis_store.load_layer(conn, plan.layer)
        try:
            changes = landcover.transitions(
                open_raster(a.path, variable=a.variable, band=a.band),
                open_raster(b.path, variable=b.variable, band=b.band),
                layer,
                a.time.astimezone(ZoneInfo(plan.tz)).year,
                b.time.astimezone(ZoneInfo(plan.tz)).year,
            )
        except GisError as exc:
            if "outside every polygon" in str(exc):
                touched.warnings.append(f"{what}: the rasters lie outside the layer")
            else:
                touched.warnings.append(f"{what}: {exc}")
            return touched
        touched.rows = gis_store.save_landcover(conn, plan.layer, a.id, b.id, changes)
    return touched
