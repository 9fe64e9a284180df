"""The parameter dictionary: HJ 212-2017 Appendix B codes, units, ranges."""

from __future__ import annotations

import pytest

from sensors.errors import UnknownParameterError
from sensors.parameters import DOMAINS, PARAMETERS, lookup, parameters_of
from sensors.units import parse_unit


def test_canonical_and_hj212_codes_give_the_same_parameter() -> None:
    assert lookup("a34004") is lookup("pm25")
    assert lookup("PM25") is lookup("pm25")
    assert lookup("a05024").code == "o3"
    assert lookup("w21003").code == "nh3n"


def test_hj212_2005_codes_appendix_b() -> None:
    assert lookup("B02", domain="cems").code == "flue_flow"
    assert lookup("060").code == "nh3n"
    assert lookup("011").code == "cod"
    assert lookup("S01").code == "flue_o2"


def test_shared_code_resolves_by_domain_ambient_by_default() -> None:
    assert lookup("a21026").code == "so2"
    assert lookup("a21026").unit == "ug/m3"
    assert lookup("a21026", domain="cems").code == "flue_so2"
    assert lookup("a21026", domain="cems").unit == "mg/m3"


def test_unknown_code_raises_a_keyerror_with_the_code() -> None:
    with pytest.raises(UnknownParameterError, match="zz99") as info:
        lookup("zz99")
    assert isinstance(info.value, KeyError)


def test_every_parameter_is_well_formed() -> None:
    codes = [p.code for p in PARAMETERS]
    assert len(codes) == len(set(codes))
    for p in PARAMETERS:
        parse_unit(p.unit)
        assert p.valid_min < p.valid_max
        assert p.domain in DOMAINS
        assert p.name_zh and p.name_en


def test_issue_scope_is_covered() -> None:
    air = {"so2", "no2", "co", "o3", "pm10", "pm25"}
    water = {"ph", "do", "codmn", "cod", "bod5", "nh3n", "tp", "tn", "water_temp", "conductivity"}
    soil = {"cd", "hg", "as", "pb", "cr", "cu", "ni", "zn"}
    cems = {
        "flue_flow",
        "flue_co2",
        "flue_o2",
        "flue_so2",
        "flue_nox",
        "flue_dust",
        "flue_temp",
        "flue_pressure",
        "flue_humidity",
    }
    have = {p.code for p in PARAMETERS}
    assert air | water | soil | cems | {"gamma"} <= have
    assert {p.code for p in parameters_of("met")} >= {"air_temp", "rh", "wind_speed"}


def test_ambient_co_is_mg_and_gases_have_molar_masses() -> None:
    assert lookup("co").unit == "mg/m3"
    for code in ("so2", "no2", "co", "o3"):
        assert lookup(code).molar_mass is not None


def test_every_environment_domain_has_its_parameters() -> None:
    """Issue 18: climate gases, noise levels, radionuclides, every GB 3838 item."""
    assert {p.code for p in parameters_of("noise")} >= {"laeq", "lmax", "l10", "l50", "l90"}
    assert {lookup(c).unit for c in ("laeq", "lmax", "l90")} == {"dB(A)"}
    assert (lookup("co2").unit, lookup("ch4").unit, lookup("n2o").unit) == ("ppm", "ppb", "ppb")
    assert all(lookup(c).molar_mass for c in ("co2", "ch4", "n2o"))
    for code in (
        "fluoride",
        "cyanide",
        "sulfide",
        "volatile_phenols",
        "petroleum",
        "anionic_surfactants",
        "faecal_coliforms",
        "sulfate",
        "chloride",
        "nitrate",
    ):
        assert lookup(code).domain == "water", code  # fmt: skip
    assert lookup("fe", "water").code == "water_fe" and lookup("mn").code == "water_mn"
    assert lookup("cr6", "soil").code == "soil_cr6" and lookup("cr6").code == "water_cr6"
    assert (lookup("cs137", "radiation").unit, lookup("cs137", "water").unit) == (
        "mBq/m3",
        "Bq/L",
    )
    assert lookup("cs137", "soil").unit == "Bq/kg"
    assert lookup("w03002").code == "water_gross_beta"


def test_hj212_codes_of_the_new_items_resolve_by_system() -> None:
    assert lookup("w21017").code == "fluoride" and lookup("w02003").code == "faecal_coliforms"
    assert lookup("Leq", "noise").code == "laeq" and lookup("LMx").code == "lmax"
    assert lookup("a05001").code == "co2" and lookup("a05001", "cems").code == "flue_co2"
    assert lookup("a05001", "air").hj212_unit == "mg/m3"  # sent in mg/m3, stored in ppm
