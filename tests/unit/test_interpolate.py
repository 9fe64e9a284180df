"""Interpolation on the Meuse soil samples (scikit-gstat's copy): IDW and ordinary kriging with
leave-one-out cross-validation."""

from __future__ import annotations

import numpy as np
import pytest

from gis.errors import GisError
from gis.interpolate import idw, idw_cv, kriging, kriging_cv
from tests.datasets import meuse

RD_NEW = "EPSG:28992"  # the samples' Dutch national grid (metres)


def test_cross_validation_of_idw_and_kriging_on_meuse_zinc() -> None:
    m = meuse()
    zinc = np.log(m["zinc"].to_numpy())  # log zinc, as in the classic analyses
    mean_only = float(np.sqrt(np.mean((zinc - zinc.mean()) ** 2)))
    cv_idw = idw_cv(m["x"], m["y"], zinc, RD_NEW)
    cv_ok = kriging_cv(m["x"], m["y"], zinc, RD_NEW, variogram="spherical")
    for cv in (cv_idw, cv_ok):
        assert len(cv.predicted) == 155
        assert cv.rmse < 0.75 * mean_only  # both beat predicting the mean everywhere
        assert abs(cv.bias) < 0.1 and cv.mae <= cv.rmse
    assert cv_ok.rmse < cv_idw.rmse  # zinc is spatially structured: kriging does better
    # leave-one-out by hand for one point equals the vectorised IDW
    x, y = m["x"].to_numpy(float), m["y"].to_numpy(float)
    d = np.hypot(x[1:] - x[0], y[1:] - y[0])
    w = 1 / d**2
    assert cv_idw.predicted[0] == pytest.approx((w @ zinc[1:]) / w.sum())


def test_surfaces_on_a_grid_with_their_crs() -> None:
    m = meuse()
    zinc = np.log(m["zinc"].to_numpy())
    surface = idw(m["x"], m["y"], zinc, RD_NEW, cell=100)
    assert surface.rio.crs.to_epsg() == 28992 and surface.attrs["method"] == "IDW (power 2)"
    assert zinc.min() <= float(surface.min()) and float(surface.max()) <= zinc.max()
    z, var = kriging(m["x"], m["y"], zinc, RD_NEW, cell=200)
    assert z.shape == var.shape and float(var.min()) >= 0
    assert z.rio.crs.to_epsg() == 28992


def test_bad_input() -> None:
    with pytest.raises(GisError, match="not a projected CRS"):
        idw_cv([116.1, 116.2, 116.3], [39.9, 39.8, 39.7], [1, 2, 3], "EPSG:4326")
    with pytest.raises(GisError, match="at least 3 points"):
        idw_cv([0, 1, np.nan], [0, 1, 2], [1, 2, 3], RD_NEW)
    with pytest.raises(GisError, match="variogram"):
        kriging_cv([0, 1, 2], [0, 1, 0], [1, 2, 3], RD_NEW, variogram="wavy")
