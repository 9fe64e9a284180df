"""GB 3096-2008 noise limits, energy averages and assessments (issue 18, item 3)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensors.standards import noise

#: Typed in again from GB 3096-2008 Table 1: zone → (day, night), dB(A).
TABLE_1 = {
    "0": (50, 40),
    "1": (55, 45),
    "2": (60, 50),
    "3": (65, 55),
    "4a": (70, 55),
    "4b": (70, 60),
}


@pytest.mark.parametrize("zone", list(TABLE_1))
@pytest.mark.parametrize("period", ["day", "night"])
def test_every_zone_and_period_at_just_below_and_just_above_its_limit(
    zone: str, period: str
) -> None:
    lim = TABLE_1[zone][0 if period == "day" else 1]
    assert noise.limit(zone, period) == lim
    at = noise.assess(lim, zone, period)
    assert at.compliant and at.exceedance_db == 0 and at.limit == lim
    below = noise.assess(lim - 0.1, zone, period)
    assert below.compliant and below.exceedance_db == pytest.approx(-0.1)
    above = noise.assess(lim + 0.1, zone, period)
    assert not above.compliant and above.exceedance_db == pytest.approx(0.1)


@pytest.mark.parametrize("zone", list(TABLE_1))
def test_the_night_maximum_may_exceed_the_night_limit_by_15_db(zone: str) -> None:
    night = TABLE_1[zone][1]
    assert noise.assess_night_max(night + 15, zone).compliant
    over = noise.assess_night_max(night + 15.1, zone)
    assert not over.compliant and over.limit == night + 15
    assert over.exceedance_db == pytest.approx(0.1)


def test_zone_spellings_and_errors() -> None:
    assert noise.limit("4A", "day") == 70 and noise.limit(2, "night") == 50
    assert noise.normalise_zone(" 4b ") == "4b" and noise.normalise_zone(3.0) == "3"
    with pytest.raises(ValueError, match="4a, 4b"):
        noise.limit("4", "day")  # class 4 was split in 2008
    with pytest.raises(ValueError, match="period"):
        noise.limit("1", "evening")
    with pytest.raises(ValueError, match="not a sound level"):
        noise.assess(math.nan, "1", "day")


def test_leq_is_an_energy_average_not_an_arithmetic_mean() -> None:
    assert noise.leq([60, 60, 60]) == pytest.approx(60)
    assert noise.leq([50, 60]) == pytest.approx(57.403627, abs=1e-6)  # not 55
    assert noise.leq([80, 40]) == pytest.approx(76.9901, abs=1e-4)  # the loud one dominates
    assert noise.leq([60, 70], weights=[3, 1]) == pytest.approx(
        10 * math.log10((3 * 1e6 + 1e7) / 4)
    )
    assert noise.leq([60, math.nan]) == pytest.approx(60)
    assert math.isnan(noise.leq([])) and math.isnan(noise.leq([math.nan]))
    assert noise.leq([1000, 1000]) == pytest.approx(1000)  # no overflow
    with pytest.raises(ValueError, match="length"):
        noise.leq([1, 2], weights=[1])


@given(st.lists(st.floats(0, 150), min_size=1, max_size=50))
def test_leq_lies_between_the_mean_and_the_maximum(levels: list[float]) -> None:
    got = noise.leq(levels)
    assert np.mean(levels) - 1e-9 <= got <= max(levels) + 1e-9


def test_ldn_weights_the_night_with_a_10_db_penalty() -> None:
    # Ld 60 over 16 h, Ln 50 over 8 h: the night counts as 60, so Ldn is 60.
    assert noise.ldn(60, 50) == pytest.approx(60)
    assert noise.ldn(55, 45) == pytest.approx(55)
    assert noise.ldn(60, 60) == pytest.approx(10 * math.log10((16 * 1e6 + 8 * 1e7) / 24))
    assert math.isnan(noise.ldn(60, math.nan))
    # hours set by the local government: 07–22, night 9 h
    h = noise.Hours(7, 22)
    assert h.day_hours == 15 and h.night_hours == 9
    assert noise.ldn(60, 50, h) == pytest.approx(60)


def test_day_and_night_hours() -> None:
    h = noise.DEFAULT_HOURS
    assert [h.period(x) for x in (0, 5, 6, 21, 22, 23)] == [
        "night", "night", "day", "day", "night", "night",
    ]  # fmt: skip
    assert h.is_night(np.array([5, 6, 22])).tolist() == [True, False, True]
    for bad in ((22, 6), (6, 24), (-1, 22), (True, 22)):
        with pytest.raises(ValueError):
            noise.Hours(*bad)  # type: ignore[arg-type]


def test_an_energy_average_at_a_limit_stays_compliant() -> None:
    level = noise.leq([55.0] * 7)
    assert noise.assess(level, "1", "day").compliant


def test_a_noise_station_with_a_zone_gb3096_lacks_is_refused() -> None:
    """Found by the new user's trial: noise_zone 7 or 4 was stored, and the station's levels
    were later left out of the daily job."""
    from sensors.errors import ValidationError
    from sensors.stations import Station

    assert Station("N1", "Estate", "noise", 116.0, 39.0, {"noise_zone": "4A"})
    for bad in ("4", 7, "quiet"):
        with pytest.raises(
            ValidationError, match=r"noise_zone .* is not one of 0, 1, 2, 3, 4a, 4b"
        ):
            Station("N1", "Estate", "noise", 116.0, 39.0, {"noise_zone": bad})
    # another kind's attribute of that name is not a noise zone
    assert Station("A1", "Air", "air", 116.0, 39.0, {"noise_zone": "x"})
