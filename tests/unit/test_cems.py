"""CEMS measurement method: hourly mass, substitution of missing hours (flagged), comparison."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon.cems import LOOKBACK_HOURS, compare, hourly_mass
from carbon.errors import CarbonError

H = pd.date_range("2026-11-01", periods=48, freq="h", tz="UTC")


def test_hourly_mass_is_concentration_times_flow() -> None:
    # 180,000 mg/m³ × 500,000 m³/h × 1e-9 = 90 t in the hour
    out = hourly_mass(H[:1], [180_000.0], [500_000.0])
    assert out["co2_t"].iloc[0] == pytest.approx(90.0) and out["measured"].all()
    # the store keeps flows in m³/s (HJ 212): units go through pint
    per_s = hourly_mass(H[:1], [180_000.0], [500_000.0 / 3600], flow_unit="m3/s")
    assert per_s["co2_t"].iloc[0] == pytest.approx(90.0)


def test_a_short_gap_takes_the_mean_of_its_neighbours() -> None:
    co2 = np.full(48, 100_000.0)
    co2[10] = 200_000.0
    valid = np.ones(48, dtype=bool)
    valid[11:14] = False  # 3 hours
    out = hourly_mass(H, co2, np.full(48, 1e6), valid)
    assert list(out["substitution"].iloc[11:14]) == ["interpolated"] * 3
    assert out["co2_t"].iloc[11:14].tolist() == pytest.approx([150.0] * 3)  # (200 + 100) / 2
    assert not out["measured"].iloc[11:14].any() and out["measured"].sum() == 45


def test_a_long_gap_or_one_at_the_end_takes_the_lookback_maximum() -> None:
    hours = pd.date_range("2026-11-01", periods=100, freq="h", tz="UTC")
    co2 = 100_000.0 + np.arange(100) * 1000.0
    valid = np.ones(100, dtype=bool)
    valid[40:70] = False  # 30 hours: longer than 24
    valid[95:] = False  # at the end
    out = hourly_mass(hours, co2, np.full(100, 1e6), valid)
    assert set(out["substitution"].iloc[40:70]) == {"lookback_max"}
    assert out["co2_t"].iloc[40:70].tolist() == pytest.approx([139.0] * 30)  # hour 39's
    assert out["co2_t"].iloc[95:].tolist() == pytest.approx([194.0] * 5)
    # never below what was measured before: conservative
    assert (out["co2_t"][~out["measured"]] >= 139.0).all()


def test_a_gap_at_the_start_takes_the_series_maximum() -> None:
    valid = np.ones(48, dtype=bool)
    valid[:2] = False
    co2 = np.linspace(100_000, 147_000, 48)
    out = hourly_mass(H, co2, np.full(48, 1e6), valid)
    assert out["co2_t"].iloc[:2].tolist() == pytest.approx([147.0, 147.0])
    assert LOOKBACK_HOURS == 720


def test_bad_input() -> None:
    with pytest.raises(CarbonError, match="no measured hour"):
        hourly_mass(H[:3], [np.nan] * 3, [1.0] * 3)
    with pytest.raises(CarbonError, match="complete hourly grid"):
        hourly_mass(H[[0, 2]], [1.0, 1.0], [1.0, 1.0])
    with pytest.raises(CarbonError, match="units"):
        hourly_mass(H[:1], [1.0], [1.0], flow_unit="kg")
    with pytest.raises(CarbonError, match="timezone"):
        hourly_mass(pd.date_range("2026-11-01", periods=1, freq="h"), [1.0], [1.0])


def test_comparison_with_the_calculation_method() -> None:
    c = compare(1060.0, 1000.0)
    assert c.relative_difference == pytest.approx(0.06) and c.finding
    assert not compare(1040.0, 1000.0).finding
    with pytest.raises(CarbonError):
        compare(1.0, 0.0)


@given(
    st.lists(st.booleans(), min_size=1, max_size=80).filter(any),
    st.floats(min_value=1.0, max_value=1e6),
)
def test_substituted_hours_are_flagged_and_measured_ones_untouched(
    mask: list[bool], level: float
) -> None:
    n = len(mask)
    hours = pd.date_range("2026-11-01", periods=n, freq="h", tz="UTC")
    co2 = level * (1 + np.arange(n) % 5)
    out = hourly_mass(hours, co2, np.full(n, 1e3), mask)
    measured = np.asarray(mask)
    np.testing.assert_allclose(out["co2_t"][measured], co2[measured] * 1e3 * 1e-9)
    assert (out["substitution"][measured] == "").all()
    assert (out["substitution"][~measured] != "").all()
    assert np.isfinite(out["co2_t"]).all()
