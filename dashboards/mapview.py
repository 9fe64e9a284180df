"""Pure helpers of the one-map page: rasters as images the browser draws without any server
(``data:`` PNG URLs in WGS 84 bounds), a DEM as Terrain-RGB for deck.gl's 3D terrain, and the
PM2.5 surface interpolated from stations."""

from __future__ import annotations

import base64
import io
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import xarray as xr
from PIL import Image

from gis.interpolate import CrossValidation, idw, idw_cv
from gis.layers import CHINA_ALBERS

#: colour ramps: (position 0–1, RGB) stops
RAMPS: Final[dict[str, tuple[tuple[float, tuple[int, int, int]], ...]]] = {
    "ndvi": ((0.0, (165, 0, 38)), (0.5, (255, 255, 191)), (1.0, (0, 104, 55))),
    "pm25": ((0.0, (0, 228, 0)), (0.3, (255, 255, 0)), (0.6, (255, 126, 0)), (1.0, (126, 0, 35))),
    "grey": ((0.0, (20, 20, 20)), (1.0, (240, 240, 240))),
}
#: deck.gl's decoder of the Terrain-RGB encoding :func:`terrain_image` writes (metres)
TERRAIN_DECODER: Final = {"rScaler": 6553.6, "gScaler": 25.6, "bScaler": 0.1, "offset": -10000}
MAX_PIXELS: Final = 512


def to_wgs84(da: xr.DataArray, max_pixels: int = MAX_PIXELS) -> xr.DataArray:
    """``da`` reprojected to WGS 84, at most ``max_pixels`` on its longer side."""
    scale = max(da.rio.width, da.rio.height) / max_pixels
    if scale > 1:
        da = da.coarsen(
            {da.rio.x_dim: int(np.ceil(scale)), da.rio.y_dim: int(np.ceil(scale))}, boundary="trim"
        ).mean()
    out: xr.DataArray = da.astype("float64").rio.reproject("EPSG:4326", nodata=np.nan)
    return out


def _png(rgba: npt.NDArray[np.uint8]) -> str:
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def bounds_of(da: xr.DataArray) -> list[float]:
    """[west, south, east, north] of a WGS 84 raster (deck.gl's BitmapLayer bounds)."""
    west, south, east, north = da.rio.bounds()
    return [float(west), float(south), float(east), float(north)]


def colourise(
    values: npt.NDArray[np.float64], vmin: float, vmax: float, ramp: str = "ndvi", alpha: int = 200
) -> npt.NDArray[np.uint8]:
    """RGBA of ``values`` on ``ramp`` between ``vmin`` and ``vmax``; NaN transparent."""
    stops = RAMPS[ramp]
    span = (vmax - vmin) or 1.0
    t = np.nan_to_num(np.clip((values - vmin) / span, 0, 1), nan=0.0)
    rgba = np.zeros((*values.shape, 4), dtype=np.uint8)
    positions = [p for p, _ in stops]
    for channel in range(3):
        rgba[..., channel] = np.interp(t, positions, [c[channel] for _, c in stops]).astype(
            np.uint8
        )
    rgba[..., 3] = np.where(np.isfinite(values), alpha, 0).astype(np.uint8)
    return rgba


def raster_image(
    da: xr.DataArray, ramp: str = "ndvi", vmin: float | None = None, vmax: float | None = None
) -> tuple[str, list[float], float, float]:
    """A raster as a ``data:`` PNG in WGS 84 with its bounds and the value range drawn."""
    wgs = to_wgs84(da)
    values = wgs.to_numpy()
    lo = float(np.nanpercentile(values, 2)) if vmin is None else vmin
    hi = float(np.nanpercentile(values, 98)) if vmax is None else vmax
    return _png(colourise(values, lo, hi, ramp)), bounds_of(wgs), lo, hi


def terrain_image(dem: xr.DataArray) -> tuple[str, list[float]]:
    """A DEM (metres) as a Terrain-RGB ``data:`` PNG in WGS 84 and its bounds: height =
    (R × 65536 + G × 256 + B) × 0.1 − 10000 (:data:`TERRAIN_DECODER`); no-data at 0 m."""
    wgs = to_wgs84(dem)
    h = np.nan_to_num(wgs.to_numpy(), nan=0.0)
    code = np.clip(np.round((h + 10000) / 0.1), 0, 2**24 - 1).astype(np.uint32)
    rgba = np.zeros((*h.shape, 4), dtype=np.uint8)
    rgba[..., 0] = (code >> 16) & 255
    rgba[..., 1] = (code >> 8) & 255
    rgba[..., 2] = code & 255
    rgba[..., 3] = 255
    return _png(rgba), bounds_of(wgs)


def decode_terrain(rgba: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Heights (m) of a Terrain-RGB image, as deck.gl decodes them."""
    d = TERRAIN_DECODER
    r, g, b = (rgba[..., i].astype("float64") for i in range(3))
    out: npt.NDArray[np.float64] = (
        r * d["rScaler"] + g * d["gScaler"] + b * d["bScaler"] + d["offset"]
    )
    return out


def station_surface(
    latest: pd.DataFrame, cells: int = 120
) -> tuple[xr.DataArray, CrossValidation] | None:
    """IDW surface (China Albers, about ``cells`` across) of the latest station values
    (``lon, lat, value``) with its leave-one-out error; ``None`` under 3 stations."""
    from pyproj import Transformer

    frame = latest.dropna(subset=["lon", "lat", "value"])
    if len(frame) < 3:
        return None
    x, y = Transformer.from_crs("EPSG:4326", CHINA_ALBERS, always_xy=True).transform(
        frame["lon"].to_numpy(), frame["lat"].to_numpy()
    )
    pad = 0.1 * max(np.ptp(x), np.ptp(y), 50_000.0)
    bounds = (x.min() - pad, y.min() - pad, x.max() + pad, y.max() + pad)
    cell = max(bounds[2] - bounds[0], bounds[3] - bounds[1]) / cells
    values = frame["value"].to_numpy(dtype="float64")
    surface = idw(x, y, values, CHINA_ALBERS, cell=cell, bounds=bounds, name="value")
    return surface, idw_cv(x, y, values, CHINA_ALBERS)


def layer_geojson(layer: Any) -> dict[str, Any]:
    """A stored layer (GeoDataFrame) as GeoJSON in WGS 84 for deck.gl."""
    wgs = layer.to_crs("EPSG:4326").reset_index()
    doc: dict[str, Any] = wgs.__geo_interface__
    return doc
