"""Peak and neutrality tracking on constructed trajectories."""

from __future__ import annotations

import pytest

from carbon.errors import CarbonError
from carbon.targets import Target, track


def test_a_rising_trajectory_peaks_late_and_misses_neutrality() -> None:
    t = track({2019: 100.0, 2020: 102.0, 2021: 104.0, 2022: 106.0, 2023: 108.0}, Target("CN-BJ"))
    assert t.slope_t_per_year == pytest.approx(2.0)
    assert t.projection[2024] == pytest.approx(110.0) and t.projection[2060] == pytest.approx(182.0)
    assert t.projected_peak_year == 2060 and not t.peak_on_track
    assert t.neutrality_gap_t == pytest.approx(182.0)
    assert t.required[2060] == 0 and t.required[2024] == pytest.approx(108 * 36 / 37)
    assert t.gap[2060] == pytest.approx(182.0)
    assert "linear trend of the last 5 years" in t.method


def test_a_falling_trajectory_has_peaked() -> None:
    t = track({2020: 120.0, 2021: 130.0, 2022: 125.0, 2023: 118.0, 2024: 110.0}, Target("CN-SH"))
    assert t.projected_peak_year == 2021 and t.peak_on_track
    assert t.slope_t_per_year < 0


def test_the_window_uses_the_latest_years_only() -> None:
    series = {2015 + i: v for i, v in enumerate([50, 60, 70, 80, 100, 100, 100])}
    assert track(series, Target("CN"), window=3).slope_t_per_year == pytest.approx(0.0)


@pytest.mark.parametrize(
    "annual",
    [{2023: 1.0}, {2020: 1.0, 2022: 2.0}, {2020: 1.0, 2021: float("nan")}, {2060: 1.0, 2061: 1.0}],
)
def test_bad_series(annual: dict[int, float]) -> None:
    with pytest.raises(CarbonError):
        track(annual, Target("CN"))
