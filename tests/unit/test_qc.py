"""Quality control adds flags beside raw values; never changes or drops them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensors import qc
from tests.datasets import no2_hourly

T = pd.date_range("2026-11-01", periods=48, freq="h", tz="UTC")


def smooth(n: int = 48) -> np.ndarray:
    return 40 + 10 * np.sin(np.arange(n) / 4)


def test_range_uses_the_dictionary() -> None:
    v = smooth()
    v[3], v[7] = -5.0, 50_000.0  # beyond PM2.5's plausible range
    mask = qc.check(T, v, "pm25", config=qc.QcConfig(spike=False, flatline_count=None))
    assert np.flatnonzero(mask & qc.RANGE).tolist() == [3, 7]


def test_a_spike_is_flagged_not_its_neighbours() -> None:
    v = smooth()
    v[20] += 80
    mask = qc.check(T, v, "pm25")
    assert np.flatnonzero(mask & qc.SPIKE).tolist() == [20]


def test_a_regular_series_is_not_all_spikes() -> None:
    """Most steps equal (a quantised or regular logger series): the robust scale is 0, and the
    steps' standard deviation stands in, so the ordinary steps pass and a real spike does not."""
    v = 30 + (np.arange(48) % 5) * 0.37  # sawtooth: four equal rises, one fall
    assert not (qc.check(T, v, "so2", config=qc.QcConfig(flatline_count=None)) & qc.SPIKE).any()
    v[21] += 50
    mask = qc.check(T, v, "so2", config=qc.QcConfig(flatline_count=None))
    assert np.flatnonzero(mask & qc.SPIKE).tolist() == [21]


def test_flatline_flags_the_whole_stuck_run() -> None:
    v = smooth()
    v[10:17] = 33.0  # 7 identical readings
    v[30:33] = 12.0  # 3: not stuck
    mask = qc.check(T, v, "pm25", config=qc.QcConfig(spike=False))
    assert np.flatnonzero(mask & qc.FLATLINE).tolist() == list(range(10, 17))


def test_rate_of_change_per_hour_uses_the_time_between_readings() -> None:
    t = pd.DatetimeIndex(["2026-11-01T00:00Z", "2026-11-01T01:00Z", "2026-11-01T01:30Z"])
    mask = qc.check(t, [10, 40, 60], "pm25", config=qc.QcConfig(spike=False, max_rate=35))
    assert (mask & qc.RATE).tolist() == [0, 0, qc.RATE]  # 30/h, then 20 in 0.5 h = 40/h


def test_device_flags_other_than_n() -> None:
    flags = ["N"] * 48
    flags[5], flags[6] = "M", "D"
    mask = qc.check(T, smooth(), "pm25", flags=flags)
    assert np.flatnonzero(mask & qc.DEVICE).tolist() == [5, 6]
    assert qc.describe(qc.DEVICE | qc.SPIKE) == ["spike", "device"]


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="times for"):
        qc.check(T, [1.0], "pm25")
    with pytest.raises(ValueError, match="increasing"):
        qc.check(T[::-1], smooth(), "pm25")


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=60))
def test_qc_never_changes_values_and_returns_one_mask_per_reading(values: list[float]) -> None:
    v = np.array(values)
    before = v.copy()
    t = pd.date_range("2026-01-01", periods=len(v), freq="min", tz="UTC")
    mask = qc.check(t, v, "no2", config=qc.QcConfig(max_rate=1000))
    assert len(mask) == len(v) and np.array_equal(v, before, equal_nan=True)
    assert ((mask >= 0) & (mask < 32)).all()


def test_real_no2_series_keeps_its_variability_and_finds_injected_faults() -> None:
    """aqeval's real hourly NO₂ (µg/m³): almost nothing flagged as it is; an injected spike and
    a stuck sensor are found."""
    data = no2_hourly().dropna(subset=["no2"]).head(5000).reset_index(drop=True)
    times = pd.DatetimeIndex(data["date"])
    mask = qc.check(times, data["no2"], "no2")
    assert (mask & qc.RANGE).sum() == 0
    assert (mask != 0).mean() < 0.01
    faulty = data["no2"].to_numpy().copy()
    faulty[1000] += 400
    faulty[2000:2010] = faulty[2000]
    mask = qc.check(times, faulty, "no2")
    assert mask[1000] & qc.SPIKE
    assert (mask[2000:2010] & qc.FLATLINE).all()
    assert faulty[1000] == data["no2"][1000] + 400  # the value itself is kept


def test_a_noise_peak_is_a_measurement_not_a_spike() -> None:
    """A passing lorry at night: Lmax 48, 47, 49, 78, 48, 47 dB(A). The spike test flags it in
    another domain's series; a sound level keeps it (GB 3096's night maximum rule is about
    such peaks)."""
    t = pd.date_range("2026-12-01T15:00Z", periods=6, freq="min")
    levels = [48.0, 47.0, 49.0, 78.0, 48.0, 47.0]
    assert qc.check(t, levels, "lmax")[3] == 0
    assert qc.check(t, levels, "laeq")[3] == 0
    assert qc.check(t, [v * 10 for v in levels], "pm25")[3] & qc.SPIKE
