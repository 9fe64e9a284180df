"""AQI per HJ 633-2026 (default) and HJ 633-2012, clause by clause.

The expected values come from the standards' tables (HJ 633-2026 Table 3 and HJ 633-2012
Table 1, as ``docs/standards/air.md`` gives them), and from
an independent exact computation below (integers only, written from the table without the
module's code).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensors.standards.aqi import (
    CATEGORIES,
    IAQI_STEPS,
    POLLUTANTS,
    REPORTS,
    TABLES,
    aqi,
    aqi_frame,
    iaqi,
    iaqi_array,
    level_of,
)

# Table 3 of HJ 633-2026, typed in again from the standard's page (not imported).
TABLE_2026 = {
    "so2_24h": [0, 50, 150, 475, 800, 1600, 2100, 2620],
    "so2_1h": [0, 150, 500, 650, 800],
    "no2_24h": [0, 40, 80, 180, 280, 565, 750, 940],
    "no2_1h": [0, 100, 200, 700, 1200, 2340, 3090, 3840],
    "co_24h": [0, 2, 4, 14, 24, 36, 48, 60],
    "co_1h": [0, 5, 10, 35, 60, 90, 120, 150],
    "o3_8h": [0, 100, 160, 215, 265, 800],
    "o3_1h": [0, 160, 200, 300, 400, 800, 1000, 1200],
    "pm10_24h": [0, 50, 120, 250, 350, 420, 500, 600],
    "pm25_24h": [0, 35, 60, 115, 150, 250, 350, 500],
}
TABLE_2012 = {**TABLE_2026, "pm10_24h": [0, 50, 150, 250, 350, 420, 500, 600]}
TABLE_2012["pm25_24h"] = [0, 35, 75, 115, 150, 250, 350, 500]
STEPS = [0, 50, 100, 150, 200, 300, 400, 500]


def reference_iaqi(pollutant: str, value: float, standard: str) -> int | None:
    """Formula (1) with integers only: C as an integer count of its last decimal place."""
    table = TABLE_2026 if standard == "HJ633-2026" else TABLE_2012
    column = pollutant
    if pollutant in ("pm10_1h", "pm25_1h"):
        if standard == "HJ633-2012":
            return None
        column = pollutant.replace("_1h", "_24h")
    d = Decimal(str(value))
    if standard == "HJ633-2026":  # GB/T 8170: integers, CO one decimal
        d = d.quantize(
            Decimal("0.1") if pollutant.startswith("co") else Decimal(1), ROUND_HALF_EVEN
        )
    exponent = -d.as_tuple().exponent if d.as_tuple().exponent < 0 else 0  # type: ignore[operator]
    scale = 10**exponent
    c = int(d * scale)  # C × scale, exactly
    bps = table[column]
    if c > bps[-1] * scale:
        if column == "so2_1h":
            return 200 if standard == "HJ633-2026" else None
        if column == "o3_8h":
            return 300 if standard == "HJ633-2026" else None
        return 500
    if c == 0:
        return 0
    k = next(i for i in range(1, len(bps)) if c <= bps[i] * scale)
    num = (STEPS[k] - STEPS[k - 1]) * (c - bps[k - 1] * scale)
    den = (bps[k] - bps[k - 1]) * scale
    return STEPS[k - 1] + -(-num // den)  # ceiling division


# --- HJ 633-2026 Table 3 and formula (1): every breakpoint lands on its IAQI --------------
@pytest.mark.parametrize("standard", ["HJ633-2026", "HJ633-2012"])
@pytest.mark.parametrize("pollutant", list(TABLE_2026))
def test_every_breakpoint_of_table_3_gives_its_iaqi(pollutant: str, standard: str) -> None:
    table = TABLE_2026 if standard == "HJ633-2026" else TABLE_2012
    for bp, step in zip(table[pollutant], STEPS, strict=False):
        assert iaqi(pollutant, bp, standard) == step, (pollutant, bp)  # type: ignore[arg-type]
        assert iaqi_array(pollutant, [bp], standard)[0] == step  # type: ignore[arg-type]


@pytest.mark.parametrize("pollutant", list(TABLE_2026))
def test_just_above_a_breakpoint_is_the_next_segment(pollutant: str) -> None:
    """§4.2.6: rounded up — the smallest step above a breakpoint already counts one more."""
    step = 0.1 if pollutant.startswith("co") else 1
    for bp, level in zip(TABLE_2026[pollutant][:-1], STEPS, strict=False):
        above = iaqi(pollutant, bp + step)
        assert above is not None and above > level
        assert above == reference_iaqi(pollutant, bp + step, "HJ633-2026")


def test_table_is_the_standards() -> None:
    for pollutant, bps in TABLE_2026.items():
        assert [b for b in TABLES["HJ633-2026"][pollutant] if b is not None] == bps
    for pollutant, bps in TABLE_2012.items():
        assert [b for b in TABLES["HJ633-2012"][pollutant] if b is not None] == bps
    assert list(IAQI_STEPS) == STEPS


# --- air.md worked values -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("pollutant", "value", "expected_2026", "expected_2012"),
    [
        ("pm25_24h", 80, 119, 107),
        ("pm25_24h", 60, 100, 82),
        ("pm10_24h", 150, 112, 100),
        ("o3_8h", 170, 110, 110),
        ("co_24h", 3.3, 83, 83),
        ("no2_1h", 250, 105, 105),
        ("o3_1h", 450, 213, 213),
        ("so2_1h", 900, 200, None),  # 2026 Table 3 note b; 2012 Table 1 note 2: not computed
    ],
)
def test_worked_values(
    pollutant: str, value: float, expected_2026: int, expected_2012: int | None
) -> None:
    assert iaqi(pollutant, value) == expected_2026
    assert iaqi(pollutant, value, "HJ633-2012") == expected_2012


@pytest.mark.parametrize(
    ("value", "rounded_iaqi"), [(35.5, 52), (36.5, 52), (74.5, 113), (59.5, 100)]
)
def test_gbt8170_round_half_even_before_scoring(value: float, rounded_iaqi: int) -> None:
    """§4.2.2: concentrations rounded per GB/T 8170 (35.5 → 36, 36.5 → 36) before formula (1)."""
    assert iaqi("pm25_24h", value) == rounded_iaqi
    assert iaqi_array("pm25_24h", [value])[0] == rounded_iaqi


def test_co_rounds_to_one_decimal_on_its_decimal_representation() -> None:
    """§4.2.2: CO to one decimal; 2.25 → 2.2 (half to even), 2.35 → 2.4 although the float
    2.35 is 2.34999…; a value on a breakpoint lands on it: CO 2.2 gives exactly 55 (§4.2.6)."""
    assert iaqi("co_24h", 2.25) == iaqi("co_24h", 2.2) == 55
    assert iaqi("co_24h", 2.35) == iaqi("co_24h", 2.4) == 60
    assert list(iaqi_array("co_24h", [2.25, 2.35, 2.2])) == [55, 60, 55]


def test_2012_scores_the_raw_concentration() -> None:
    """HJ 633-2012 has no input rounding: PM2.5 35.5 → 50.625 → 51 (2026: 36 → 52)."""
    assert iaqi("pm25_24h", 35.5, "HJ633-2012") == 51
    assert iaqi("pm25_24h", 35.5) == 52


def test_table_3_notes_b_and_c() -> None:
    """Note b: SO₂ 1-hour above 800 counts 200; note c: O₃ 8-hour above 800 counts 300."""
    assert iaqi("so2_1h", 800) == 200 and iaqi("so2_1h", 801) == 200 and iaqi("so2_1h", 5000) == 200
    assert iaqi("o3_8h", 801) == 300 and iaqi("o3_8h", 2000) == 300
    assert list(iaqi_array("so2_1h", [801, 5000])) == [200, 200]
    assert list(iaqi_array("o3_8h", [801])) == [300]


def test_2012_notes_2_and_3_substitute_the_other_averaging_time() -> None:
    """HJ 633-2012 Table 1 note 2: SO₂ 1-hour > 800 is reported with the 24-hour IAQI;
    note 3: O₃ 8-hour > 800 is not scored, the 1-hour O₃ IAQI stands for it."""
    hourly = {"so2_1h": 900, "so2_24h": 300, "no2_1h": 10, "co_1h": 1, "o3_1h": 100,
              "o3_8h": 50, "pm10_24h": 10, "pm25_24h": 10}  # fmt: skip
    result = aqi(hourly, "hourly", "HJ633-2012")
    assert result.iaqi["so2_1h"] == iaqi("so2_24h", 300, "HJ633-2012") == 124
    assert result.aqi == 124 and result.primary == ("so2_1h",)
    daily = {"so2_24h": 10, "no2_24h": 10, "co_24h": 1, "pm10_24h": 10, "pm25_24h": 10,
             "o3_8h": 900, "o3_1h": 1000}  # fmt: skip
    result = aqi(daily, "daily", "HJ633-2012")
    assert result.iaqi["o3_8h"] is None
    assert result.aqi == 400 and result.primary == ("o3_1h",)


def test_above_the_top_breakpoint_is_500() -> None:
    """Not given by the standard; EcoSense's documented choice: the top of the scale."""
    assert iaqi("pm25_24h", 501) == 500 and iaqi("pm25_24h", 10_000) == 500
    assert iaqi_array("pm25_24h", [10_000])[0] == 500


