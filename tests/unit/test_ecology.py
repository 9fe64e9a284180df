"""Fractional vegetation cover and trends (``gis/ecology.py``, ``docs/standards/ecology.md``)."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import rioxarray  # noqa: F401  (the .rio accessor)
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from gis.ecology import (
    DEFAULT_NDVI_SOIL,
    DEFAULT_NDVI_VEG,
    INSUFFICIENT,
    TREND_COLUMNS,
    Trend,
    end_members,
    fvc,
    trend,
    trends,
)

BASE = datetime(2015, 7, 1, tzinfo=UTC)
YEAR = timedelta(days=365.25)


# --- FVC --------------------------------------------------------------------------------------
def test_fvc_is_0_and_1_at_the_end_members_and_linear_between() -> None:
    assert fvc(DEFAULT_NDVI_SOIL) == 0.0
    assert fvc(DEFAULT_NDVI_VEG) == 1.0
    assert fvc(0.2, 0.2, 0.8) == 0.0 and fvc(0.8, 0.2, 0.8) == 1.0
    assert fvc(0.5, 0.2, 0.8) == pytest.approx(0.5)
    assert fvc(0.35, 0.2, 0.8) == pytest.approx(0.25)
    ndvi = np.linspace(DEFAULT_NDVI_SOIL, DEFAULT_NDVI_VEG, 11)
    np.testing.assert_allclose(fvc(ndvi), np.linspace(0, 1, 11), atol=1e-12)
    assert isinstance(fvc(0.5), float) and isinstance(fvc(ndvi), np.ndarray)


def test_fvc_clips_below_the_soil_and_above_the_vegetation() -> None:
    out = fvc(np.array([-1.0, -0.2, 0.0, 0.04, 0.96, 1.0]))
    np.testing.assert_array_equal(out, [0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    assert fvc(-0.3, 0.1, 0.6) == 0.0 and fvc(0.9, 0.1, 0.6) == 1.0


def test_fvc_keeps_nan() -> None:
    assert math.isnan(fvc(math.nan))
    out = fvc(np.array([np.nan, 0.5, np.nan]))
    assert np.isnan(out[0]) and np.isnan(out[2]) and 0 < out[1] < 1


def _ndvi_raster() -> xr.DataArray:
    values = np.array([[0.05, 0.5, 0.95], [np.nan, -0.1, 0.99]])
    da = xr.DataArray(
        values,
        dims=("y", "x"),
        coords={"y": [40.5, 40.0], "x": [116.0, 116.5, 117.0]},
        name="ndvi",
        attrs={"long_name": "NDVI"},
    )
    written: xr.DataArray = da.rio.write_crs("EPSG:4326")
    return written


def test_fvc_of_a_raster_keeps_its_grid_and_crs() -> None:
    ndvi = _ndvi_raster()
    out = fvc(ndvi)
    assert isinstance(out, xr.DataArray)
    assert out.name == "fvc"
    assert out.rio.crs is not None and out.rio.crs.to_epsg() == 4326
    assert out.dims == ndvi.dims
    xr.testing.assert_equal(out["x"], ndvi["x"])
    xr.testing.assert_equal(out["y"], ndvi["y"])
    assert "long_name" not in out.attrs  # NDVI's description is not FVC's
    expected = [[0.0, 0.5, 1.0], [np.nan, 0.0, 1.0]]
    np.testing.assert_allclose(out.to_numpy(), expected, atol=1e-12)


def test_fvc_of_a_lazy_raster_stays_lazy() -> None:
    ndvi = _ndvi_raster().chunk({"x": 1})
    out = fvc(ndvi)
    assert out.chunks is not None
    assert out.rio.crs.to_epsg() == 4326
    np.testing.assert_allclose(out.compute().to_numpy(), fvc(_ndvi_raster()).to_numpy())


@pytest.mark.parametrize(
    ("soil", "veg"),
    [(0.5, 0.5), (0.8, 0.2), (math.nan, 0.9), (0.1, math.inf), (-1.5, 0.9), (0.1, 1.2)],
)
def test_fvc_refuses_bad_end_members(soil: float, veg: float) -> None:
    with pytest.raises(ValueError):
        fvc(0.5, soil, veg)


def test_end_members_are_the_quantiles_of_the_valid_pixels() -> None:
    ndvi = np.arange(101) / 100  # 0.00, 0.01 … 1.00
    assert end_members(ndvi) == pytest.approx((0.05, 0.95))
    with_gaps = np.concatenate([ndvi, [np.nan, np.inf, np.nan]]).reshape(8, 13)
    assert end_members(with_gaps) == pytest.approx((0.05, 0.95))
    assert end_members(ndvi, 0.02, 0.98) == pytest.approx((0.02, 0.98))
    raster = _ndvi_raster()  # valid: 0.05, 0.5, 0.95, -0.1, 0.99
    soil, veg = end_members(raster, 0.0, 1.0)
    assert (soil, veg) == (-0.1, 0.99)
    out = fvc(raster, *end_members(raster))
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0


def test_end_members_errors() -> None:
    with pytest.raises(ValueError, match="no valid"):
        end_members(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="no contrast"):
        end_members(np.full(10, 0.4))
    with pytest.raises(ValueError, match="quantiles"):
        end_members(np.arange(10) / 10, 0.9, 0.1)
    with pytest.raises(ValueError, match="NDVI"):
        end_members(np.array([-5.0, 0.2, 0.8]), 0.0, 1.0)  # not NDVI: mask nodata first


# --- trend ------------------------------------------------------------------------------------
def _irregular(n: int) -> list[datetime]:
    """Times with gaps of 1, 2, 3 … months and years, in Beijing time."""
    beijing = timezone(timedelta(hours=8))
    days = np.cumsum([0, 365, 730, 31, 400, 1100, 90, 365, 200, 500, 60, 700])[:n]
    return [datetime(2010, 6, 1, tzinfo=beijing) + timedelta(days=int(d)) for d in days]


def test_an_increasing_series() -> None:
    times = _irregular(10)
    years = np.array([(t - times[0]) / YEAR for t in times])
    values = 0.3 + 0.01 * years  # exactly 0.01 a year, at irregular times
    result = trend(times, values)
    assert isinstance(result, Trend)
    assert result.trend == "increasing" and result.significant and result.p < 0.05
    assert result.n == 10 and result.tau == 1.0
    assert result.slope_per_year == pytest.approx(0.01, rel=1e-12)
    assert result.intercept == pytest.approx(0.3, rel=1e-12)  # the value at start
    assert result.start == pd.Timestamp(times[0]) and result.end == pd.Timestamp(times[-1])
    assert str(result.start.tz) == "UTC"


def test_a_decreasing_series_with_a_gap_and_shuffled_times() -> None:
    times = pd.date_range("2001-01-01", periods=12, freq="YS", tz="Asia/Shanghai")
    values = np.linspace(0.8, 0.5, 12)
    values[4] = np.nan  # a cloudy year
    order = np.random.default_rng(1).permutation(12)
    result = trend(times[order], values[order])
    assert result.trend == "decreasing" and result.significant
    assert result.n == 11 and result.tau == -1.0 and result.z < 0
    assert result.slope_per_year == pytest.approx(-0.3 / 11, rel=3e-3)  # a step a year
    assert result.start == times[0] and result.end == times[-1]


def test_constant_and_noisy_series_have_no_trend() -> None:
    times = _irregular(8)
    flat = trend(times, [0.6] * 8)
    assert flat.trend == "no trend" and not flat.significant
    assert flat.p == 1.0 and flat.z == 0.0 and flat.slope_per_year == 0.0
    noisy = trend(times, [0.50, 0.62, 0.41, 0.58, 0.47, 0.60, 0.44, 0.55])
    assert noisy.trend == "no trend" and not noisy.significant and noisy.p > 0.05


def _mann_kendall(values: list[float]) -> tuple[float, float, float]:
    """(p, tau, z) of the Mann-Kendall test by hand, for values without ties."""
    n = len(values)
    s = sum(
        (values[j] > values[i]) - (values[j] < values[i])
        for i, j in itertools.combinations(range(n), 2)
    )
    var = n * (n - 1) * (2 * n + 5) / 18
    z = (s - 1) / math.sqrt(var) if s > 0 else (s + 1) / math.sqrt(var) if s < 0 else 0.0
    p = math.erfc(abs(z) / math.sqrt(2))  # 2 · (1 − Φ(|z|))
    return p, s / (n * (n - 1) / 2), z


def test_the_test_statistics_match_a_hand_computed_mann_kendall() -> None:
    values = [1.2, 0.8, 1.9, 2.4, 2.0, 3.1, 2.9]  # S = 15, var(S) = 44.33
    p, tau, z = _mann_kendall(values)
    assert tau == pytest.approx(15 / 21) and z == pytest.approx(14 / math.sqrt(7 * 6 * 19 / 18))
    result = trend(_irregular(7), values)
    assert result.p == pytest.approx(p, rel=1e-9)
    assert result.tau == pytest.approx(tau, rel=1e-12)
    assert result.z == pytest.approx(z, rel=1e-12)
    assert result.trend == "increasing" and result.p < 0.05
    falling = [-v for v in values]
    p, tau, z = _mann_kendall(falling)
    down = trend(_irregular(7), falling)
    assert (down.p, down.tau, down.z) == pytest.approx((p, tau, z), rel=1e-9)
    assert down.trend == "decreasing"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(1, 800), min_size=3, max_size=29).flatmap(
        lambda gaps: st.tuples(
            st.just(gaps),
            st.lists(
                st.floats(-1000, 1000, allow_nan=False),
                min_size=len(gaps) + 1,
                max_size=len(gaps) + 1,
            ),
        )
    )
)
def test_sen_slope_is_the_median_of_the_pairwise_slopes_per_year(
    series: tuple[list[int], list[float]],
) -> None:
    gaps, values = series
    days = np.concatenate([[0], np.cumsum(gaps)])
    times = [BASE + timedelta(days=int(d), hours=int(d) % 7) for d in days]
    years = [(t - BASE) / YEAR for t in times]
    slopes = [
        (values[j] - values[i]) / (years[j] - years[i])
        for i, j in itertools.combinations(range(len(values)), 2)
    ]
    result = trend(times, values)
    assert result.n == len(values)
    assert result.slope_per_year == pytest.approx(float(np.median(slopes)), rel=1e-9, abs=1e-9)


def test_too_few_values_naive_and_repeated_times_raise() -> None:
    times = _irregular(5)
    with pytest.raises(ValueError, match="at least 4 values"):
        trend(times[:3], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="at least 4 values"):
        trend(times, [1.0, np.nan, 2.0, np.nan, 3.0])
    naive = [t.replace(tzinfo=None) for t in times]
    with pytest.raises(ValueError, match="timezone-aware"):
        trend(naive, [1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(ValueError, match="timezone-aware"):
        trend(pd.DatetimeIndex(naive), [1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(ValueError, match="repeat"):
        trend([*times[:4], times[0]], [1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(ValueError, match="length"):
        trend(times, [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="finite"):
        trend(times, [1.0, 2.0, np.inf, 4.0, 5.0])


# --- trends -----------------------------------------------------------------------------------
def test_trends_gives_one_row_per_feature_and_tolerates_a_short_one() -> None:
    long_times = pd.date_range("2010-01-01", periods=10, freq="YS", tz="UTC")
    frame = pd.DataFrame(
        {
            "feature": ["110101"] * 10 + ["110102"] * 4,
            "time": list(long_times) + list(long_times[:4]),
            "value": [*(0.4 + 0.02 * np.arange(10)), 0.5, np.nan, 0.6, np.nan],
        }
    )
    table = trends(frame)
    assert list(table.columns) == list(TREND_COLUMNS)
    assert list(table["feature"]) == ["110101", "110102"]
    rows = table.set_index("feature")
    good = rows.loc["110101"]
    alone = trend(long_times, 0.4 + 0.02 * np.arange(10))
    assert good["n"] == 10 and good["trend"] == "increasing" and good["significant"]
    assert good["slope_per_year"] == pytest.approx(alone.slope_per_year)
    assert good["p"] == pytest.approx(alone.p) and good["start"] == long_times[0]
    short = rows.loc["110102"]
    assert short["n"] == 2 and short["trend"] == INSUFFICIENT and not short["significant"]
    assert short[["p", "tau", "z", "slope_per_year", "intercept"]].isna().all()
    assert pd.isna(short["start"]) and pd.isna(short["end"])


def test_trends_errors() -> None:
    with pytest.raises(ValueError, match="columns"):
        trends(pd.DataFrame({"feature": ["a"], "value": [1.0]}))
    naive = pd.DataFrame(
        {"feature": ["a"] * 4, "time": pd.date_range("2020", periods=4), "value": 1.0}
    )
    with pytest.raises(ValueError, match="timezone-aware"):
        trends(naive)
    repeated = naive.assign(time=pd.Timestamp("2020-01-01", tz="UTC"))
    with pytest.raises(ValueError, match="feature 'a'"):
        trends(repeated)
    empty = trends(naive.iloc[:0].assign(time=pd.Series([], dtype="datetime64[ns, UTC]")))
    assert empty.empty and list(empty.columns) == list(TREND_COLUMNS)
