"""Units through pint, including ppb ↔ µg/m³ at GB 3095-2026's reference state.

The reference state for gases is 298.15 K and 1013.25 hPa.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensors.errors import UnitError
from sensors.parameters import lookup
from sensors.units import convert, parse_unit, to_canonical


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