def test_pm_1h_is_scored_on_24h_breakpoints_in_2026_only() -> None:
    """2026 formula (1) notes: 1-hour PM uses Table 3's 24-hour columns; 2012 §5.1.3 scores
    the 24-hour running mean and only shows the 1-hour value."""
    assert iaqi("pm25_1h", 80) == iaqi("pm25_24h", 80) == 119
    assert iaqi("pm10_1h", 150) == 112
    assert iaqi("pm25_1h", 80, "HJ633-2012") is None


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_invalid_concentrations_are_errors(bad: float) -> None:
    with pytest.raises(ValueError, match="pm25_24h"):
        iaqi("pm25_24h", bad)
    assert np.isnan(iaqi_array("pm25_24h", [bad])[0])


def test_unknown_names_are_errors() -> None:
    with pytest.raises(ValueError, match="unknown pollutant"):
        iaqi("pm1", 3)
    with pytest.raises(ValueError, match="unknown standard"):
        iaqi("pm25_24h", 3, "HJ633-1999")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an indicator of the hourly report"):
        aqi({"pm25_24h": 3}, "hourly")
    with pytest.raises(ValueError, match="not an indicator of the daily report"):
        aqi({"o3_1h": 3}, "daily")


# --- reports, formula (2), §4.3.1 primary pollutant, Table 1 categories -------------------
HOURLY = {"so2_1h": 10, "no2_1h": 30, "co_1h": 0.5, "o3_1h": 100, "pm10_1h": 60, "pm25_1h": 40}
DAILY = {"so2_24h": 10, "no2_24h": 30, "co_24h": 0.5, "o3_8h": 100, "pm10_24h": 60, "pm25_24h": 40}


