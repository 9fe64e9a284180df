"""Accounting methods: fuel combustion (China's guideline and IPCC 2006 Tier 1), industrial
processes (IPCC 2006 Vol. 3 Tier 1: cement clinker, lime, crude steel) and purchased
electricity (scope 2, location-based). Pure: numbers in, emissions with their factors out.

- China: E = FC × NCV × CC × OF × 44/12 (FC in t, or Nm³ for gases: the NCV's unit says which).
- IPCC 2006 Tier 1: energy (TJ) = quantity × NCV (or the quantity itself when given in energy
  units); CO₂ = energy × EF; CH₄ and N₂O by the sector's table (``energy``: Table 2.2);
  a facility's own carbon content gives EF = CC × 44/12 × OF (OF 1 unless given).
- CO₂e with the GWP-100 set asked (default AR5).

A facility's measured ``ncv``, ``carbon_content`` or ``oxidation`` takes precedence over the
defaults and is recorded in ``factor_ids`` as ``facility:<name>=<value> <unit>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Final

import pint

from carbon import factors
from carbon.errors import CarbonError
from carbon.factors import DEFAULT_GWP, Factor
from sensors.errors import UnitError
from sensors.units import parse_unit, ureg

C_TO_CO2: Final = 44.0 / 12.0
#: units of a facility's own values, per method
_OWN_UNITS: Final = {
    "china": {"ncv": "GJ/t", "carbon_content": "tC/GJ", "oxidation": "1"},
    "ipcc": {"ncv": "TJ/Gg", "carbon_content": "kgC/GJ", "oxidation": "1"},
}
_GAS_NCV_UNIT: Final = "GJ/(10000*Nm3)"


@dataclass(frozen=True)
class Emissions:
    """Emissions in tonnes, with the ids of every factor used (and the fallbacks taken)."""

    co2_t: float
    co2e_t: float
    ch4_t: float | None = None
    n2o_t: float | None = None
    factor_ids: tuple[str, ...] = ()
    fallbacks: tuple[str, ...] = ()
    gwp: str = DEFAULT_GWP
    notes: tuple[str, ...] = field(default_factory=tuple)


def _amount(quantity: float, unit: str, what: str) -> pint.Quantity:  # type: ignore[type-arg]
    if isinstance(quantity, bool) or not math.isfinite(quantity):
        raise CarbonError(f"{what}: {quantity!r} is not a number")
    if quantity < 0:
        raise CarbonError(f"{what}: negative quantity {quantity}")
    try:
        parsed = parse_unit(unit)  # as devices and files write them: t, kg, Nm3, m3, MWh, GJ
    except UnitError as exc:
        raise CarbonError(f"{what}: unknown unit {unit!r}") from exc
    q: pint.Quantity = ureg.Quantity(float(quantity), parsed)  # type: ignore[type-arg]
    return q


def _own(name: str, value: float | None, method: str, unit: str | None = None) -> Factor | None:
    if value is None:
        return None
    unit = unit or _OWN_UNITS[method][name]
    if not math.isfinite(value) or value <= 0 or (name == "oxidation" and value > 1):
        raise CarbonError(f"facility {name} {value!r} is out of range")
    return Factor(
        f"facility:{name}={value:g} {unit}",
        float(value),
        unit,
        "facility",
        0,
        "measured by the facility",
        "-",
    )


def _used(fs: list[Factor]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(f.id for f in fs), tuple(f"{f.id}: {f.fallback}" for f in fs if f.fallback)


def fuel_combustion(
    fuel: str,
    quantity: float,
    unit: str,
    method: str = "china",
    region: str | None = None,
    year: int | None = None,
    gwp: str = DEFAULT_GWP,
    sector: str = "energy",
    ncv: float | None = None,
    carbon_content: float | None = None,
    oxidation: float | None = None,
) -> Emissions:
    """Emissions of burning ``quantity`` ``unit`` of ``fuel`` (see the module).

    ``ncv`` is in GJ/t (China; GJ per 10⁴ Nm³ for gases) or TJ/Gg (IPCC); ``carbon_content``
    in tC/GJ (China) or kg C/GJ (IPCC); ``oxidation`` a fraction.

    Raises
    ------
    CarbonError
        for an unknown fuel, unit, method or region, a negative quantity, or a quantity whose
        unit does not fit the factor (t of a gas whose NCV is per Nm³); ``MissingFactor`` when a
        factor is needed and none exists (e.g. China's coal NCV: measure it).
    """
    where = f"{fuel} {quantity} {unit}"
    if method not in ("china", "ipcc"):
        raise CarbonError(f"{where}: method must be 'china' or 'ipcc', not {method!r}")
    region = region or "CN"
    amount = _amount(quantity, unit, where)
    used: list[Factor] = []

    def factor(name: str, own: float | None, gas_unit: str | None = None) -> Factor:
        mine = _own(name, own, method, gas_unit)
        if mine is not None:
            return mine
        return factors.combustion(method, fuel, name, region=region, year=year)

    try:
        if amount.check("[energy]"):
            energy = amount
        else:
            gas = fuel == "natural_gas" and amount.check("[length] ** 3")
            f_ncv = factor("ncv", ncv, _GAS_NCV_UNIT if gas and method == "china" else None)
            used.append(f_ncv)
            energy = amount * f_ncv.quantity
        energy_gj = energy.to("GJ").magnitude
    except pint.errors.DimensionalityError as exc:
        if amount.check("[length] ** 3") and "normal" in str(exc):
            raise CarbonError(
                f"{where}: {unit} is an actual volume, and gas is accounted in Nm3 (normal"
                " cubic metres, 0 °C and 101.325 kPa): give the quantity in Nm3, or convert it"
                " with sensors.units.gas_volume from the gas's temperature and pressure"
            ) from exc
        raise CarbonError(
            f"{where}: the unit does not fit the net calorific value ({exc})"
        ) from exc
    if method == "china":
        f_cc = factor("carbon_content", carbon_content)
        f_of = factor("oxidation", oxidation)
        used += [f_cc, f_of]
        co2_t = energy_gj * f_cc.quantity.to("t/GJ").magnitude * f_of.value * C_TO_CO2
        ch4_t = n2o_t = None
        ids, fallbacks = _used(used)
        return Emissions(co2_t, co2_t, None, None, ids, fallbacks, gwp)
    energy_tj = energy_gj / 1000.0
    if carbon_content is not None:
        f_cc = factor("carbon_content", carbon_content)
        own_of = _own("oxidation", oxidation, method)
        used += [f for f in (f_cc, own_of) if f is not None]
        ef_kg_per_tj = (
            f_cc.quantity.to("kg/TJ").magnitude * C_TO_CO2 * (own_of.value if own_of else 1.0)
        )
    else:
        f_co2 = factors.combustion("ipcc", fuel, "co2_ef", region=region, year=year)
        used.append(f_co2)
        ef_kg_per_tj = f_co2.quantity.to("kg/TJ").magnitude
    co2_t = energy_tj * ef_kg_per_tj / 1000.0
    f_ch4 = factors.combustion("ipcc", fuel, "ch4_ef", region=region, year=year, sector=sector)
    f_n2o = factors.combustion("ipcc", fuel, "n2o_ef", region=region, year=year, sector=sector)
    g_ch4, g_n2o = factors.gwp("CH4", gwp), factors.gwp("N2O", gwp)
    used += [f_ch4, f_n2o, g_ch4, g_n2o]
    ch4_t = energy_tj * f_ch4.quantity.to("kg/TJ").magnitude / 1000.0
    n2o_t = energy_tj * f_n2o.quantity.to("kg/TJ").magnitude / 1000.0
    co2e_t = co2_t + ch4_t * g_ch4.value + n2o_t * g_n2o.value
    ids, fallbacks = _used(used)
    return Emissions(co2_t, co2e_t, ch4_t, n2o_t, ids, fallbacks, gwp)


def industrial_process(
    process: str,
    quantity: float,
    unit: str,
    region: str | None = None,
    year: int | None = None,
    emission_factor: float | None = None,
) -> Emissions:
    """Process CO₂ (IPCC 2006 Vol. 3 Tier 1): ``quantity`` ``unit`` of product (clinker, lime,
    crude steel: a mass) × the process factor in tCO₂/t. A facility's own ``emission_factor``
    (tCO₂/t, e.g. from its clinker CaO content) takes precedence and is recorded.

    Raises
    ------
    CarbonError
        for an unknown process or unit, a negative quantity, a unit that is not a mass.
    """
    where = f"{process} {quantity} {unit}"
    amount = _amount(quantity, unit, where)
    if not amount.check("[mass]"):
        raise CarbonError(f"{where}: a process is accounted by the mass produced (t, kg)")
    own = None
    if emission_factor is not None:
        if not math.isfinite(emission_factor) or emission_factor <= 0:
            raise CarbonError(f"{where}: facility emission factor {emission_factor!r}")
        own = Factor(
            f"facility:emission_factor={emission_factor:g} tCO2/t",
            float(emission_factor),
            "tCO2/t",
            "facility",
            0,
            "measured by the facility",
            "-",
        )
    f = own or factors.process(process, region=region or "CN", year=year)
    co2_t = amount.to("t").magnitude * f.quantity.to("t/t").magnitude
    ids, fallbacks = _used([f])
    return Emissions(co2_t, co2_t, None, None, ids, fallbacks)


def electricity(mwh: float, region: str, year: int) -> Emissions:
    """Scope 2, location-based: ``mwh`` × the grid factor of ``region`` and ``year`` (with the
    library's fallbacks, recorded)."""
    amount = _amount(mwh, "MWh", f"electricity {mwh} MWh")
    f = factors.grid(region, year)
    co2_t = amount.to("MWh").magnitude * f.quantity.to("t/MWh").magnitude
    ids, fallbacks = _used([f])
    return Emissions(co2_t, co2_t, None, None, ids, fallbacks)
