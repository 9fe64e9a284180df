"""Issue 12 §5, "no bad input can … pollute": the per-item rules of ``sensors.observations``
that every ingest path applies (time floor and past window, physical range, NUL and
surrogates, units per medium, codes shared by media)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.batch import stations_named, validate_items
from sensors.errors import ValidationError
from sensors.observations import TIME_FLOOR, Observation, check_text, normalise
from sensors.parameters import PARAMETERS, domain_of_kind, lookup

CST = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def norm(**kw: Any) -> Observation:
    base: dict[str, Any] = {
        "station": "S1",
        "parameter": "pm25",
        "time": "2026-11-28T08:00:00+08:00",
        "value": 35.2,
        "now": NOW,
        "max_future": timedelta(hours=1),
        "default_tz": CST,
    }
    base.update(kw)
    return normalise(**base)


# ------------------------------------------------------------------ times
@pytest.mark.parametrize(
    "time",
    [
        "0001-01-01T00:00:00Z",  # line protocol -62135596800 with precision=s
        "0001-01-01T00:00:00+08:00",  # would overflow on conversion to UTC
        "1900-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",
        "2000-01-01T07:59:59+08:00",
    ],
)
def test_times_before_2000_are_rejected_whatever_the_past_window(time: str) -> None:
    """Issue 12: "A device may backdate to year 1 or 1900" — rejected, even for the operator."""
    with pytest.raises(ValidationError, match=r"before 2000-01-01|out of range"):
        norm(time=time, max_past=None)


def test_the_floor_itself_is_accepted_without_a_past_window() -> None:
    assert norm(time="2000-01-01T00:00:00Z", max_past=None).time == TIME_FLOOR


def test_a_device_may_not_write_further_back_than_its_window() -> None:
    """ECOSENSE_MAX_PAST_DAYS (30): devices are refused beyond it; the operator (None) is not."""
    old = (NOW - 31 * DAY).isoformat()
    with pytest.raises(ValidationError, match="more than 30 days in the past"):
        norm(time=old, max_past=30 * DAY)
    assert norm(time=old, max_past=None).time == NOW - 31 * DAY
    assert norm(time=(NOW - 29 * DAY).isoformat(), max_past=30 * DAY).time == NOW - 29 * DAY


def test_end_of_time_west_of_utc_is_a_reason_not_a_crash() -> None:
    with pytest.raises(ValidationError):
        norm(time="9999-12-31T23:59:59-14:00")


@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)))
def test_any_time_is_accepted_or_refused_with_a_reason(when: datetime) -> None:
    try:
        obs = norm(time=when.isoformat(), max_past=30 * DAY)
    except ValidationError as exc:
        assert str(exc)
    else:
        assert NOW - 30 * DAY <= obs.time <= NOW + timedelta(hours=1)


# ------------------------------------------------------------------ values
@pytest.mark.parametrize("value", [1e308, -1.0, -0.001, 2e6])
def test_physically_impossible_pm25_is_rejected(value: float) -> None:
    """Issue 12: "`value: 1e308` and negative PM2.5 are accepted"."""
    with pytest.raises(ValidationError, match="physically impossible"):
        norm(value=value)


def test_a_value_beyond_the_plausible_range_is_stored_for_qc_to_flag() -> None:
    p = lookup("pm25")
    assert norm(value=p.valid_max * 10).value == p.valid_max * 10


def test_temperatures_cannot_go_below_absolute_zero() -> None:
    with pytest.raises(ValidationError, match="physically impossible"):
        norm(parameter="air_temp", value=-274)
    assert norm(parameter="air_temp", value=-60).value == -60
    with pytest.raises(ValidationError, match="physically impossible"):
        norm(parameter="air_temp", value=-500, unit="K")


def test_every_parameter_has_a_physical_range_wider_than_its_plausible_one() -> None:
    for p in PARAMETERS:
        assert p.physical_min <= p.valid_min < p.valid_max <= p.physical_max, p.code
        assert math.isfinite(p.physical_min) and math.isfinite(p.physical_max), p.code


@given(
    st.sampled_from(PARAMETERS),
    st.floats(allow_nan=False, allow_infinity=False),
)
def test_stored_values_are_physically_possible(p: Any, value: float) -> None:
    try:
        obs = norm(parameter=p.code, value=value)
    except ValidationError:
        assert not p.physically_possible(value)
    else:
        assert p.physical_min <= obs.value <= p.physical_max


# ------------------------------------------------------------------ text
@pytest.mark.parametrize("field", ["station", "parameter", "unit", "flag", "time"])
@pytest.mark.parametrize("bad", ["\x00", "\ud800", "\udfff"])
def test_nul_and_unpaired_surrogates_are_rejected_in_every_text(field: str, bad: str) -> None:
    """Issue 12: "NUL characters or lone surrogates in a station id … give 500s"."""
    good = {"station": "S1", "parameter": "pm25", "unit": "ug/m3", "flag": "N", "time": "2026"}
    with pytest.raises(ValidationError, match=r"NUL|surrogate"):
        norm(**{field: good[field] + bad})


def test_a_paired_surrogate_is_an_ordinary_character() -> None:
    check_text("station", "S😀")  # json.loads joins "\ud83d\ude00" into one code point


@given(st.text())
def test_check_text_refuses_exactly_nul_and_surrogates(text: str) -> None:
    bad = "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text)
    try:
        check_text("x", text)
    except ValidationError:
        assert bad
    else:
        assert not bad


def test_a_batch_with_one_nul_item_keeps_the_other() -> None:
    """Issue 12: "a batch with one NUL item stores neither item"."""
    items = [
        {"station": "S1\x00", "parameter": "pm25", "time": "2026-11-28T07:00:00Z", "value": 1},
        {"station": "S1", "parameter": "pm25", "time": "2026-11-28T07:00:00Z", "value": 2},
    ]
    assert stations_named(items) == {"S1"}  # the database is never asked about "S1\x00"
    r = validate_items(
        items, known_station={"S1"}.__contains__, default_tz=CST, max_future=DAY, now=NOW
    )
    assert [o.value for o in r.accepted] == [2.0]
    assert r.rejected == [(0, "station contains a NUL character")]


# ------------------------------------------------------------------ media
def test_pm25_in_mg_per_litre_is_refused() -> None:
    """Issue 12: "PM2.5 sent in `mg/L` is accepted and stored as 29,999,999.99 µg/m³"."""
    with pytest.raises(ValidationError, match="measured in air, per m3"):
        norm(value=29.99999999, unit="mg/L")


@pytest.mark.parametrize("code", ["cd", "pb", "hg", "as", "cu", "zn", "se", "cr6"])
def test_gb3838_metals_in_mg_per_litre_are_accepted_from_water_stations(code: str) -> None:
    """Issue 12: "cadmium or lead in `mg/L` from a water station is refused"."""
    for kind in ("water", "wastewater"):
        obs = norm(parameter=code, value=0.004, unit="mg/L", domain=domain_of_kind(kind))
        assert obs.parameter == f"water_{code}" and obs.value == pytest.approx(0.004)
    assert norm(parameter=code, value=4, unit="ug/L", domain="water").value == pytest.approx(0.004)


def test_soil_metals_stay_soil_metals_at_soil_stations() -> None:
    obs = norm(parameter="cd", value=0.3, unit="mg/kg", domain=domain_of_kind("soil"))
    assert obs.parameter == "cd" and lookup("cd").unit == "mg/kg"
    with pytest.raises(ValidationError, match="cannot convert 'mg/L'"):
        norm(parameter="cd", value=0.3, unit="mg/L", domain="soil")


def test_water_metals_are_refused_per_cubic_metre() -> None:
    with pytest.raises(ValidationError, match="measured in water, per L"):
        norm(parameter="cd", value=1, unit="ug/m3", domain="water")


def test_station_kinds_name_their_domains() -> None:
    assert domain_of_kind("wastewater") == "water"
    assert domain_of_kind("noise") == "noise" and domain_of_kind(None) is None
    assert domain_of_kind("lighthouse") is None
    assert lookup("a21026", domain_of_kind("cems")).code == "flue_so2"


def test_greenhouse_gases_convert_by_molar_mass() -> None:
    """Issue 18, climate: mass concentrations to mixing ratios at 298.15 K, 101.325 kPa."""
    co2 = norm(parameter="co2", value=780, unit="mg/m3", domain="air")  # ambient: ~425 ppm
    assert co2.parameter == "co2"
    assert co2.value == pytest.approx(780 * 24.465 / 44.009, rel=1e-3)
    ch4 = norm(parameter="ch4", value=1300, unit="ug/m3", domain="air")
    assert ch4.value == pytest.approx(1300 * 24.465 / 16.043, rel=1e-3)
    assert norm(parameter="n2o", value=0.336, unit="ppm", domain="air").value == pytest.approx(336)
    with pytest.raises(ValidationError, match="measured in air"):
        norm(parameter="co2", value=1, unit="mg/L", domain="air")


def test_noise_levels_in_db() -> None:
    for unit in ("dB", "dB(A)", "dBA"):
        assert norm(parameter="laeq", value=55.2, unit=unit, domain="noise").value == 55.2
    with pytest.raises(ValidationError, match="physically impossible"):
        norm(parameter="laeq", value=500, unit="dB", domain="noise")
    with pytest.raises(ValidationError, match="cannot convert"):
        norm(parameter="laeq", value=55, unit="ug/m3", domain="noise")
