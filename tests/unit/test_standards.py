"""GB 3095-2026 limits, GB 3838-2002 water classes, GB 15618-2018 and GB 36600-2018 soil risk
and the gamma background rule, clause by clause (tables: ``docs/standards/air.md``,
``water.md``, ``soil.md``, ``radiation.md``)."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from sensors.standards import gb3095, radiation, soil, water
from tests.datasets import meuse

TRANSITIONAL, FINAL = date(2030, 12, 31), date(2031, 1, 1)


# --- GB 3095-2026 Table 1 ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pollutant", "averaging", "transitional", "final"),
    [
        ("so2", "annual", (20, 60), (20, 20)),
        ("so2", "24h", (50, 150), (50, 50)),
        ("so2", "1h", (150, 500), (150, 150)),
        ("no2", "annual", (40, 40), (30, 30)),
        ("no2", "24h", (80, 80), (50, 50)),
        ("no2", "1h", (200, 200), (200, 200)),
        ("co", "24h", (4, 4), (4, 4)),
        ("co", "1h", (10, 10), (10, 10)),
        ("o3", "8h", (100, 160), (100, 160)),
        ("o3", "1h", (160, 200), (160, 200)),
        ("pm10", "annual", (40, 60), (20, 50)),
        ("pm10", "24h", (50, 120), (50, 100)),
        ("pm25", "annual", (15, 30), (10, 25)),
        ("pm25", "24h", (35, 60), (25, 50)),
    ],
)
def test_gb3095_table_1_limits_by_class_and_date(
    pollutant: str, averaging: str, transitional: tuple[int, int], final: tuple[int, int]
) -> None:
    """Transitional limits through 2030-12-31, final ones from 2031-01-01."""
    for area_class in (1, 2):
        got_t = gb3095.limit(pollutant, averaging, area_class, TRANSITIONAL)  # type: ignore[arg-type]
        got_f = gb3095.limit(pollutant, averaging, area_class, FINAL)  # type: ignore[arg-type]
        assert (got_t, got_f) == (transitional[area_class - 1], final[area_class - 1])


def test_gb3095_exceedance_multiple() -> None:
    """超标倍数 (C − S)/S above the limit; at the limit it complies."""
    got = gb3095.exceedance_multiple([30, 60, 75, 120, math.nan], "pm25", "24h", 2, TRANSITIONAL)
    assert got[:4].tolist() == [0.0, 0.0, 0.25, 1.0] and math.isnan(got[4])
    assert gb3095.exceeds([60, 61], "pm25", "24h", 2, TRANSITIONAL).tolist() == [False, True]
    assert gb3095.exceeds([60], "pm25", "24h", 2, FINAL).tolist() == [True]  # final: 50


def test_gb3095_unknown_pairs_are_errors() -> None:
    with pytest.raises(ValueError, match="no 8h limit for 'so2'"):
        gb3095.limit("so2", "8h", 2, FINAL)
    with pytest.raises(ValueError, match="area class"):
        gb3095.limit("so2", "1h", 3, FINAL)  # type: ignore[arg-type]


# --- GB 3838-2002 Table 1, §5.1 -----------------------------------------------------------
TABLE_1 = {  # typed in again from the standard's table (classes I–V), every "≤" item
    "codmn": (2, 4, 6, 10, 15),
    "cod": (15, 15, 20, 30, 40),
    "bod5": (3, 3, 4, 6, 10),
    "nh3n": (0.15, 0.5, 1.0, 1.5, 2.0),
    "tp": (0.02, 0.1, 0.2, 0.3, 0.4),
    "cu": (0.01, 1.0, 1.0, 1.0, 1.0),
    "zn": (0.05, 1.0, 1.0, 2.0, 2.0),
    "fluoride": (1.0, 1.0, 1.0, 1.5, 1.5),
    "se": (0.01, 0.01, 0.01, 0.02, 0.02),
    "as": (0.05, 0.05, 0.05, 0.1, 0.1),
    "hg": (0.00005, 0.00005, 0.0001, 0.001, 0.001),
    "cd": (0.001, 0.005, 0.005, 0.005, 0.01),
    "cr6": (0.01, 0.05, 0.05, 0.05, 0.1),
    "pb": (0.01, 0.01, 0.05, 0.05, 0.1),
    "cyanide": (0.005, 0.05, 0.2, 0.2, 0.2),
    "volatile_phenols": (0.002, 0.002, 0.005, 0.01, 0.1),
    "petroleum": (0.05, 0.05, 0.05, 0.5, 1.0),
    "anionic_surfactants": (0.2, 0.2, 0.2, 0.3, 0.3),
    "sulfide": (0.05, 0.1, 0.2, 0.5, 1.0),
    "faecal_coliforms": (200, 2000, 10000, 20000, 40000),
}
TN_LAKE = (0.2, 0.5, 1.0, 1.5, 2.0)
TP_LAKE = (0.01, 0.025, 0.05, 0.1, 0.2)
TABLE_2 = {"sulfate": 250, "chloride": 250, "nitrate": 10, "fe": 0.3, "mn": 0.1}


@pytest.mark.parametrize("parameter", list(TABLE_1))
def test_water_class_boundaries(parameter: str) -> None:
    """A value at a limit meets it; a shared limit gives the better class (COD 15 → I); just
    above class V is 劣Ⅴ (6)."""
    limits = TABLE_1[parameter]
    for k, lim in enumerate(limits, start=1):
        expected = limits.index(lim) + 1  # the first (best) class with that limit
        assert water.classify({parameter: lim}).classes[parameter] == expected
        assert k >= expected
    assert water.classify({parameter: limits[-1] * 1.001}).classes[parameter] == 6
    assert water.classify({"cod": 15}).classes["cod"] == 1


def test_every_table_1_item_is_classed_just_below_at_and_just_above_each_limit() -> None:
    """Every "≤" item of Table 1 (and TN, TP of lakes): at a limit the best class with that
    limit, just below it no worse, just above it the next class with a higher limit."""
    tables = {**{p: (lims, "river") for p, lims in TABLE_1.items()}}
    tables["tn"] = (TN_LAKE, "lake")
    tables["tp_lake"] = (TP_LAKE, "lake")
    assert set(TABLE_1) | {"ph", "do", "tn"} == set(water.PARAMETERS)
    for key, (limits, body) in tables.items():
        p = "tp" if key == "tp_lake" else key
        for lim in limits:
            at = limits.index(lim) + 1
            higher = [k + 1 for k, v in enumerate(limits) if v > lim]
            above = higher[0] if higher else 6
            assert water.classify({p: lim}, body).classes[p] == at, (p, lim)  # type: ignore[arg-type]
            assert water.classify({p: lim * 0.999}, body).classes[p] <= at  # type: ignore[arg-type]
            assert water.classify({p: lim * 1.001}, body).classes[p] == above, (p, lim)  # type: ignore[arg-type]


def test_a_limit_reached_through_float_noise_still_meets_it() -> None:
    """The mean of three readings of 0.05 mg/L is 0.05000000000000001: still class III for Pb."""
    noisy = float(np.mean([0.05, 0.05, 0.05]))
    assert noisy > 0.05
    assert water.classify({"pb": noisy}).classes["pb"] == 3
    assert water.classify({"pb": 0.0500001}).classes["pb"] == 5
    assert water.classify({"do": 7.5 * (1 - 1e-12)}).classes["do"] == 1
    assert water.classify({"mn": float(np.mean([0.1, 0.1, 0.1]))}).supplementary == {"mn": True}


@pytest.mark.parametrize("item", list(TABLE_2))
def test_table_2_items_meet_or_exceed_their_one_limit(item: str) -> None:
    limit = TABLE_2[item]
    at = water.classify({item: limit, "cod": 10})
    assert at.supplementary == {item: True} and at.exceedances == {}
    assert at.classes == {"cod": 1} and at.overall == 1  # never part of the overall class
    above = water.classify({item: limit * 1.2, "cod": 10}, target_class=1)
    assert above.supplementary == {item: False} and above.overall == 1
    assert above.exceedances == pytest.approx({item: 0.2})
    with pytest.raises(ValueError, match="Table 2 item"):
        water.classify_array(item, [limit])
    frame = water.classify_frame(pd.DataFrame({item: [limit, limit * 1.2, np.nan]}))
    assert frame[f"meets_{item}"].tolist() == [True, False, pd.NA]
    assert frame["exceeding"].tolist() == ["", item, ""]
    assert frame["overall"].isna().all()


def test_dictionary_codes_of_water_items_are_classed_as_their_items() -> None:
    assert water.classify({"water_fe": 0.5}).exceedances == pytest.approx({"water_fe": 2 / 3})
    assert water.classify({"water_cd": 0.005}).classes == {"water_cd": 2}
    assert set(water.STREAM_PARAMETERS) >= {"fluoride", "sulfate", "water_mn", "water_cr6"}


def test_water_dissolved_oxygen_is_a_minimum() -> None:
    got = [water.classify({"do": v}).classes["do"] for v in (8, 7.5, 7.4, 6, 5, 3, 2, 1.9)]
    assert got == [1, 1, 2, 2, 3, 4, 5, 6]


def test_water_ph_outside_6_to_9_is_worse_than_v() -> None:
    got = [water.classify({"ph": v}).classes["ph"] for v in (5.9, 6, 7.5, 9, 9.1)]
    assert got == [6, 1, 1, 1, 6]


def test_water_total_phosphorus_rivers_and_lakes() -> None:
    assert water.classify({"tp": 0.05}, "river").classes["tp"] == 2
    assert water.classify({"tp": 0.05}, "lake").classes["tp"] == 3


def test_water_overall_is_the_worst_counted_item_and_exceedances_use_the_target() -> None:
    sample = {"do": 6.5, "codmn": 5, "nh3n": 1.8, "tp": 0.15, "tn": 3.0, "faecal_coliforms": 50000}
    river = water.classify(sample, "river", target_class=3)
    assert river.classes == {"do": 2, "codmn": 3, "nh3n": 5, "tp": 3, "faecal_coliforms": 6}
    assert river.overall == 5  # TN not evaluated for rivers; faecal coliforms not counted
    assert river.exceedances == pytest.approx({"nh3n": 0.8, "faecal_coliforms": 4.0})
    lake = water.classify(sample, "lake", target_class=3)
    assert lake.classes["tn"] == 6 and lake.overall == 6  # TN counts for lakes and reservoirs
    assert lake.exceedances["tn"] == pytest.approx(2.0)
    assert lake.exceedances["tp"] == pytest.approx(2.0)  # lake class III TP 0.05


def test_water_frame_equals_classify_row_by_row() -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "do": rng.uniform(0, 10, 200),
            "codmn": rng.uniform(0, 20, 200),
            "nh3n": rng.uniform(0, 3, 200),
            "tp": rng.uniform(0, 0.5, 200),
            "ph": rng.uniform(5, 10, 200),
        }
    )
    frame.iloc[::17, 1] = np.nan
    out = water.classify_frame(frame, "lake", 2)
    for i, row in frame.iterrows():
        one = water.classify({k: v for k, v in row.items() if not math.isnan(v)}, "lake", 2)
        assert out.loc[i, "overall"] == one.overall
        assert set(filter(None, out.loc[i, "exceeding"].split(","))) == set(one.exceedances)


def test_water_bad_input_is_an_error() -> None:
    with pytest.raises(ValueError, match="no limit for 'turbidity'"):
        water.classify({"turbidity": 3})
    with pytest.raises(ValueError, match="not a valid concentration"):
        water.classify({"cod": -1})
    with pytest.raises(ValueError, match="target class"):
        water.classify({"cod": 1}, target_class=6)


# --- GB 15618-2018 ------------------------------------------------------------------------
def test_soil_ph_bands_are_closed_on_the_right() -> None:
    assert soil.ph_band([5.5, 5.51, 6.5, 7.5, 7.51]).tolist() == [0, 1, 1, 2, 3]


@pytest.mark.parametrize(
    ("metal", "ph", "land_use", "screening", "intervention"),
    [
        ("cd", 5.0, "paddy", 0.3, 1.5),
        ("cd", 7.0, "paddy", 0.6, 3.0),
        ("cd", 8.0, "other", 0.6, 4.0),
        ("cd", 8.0, "orchard", 0.6, 4.0),
        ("hg", 6.0, "other", 1.8, 2.5),
        ("as", 7.0, "paddy", 25, 120),
        ("pb", 8.0, "paddy", 240, 1000),
        ("cr", 6.0, "other", 150, 850),
        ("cu", 7.0, "orchard", 200, None),
        ("cu", 7.0, "paddy", 100, None),
        ("ni", 8.0, "paddy", 190, None),
        ("zn", 5.0, "other", 200, None),
    ],
)
def test_soil_screening_and_intervention_values(
    metal: str, ph: float, land_use: str, screening: float, intervention: float | None
) -> None:
    assert soil.screening_value(metal, ph, land_use) == screening  # type: ignore[arg-type]
    assert soil.intervention_value(metal, ph) == intervention


def test_soil_classes() -> None:
    """≤ screening everywhere: priority protection; above screening, ≤ intervention: safe use;
    above any intervention value: strict control."""
    assert soil.classify({"cd": 0.3, "zn": 200}, 5.0).risk_class == "priority_protection"
    assert soil.classify({"cd": 0.31}, 5.0).risk_class == "safe_use"
    assert soil.classify({"cd": 1.5}, 5.0).risk_class == "safe_use"
    assert soil.classify({"cd": 1.51}, 5.0).risk_class == "strict_control"
    assert soil.classify({"zn": 10_000}, 5.0).risk_class == "safe_use"  # no Zn intervention
    assert soil.classify({"cd": 0.6}, 7.0, "paddy").ratios["cd"] == pytest.approx(1.0)


def test_soil_bad_input_is_an_error() -> None:
    with pytest.raises(ValueError, match="pH"):
        soil.classify({"cd": 1}, 15)
    with pytest.raises(ValueError, match="no value for 'fe'"):
        soil.classify({"fe": 1}, 7)
    with pytest.raises(ValueError, match="land use"):
        soil.classify({"cd": 1}, 7, "forest")  # type: ignore[arg-type]


@pytest.mark.parametrize(("ph", "land_use"), [(7.0, "other"), (8.0, "other"), (6.0, "paddy")])
def test_meuse_samples_risk_classes(ph: float, land_use: str) -> None:
    """The 155 Meuse topsoil samples (Cd, Cu, Pb, Zn mg/kg), classed at a stated pH and land
    use; counted here independently of the module from the screening and intervention
    values."""
    data = meuse().rename(columns={"cadmium": "cd", "copper": "cu", "lead": "pb", "zinc": "zn"})
    band = {6.0: 1, 7.0: 2, 8.0: 3}[ph]
    screen = {
        "cd": {"other": (0.3, 0.3, 0.3, 0.6), "paddy": (0.3, 0.4, 0.6, 0.8)}[land_use][band],
        "cu": (50, 50, 100, 100)[band],
        "pb": {"other": (70, 90, 120, 170), "paddy": (80, 100, 140, 240)}[land_use][band],
        "zn": (200, 200, 250, 300)[band],
    }
    stop = {"cd": (1.5, 2.0, 3.0, 4.0)[band], "pb": (400, 500, 700, 1000)[band]}
    metals = data[["cd", "cu", "pb", "zn"]]
    strict = (metals["cd"] > stop["cd"]) | (metals["pb"] > stop["pb"])
    above = pd.concat([metals[m] > v for m, v in screen.items()], axis=1).any(axis=1)
    expected = np.where(
        strict, "strict_control", np.where(above, "safe_use", "priority_protection")
    )
    got = [soil.classify(dict(r), ph, land_use).risk_class for r in metals.to_dict("records")]  # type: ignore[arg-type]
    assert got == expected.tolist()
    frame = soil.classify_frame(metals.assign(ph=ph), land_use)  # type: ignore[arg-type]
    assert frame["risk_class"].tolist() == got
    assert len(got) == 155 and set(got) >= {"strict_control", "safe_use"}


# --- gamma dose rate against the station's background ---------------------------------------
def test_gamma_outside_the_station_background_range() -> None:
    got = radiation.background_status([60, 69.3, 150, 266.9, 300, math.nan], (69.3, 266.9))
    assert got.tolist() == ["below", "within", "within", "within", "above", None]
    with pytest.raises(ValueError, match="background range"):
        radiation.background_status([1], (300, 100))


def test_water_metals_by_their_dictionary_codes_are_classed_as_table_1_items() -> None:
    """The dictionary stores GB 3838 metals from water stations as ``water_cd`` … (``cd`` is
    the soil metal): the classifier takes either name."""
    from sensors.standards import water

    by_code = water.classify({"water_cd": 0.006, "water_pb": 0.01})
    assert by_code.classes == {"water_cd": 5, "water_pb": 1}
    assert by_code.overall == water.classify({"cd": 0.006, "pb": 0.01}).overall == 5
    frame = water.classify_frame(pd.DataFrame({"water_hg": [0.00005, 0.002]}))
    assert frame["class_water_hg"].tolist() == [1, 6]


# --- GB 36600-2018 ------------------------------------------------------------------------
#: Table 1 metals typed in again: item → (screening class 1, class 2, intervention class 1,
#: class 2), mg/kg.
DEVELOPMENT_TABLE = {
    "as": (20, 60, 120, 140),
    "cd": (20, 65, 47, 172),
    "cr6": (3.0, 5.7, 30, 78),
    "cu": (2000, 18000, 8000, 36000),
    "pb": (400, 800, 800, 2500),
    "hg": (8, 38, 33, 82),
    "ni": (150, 900, 600, 2000),
}


def test_development_table_is_the_code_s() -> None:
    assert set(soil.DEVELOPMENT_ITEMS) == set(DEVELOPMENT_TABLE)
    for item, (s1, s2, i1, i2) in DEVELOPMENT_TABLE.items():
        assert soil.DEVELOPMENT_SCREENING[item] == (s1, s2), item
        assert soil.DEVELOPMENT_INTERVENTION[item] == (i1, i2), item
        assert soil.development_values(item, 1) == (s1, i1)
        assert soil.development_values(item, 2) == (s2, i2)
    assert soil.development_values("soil_cr6", 2) == (5.7, 78)


@pytest.mark.parametrize("land_class", [1, 2])
@pytest.mark.parametrize("item", [*DEVELOPMENT_TABLE, "soil_cr6"])
def test_development_every_item_just_below_at_and_just_above_each_value(
    item: str, land_class: int
) -> None:
    """At or below the screening value: below screening; just above it: above screening; at
    the intervention value still above screening; just above it: above intervention."""
    row = DEVELOPMENT_TABLE["cr6" if item == "soil_cr6" else item]
    screening, intervention = row[land_class - 1], row[land_class + 1]
    cases = [
        (screening * 0.999, "below_screening", None),
        (screening, "below_screening", None),
        (screening * 1.001, "above_screening", "screening"),
        (intervention * 0.999, "above_screening", "screening"),
        (intervention, "above_screening", "screening"),
        (intervention * 1.001, "above_intervention", "intervention"),
    ]
    for value, risk, exceedance in cases:
        got = soil.classify_development({item: value}, land_class)
        assert got.risk == risk, (item, land_class, value)
        assert got.exceedances.get(item) == exceedance, (item, land_class, value)
        assert got.ratios == {item: value / screening}
        assert got.intervention_ratios == {item: value / intervention}
        assert got.land_class == land_class
    frame = soil.classify_development_frame(pd.DataFrame({item: [c[0] for c in cases]}), land_class)
    assert frame["risk"].tolist() == [c[1] for c in cases]
    assert frame["exceeding"].tolist() == ["" if c[2] is None else item for c in cases]


def test_development_value_at_a_limit_through_float_noise_meets_it() -> None:
    """Within 1e-9 relative of a value (water.REL_TOLERANCE) meets it."""
    assert soil.classify_development({"cr6": 3.0 * (1 + 1e-12)}).risk == "below_screening"
    assert soil.classify_development({"cr6": 30 * (1 + 1e-12)}).risk == "above_screening"
    assert soil.classify_development({"cr6": 3.0 * (1 + 1e-6)}).risk == "above_screening"
    frame = soil.classify_development_frame(pd.DataFrame({"cr6": [3.0 * (1 + 1e-12)]}))
    assert frame["risk"].tolist() == ["below_screening"]


def test_development_arsenic_background_replaces_a_lower_screening_value() -> None:
    """Table 1 note ①: a background above the arsenic screening value is the screening value;
    the intervention value stays; a lower background changes nothing."""
    high = soil.classify_development({"as": 25}, 1, arsenic_background=30)
    assert high.risk == "below_screening" and high.ratios == {"as": 25 / 30}
    assert high.intervention_ratios == {"as": 25 / 120}
    assert soil.classify_development({"as": 30}, 1, arsenic_background=30).risk == (
        "below_screening"
    )
    assert soil.classify_development({"as": 30.03}, 1, arsenic_background=30).risk == (
        "above_screening"
    )
    assert soil.classify_development({"as": 120}, 1, arsenic_background=30).risk == (
        "above_screening"
    )
    assert soil.classify_development({"as": 120.12}, 1, arsenic_background=30).risk == (
        "above_intervention"
    )
    assert soil.development_values("as", 2, arsenic_background=80) == (80, 140)
    assert soil.classify_development({"as": 70}, 2, arsenic_background=80).risk == (
        "below_screening"
    )
    for background in (10, 20, 0):  # lower or equal: the table's value
        low = soil.classify_development({"as": 25}, 1, arsenic_background=background)
        assert low.risk == "above_screening" and low.ratios == {"as": 25 / 20}
    assert soil.development_values("as", 2, arsenic_background=59) == (60, 140)
    # only arsenic: Cd 25 stays above its screening value 20
    other = soil.classify_development({"as": 25, "cd": 25}, 1, arsenic_background=30)
    assert other.exceedances == {"cd": "screening"}
    assert soil.development_values("cd", 1, arsenic_background=30) == (20, 47)
    # a background above the intervention value: still above intervention beyond 120
    odd = soil.classify_development({"as": 130}, 1, arsenic_background=150)
    assert odd.risk == "above_intervention" and odd.exceedances == {"as": "intervention"}
    assert odd.ratios["as"] == 130 / 150
    frame = soil.classify_development_frame(
        pd.DataFrame({"as": [25, 31, 121, 130]}), 1, arsenic_background=30
    )
    assert frame["risk"].tolist() == [
        "below_screening",
        "above_screening",
        "above_intervention",
        "above_intervention",
    ]


def test_development_risk_is_the_worst_item() -> None:
    sample = {"cd": 10.0, "pb": 500.0, "hg": 40.0}
    first = soil.classify_development(sample, 1)
    assert first.risk == "above_intervention"
    assert first.exceedances == {"pb": "screening", "hg": "intervention"}
    second = soil.classify_development(sample, 2)
    assert second.risk == "above_screening" and second.exceedances == {"hg": "screening"}
    assert soil.classify_development({"cd": 10, "pb": 500}, 1).risk == "above_screening"
    assert soil.classify_development({"cd": 10, "pb": 400}, 1).risk == "below_screening"
    assert soil.classify_development({"cd": 0, "ni": 0}, 2).risk == "below_screening"
    empty = soil.classify_development({})
    assert empty.risk is None and empty.ratios == {} and empty.exceedances == {}
    frame = soil.classify_development_frame(pd.DataFrame(sample, index=["a"]), 1)
    assert frame.loc["a", "risk"] == "above_intervention"
    assert frame.loc["a", "exceeding"] == "pb,hg"


def test_development_bad_input_is_an_error() -> None:
    for land_class in (0, 3, True, "1"):
        with pytest.raises(ValueError, match="land class must be 1 or 2"):
            soil.classify_development({"cd": 1}, land_class)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="land class"):
        soil.classify_development({}, 3)
    for item in ("zn", "cr", "benzene", "water_cr6"):
        with pytest.raises(ValueError, match=f"no value for '{item}'"):
            soil.classify_development({item: 1})
    for value in (-1, -0.001, math.nan, math.inf, True, "5", None):
        with pytest.raises(ValueError, match="not a valid content"):
            soil.classify_development({"pb": value})  # type: ignore[dict-item]
    for background in (-1, math.nan, math.inf):
        with pytest.raises(ValueError, match="arsenic background"):
            soil.classify_development({"as": 1}, arsenic_background=background)
        with pytest.raises(ValueError, match="arsenic background"):
            soil.classify_development_frame(pd.DataFrame({"as": [1]}), 1, background)
    with pytest.raises(ValueError, match="no value for 'zn'"):
        soil.classify_development_frame(pd.DataFrame({"zn": [1.0]}))
    with pytest.raises(ValueError, match="not a valid content"):
        soil.classify_development_frame(pd.DataFrame({"pb": [1.0, -2.0]}))
    with pytest.raises(ValueError, match="not a valid content"):
        soil.classify_development_frame(pd.DataFrame({"pb": [math.inf]}))
    with pytest.raises(ValueError, match="land class"):
        soil.classify_development_frame(pd.DataFrame({"pb": [1.0]}), 3)
    with pytest.raises(ValueError, match="land class"):
        soil.development_values("pb", 0)


@pytest.mark.parametrize(
    ("land_class", "background"), [(1, None), (2, None), (1, 45.0), (2, 50.0), (1, 200.0)]
)
def test_development_frame_equals_classify_development_row_by_row(
    land_class: int, background: float | None
) -> None:
    rng = np.random.default_rng(36600 + land_class)
    items = ["as", "cd", "soil_cr6", "cu", "pb", "hg", "ni"]
    n = 400
    columns = {}
    for item in items:
        limits = DEVELOPMENT_TABLE["cr6" if item == "soil_cr6" else item]
        screening, intervention = limits[land_class - 1], limits[land_class + 1]
        values = rng.uniform(0, 1.3, n) * rng.choice([screening, intervention], n)
        values[rng.random(n) < 0.05] = screening  # exactly on the values
        values[rng.random(n) < 0.05] = intervention
        values[rng.random(n) < 0.45] = np.nan
        columns[item] = values
    frame = pd.DataFrame(columns, index=pd.RangeIndex(1000, 1000 + n))
    frame.iloc[7] = np.nan  # a row without any content
    out = soil.classify_development_frame(frame, land_class, background)
    assert list(out.columns) == [*(f"ratio_{i}" for i in items), "risk", "exceeding"]
    seen = set()
    for i, row in frame.iterrows():
        one = soil.classify_development(
            {k: v for k, v in row.items() if not math.isnan(v)},
            land_class,
            arsenic_background=background,
        )
        if one.risk is None:
            assert out.loc[i, "risk"] is pd.NA
        else:
            assert out.loc[i, "risk"] == one.risk, i
        seen.add(one.risk)
        assert set(filter(None, out.loc[i, "exceeding"].split(","))) == set(one.exceedances)
        for item in items:
            got = out.loc[i, f"ratio_{item}"]
            assert (math.isnan(got) and item not in one.ratios) or got == one.ratios[item]
    assert seen == {None, "below_screening", "above_screening", "above_intervention"}
