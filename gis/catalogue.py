"""The raster catalogue: what a raster is (path, variable or band, time, CRS, resolution,
size), read from the file lazily, or from a STAC item's JSON (local assets only: nothing is
downloaded).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from gis.errors import GisError
from gis.rasters import open_raster, times


@dataclass(frozen=True)
class RasterItem:
    """A registered raster (one band or variable) of the catalogue; ``time`` aware or None."""

    id: str
    path: str
    variable: str | None
    band: int | None
    time: datetime | None
    crs: str
    res_x: float
    res_y: float
    width: int
    height: int
    stacked: bool = False  # one step (``time``) of a time stack
    #: what it measures, for the ecology job: ``ndvi``, ``ndwi``, ``landcover`` (classes) or
    #: ``None`` (anything else)
    quantity: str | None = None


#: the quantities a raster may be registered as: NDVI and NDWI (the ecology job reduces them
#: per region), land-cover classes (it compares consecutive ones per region)
QUANTITIES: Final = ("ndvi", "ndwi", "landcover")


def describe(
    path: str | Path,
    *,
    id: str | None = None,
    variable: str | None = None,
    band: int | None = None,
    time: datetime | None = None,
    quantity: str | None = None,
) -> RasterItem:
    """A catalogue item for the raster at ``path`` (opened lazily: nothing is read but the
    header).

    Raises
    ------
    GisError
        for a raster that cannot be read or has no CRS, or a time without a zone.
    """
    if time is not None and time.tzinfo is None:
        raise GisError("a raster's time needs a time zone (an ISO 8601 offset)")
    p = Path(path).resolve()
    stacked = _is_stack(p, variable)
    if stacked and time is None:
        raise GisError(f"{p}: a time stack: register its steps (stack) or give a step's time")
    da = open_raster(p, variable=variable, band=band, time=time if stacked else None)
    if da.ndim != 2:
        raise GisError(f"{p}: several bands: choose one (band=…)")
    res_x, res_y = da.rio.resolution()
    item = RasterItem(
        id
        or p.stem
        + (f"-b{band}" if band is not None else "")
        + (f"-{variable}" if variable else ""),
        str(p),
        variable,
        band,
        time,
        da.rio.crs.to_wkt(),
        abs(float(res_x)),
        abs(float(res_y)),
        int(da.rio.width),
        int(da.rio.height),
        stacked,
    )
    return item if quantity is None else with_quantity(item, quantity)


def with_quantity(item: RasterItem, quantity: str) -> RasterItem:
    """``item`` registered as measuring ``quantity`` (:data:`QUANTITIES`).

    Raises
    ------
    GisError
        for another quantity, or land cover in a geographic CRS (its areas need metres).
    """
    from dataclasses import replace

    from pyproj import CRS

    if quantity not in QUANTITIES:
        raise GisError(f"quantity must be one of {', '.join(QUANTITIES)}, not {quantity!r}")
    crs = CRS.from_wkt(item.crs)
    if quantity == "landcover" and not crs.is_projected:
        raise GisError(
            f"{item.id}: land cover needs a projected CRS (metres) for its areas, not"
            f" {crs.to_string()}: reproject it first"
        )
    return replace(item, quantity=quantity)


def _is_stack(path: Path, variable: str | None) -> bool:
    return "time" in open_raster(path, variable=variable).dims


def stack(
    path: str | Path, *, variable: str | None = None, prefix: str | None = None
) -> list[RasterItem]:
    """One catalogue item per step of a time stack (NetCDF or Zarr with a ``time`` dimension),
    ids ``<prefix>-<YYYYmmddTHHMM>``.

    Raises
    ------
    GisError
        for a raster without a time dimension.
    """
    p = Path(path).resolve()
    steps = times(open_raster(p, variable=variable))
    if not steps:
        raise GisError(f"{p}: not a time stack")
    name = prefix or p.stem
    return [
        describe(p, id=f"{name}-{t:%Y%m%dT%H%M}", variable=variable, time=t.to_pydatetime())
        for t in steps
    ]


def from_stac(item_path: str | Path) -> list[RasterItem]:
    """One catalogue item per raster asset (``image/tiff`` or ``application/x-netcdf`` types, or
    a ``.tif``/``.nc`` href) of a STAC item JSON; ``properties.datetime`` is their time.

    Raises
    ------
    GisError
        for an unreadable item, an asset outside the local file system, or a raster error.
    """
    p = Path(item_path)
    try:
        item = json.loads(p.read_text("utf-8"))
        when = item.get("properties", {}).get("datetime")
        time = datetime.fromisoformat(when.replace("Z", "+00:00")) if when else None
        assets = item["assets"]
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        raise GisError(f"{p}: not a readable STAC item ({exc})") from exc
    out = []
    for key, asset in sorted(assets.items()):
        href = str(asset.get("href", ""))
        kind = str(asset.get("type", ""))
        if not ("tiff" in kind or "netcdf" in kind or href.endswith((".tif", ".tiff", ".nc"))):
            continue
        if "://" in href and not href.startswith("file://"):
            raise GisError(f"{p}: asset {key} is at {href}: only local files can be read here")
        local = Path(href.removeprefix("file://"))
        local = local if local.is_absolute() else (p.parent / local)
        out.append(describe(local, id=f"{item.get('id', p.stem)}-{key}", time=time))
    if not out:
        raise GisError(f"{p}: no raster asset")
    return out
