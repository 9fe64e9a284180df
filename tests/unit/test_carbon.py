"""Carbon accounting: the worked values of docs/standards/carbon.md, factor provenance and
fallbacks, and bad input."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carbon import factors
from carbon.accounting import electricity, fuel_combustion, industrial_process
from carbon.errors import CarbonError, MissingFactor
from carbon.regions import chain
from tests.datasets import package_file


def test_worked_value_diesel_ipcc() -> None:
    # 1,000 t diesel: 43.0 TJ × 74,100 kg/TJ = 3,186.3 tCO2
    e = fuel_combustion("diesel", 1000, "t", method="ipcc")
    assert e.co2_t == pytest.approx(3186.3)
    assert e.factor_ids[:2] == ("ipcc-ncv-diesel", "ipcc-co2-diesel")
    # Table 2.2 (energy industries, oil): CH4 3, N2O 0.6 kg/TJ; AR5 GWPs 28 and 265
    assert e.ch4_t == pytest.approx(43 * 3 / 1000) and e.n2o_t == pytest.approx(43 * 0.6 / 1000)
    assert e.co2e_t == pytest.approx(3186.3 + 0.129 * 28 + 0.0258 * 265)
    assert fuel_combustion("diesel", 43, "TJ", method="ipcc").co2_t == pytest.approx(3186.3)


def test_worked_value_natural_gas_china() -> None:
    # 100 × 10⁴ Nm³: 100 × 389.31 × 0.01532 × 0.99 × 44/12 = 2,165.02 tCO2
    e = fuel_combustion("natural_gas", 1_000_000, "Nm3")
    assert round(e.co2_t, 2) == 2165.02
    assert e.factor_ids == (
        "cn-2022-ncv-natural_gas",
        "cn-2022-cc-natural_gas",
        "cn-2022-of-natural_gas",
    )


def test_worked_value_coal_with_the_facilitys_own_values() -> None:
    # 100,000 t coal at NCV 20.0 GJ/t, CC 0.03085 tC/GJ, OF 0.99: 223,971.0 tCO2
    e = fuel_combustion(
        "bituminous_coal", 100_000, "t", ncv=20.0, carbon_content=0.03085, oxidation=0.99
    )
    assert e.co2_t == pytest.approx(223_971.0)
    assert all(i.startswith("facility:") for i in e.factor_ids)  # recorded as measured


def test_worked_value_electricity() -> None:
    e = electricity(10_000, "CN", 2022)  # 10,000 MWh at 0.5366
    assert e.co2_t == pytest.approx(5366.0) and e.factor_ids == ("grid-cn-2022",)


def test_coal_carbon_content_default_changed_in_2022() -> None:
    e21 = fuel_combustion("bituminous_coal", 1, "t", year=2021, ncv=20.0, oxidation=0.99)
    e23 = fuel_combustion("bituminous_coal", 1, "t", year=2023, ncv=20.0, oxidation=0.99)
    assert "cn-2021-cc-coal" in e21.factor_ids and "cn-2022-cc-coal" in e23.factor_ids
    assert e21.co2_t / e23.co2_t == pytest.approx(0.03356 / 0.03085)
    with pytest.raises(MissingFactor, match="ncv"):  # no default NCV for coal: measure it
        fuel_combustion("bituminous_coal", 1, "t")


def test_grid_fallbacks_are_recorded() -> None:
    county = electricity(100, "110105", 2023)  # Chaoyang, Beijing → CN-BJ
    assert county.factor_ids == ("grid-cn-bj-2023",)
    assert county.fallbacks == ("grid-cn-bj-2023: region 110105 → CN-BJ",)
    tibet = electricity(100, "CN-XZ", 2023)  # not in the provincial table → national
    assert tibet.factor_ids == ("grid-cn-2023",) and "CN-XZ → CN" in tibet.fallbacks[0]
    later = electricity(100, "CN-BJ", 2025)  # never a later year's factor; the latest earlier
    assert later.factor_ids == ("grid-cn-bj-2023",) and "year 2025 → 2023" in later.fallbacks[0]
    assert electricity(100, "grid:north", 2022).co2_t == pytest.approx(67.76)
    with pytest.raises(MissingFactor):
        electricity(100, "CN", 2019)


def test_provincial_grid_factors_equal_codecarbons_shipped_table() -> None:
    shipped = json.loads(
        package_file(
            "codecarbon", "data/private_infra/2023/china_provincial_emissions.json"
        ).read_text()
    )["data"]
    assert len(shipped) == 30
    for iso, entry in shipped.items():
        f = factors.grid(iso, 2023)
        assert f.region == iso and f.fallback is None
        assert f.value == pytest.approx(entry["emission_factor"] / 1000)  # g/kWh → t/MWh
    assert factors.grid("CN-SC", 2023).value == pytest.approx(0.1564)


@pytest.mark.parametrize(
    ("gas", "gwp_set", "value"),
    [("CH4", "SAR", 21), ("CH4", "AR4", 25), ("CH4", "AR5", 28), ("CH4", "AR6", 27.9),
     ("N2O", "SAR", 310), ("N2O", "AR5", 265), ("N2O", "AR6", 273), ("SF6", "AR5", 23500)],
)  # fmt: skip
def test_gwp_sets(gas: str, gwp_set: str, value: float) -> None:
    assert factors.gwp(gas, gwp_set).value == pytest.approx(value)


def test_gwp_set_changes_co2e_only() -> None:
    ar5 = fuel_combustion("natural_gas", 10, "t", method="ipcc")
    ar6 = fuel_combustion("natural_gas", 10, "t", method="ipcc", gwp="AR6")
    assert ar5.co2_t == ar6.co2_t and ar5.co2e_t != ar6.co2e_t
    assert "gwp-ar6-ch4" in ar6.factor_ids


def test_regions() -> None:
    assert chain("110105") == ["110105", "110100", "CN-BJ", "CN"]
    assert chain("440300") == ["440300", "CN-GD", "CN"]  # a city: itself, its province
    assert chain("CN-SH") == ["CN-SH", "CN"]
    for bad in ("CN-ZZ", "999999", "110000x", "beijing"):
        with pytest.raises(CarbonError, match="unknown region"):
            chain(bad)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fuel": "whale_oil", "quantity": 1, "unit": "t"}, "unknown fuel"),
        ({"fuel": "diesel", "quantity": -1, "unit": "t"}, "negative"),
        ({"fuel": "diesel", "quantity": 1, "unit": "furlongs_per_fortnight"}, "unknown unit"),
        ({"fuel": "diesel", "quantity": 1, "unit": "t", "region": "Mars"}, "unknown region"),
        ({"fuel": "natural_gas", "quantity": 1, "unit": "t"}, "does not fit"),
        ({"fuel": "diesel", "quantity": 1, "unit": "t", "method": "guess"}, "method"),
        ({"fuel": "diesel", "quantity": float("nan"), "unit": "t"}, "not a number"),
        ({"fuel": "diesel", "quantity": 1, "unit": "t", "oxidation": 1.5}, "out of range"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(CarbonError, match=message):
        fuel_combustion(**kwargs)  # type: ignore[arg-type]


def test_unverified_sector_tables_are_refused() -> None:
    with pytest.raises(MissingFactor, match=r"Tables 2\.3"):
        fuel_combustion("diesel", 1, "t", method="ipcc", sector="manufacturing")


def test_every_factor_has_provenance() -> None:
    for fuel in factors.fuels():
        for method in ("china", "ipcc"):
            for quantity in ("ncv", "carbon_content", "oxidation", "co2_ef"):
                try:
                    f = factors.combustion(method, fuel, quantity)
                except MissingFactor:
                    continue
                assert f.source and f.version and f.unit and f.year > 0
                assert f.quantity.magnitude > 0  # the unit parses (pint)


@given(st.floats(min_value=0, max_value=1e9), st.floats(min_value=0, max_value=1e9))
def test_emissions_add_up_over_activity_records(a: float, b: float) -> None:
    """Splitting an activity record in two changes nothing (linearity)."""
    whole = fuel_combustion("diesel", a + b, "t").co2_t
    parts = fuel_combustion("diesel", a, "t").co2_t + fuel_combustion("diesel", b, "t").co2_t
    assert whole == pytest.approx(parts, rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(
    ("process", "factor"), [("cement_clinker", 0.52), ("lime", 0.75), ("crude_steel", 1.06)]
)
def test_process_emissions_use_the_ipcc_tier1_defaults(process: str, factor: float) -> None:
    e = industrial_process(process, 1000, "t", region="CN-BJ", year=2023)
    assert e.co2_t == pytest.approx(1000 * factor) and e.co2e_t == e.co2_t
    assert e.factor_ids == (f"ipcc-2006-process-{process}",)
    assert e.fallbacks == (f"ipcc-2006-process-{process}: year 2023 → 2006",)
    assert industrial_process(process, 2_000_000, "kg").co2_t == pytest.approx(2000 * factor)
    f = factors.process(process)
    assert "IPCC 2006" in f.source and "cross-checked" in f.source


def test_a_facilitys_own_process_factor_takes_precedence() -> None:
    # a plant whose clinker holds 63 % CaO from carbonates: 0.63 × 0.785 = 0.4946 tCO2/t
    e = industrial_process("cement_clinker", 100, "t", emission_factor=0.4946)
    assert e.co2_t == pytest.approx(49.46)
    assert e.factor_ids == ("facility:emission_factor=0.4946 tCO2/t",)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("aluminium", 1, "t"), "unknown process 'aluminium'"),
        (("lime", -1, "t"), "negative quantity"),
        (("lime", 1, "MWh"), "by the mass produced"),
        (("lime", 1, "furlongs_per_fortnight"), "unknown unit"),
    ],
)
def test_bad_process_input(args: tuple[str, float, str], message: str) -> None:
    with pytest.raises(CarbonError, match=message):
        industrial_process(*args)


def test_natural_gas_in_actual_cubic_metres_says_to_use_nm3() -> None:
    """Found trying it as a new user: ``m3`` for natural gas failed on a pint message about
    ``meter ** 3 * gigajoule / normal_cubic_meter``; the error now says what to do."""
    with pytest.raises(CarbonError, match=r"m3 is an actual volume.*Nm3.*gas_volume"):
        fuel_combustion("natural_gas", 1_000_000, "m3")
