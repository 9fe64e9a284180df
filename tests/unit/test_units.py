"""Units through pint, including ppb ↔ µg/m³ at GB 3095-2026's reference state.

The reference state for gases is 298.15 K and 1013.25 hPa.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensors.errors import UnitError
from sensors.parameters import lookup
from sensors.units import convert, gas_volume, parse_unit, to_canonical


def test_so2_ppb_to_ugm3_at_25c() -> None:
    # 1 ppb SO2 = 64.064 / 24.465 µg/m³ = 2.6186 µg/m³ at 298.15 K, 101.325 kPa.
    assert convert(1.0, "ppb", "ug/m3", lookup("so2").molar_mass) == pytest.approx(2.6186, rel=1e-4)


def test_co_ppm_to_mgm3_and_back() -> None:
    m = lookup("co").molar_mass
    mg = convert(1.0, "ppm", "mg/m3", m)
    assert mg == pytest.approx(28.010 / 24.465, rel=1e-4)
    assert convert(mg, "mg/m3", "ppm", m) == pytest.approx(1.0)


def test_device_spellings_parse() -> None:
    assert parse_unit("µg/m³") == parse_unit("ug/m3")
    assert parse_unit("μg/m3") == parse_unit("ug/m**3")
    assert parse_unit("℃") == parse_unit("degC")
    assert str(parse_unit("%")) == "percent"


def test_mass_concentration_prefixes_and_temperature() -> None:
    assert convert(1.5, "mg/m3", "ug/m3") == pytest.approx(1500)
    assert convert(25.0, "degC", "K") == pytest.approx(298.15)
    assert np.allclose(convert(np.array([1.0, 2.0]), "mg/L", "ug/L"), [1000.0, 2000.0])


def test_unknown_and_incompatible_units_raise_unit_error() -> None:
    with pytest.raises(UnitError):
        parse_unit("bananas/m3")
    with pytest.raises(UnitError):
        convert(1.0, "mg/m3", "m/s")
    with pytest.raises(UnitError):
        convert(1.0, "ppb", "ug/m3")  # no molar mass: not convertible
    with pytest.raises(UnitError):
        to_canonical(7.0, "%", lookup("ph"))


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_ppb_round_trip(x: float) -> None:
    m = lookup("no2").molar_mass
    back = convert(convert(x, "ppb", "ug/m3", m), "ug/m3", "ppb", m)
    assert math.isclose(back, x, rel_tol=1e-9, abs_tol=1e-12)


@given(st.text(max_size=12))
def test_any_unit_text_parses_or_raises_unit_error(text: str) -> None:
    with contextlib.suppress(UnitError):
        parse_unit(text)


# ---------------------------------------------------------------- Nm3 (issue 12)
def test_nm3_is_not_a_cubic_metre() -> None:
    """Issue 12: "`convert(100, "m3/h", "Nm3/h")` returns 100 with no warning"."""
    with pytest.raises(UnitError, match="temperature and pressure"):
        convert(100.0, "m3/h", "Nm3/h")
    with pytest.raises(UnitError):
        convert(1.0, "Nm3", "L")
    assert convert(1.0, "Nm3/h", "Nm3/s") == pytest.approx(1 / 3600)


def test_gas_volume_by_the_ideal_gas_law() -> None:
    # 100 m³/h at 25 °C and 101.325 kPa: 100 · 273.15 / 298.15 = 91.615 Nm³/h
    assert gas_volume(
        100.0, "m3/h", "Nm3/h", temperature=25, temperature_unit="degC", pressure=101.325
    ) == pytest.approx(91.61496, rel=1e-6)
    # the same state in kelvin; at 0 °C and 202.65 kPa a cubic metre holds 2 Nm³
    assert gas_volume(
        1.0, "m3", "Nm3", temperature=273.15, temperature_unit="K", pressure=202.65
    ) == pytest.approx(2.0)
    # concentrations the other way: 10 mg/Nm³ is 9.16 mg per actual m³ at 25 °C
    assert gas_volume(
        10.0, "mg/Nm3", "mg/m3", temperature=25, temperature_unit="degC", pressure=101.325
    ) == pytest.approx(9.161496, rel=1e-6)
    assert gas_volume(
        1.0, "Nm3", "L", temperature=0, temperature_unit="degC", pressure=1, pressure_unit="atm"
    ) == pytest.approx(1000.0)


def test_gas_volume_wants_explicit_units_and_a_possible_state() -> None:
    kw: dict[str, Any] = {"temperature": 25, "pressure": 101.325}
    with pytest.raises(UnitError, match="degC or K"):
        gas_volume(1.0, "m3", "Nm3", temperature_unit="F", **kw)
    with pytest.raises(UnitError, match="absolute zero"):
        gas_volume(1.0, "m3", "Nm3", temperature=-300, temperature_unit="degC", pressure=100)
    with pytest.raises(UnitError, match="positive"):
        gas_volume(1.0, "m3", "Nm3", temperature=20, temperature_unit="degC", pressure=0)
    with pytest.raises(UnitError, match="cannot convert"):
        gas_volume(1.0, "m3", "kg", temperature_unit="K", **kw)


@given(
    st.floats(0, 1e9),
    st.floats(-50, 1500),
    st.floats(1, 1000),
)
def test_gas_volume_round_trips(v: float, t: float, p: float) -> None:
    state: dict[str, Any] = {"temperature": t, "temperature_unit": "degC", "pressure": p}
    n = gas_volume(v, "m3/h", "Nm3/h", **state)
    assert gas_volume(n, "Nm3/h", "m3/h", **state) == pytest.approx(v, rel=1e-9, abs=1e-9)
