"""The parameter dictionary: one canonical code per quantity.

"One datum, one source, one standard."

Each :class:`Parameter` carries its canonical code, names (zh, en), canonical unit, plausible
range, and its HJ 212-2017 code(s) (Appendix B) with the HJ/T 212-2005 codes where they exist.
``lookup`` accepts any of these codes: ``lookup("a34004") is lookup("pm25")``.

Ambient air stations (HJ 212 system code 22) and stack CEMS (system code 31) send the same
HJ 212 code for a pollutant (``a21026`` is SO₂ in both) in different units (µg/m³ against mg/m³);
they are different parameters here (``so2`` and ``flue_so2``). ``lookup(code, domain=...)``
picks the one of a domain; without a domain the ambient one wins.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Literal

from sensors.errors import UnknownParameterError

Domain = Literal["air", "met", "water", "soil", "radiation", "cems", "meter", "noise"]
DOMAINS: Final[tuple[Domain, ...]] = (
    "air", "met", "water", "soil", "radiation", "cems", "meter", "noise",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Parameter:
    """One measured quantity.

    Attributes
    ----------
    code: canonical code (lower case, e.g. ``pm25``).
    name_zh, name_en: display names.
    unit: canonical unit, a string that :mod:`sensors.units` parses (``ug/m3``, ``mg/L`` …);
        every stored value of this parameter is in this unit.
    domain: ``air``, ``met``, ``water``, ``soil``, ``radiation``, ``cems``, ``meter`` or
        ``noise``.
    valid_min, valid_max: plausible range in the canonical unit (QC, not a legal limit).
    hj212: HJ 212-2017 codes (Appendix B), the first one is used when encoding.
    hj212_2005: HJ/T 212-2005 codes where they exist.
    molar_mass: g/mol for gases, so that ppb ↔ µg/m³ can be converted; else ``None``.
    physical_min, physical_max: the physically possible range in the canonical unit, far wider
        than the plausible one: a value outside it is no measurement at all and is rejected at
        ingest (a value outside ``valid_min``–``valid_max`` is only flagged by QC). See
        :data:`PHYSICAL_BOUNDS` for the reasoning per unit.
    hj212_unit: the unit HJ 212-2017 Appendix B gives for the code when it is not the
        canonical one (water metals in µg/L against mg/L); ``None``: the canonical unit.
    shares: the canonical code of another medium's parameter that this one stands for in its
        own domain (``water_cd`` shares ``cd``: cadmium sent as ``cd`` by a water station).
    """

    code: str
    name_zh: str
    name_en: str
    unit: str
    domain: Domain
    valid_min: float
    valid_max: float
    hj212: tuple[str, ...] = ()
    hj212_2005: tuple[str, ...] = ()
    molar_mass: float | None = None
    physical_min: float = -math.inf
    physical_max: float = math.inf
    hj212_unit: str | None = None
    shares: str | None = None

    def in_range(self, value: float) -> bool:
        """Whether ``value`` (canonical unit) lies in the plausible range."""
        return self.valid_min <= value <= self.valid_max

    def physically_possible(self, value: float) -> bool:
        """Whether ``value`` (canonical unit) lies in the physically possible range."""
        return self.physical_min <= value <= self.physical_max


#: Physically possible range per canonical unit (and, where the unit alone does not say it,
#: per domain): what no real instrument could report, not what is plausible (QC's job).
#: - mass concentrations in ambient air: 0 to 1 g/m³ (10⁶ µg/m³, 10³ mg/m³) — the densest
#:   dust storms and volcanic plumes stay below 0.1 g/m³, and a gaseous pollutant at 1 g/m³ is
#:   lethal long before an analyser reads it;
#: - in flue gas (stack CEMS, mg/m³): 0 to 3 kg/m³ — pure SO₂, the densest gas monitored,
#:   is 2.93 kg/m³ at 0 °C and 101.325 kPa (pure CO₂ 1.98 kg/m³);
#: - in water (mg/L): 0 to 10⁶ mg/L — a litre of solution cannot hold more than about a
#:   kilogram of solute (COD/BOD are oxygen equivalents of it);
#: - in soil (mg/kg): 0 to 10⁶ mg/kg — a mass fraction cannot exceed 1;
#: - temperatures: above absolute zero (−273.15 °C), below 10⁴ °C;
#: - percentages (humidity, O₂): 0 to 100 %;
#: - absolute pressure (kPa): 0 to 10⁵ kPa; gauge pressure (flue gas): −101.325 kPa (vacuum)
#:   to 10⁵ kPa;
#: - speeds (m/s): 0 to 343 (wind and flue gas are slower than sound); directions 0–360°;
#: - pH: −3 to 17 (concentrated acids and bases reach just beyond 0–14);
#: - conductivity: 0 to 10⁷ µS/cm (concentrated acids reach about 10⁶);
#: - flows, powers, doses: non-negative, and below 10⁸ L/s (half the Amazon's discharge),
#:   10⁶ m³/s, 10⁹ Nm³/h, 10⁶ t/h, 10⁹ kW (forty Three Gorges), 10¹⁴ nGy/h (10⁵ Gy/h);
#: - gas mixing ratios in ambient air: 0 to 10⁶ ppm (10⁹ ppb), the whole of the air;
#: - bacteria in water (faecal coliforms, per litre): 0 to 10¹⁵ (raw sewage holds about 10¹⁰);
#: - sound levels, dB(A): −20 to 200 (a calm room is about 20, the loudest sound a wave in
#:   air can carry undistorted is about 194);
#: - activity concentrations: 0 to 10¹⁵ mBq/m³ in air, 10¹² Bq/L in water and 10¹⁵ Bq/kg in
#:   soil (far above any spill ever measured: Chernobyl's reactor water was about 10⁹ Bq/L).
PHYSICAL_BOUNDS: Final[dict[tuple[str, str], tuple[float, float]]] = {
    ("ug/m3", "air"): (0.0, 1e6),
    ("mg/m3", "air"): (0.0, 1e3),
    ("mg/m3", "cems"): (0.0, 3e6),
    ("mg/L", "water"): (0.0, 1e6),
    ("mg/kg", "soil"): (0.0, 1e6),
    ("degC", "met"): (-273.15, 1e4),
    ("degC", "water"): (-273.15, 1e4),
    ("degC", "cems"): (-273.15, 1e4),
    ("%", "met"): (0.0, 100.0),
    ("%", "cems"): (0.0, 100.0),
    ("kPa", "met"): (0.0, 1e5),
    ("kPa", "cems"): (-101.325, 1e5),
    ("m/s", "met"): (0.0, 343.0),
    ("m/s", "cems"): (0.0, 343.0),
    ("deg", "met"): (0.0, 360.0),
    ("pH", "water"): (-3.0, 17.0),
    ("uS/cm", "water"): (0.0, 1e7),
    ("L/s", "water"): (0.0, 1e8),
    ("m3/s", "cems"): (0.0, 1e6),
    ("Nm3/h", "meter"): (0.0, 1e9),
    ("t/h", "meter"): (0.0, 1e6),
    ("kW", "meter"): (0.0, 1e9),
    ("nGy/h", "radiation"): (0.0, 1e14),
    ("ppm", "air"): (0.0, 1e6),
    ("ppb", "air"): (0.0, 1e9),
    ("1/L", "water"): (0.0, 1e15),
    ("dB(A)", "noise"): (-20.0, 200.0),
    ("mBq/m3", "radiation"): (0.0, 1e15),
    ("Bq/L", "water"): (0.0, 1e12),
    ("Bq/kg", "soil"): (0.0, 1e15),
}


def _p(
    code: str,
    zh: str,
    en: str,
    unit: str,
    domain: Domain,
    lo: float,
    hi: float,
    hj212: tuple[str, ...] = (),
    hj2005: tuple[str, ...] = (),
    molar_mass: float | None = None,
    *,
    hj212_unit: str | None = None,
    shares: str | None = None,
) -> Parameter:
    physical = PHYSICAL_BOUNDS.get((unit, domain))
    if physical is None:
        raise RuntimeError(f"{code}: no physical range for {unit} in {domain}")
    return Parameter(
        code, zh, en, unit, domain, lo, hi, hj212, hj2005, molar_mass, *physical, hj212_unit, shares
    )


# Molar masses (g/mol) from IUPAC standard atomic weights.
_M_SO2, _M_NO2, _M_CO, _M_O3, _M_CO2 = 64.064, 46.005, 28.010, 47.997, 44.009
_M_CH4, _M_N2O = 16.043, 44.013

#: Ordered: for a shared HJ 212 code, the first parameter listed is the default of ``lookup``.
PARAMETERS: Final[tuple[Parameter, ...]] = (
    # Ambient air (GB 3095-2026 pollutants; HJ 212-2017 Table B.2, O₃ as sent by air stations).
    _p(
        "so2",
        "二氧化硫",
        "Sulphur dioxide",
        "ug/m3",
        "air",
        0,
        10_000,
        ("a21026",),
        ("02",),
        _M_SO2,
    ),
    _p("no2", "二氧化氮", "Nitrogen dioxide", "ug/m3", "air", 0, 5_000, ("a21004",), (), _M_NO2),
    _p("co", "一氧化碳", "Carbon monoxide", "mg/m3", "air", 0, 150, ("a21005",), ("04",), _M_CO),
    _p("o3", "臭氧", "Ozone", "ug/m3", "air", 0, 5_000, ("a05024",), (), _M_O3),
    _p("pm10", "可吸入颗粒物", "PM10", "ug/m3", "air", 0, 20_000, ("a34002",)),
    _p("pm25", "细颗粒物", "PM2.5", "ug/m3", "air", 0, 10_000, ("a34004",)),
    # Meteorology at air stations.
    _p("air_temp", "气温", "Air temperature", "degC", "met", -70, 60, ("a01001",)),
    _p("rh", "相对湿度", "Relative humidity", "%", "met", 0, 100, ("a01002",)),
    _p("air_pressure", "气压", "Air pressure", "kPa", "met", 40, 110, ("a01006",)),
    _p("wind_speed", "风速", "Wind speed", "m/s", "met", 0, 80, ("a01007",)),
    _p("wind_dir", "风向", "Wind direction", "deg", "met", 0, 360, ("a01008",)),
    # Ambient greenhouse gases (climate change): mixing ratios in dry air. HJ 212-2017 Table
    # B.2 sends CO₂ (a05001) in mg/m³ and CH₄ (a05002) in ng/m³, converted here at the
    # GB 3095 reference state; it has no N₂O code. Listed before the stack CO₂, so that an
    # a05001 without a domain is the ambient one.
    _p(
        "co2",
        "二氧化碳浓度",
        "Carbon dioxide (ambient)",
        "ppm",
        "air",
        300,
        1_000,
        ("a05001",),
        (),
        _M_CO2,
        hj212_unit="mg/m3",
    ),
    _p(
        "ch4",
        "甲烷浓度",
        "Methane (ambient)",
        "ppb",
        "air",
        1_000,
        10_000,
        ("a05002",),
        (),
        _M_CH4,
        hj212_unit="ng/m3",
    ),
    _p("n2o", "氧化亚氮浓度", "Nitrous oxide (ambient)", "ppb", "air", 250, 1_000, (), (), _M_N2O),
    # Surface water and wastewater (HJ 212-2017 Table B.1; GB 3838-2002 items).
    _p("ph", "pH值", "pH", "pH", "water", 0, 14, ("w01001",), ("001",)),
    _p("do", "溶解氧", "Dissolved oxygen", "mg/L", "water", 0, 25, ("w01009",)),
    _p(
        "codmn",
        "高锰酸盐指数",
        "Permanganate index (CODMn)",
        "mg/L",
        "water",
        0,
        1_000,
        ("w01019",),
    ),
    _p(
        "cod",
        "化学需氧量",
        "Chemical oxygen demand",
        "mg/L",
        "water",
        0,
        100_000,
        ("w01018",),
        ("011",),
    ),
    _p("bod5", "五日生化需氧量", "BOD5", "mg/L", "water", 0, 50_000, ("w01017",), ("010",)),
    _p("nh3n", "氨氮", "Ammonia nitrogen", "mg/L", "water", 0, 10_000, ("w21003",), ("060",)),
    _p("tp", "总磷", "Total phosphorus", "mg/L", "water", 0, 1_000, ("w21011",), ("101",)),
    _p("tn", "总氮", "Total nitrogen", "mg/L", "water", 0, 10_000, ("w21001",), ("065",)),
    _p("water_temp", "水温", "Water temperature", "degC", "water", -5, 100, ("w01010",)),
    _p("conductivity", "电导率", "Conductivity", "uS/cm", "water", 0, 500_000, ("w01014",)),
    _p("ss", "悬浮物", "Suspended solids", "mg/L", "water", 0, 100_000, ("w01012",), ("003",)),
    _p(
        "ww_flow",
        "污水流量",
        "Wastewater flow",
        "L/s",
        "water",
        0,
        1_000_000,
        ("w00000",),
        ("B01",),
    ),
    # The other GB 3838-2002 Table 1 items (HJ 212-2017 Table B.1 codes, HJ/T 212-2005 in
    # brackets there), named as water.py names them.
    _p("fluoride", "氟化物", "Fluoride (as F-)", "mg/L", "water", 0, 1_000, ("w21017",), ("072",)),
    _p("cyanide", "氰化物", "Cyanide", "mg/L", "water", 0, 1_000, ("w21016",), ("070",)),
    _p("sulfide", "硫化物", "Sulfide", "mg/L", "water", 0, 1_000, ("w21019",), ("071",)),
    _p(
        "volatile_phenols",
        "挥发酚",
        "Volatile phenols",
        "mg/L",
        "water",
        0,
        1_000,
        ("w23002",),
        ("110",),
    ),
    _p("petroleum", "石油类", "Petroleum", "mg/L", "water", 0, 10_000, ("w22001",), ("080",)),
    _p(
        "anionic_surfactants",
        "阴离子表面活性剂",
        "Anionic surfactants",
        "mg/L",
        "water",
        0,
        1_000,
        ("w19002",),
        ("520",),
    ),
    _p(
        "faecal_coliforms",
        "粪大肠菌群",
        "Faecal coliforms",
        "1/L",
        "water",
        0,
        1e10,
        ("w02003",),
        ("550",),
    ),
    # GB 3838-2002 Table 2, drinking-water sources (supplementary items).
    _p("sulfate", "硫酸盐", "Sulfate (as SO4)", "mg/L", "water", 0, 100_000, ("w21038",)),
    _p(
        "chloride",
        "氯化物",
        "Chloride (as Cl-)",
        "mg/L",
        "water",
        0,
        100_000,
        ("w21022",),
        ("090",),
    ),
    _p("nitrate", "硝酸盐氮", "Nitrate (as N)", "mg/L", "water", 0, 10_000, ("w21007",), ("064",)),
    _p(
        "water_fe",
        "铁",
        "Iron (total)",
        "mg/L",
        "water",
        0,
        10_000,
        ("w20125",),
        ("032",),
        shares="fe",
    ),
    _p(
        "water_mn",
        "锰",
        "Manganese (total)",
        "mg/L",
        "water",
        0,
        10_000,
        ("w20124",),
        ("031",),
        shares="mn",
    ),
    # Metals in surface water and wastewater (GB 3838-2002 Table 1, as water.py names them;
    # HJ 212-2017 Table B.1 codes, which send Hg, Cd, Cr(VI), As, Pb and Se in µg/L). Their
    # element codes are shared with the soil metals: a water station's ``cd`` is ``water_cd``.
    _p(
        "water_cu",
        "总铜",
        "Copper (total)",
        "mg/L",
        "water",
        0,
        1_000,
        ("w20122",),
        ("029",),
        shares="cu",
    ),
    _p(
        "water_zn",
        "总锌",
        "Zinc (total)",
        "mg/L",
        "water",
        0,
        1_000,
        ("w20123",),
        ("030",),
        shares="zn",
    ),
    _p(
        "water_se",
        "总硒",
        "Selenium (total)",
        "mg/L",
        "water",
        0,
        100,
        ("w20128",),
        ("035",),
        hj212_unit="ug/L",
        shares="se",
    ),
    _p(
        "water_as",
        "总砷",
        "Arsenic (total)",
        "mg/L",
        "water",
        0,
        100,
        ("w20119",),
        ("026",),
        hj212_unit="ug/L",
        shares="as",
    ),
    _p(
        "water_hg",
        "总汞",
        "Mercury (total)",
        "mg/L",
        "water",
        0,
        10,
        ("w20111",),
        ("020",),
        hj212_unit="ug/L",
        shares="hg",
    ),
    _p(
        "water_cd",
        "总镉",
        "Cadmium (total)",
        "mg/L",
        "water",
        0,
        100,
        ("w20115",),
        ("022",),
        hj212_unit="ug/L",
        shares="cd",
    ),
    _p(
        "water_cr6",
        "六价铬",
        "Chromium (VI)",
        "mg/L",
        "water",
        0,
        100,
        ("w20117",),
        ("024",),
        hj212_unit="ug/L",
        shares="cr6",
    ),
    _p(
        "water_pb",
        "总铅",
        "Lead (total)",
        "mg/L",
        "water",
        0,
        100,
        ("w20120",),
        ("027",),
        hj212_unit="ug/L",
        shares="pb",
    ),
    # Soil heavy metals (GB 15618-2018), mg/kg dry weight; HJ 212 has no codes for them.
    _p("cd", "镉", "Cadmium", "mg/kg", "soil", 0, 10_000),
    _p("hg", "汞", "Mercury", "mg/kg", "soil", 0, 10_000),
    _p("as", "砷", "Arsenic", "mg/kg", "soil", 0, 100_000),
    _p("pb", "铅", "Lead", "mg/kg", "soil", 0, 100_000),
    _p("cr", "铬", "Chromium", "mg/kg", "soil", 0, 100_000),
    _p("cu", "铜", "Copper", "mg/kg", "soil", 0, 100_000),
    _p("ni", "镍", "Nickel", "mg/kg", "soil", 0, 100_000),
    _p("zn", "锌", "Zinc", "mg/kg", "soil", 0, 100_000),
    # Development land (GB 36600-2018 Table 1): hexavalent chromium in soil, mg/kg. ``cr6``
    # without a domain stays the water item (as before); a soil station's ``cr6`` is this one.
    _p(
        "soil_cr6",
        "六价铬(土壤)",
        "Chromium (VI) in soil",
        "mg/kg",
        "soil",
        0,
        100_000,
        shares="cr6",
    ),
    # Ambient gamma dose rate (HJ 61-2021); HJ 212 has no code for it.
    _p("gamma", "空气吸收剂量率", "Ambient gamma dose rate", "nGy/h", "radiation", 0, 1e8),
    # Radionuclides from laboratory analyses (HJ 61-2021 programmes): air aerosol filters in
    # mBq/m³ (domain radiation: the sampler stands at a radiation station), water in Bq/L
    # (gross α and β have HJ 212-2017 codes w03001/w03002), soil in Bq/kg dry weight. A
    # shared name (``cs137``, ``gross_beta`` …) resolves by the station's kind.
    *(
        _p(
            f"aerosol_{n}",
            f"气溶胶{zh}",
            f"{en} in air aerosol",
            "mBq/m3",
            "radiation",
            0,
            hi,
            shares=n,
        )
        for n, zh, en, hi in (
            ("gross_alpha", "总α", "Gross alpha", 100),
            ("gross_beta", "总β", "Gross beta", 1_000),
            ("be7", "铍-7", "Beryllium-7", 100_000),
            ("cs137", "铯-137", "Caesium-137", 1_000),
            ("i131", "碘-131", "Iodine-131", 10_000),
            ("sr90", "锶-90", "Strontium-90", 1_000),
        )
    ),
    _p(
        "water_gross_alpha",
        "总α放射性",
        "Gross alpha in water",
        "Bq/L",
        "water",
        0,
        10,
        ("w03001",),
        ("570",),
        shares="gross_alpha",
    ),
    _p(
        "water_gross_beta",
        "总β放射性",
        "Gross beta in water",
        "Bq/L",
        "water",
        0,
        100,
        ("w03002",),
        ("571",),
        shares="gross_beta",
    ),
    *(
        _p(f"water_{n}", f"水中{zh}", f"{en} in water", "Bq/L", "water", 0, hi, shares=n)
        for n, zh, en, hi in (
            ("h3", "氚", "Tritium", 10_000),
            ("sr90", "锶-90", "Strontium-90", 10),
            ("cs137", "铯-137", "Caesium-137", 10),
        )
    ),
    *(
        _p(f"soil_{n}", f"土壤{zh}", f"{en} in soil", "Bq/kg", "soil", 0, hi, shares=n)
        for n, zh, en, hi in (
            ("k40", "钾-40", "Potassium-40", 5_000),
            ("ra226", "镭-226", "Radium-226", 1_000),
            ("th232", "钍-232", "Thorium-232", 1_000),
            ("u238", "铀-238", "Uranium-238", 1_000),
            ("cs137", "铯-137", "Caesium-137", 1_000),
        )
    ),
    # Environmental noise (GB 3096-2008), A-weighted levels in dB(A), with the HJ 212-2017
    # Table B.3 codes (``LA``, an instantaneous A-weighted level, is kept as a short LAeq).
    _p(
        "laeq",
        "等效声级",
        "Equivalent continuous level LAeq",
        "dB(A)",
        "noise",
        20,
        140,
        ("Leq", "LA"),
    ),
    _p("lmax", "最大声级", "Maximum level Lmax", "dB(A)", "noise", 20, 150, ("LMx",)),
    _p("lmin", "最小声级", "Minimum level Lmin", "dB(A)", "noise", 10, 140, ("LMn",)),
    *(
        _p(
            f"l{n}",
            f"累计百分声级L{n}",
            f"Percentile level L{n}",
            "dB(A)",
            "noise",
            10,
            140,
            (f"L{n}",),
        )
        for n in (5, 10, 50, 90, 95)
    ),
    # Plant meters (activity data for carbon accounting); HJ 212 has no codes for them.
    _p("fuel_gas_flow", "燃气流量", "Fuel gas flow", "Nm3/h", "meter", 0, 1e7),
    _p("fuel_mass_flow", "燃料质量流量", "Fuel mass flow", "t/h", "meter", 0, 1e5),
    _p("power_active", "有功功率", "Active power drawn", "kW", "meter", 0, 1e8),
    # Stack CEMS (HJ 212-2017 Table B.2 with the 2005 codes in brackets there).
    _p("flue_flow", "烟气流量", "Flue-gas flow", "m3/s", "cems", 0, 10_000, ("a00000",), ("B02",)),
    _p(
        "flue_velocity",
        "烟气流速",
        "Flue-gas velocity",
        "m/s",
        "cems",
        0,
        100,
        ("a01011",),
        ("S02",),
    ),
    _p(
        "flue_temp",
        "烟气温度",
        "Flue-gas temperature",
        "degC",
        "cems",
        -40,
        1_500,
        ("a01012",),
        ("S03",),
    ),
    _p(
        "flue_pressure",
        "烟气压力",
        "Flue-gas pressure",
        "kPa",
        "cems",
        -50,
        200,
        ("a01013",),
        ("S08",),
    ),
    _p(
        "flue_humidity", "烟气湿度", "Flue-gas humidity", "%", "cems", 0, 100, ("a01014",), ("S05",)
    ),
    _p("flue_o2", "氧含量", "Oxygen", "%", "cems", 0, 25, ("a19001",), ("S01",)),
    _p(
        "flue_co2",
        "二氧化碳",
        "Carbon dioxide",
        "mg/m3",
        "cems",
        0,
        1_000_000,
        ("a05001",),
        ("30",),
        _M_CO2,
    ),
    _p(
        "flue_so2",
        "二氧化硫",
        "Sulphur dioxide",
        "mg/m3",
        "cems",
        0,
        100_000,
        ("a21026",),
        ("02",),
        _M_SO2,
    ),
    _p(
        "flue_nox",
        "氮氧化物",
        "Nitrogen oxides (as NO2)",
        "mg/m3",
        "cems",
        0,
        100_000,
        ("a21002",),
        ("03",),
        _M_NO2,
    ),
    _p(
        "flue_dust",
        "烟尘",
        "Particulate matter (dust)",
        "mg/m3",
        "cems",
        0,
        100_000,
        ("a34013",),
        ("01",),
    ),
)


def _build_index() -> tuple[dict[str, Parameter], dict[str, list[Parameter]]]:
    canonical: dict[str, Parameter] = {}
    by_code: dict[str, list[Parameter]] = {}
    for p in PARAMETERS:
        if p.code in canonical:
            raise RuntimeError(f"duplicate canonical code {p.code}")
        canonical[p.code] = p
        for c in (*p.hj212, *p.hj212_2005, *((p.shares,) if p.shares else ())):
            by_code.setdefault(c, []).append(p)
    return canonical, by_code


_CANONICAL, _BY_HJ212 = _build_index()

#: Station kind (sensors.stations.KINDS) → the domain whose parameters a shared code names.
KIND_DOMAINS: Final[dict[str, Domain]] = {
    "air": "air",
    "met": "air",
    "water": "water",
    "wastewater": "water",
    "soil": "soil",
    "radiation": "radiation",
    "cems": "cems",
    "meter": "meter",
    "noise": "noise",
}


def domain_of_kind(kind: str | None) -> Domain | None:
    """The dictionary domain of a station kind (``wastewater`` → ``water``); ``None`` for an
    unknown kind or station."""
    return None if kind is None else KIND_DOMAINS.get(kind)


def lookup(code: str, domain: Domain | None = None) -> Parameter:
    """The parameter named by a canonical code or an HJ 212-2017 / HJ/T 212-2005 code.

    Canonical codes are matched case-insensitively; HJ 212 codes are case-sensitive, as in the
    standard (``a21026``, ``B02``), though an upper-case 2017 code is accepted too. With
    ``domain`` (e.g. ``"cems"`` for an HJ 212 packet with system code 31, or the domain of the
    sending station's kind), a shared HJ 212 code resolves to that domain's parameter, and so
    does a canonical code shared by media (``lookup("cd", "water")`` is ``water_cd``, mg/L;
    ``lookup("cd")`` and ``lookup("cd", "soil")`` the soil metal, mg/kg; ``cr6`` and ``se``,
    which only water has, name the water parameter).

    Raises
    ------
    UnknownParameterError
        when no parameter has that code.
    """
    found = _CANONICAL.get(code.lower())
    if found is not None:
        if domain is not None and found.domain != domain:
            for p in _BY_HJ212.get(found.code, ()):
                if p.domain == domain:
                    return p
        return found
    candidates = _BY_HJ212.get(code) or _BY_HJ212.get(code.lower())
    if not candidates:
        raise UnknownParameterError(f"unknown parameter {code!r}")
    if domain is not None:
        for p in candidates:
            if p.domain == domain:
                return p
    return candidates[0]


def all_parameters() -> Iterator[Parameter]:
    """Every parameter of the dictionary, in its order."""
    return iter(PARAMETERS)


def parameters_of(domain: Domain) -> tuple[Parameter, ...]:
    """The parameters of one domain, in dictionary order."""
    return tuple(p for p in PARAMETERS if p.domain == domain)


#: Parameters whose cumulative amount (HJ 212 ``-Cou``) is a volume, m³; others are a mass, kg.
_VOLUME_FLOWS: Final = frozenset({"flue_flow", "ww_flow"})


def stream_unit(parameter: str, statistic: str | None) -> str:
    """The unit of a stream's values: the parameter's unit, except for cumulative amounts
    (``cou``: emitted mass in kg, or volume in m³ for flows, as HJ 212-2017 Appendix B)."""
    if statistic == "cou":
        return "m3" if parameter in _VOLUME_FLOWS else "kg"
    try:
        return lookup(parameter).unit
    except UnknownParameterError:
        return ""  # a raw code kept as sent: unit unknown


def is_canonical(code: str) -> bool:
    """Whether ``code`` is a canonical code of the dictionary (not an HJ 212 or raw code)."""
    return code in _CANONICAL