def test_report_indicators() -> None:
    """2026 §4.2.2 daily: 6 indicators; §4.2.3 hourly: the six 1-hour means. 2012 §5.1.2: 7;
    §5.1.3: 9 shown, 7 scored."""
    assert set(REPORTS["HJ633-2026"]["daily"]) == set(DAILY)
    assert set(REPORTS["HJ633-2026"]["hourly"]) == set(HOURLY)
    assert len(REPORTS["HJ633-2012"]["daily"]) == 7
    assert len(REPORTS["HJ633-2012"]["hourly"]) == 7


def test_aqi_is_the_highest_iaqi_and_names_the_primary_pollutant() -> None:
    result = aqi(HOURLY, "hourly")
    # PM2.5 40: 50 + 50·(40 − 35)/(60 − 35) = 60; PM10 60: 50 + 50·10/70 = 57.1 → 58
    assert result.iaqi["pm25_1h"] == 60 and result.iaqi["pm10_1h"] == 58
    assert (result.aqi, result.level, result.primary) == (60, 2, ("pm25_1h",))
    assert result.category == {"zh": "良", "en": "Good"} and result.colour == "#FFFF00"
    assert aqi(DAILY, "daily").aqi == 60


def test_ties_name_every_primary_pollutant_and_none_at_or_below_50() -> None:
    """§4.3.1: AQI > 50: the pollutant(s) with the highest IAQI, all of them when tied."""
    tied = {**HOURLY, "pm25_1h": 60, "pm10_1h": 120}  # both IAQI 100
    assert aqi(tied).primary == ("pm10_1h", "pm25_1h")
    clean = {k: 0.0 for k in HOURLY}
    result = aqi(clean)
    assert (result.aqi, result.level, result.primary) == (0, 1, ())


