"""Interpolation of station readings to a grid: inverse-distance weighting and ordinary kriging
(PyPI ``pykrige``), each with its leave-one-out cross-validation error.

Coordinates must be in a projected CRS (metres): distances in degrees would be wrong, so a
geographic CRS is an error — reproject first (:func:`gis.layers.read_layer`,
``GeoDataFrame.to_crs``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import rioxarray  # noqa: F401  (registers the .rio accessor)
import xarray as xr
from pyproj import CRS

from gis.errors import GisError

Array = npt.NDArray[np.float64]
VARIOGRAMS: Final = ("spherical", "exponential", "gaussian", "linear", "power")


@dataclass(frozen=True)
class CrossValidation:
    """Leave-one-out errors, in the readings' unit: each point predicted from all the others."""

    method: str
    rmse: float
    mae: float
    bias: float
    predicted: Array


def _points(x: Any, y: Any, values: Any, crs: str | CRS) -> tuple[Array, Array, Array, CRS]:
    xs, ys, vs = (np.asarray(a, dtype="float64") for a in (x, y, values))
    if not (xs.shape == ys.shape == vs.shape) or xs.ndim != 1:
        raise GisError("x, y and values must be one-dimensional and of one length")
    keep = np.isfinite(xs) & np.isfinite(ys) & np.isfinite(vs)
    xs, ys, vs = xs[keep], ys[keep], vs[keep]
    if len(vs) < 3:
        raise GisError(f"at least 3 points with values are needed, got {len(vs)}")
    c = CRS.from_user_input(crs)
    if not c.is_projected:
        raise GisError(f"{c.name} is not a projected CRS: reproject to metres first")
    return xs, ys, vs, c


def _cv(method: str, observed: Array, predicted: Array) -> CrossValidation:
    err = predicted - observed
    return CrossValidation(
        method,
        float(np.sqrt(np.mean(err**2))),
        float(np.mean(np.abs(err))),
        float(np.mean(err)),
        predicted,
    )


def _idw(px: Array, py: Array, pv: Array, gx: Array, gy: Array, power: float) -> Array:
    d = np.hypot(gx[:, None] - px[None, :], gy[:, None] - py[None, :])
    exact = d == 0
    w = 1.0 / np.where(exact, 1.0, d) ** power
    out: Array = (w @ pv) / w.sum(axis=1)
    hit = exact.any(axis=1)
    out[hit] = pv[exact[hit].argmax(axis=1)]  # a grid point on a station takes its value
    return out


def idw_cv(x: Any, y: Any, values: Any, crs: str | CRS, power: float = 2.0) -> CrossValidation:
    """Leave-one-out error of IDW with ``power``."""
    xs, ys, vs, _ = _points(x, y, values, crs)
    d = np.hypot(xs[:, None] - xs[None, :], ys[:, None] - ys[None, :])
    np.fill_diagonal(d, np.inf)  # leave each point out of its own prediction
    w = 1.0 / np.where(d == 0, 1e-12, d) ** power
    return _cv(f"IDW (power {power:g})", vs, (w @ vs) / w.sum(axis=1))


def kriging_cv(
    x: Any, y: Any, values: Any, crs: str | CRS, variogram: str = "spherical"
) -> CrossValidation:
    """Leave-one-out error of ordinary kriging: the variogram is refitted without each point."""
    from pykrige.ok import OrdinaryKriging

    xs, ys, vs, _ = _points(x, y, values, crs)
    if variogram not in VARIOGRAMS:
        raise GisError(f"variogram must be one of {', '.join(VARIOGRAMS)}")
    predicted = np.empty_like(vs)
    for i in range(len(vs)):
        rest = np.arange(len(vs)) != i
        ok = OrdinaryKriging(xs[rest], ys[rest], vs[rest], variogram_model=variogram)
        z, _ = ok.execute("points", xs[i : i + 1], ys[i : i + 1])
        predicted[i] = float(np.asarray(z)[0])
    return _cv(f"ordinary kriging ({variogram})", vs, predicted)


def _grid(
    xs: Array, ys: Array, cell: float, bounds: tuple[float, ...] | None
) -> tuple[Array, Array]:
    if cell <= 0:
        raise GisError("the cell size must be positive")
    west, south, east, north = bounds or (xs.min(), ys.min(), xs.max(), ys.max())
    gx = np.arange(west + cell / 2, east, cell)
    gy = np.arange(north - cell / 2, south, -cell)
    if gx.size * gy.size > 50_000_000:
        raise GisError(f"a grid of {gx.size} × {gy.size} cells is too large: use a larger cell")
    return gx, gy


def _frame(z: Array, gx: Array, gy: Array, crs: CRS, name: str, method: str) -> xr.DataArray:
    da = xr.DataArray(
        z.reshape(gy.size, gx.size), dims=("y", "x"), coords={"y": gy, "x": gx}, name=name
    )
    da.attrs["method"] = method
    out: xr.DataArray = da.rio.write_crs(crs)
    return out


def idw(
    x: Any,
    y: Any,
    values: Any,
    crs: str | CRS,
    cell: float,
    bounds: tuple[float, float, float, float] | None = None,
    power: float = 2.0,
    name: str = "value",
) -> xr.DataArray:
    """IDW surface on a grid of ``cell`` metres over ``bounds`` (west, south, east, north; the
    points' extent by default), with its CRS."""
    xs, ys, vs, c = _points(x, y, values, crs)
    gx, gy = _grid(xs, ys, cell, bounds)
    mx, my = np.meshgrid(gx, gy)
    z = np.concatenate(
        [
            _idw(xs, ys, vs, cx, cy, power)
            for cx, cy in zip(
                np.array_split(mx.ravel(), max(1, mx.size // 100_000)),
                np.array_split(my.ravel(), max(1, my.size // 100_000)),
                strict=True,
            )
        ]
    )
    return _frame(z, gx, gy, c, name, f"IDW (power {power:g})")


def kriging(
    x: Any,
    y: Any,
    values: Any,
    crs: str | CRS,
    cell: float,
    bounds: tuple[float, float, float, float] | None = None,
    variogram: str = "spherical",
    name: str = "value",
) -> tuple[xr.DataArray, xr.DataArray]:
    """Ordinary-kriging surface and its kriging variance on a grid of ``cell`` metres."""
    from pykrige.ok import OrdinaryKriging

    xs, ys, vs, c = _points(x, y, values, crs)
    if variogram not in VARIOGRAMS:
        raise GisError(f"variogram must be one of {', '.join(VARIOGRAMS)}")
    gx, gy = _grid(xs, ys, cell, bounds)
    ok = OrdinaryKriging(xs, ys, vs, variogram_model=variogram)
    z, ss = ok.execute("grid", gx, gy)
    method = f"ordinary kriging ({variogram})"
    return (
        _frame(np.asarray(z, dtype="float64"), gx, gy, c, name, method),
        _frame(np.asarray(ss, dtype="float64"), gx, gy, c, f"{name}_variance", method),
    )
