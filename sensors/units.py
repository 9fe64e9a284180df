"""Units through pint: parsing the spellings devices send, and conversions to canonical units.

Gas mixing ratios (ppb, ppm) convert to mass concentrations (µg/m³, mg/m³) at the reference
state of GB 3095-2026 for gaseous pollutants, 298.15 K and 1013.25 hPa:
``c[µg/m³] = x[ppb] · M[g/mol] · P / (R · T)`` (molar volume 24.465 L/mol).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Final, overload

import numpy as np
import numpy.typing as npt
import pint

from sensors.errors import UnitError
from sensors.parameters import Parameter

ureg: Final[pint.UnitRegistry] = pint.UnitRegistry(cache_folder=None)  # type: ignore[type-arg]
ureg.define("ppb = 1e-9 = ppbv")
ureg.define("ppt = 1e-12 = pptv")
ureg.define("pH_unit = [acidity] = pH")  # its own dimension, so that 7 pH is not 7 %
ureg.define("normal_cubic_meter = meter ** 3 = Nm3")  # gas volume at 0 °C and 101.325 kPa
Q_: Final = ureg.Quantity

#: GB 3095-2026 reference state for gaseous pollutants.
REFERENCE_TEMPERATURE: Final = Q_(298.15, "K")
REFERENCE_PRESSURE: Final = Q_(101.325, "kPa")
_R: Final = Q_(8.314462618, "J/(mol*K)")

_ALIASES: Final[dict[str, str]] = {
    "": "dimensionless",
    "1": "dimensionless",
    "-": "dimensionless",
    "%": "percent",
    "℃": "degC",
    "°c": "degC",
    "degc": "degC",
    "c": "degC",
    "°": "degree",
    "deg": "degree",
    "ph": "pH",
    "ppm": "ppm",
    "ppb": "ppb",
}
_POWER = re.compile(r"(?<=[A-Za-z])([23])(?![\d*])")


def _normalise(unit: str) -> str:
    s = unit.strip()
    alias = _ALIASES.get(s.lower())
    if alias is not None:
        return alias
    s = s.replace("µ", "u").replace("μ", "u").replace("³", "3").replace("²", "2")
    s = s.replace("℃", "degC").replace("°C", "degC")
    if s.startswith("Nm3") or "/Nm3" in s:
        return s
    return _POWER.sub(r"**\1", s)


@lru_cache(maxsize=512)
def parse_unit(unit: str) -> pint.Unit:
    """Parse a unit string as devices send it (``ug/m3``, ``µg/m³``, ``mg/L``, ``℃``, ``ppb``).

    Raises
    ------
    UnitError
        when pint cannot parse it.
    """
    try:
        parsed = ureg.parse_units(_normalise(unit))
    except Exception as exc:  # pint's parser also raises AssertionError, TokenError, …
        raise UnitError(f"unknown unit {unit!r}") from exc
    return parsed


FloatOrArray = float | npt.NDArray[np.float64]


@overload
def convert(
    value: float, from_unit: str, to_unit: str, molar_mass: float | None = None
) -> float: ...
@overload
def convert(
    value: npt.NDArray[np.float64], from_unit: str, to_unit: str, molar_mass: float | None = None
) -> npt.NDArray[np.float64]: ...
def convert(value: Any, from_unit: str, to_unit: str, molar_mass: float | None = None) -> Any:
    """Convert ``value`` (a float or a NumPy array) from ``from_unit`` to ``to_unit``.

    ``molar_mass`` (g/mol) enables mixing ratio ↔ mass concentration conversion at the
    GB 3095-2026 reference state (298.15 K, 1013.25 hPa).

    Raises
    ------
    UnitError
        when a unit is unknown or the two are not compatible.
    """
    src, dst = parse_unit(from_unit), parse_unit(to_unit)
    if src == dst:
        return value
    q = Q_(value, src)
    try:
        if q.dimensionality == dst.dimensionality:
            out = q.to(dst)
        elif molar_mass is not None and _is_mixing_ratio(src) and _is_mass_concentration(dst):
            out = (q.to("dimensionless") * _molar_concentration() * Q_(molar_mass, "g/mol")).to(dst)
        elif molar_mass is not None and _is_mass_concentration(src) and _is_mixing_ratio(dst):
            out = (q / (_molar_concentration() * Q_(molar_mass, "g/mol"))).to(dst)
        else:
            raise UnitError(f"cannot convert {from_unit!r} to {to_unit!r}")
    except pint.errors.DimensionalityError as exc:
        raise UnitError(f"cannot convert {from_unit!r} to {to_unit!r}") from exc
    magnitude = out.magnitude
    return float(magnitude) if isinstance(value, float | int) else magnitude


def to_canonical(value: Any, unit: str | None, parameter: Parameter) -> Any:
    """``value`` in ``unit`` (``None``: already canonical) converted to ``parameter.unit``."""
    if unit is None:
        return value
    if (
        parameter.unit == "pH"
        and parse_unit(unit).dimensionless
        and str(parse_unit(unit)) == "dimensionless"
    ):
        return value  # pH sent as a bare number ("", "1", "-")
    return convert(value, unit, parameter.unit, parameter.molar_mass)


@lru_cache(maxsize=1)
def _molar_concentration() -> Any:
    """Moles of gas per volume at the reference state, P/(R·T), in mol/m³."""
    return (REFERENCE_PRESSURE / (_R * REFERENCE_TEMPERATURE)).to("mol/m**3")


def _is_mixing_ratio(unit: pint.Unit) -> bool:
    return bool(unit.dimensionless) and str(unit) in {
        "ppb",
        "ppm",
        "ppt",
        "percent",
        "dimensionless",
    }


def _is_mass_concentration(unit: pint.Unit) -> bool:
    return bool(unit.dimensionality == ureg.parse_units("g/m**3").dimensionality)
