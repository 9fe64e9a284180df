"""Units through pint: parsing the spellings devices send, and conversions to canonical units.

Gas mixing ratios (ppb, ppm) convert to mass concentrations (µg/m³, mg/m³) at the reference
state of GB 3095-2026 for gaseous pollutants, 298.15 K and 1013.25 hPa:
``c[µg/m³] = x[ppb] · M[g/mol] · P / (R · T)`` (molar volume 24.465 L/mol).

``Nm3`` (normal cubic metre: the gas that fills a cubic metre at 0 °C and 101.325 kPa) is a
dimension of its own, an amount of gas, not a volume: ``convert(100, "m3/h", "Nm3/h")`` raises.
:func:`gas_volume` converts between actual and normal volumes (or rates, or concentrations
per volume) given the gas's temperature and absolute pressure, by the ideal gas law.

A mass concentration must be per the parameter's medium: per cubic metre for air and flue gas,
per litre for water (soil contents are per kilogram, a mass fraction): ``mg/L`` for PM2.5 and
``ug/m3`` for cadmium in water are refused, though pint could convert them.
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
# A-weighted sound level: a level (a logarithm), not an amount, so its own dimension: levels
# are never added or converted as quantities (energy averages are sensors.standards.noise's).
ureg.define("A_weighted_decibel = [a_weighted_level] = dBA")
# An amount of gas measured by the volume it fills at 0 °C and 101.325 kPa: its own dimension,
# so that actual and normal volumes are never mixed silently (see gas_volume).
ureg.define("normal_cubic_meter = [normal_volume] = Nm3")
Q_: Final = ureg.Quantity

#: The normal state of ``Nm3``: 0 °C and 101.325 kPa.
NORMAL_TEMPERATURE: Final = Q_(273.15, "K")
NORMAL_PRESSURE: Final = Q_(101.325, "kPa")

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
    "db(a)": "dBA",
    "dba": "dBA",
    "db": "dBA",
    "分贝": "dBA",
    "/l": "1/L",
    "个/l": "1/L",
    "个/升": "1/L",
    "mpn/l": "1/L",
    "cfu/l": "1/L",
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
            raise UnitError(f"cannot convert {from_unit!r} to {to_unit!r}{_normal_hint(src, dst)}")
    except pint.errors.DimensionalityError as exc:
        hint = _normal_hint(src, dst)
        raise UnitError(f"cannot convert {from_unit!r} to {to_unit!r}{hint}") from exc
    magnitude = out.magnitude
    return float(magnitude) if isinstance(value, float | int) else magnitude


def _powers(unit: pint.Unit) -> dict[str, int]:
    """The unit names of ``unit`` and their (integer) powers."""
    return {name: int(power) for name, power in unit._units.items()}  # type: ignore[arg-type]


def _normal_exponent(unit: pint.Unit) -> int:
    return _powers(unit).get("normal_cubic_meter", 0)


def _normal_hint(src: pint.Unit, dst: pint.Unit) -> str:
    if _normal_exponent(src) != _normal_exponent(dst):
        return (
            " (Nm3 is gas at 0 °C and 101.325 kPa: converting actual to normal volumes needs"
            " the gas's temperature and pressure, sensors.units.gas_volume)"
        )
    return ""


def _as_actual(unit: pint.Unit) -> tuple[Any, int]:
    """``unit`` with every ``Nm3`` read as ``m**3``, and the exponent of ``Nm3`` in it."""
    e = _normal_exponent(unit)
    actual: Any = ureg.dimensionless
    for name, power in _powers(unit).items():
        if name != "normal_cubic_meter":
            actual = actual * ureg.Unit(name) ** power
    return actual * ureg.meter ** (3 * e), e


def gas_volume(
    value: Any,
    from_unit: str,
    to_unit: str,
    *,
    temperature: float,
    temperature_unit: str,
    pressure: float,
    pressure_unit: str = "kPa",
) -> Any:
    """Convert a gas volume, volume rate or per-volume concentration between actual and normal
    (``Nm3``) volumes, by the ideal gas law: ``V_n = V · (P / 101.325 kPa) · (273.15 K / T)``.

    ``temperature`` is the gas's temperature in ``temperature_unit`` (``degC`` or ``K``, no
    default: the two differ by 273.15); ``pressure`` its absolute pressure in
    ``pressure_unit`` (default kPa). Either side may be actual or normal, e.g.
    ``gas_volume(100, "m3/h", "Nm3/h", temperature=25, temperature_unit="degC",
    pressure=101.325)`` is 91.61 Nm³/h; ``mg/Nm3`` ↔ ``mg/m3`` works the inverse way.

    Raises
    ------
    UnitError
        when a unit is unknown or incompatible, the temperature is not above absolute zero, or
        the pressure is not positive.
    """
    if temperature_unit not in ("degC", "K", "°C", "℃"):
        raise UnitError(f"temperature unit must be degC or K, not {temperature_unit!r}")
    t = Q_(float(temperature), "degC" if temperature_unit != "K" else "K").to("K")
    try:
        p = Q_(float(pressure), parse_unit(pressure_unit)).to("kPa")
    except pint.errors.DimensionalityError as exc:
        raise UnitError(f"{pressure_unit!r} is not a pressure unit") from exc
    if not t.magnitude > 0:
        raise UnitError(f"temperature {temperature} {temperature_unit} is not above absolute zero")
    if not p.magnitude > 0:
        raise UnitError(f"absolute pressure {pressure} {pressure_unit} must be positive")
    #: normal cubic metres per actual cubic metre at this state
    k = float((p / NORMAL_PRESSURE).to("dimensionless").magnitude) * float(
        (NORMAL_TEMPERATURE / t).to("dimensionless").magnitude
    )
    src, e_src = _as_actual(parse_unit(from_unit))
    dst, e_dst = _as_actual(parse_unit(to_unit))
    try:
        out = Q_(value * k ** (-e_src), src).to(dst).magnitude * k**e_dst
    except pint.errors.DimensionalityError as exc:
        raise UnitError(f"cannot convert {from_unit!r} to {to_unit!r}") from exc
    return float(out) if isinstance(value, float | int) else out


#: The volume a mass concentration must be per, by the parameter's domain.
_MEDIUM_VOLUME: Final[dict[str, str]] = {"air": "m3", "met": "m3", "cems": "m3", "water": "L"}


def _volume_basis(unit: pint.Unit) -> str | None:
    """What the volume in the denominator of ``unit`` is expressed in: ``m3`` for the cubic
    metre itself, ``L`` for a litre or another cubic length (dm³, cm³ …); ``None``: no volume."""
    for name, power in _powers(unit).items():
        parts = ureg.parse_unit_name(name)
        if power < 0 and any(b == "liter" for _, b, _ in parts):
            return "L"
        if power == -3 and any(b == "meter" for _, b, _ in parts):
            return "m3" if all(prefix == "" for prefix, _, _ in parts) else "L"
    return None


def check_medium(unit: str, parameter: Parameter) -> None:
    """Refuse a mass concentration not per the parameter's medium (air per m³, water per L).

    Raises
    ------
    UnitError
        e.g. for ``mg/L`` of PM2.5: ``cannot convert 'mg/L' to 'ug/m3' (pm25 is measured in
        air, per m3)``.
    """
    medium = _MEDIUM_VOLUME.get(parameter.domain)
    if medium is not None and _volume_basis_of(unit) not in (None, medium):
        where = "water, per L" if medium == "L" else "air, per m3"
        raise UnitError(
            f"cannot convert {unit!r} to {parameter.unit!r} ({parameter.code} is measured in"
            f" {where})"
        )


@lru_cache(maxsize=512)
def _volume_basis_of(unit: str) -> str | None:
    """:func:`_volume_basis` of a mass concentration unit string; ``None`` for other units."""
    sent = parse_unit(unit)
    return _volume_basis(sent) if _is_mass_concentration(sent) else None


def to_canonical(value: Any, unit: str | None, parameter: Parameter) -> Any:
    """``value`` in ``unit`` (``None``: already canonical) converted to ``parameter.unit``; a
    mass concentration must be per the parameter's medium (:func:`check_medium`)."""
    if unit is None:
        return value
    check_medium(unit, parameter)
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
    return bool(unit.dimensionality == _MASS_CONCENTRATION.dimensionality)


_MASS_CONCENTRATION: Final = ureg.parse_units("g/m**3")
