"""The emission-factor library: versioned data files, every factor with its id, source, year,
region, unit and version.

Files (``carbon/data``): ``combustion.csv`` (China's guideline defaults and IPCC 2006 Tier 1
NCV, carbon content, oxidation, CO₂/CH₄/N₂O factors), ``process.csv`` (IPCC 2006 Vol. 3 Tier 1
process factors: cement clinker, lime, crude steel — each cross-checked against two
transcriptions, named in its source) and ``grid.csv`` (China's national, regional-grid and
provincial electricity CO₂ factors). GWP-100 sets come from PyPI
``globalwarmingpotentials`` (CC0).

**Look-up and fallback order** — for a region and a year:

1. the region itself, then each region containing it (county → city → province → ``CN``), then
   the world default (``*``), each for the year asked;
2. if no region has that year: the same order with the latest earlier year.

A factor for a later year is never used for an earlier one. Every fallback is recorded on the
answer (:attr:`Factor.fallback`), so that a report can say where a number came from.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

import pint

from carbon.errors import CarbonError, MissingFactor
from carbon.regions import chain
from sensors.units import ureg

#: GWP-100 sets by report.
GWP_SETS: Final = ("SAR", "TAR", "AR4", "AR5", "AR6")
DEFAULT_GWP: Final = "AR5"


@dataclass(frozen=True)
class Factor:
    """One factor as used: ``value`` in ``unit``; ``fallback`` says how it was found when it was
    not the exact region and year asked (``None`` otherwise)."""

    id: str
    value: float
    unit: str
    region: str
    year: int
    source: str
    version: str
    fallback: str | None = None

    @property
    def quantity(self) -> pint.Quantity:  # type: ignore[type-arg]
        """The value with its unit (the mass of carbon or CO₂: ``tC``, ``tCO2`` read as ``t``)."""
        unit = self.unit
        for named, mass in (("tCO2/", "t/"), ("tC/", "t/"), ("kgC/", "kg/")):
            unit = unit.replace(named, mass)
        # a unit may carry a scale (GJ per 10⁴ Nm³): parse it as a quantity, then multiply
        q: pint.Quantity = float(self.value) * ureg.Quantity(unit)  # type: ignore[type-arg]
        return q


@dataclass(frozen=True)
class _Row:
    id: str
    key: tuple[str, ...]
    region: str
    year: int
    value: float
    unit: str
    source: str
    version: str


@cache
def _table(name: str, key_columns: tuple[str, ...]) -> tuple[_Row, ...]:
    text = resources.files("carbon").joinpath("data", name).read_text("utf-8")
    rows = []
    for r in csv.DictReader(text.splitlines()):
        rows.append(
            _Row(
                r["id"],
                tuple(r[c] for c in key_columns),
                r["region"],
                int(r["year"]),
                float(r["value"]),
                r["unit"],
                r["source"],
                r["version"],
            )
        )
    ids = [r.id for r in rows]
    if len(ids) != len(set(ids)):
        raise CarbonError(f"{name}: duplicate factor ids")
    return tuple(rows)


def _find(
    rows: tuple[_Row, ...], key: tuple[str, ...], region: str, year: int | None, what: str
) -> Factor:
    regions = [*chain(region), "*"]
    matching = [r for r in rows if r.key == key]
    if not matching:
        raise MissingFactor(f"no factor for {what}")
    wanted = year if year is not None else max(r.year for r in matching)
    for exact in (True, False):
        for place in regions:
            here = [
                r
                for r in matching
                if r.region == place and (r.year == wanted if exact else r.year < wanted)
            ]
            if not here:
                continue
            best = max(here, key=lambda r: r.year)
            notes = []
            if place != region and place != "*":
                notes.append(f"region {region} → {place}")
            if best.year != wanted:
                notes.append(f"year {wanted} → {best.year}")
            return Factor(
                best.id,
                best.value,
                best.unit,
                best.region,
                best.year,
                best.source,
                best.version,
                "; ".join(notes) or None,
            )
    raise MissingFactor(f"no factor for {what} in {region} for {wanted} or earlier")


#: Fuel classes of IPCC 2006 Table 2.2 (CH₄/N₂O of stationary combustion).
FUEL_CLASSES: Final = {
    **dict.fromkeys(
        ("anthracite", "coking_coal", "bituminous_coal", "sub_bituminous_coal", "lignite", "coke"),
        "@coal",
    ),
    **dict.fromkeys(
        ("crude_oil", "gasoline", "jet_kerosene", "diesel", "fuel_oil", "petroleum_coke"), "@oil"
    ),
    **dict.fromkeys(("natural_gas", "lpg"), "@gas"),
}


def fuels() -> list[str]:
    """Every fuel name the library knows."""
    return sorted(
        {
            r.key[1]
            for r in _table("combustion.csv", _COMBUSTION_KEY)
            if not r.key[1].startswith("@")
        }
    )


_COMBUSTION_KEY: Final = ("method", "fuel", "quantity", "sector")


def combustion(
    method: str,
    fuel: str,
    quantity: str,
    *,
    region: str = "CN",
    year: int | None = None,
    sector: str = "*",
) -> Factor:
    """A combustion factor: ``method`` ``china`` or ``ipcc``; ``quantity`` one of ``ncv``,
    ``carbon_content``, ``oxidation``, ``co2_ef``, ``ch4_ef``, ``n2o_ef``; CH₄/N₂O by
    ``sector`` (``energy``: IPCC Table 2.2) and the fuel's class.

    Raises
    ------
    CarbonError
        for an unknown fuel or region; :class:`MissingFactor` when there is none to use.
    """
    if fuel not in fuels():
        raise CarbonError(f"unknown fuel {fuel!r}: one of {', '.join(fuels())}")
    rows = _table("combustion.csv", _COMBUSTION_KEY)
    name = fuel
    if quantity in ("ch4_ef", "n2o_ef"):
        if fuel not in FUEL_CLASSES:
            raise MissingFactor(
                f"no IPCC 2006 {quantity} for {fuel} (Table 2.2 not transcribed for it)"
            )
        name = FUEL_CLASSES[fuel]
        if not any(r.key == (method, name, quantity, sector) for r in rows):
            raise MissingFactor(
                f"no IPCC 2006 {quantity} for sector {sector!r}: only 'energy' (Table 2.2) is in"
                " the library; Tables 2.3–2.5 were not verified"
            )
    return _find(
        rows, (method, name, quantity, sector), region, year, f"{method} {quantity} of {fuel}"
    )


_PROCESS_KEY: Final = ("process",)


def processes() -> list[str]:
    """Every industrial process the library has a default for (IPCC 2006 Vol. 3, Tier 1):
    ``cement_clinker``, ``lime``, ``crude_steel``."""
    return sorted({r.key[0] for r in _table("process.csv", _PROCESS_KEY)})


def process(name: str, *, region: str = "CN", year: int | None = None) -> Factor:
    """The CO₂ factor (tCO₂ per t of product) of an industrial process.

    Raises
    ------
    CarbonError
        for a process the library does not know.
    """
    if name not in processes():
        raise CarbonError(f"unknown process {name!r}: one of {', '.join(processes())}")
    return _find(_table("process.csv", _PROCESS_KEY), (name,), region, year, f"process {name}")


@cache
def _versions() -> dict[str, str]:
    out = {r.id: r.version for r in _table("combustion.csv", _COMBUSTION_KEY)}
    out.update((r.id, r.version) for r in _table("process.csv", _PROCESS_KEY))
    out.update((r.id, r.version) for r in _table("grid.csv", ()))
    return out


def versions(ids: Iterable[str]) -> dict[str, str]:
    """The version of each library factor among ``ids`` (GWP ids: the package's version;
    a facility's own values, ``facility:…``, have none and are left out)."""
    known = _versions()
    out: dict[str, str] = {}
    for i in ids:
        if i in known:
            out[i] = known[i]
        elif i.startswith("gwp-"):
            import globalwarmingpotentials  # type: ignore[import-untyped]

            out[i] = str(globalwarmingpotentials.__version__)
    return out


def grid(region: str, year: int) -> Factor:
    """The location-based electricity CO₂ factor (tCO₂/MWh) of ``region`` in ``year``."""
    return _find(_table("grid.csv", ()), (), region, year, "the grid electricity factor")


@cache
def _gwp_table() -> dict[str, dict[str, float]]:
    import globalwarmingpotentials

    data: dict[str, dict[str, float]] = globalwarmingpotentials.data
    return data


def gwp(gas: str, gwp_set: str = DEFAULT_GWP) -> Factor:
    """The 100-year GWP of ``gas`` (``CH4``, ``N2O``, ``SF6``, …) in ``gwp_set``."""
    if gwp_set not in GWP_SETS:
        raise CarbonError(f"unknown GWP set {gwp_set!r}: one of {', '.join(GWP_SETS)}")
    table = _gwp_table()[f"{gwp_set}GWP100"]
    if gas not in table:
        raise MissingFactor(f"no {gwp_set} GWP-100 for {gas!r}")
    import globalwarmingpotentials

    version = str(globalwarmingpotentials.__version__)
    return Factor(
        f"gwp-{gwp_set.lower()}-{gas.lower()}",
        float(table[gas]),
        "1",
        "*",
        {"SAR": 1995, "TAR": 2001, "AR4": 2007, "AR5": 2013, "AR6": 2021}[gwp_set],
        f"IPCC {gwp_set} GWP-100, from PyPI globalwarmingpotentials {version} (CC0)",
        version,
    )