@pytest.mark.parametrize(
    ("value", "level"),
    [
        (0, 1),
        (1, 1),
        (50, 1),
        (51, 2),
        (100, 2),
        (101, 3),
        (150, 3),
        (151, 4),
        (200, 4),
        (201, 5),
        (300, 5),
        (301, 6),
        (500, 6),
    ],
)
def test_table_1_levels_at_every_boundary(value: int, level: int) -> None:
    assert level_of(value) == level


def test_table_1_categories_and_colours() -> None:
    assert {k: (v[1], v[3]) for k, v in CATEGORIES.items()} == {
        1: ("优", "#00E400"),  # green (0, 228, 0)
        2: ("良", "#FFFF00"),
        3: ("轻度污染", "#FF7E00"),
        4: ("中度污染", "#FF0000"),
        5: ("重度污染", "#99004C"),
        6: ("严重污染", "#7E0023"),
    }


def test_missing_pollutant_rule_2026_5_3_1() -> None:
    """§5.3.1: with an indicator missing, the AQI of the others is published when > 100,
    otherwise NA."""
    high = {**HOURLY, "pm25_1h": 80}
    del high["o3_1h"]
    result = aqi(high)
    assert (result.aqi, result.missing) == (119, ("o3_1h",))
    low = dict(HOURLY)
    low["o3_1h"] = None  # type: ignore[assignment]
    result = aqi(low)
    assert result.aqi is None and result.level is None and result.primary == ()
    assert result.iaqi["pm25_1h"] == 60  # single pollutants are still reported
    nan = {**HOURLY, "no2_1h": math.nan}
    assert aqi(nan).aqi is None


def test_2012_has_no_missing_pollutant_rule() -> None:
    assert aqi({"pm25_24h": 40}, "daily", "HJ633-2012").aqi == 57


# --- independent exact computation, and the vectorised path --------------------------------
values = st.one_of(
    st.integers(0, 3000).map(float),
    st.decimals(0, 3000, places=1).map(float),
    st.decimals(0, 3000, places=2).map(float),
    st.floats(0, 3000, allow_nan=False),
)


@settings(max_examples=2000)
@given(
    pollutant=st.sampled_from(POLLUTANTS),
    value=values,
    standard=st.sampled_from(["HJ633-2026", "HJ633-2012"]),
)
def test_iaqi_equals_an_independent_exact_computation(
    pollutant: str, value: float, standard: str
) -> None:
    expected = reference_iaqi(pollutant, value, standard)
    assert iaqi(pollutant, value, standard) == expected  # type: ignore[arg-type]
    got = iaqi_array(pollutant, [value], standard)[0]  # type: ignore[arg-type]
    assert (np.isnan(got) and expected is None) or got == expected


@settings(max_examples=200)
@given(
    rows=st.lists(
        st.tuples(*[st.one_of(st.just(math.nan), values) for _ in range(6)]),
        min_size=1,
        max_size=20,
    ),
    report=st.sampled_from(["hourly", "daily"]),
)
def test_aqi_frame_equals_aqi_row_by_row(rows: list[tuple[float, ...]], report: str) -> None:
    columns = REPORTS["HJ633-2026"][report]
    frame = pd.DataFrame(rows, columns=list(columns))
    out = aqi_frame(frame, report)  # type: ignore[arg-type]
    for i, row in enumerate(rows):
        one = aqi(dict(zip(columns, row, strict=True)), report)  # type: ignore[arg-type]
        got = out.iloc[i]
        assert (None if pd.isna(got["aqi"]) else int(got["aqi"])) == one.aqi
        assert (None if pd.isna(got["level"]) else int(got["level"])) == one.level
        assert got["primary"] == ",".join(one.primary)


# --- the peer: PyPI aqi-hub (HJ 633-2026), and where it is wrong ----------------------------
AQI_HUB_NAMES = {
    "so2_24h": "SO2_24H",
    "so2_1h": "SO2_1H",
    "no2_24h": "NO2_24H",
    "no2_1h": "NO2_1H",
    "co_24h": "CO_24H",
    "co_1h": "CO_1H",
    "o3_8h": "O3_8H",
    "o3_1h": "O3_1H",
    "pm10_24h": "PM10_24H",
    "pm25_24h": "PM25_24H",
    "pm10_1h": "PM10_1H",
    "pm25_1h": "PM25_1H",
}


@settings(max_examples=2000)
@given(pollutant=st.sampled_from(POLLUTANTS), value=st.integers(0, 3000))
def test_agrees_with_aqi_hub_except_where_aqi_hub_breaks_the_standard(
    pollutant: str, value: int
) -> None:
    """aqi-hub 0.3.3 and EcoSense agree on whole-number inputs (already GB/T 8170-rounded;
    CO in tenths), except on aqi-hub's two known defects (air.md), where the standard wins:
    SO₂ 24-hour scored on the 1-hour breakpoints, and the ceiling of a float that should land
    exactly on a breakpoint's integer (e.g. CO-24h 2.2: 55, aqi-hub 56)."""
    import warnings

    from aqi_hub.aqi_cn import cal_iaqi_cn

    c = value / 10 if pollutant.startswith("co") else float(value)
    ours = iaqi(pollutant, c)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = cal_iaqi_cn(AQI_HUB_NAMES[pollutant], c)
    assert ours == reference_iaqi(pollutant, c, "HJ633-2026")  # the standard
    if ours == theirs:
        return
    if pollutant == "so2_24h":  # defect 1: the 1-hour column
        assert (c <= 800 and theirs == reference_iaqi("so2_1h", c, "HJ633-2026")) or c > 800
        return
    # defect 2: float ceiling one too high where the exact value is a whole number
    assert ours is not None and theirs == ours + 1
    bps = TABLE_2026[pollutant.replace("_1h", "_24h") if pollutant.startswith("pm") else pollutant]
    k = next(i for i in range(1, len(bps)) if c <= bps[i])
    exact = (Decimal(STEPS[k] - STEPS[k - 1]) * (Decimal(str(c)) - bps[k - 1])) / (
        bps[k] - bps[k - 1]
    )
    assert exact == exact.to_integral_value()


def test_aqi_hub_defect_examples() -> None:
    """The two examples of air.md: the standard's values, not aqi-hub's."""
    from aqi_hub.aqi_cn import cal_iaqi_cn

    assert iaqi("co_24h", 2.2) == 55 and cal_iaqi_cn("CO_24H", 2.2) == 56
    assert iaqi("so2_24h", 100) == 75 and cal_iaqi_cn("SO2_24H", 100) == 34
