"""Dashboard helpers: station states, the shipped offline base map, the map's style."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

import access
from dashboards.views import (
    annual_of_region,
    basemap,
    deck,
    default_choice,
    emission_table,
    emissions_by,
    left_out_of,
    map_style,
    station_state,
    station_table,
    target_chart,
)

NOW = datetime(2026, 11, 28, tzinfo=UTC)


@pytest.fixture(autouse=True)
def english() -> Iterator[None]:
    """These tests read the English page (``?lang=en``); tests/unit/test_i18n.py checks both."""
    from dashboards.i18n import use

    with use("en"):
        yield


def test_station_states_by_age() -> None:
    assert station_state(NOW - timedelta(minutes=1), NOW) == "online"
    assert station_state(NOW - timedelta(minutes=30), NOW) == "delayed"
    assert station_state(NOW - timedelta(hours=2), NOW) == "offline"
    assert station_state(None, NOW) == "no_data"


def test_soil_sampling_points_are_never_offline() -> None:
    """Issue 14: "soil sampling points count as 'offline'": a sampled kind has no offline
    state; an air station without data for 2 h stays offline."""
    stations = pd.DataFrame(
        {"id": ["S", "A"], "name": "x", "kind": ["soil", "air"], "lon": 1.0, "lat": 1.0}
    )
    latest = pd.DataFrame(
        {
            "station": ["S", "A"],
            "parameter": ["cd", "pm25"],
            "time": pd.to_datetime([NOW - timedelta(days=30), NOW - timedelta(hours=2)], utc=True),
        }
    )
    table = station_table(stations, latest, NOW)
    assert list(table["state"]) == ["sampled", "offline"]
    assert station_state(None, NOW, "soil") == "sampled"


def test_basemap_has_every_provincial_division_with_iso_codes() -> None:
    provinces = [f for f in basemap()["features"] if f["properties"]["kind"] == "province"]
    codes = {f["properties"]["code"] for f in provinces}
    assert len(codes) == 34  # 23 provinces, 5 autonomous regions, 4 municipalities, 2 SARs
    assert {"CN-BJ", "CN-XJ", "CN-HK", "CN-MO", "CN-TW", "CN-HI"} <= codes
    assert "Natural Earth" in basemap()["source"]


def test_map_needs_no_internet() -> None:
    spec = json.loads(deck(pd.DataFrame(columns=["id", "lon", "lat", "colour"])).to_json())
    style = spec["mapStyle"]
    assert style.startswith("data:application/json;base64,")
    decoded = json.loads(base64.b64decode(style.split(",", 1)[1]))
    assert decoded["sources"] == {}
    assert "http" not in json.dumps(decoded)


def test_tile_server_is_used_when_configured() -> None:
    style = map_style("http://tiles.local/{z}/{x}/{y}.png")
    assert style["sources"]["tiles"]["tiles"] == ["http://tiles.local/{z}/{x}/{y}.png"]


def test_station_table_and_default_choice() -> None:
    stations = pd.DataFrame(
        {
            "id": ["A", "B"],
            "name": ["a", "b"],
            "kind": ["air", "water"],
            "lon": [116.0, 120.0],
            "lat": [40.0, 30.0],
        }
    )
    latest = pd.DataFrame(
        {
            "station": ["B", "B"],
            "parameter": ["ph", "do"],
            "time": pd.to_datetime([NOW, NOW - timedelta(minutes=2)], utc=True),
        }
    )
    table = station_table(stations, latest, NOW)
    assert list(table["state"]) == ["no_data", "online"]
    assert default_choice(latest, ["A", "B"]) == ("B", "do")
    assert default_choice(latest.iloc[0:0], ["A", "B"]) == ("A", None)


def test_aqi_colours_are_the_standard_category_colours() -> None:
    from dashboards.views import aqi_colour, category_label

    assert aqi_colour(1) == [0, 228, 0, 230]  # #00E400
    assert aqi_colour(6) == [126, 0, 35, 230]  # #7E0023
    assert aqi_colour(None) == aqi_colour(pd.NA) == [170, 170, 170, 230]
    assert category_label(2) == "Good" and category_label(pd.NA) == "—"


def _aqi_rows() -> pd.DataFrame:
    t0 = pd.Timestamp("2026-11-28 01:00", tz="UTC")
    return pd.DataFrame(
        {
            "subject": ["A", "A", "B", "C"],
            "start": [t0, t0 + pd.Timedelta(hours=1), t0, t0],
            "value": pd.array([40, 160, 75, pd.NA], dtype="Int64"),
            "level": pd.array([1, 4, 2, pd.NA], dtype="Int64"),
            "label": ["", "pm25_1h", "pm10_1h", ""],
        }
    )


def test_station_map_takes_each_stations_latest_hour() -> None:
    from dashboards.views import aqi_stations, latest_per_subject

    stations = pd.DataFrame(
        {"id": ["A", "B", "Z"], "name": ["a", "b", "z"], "kind": "air", "lon": 116.0, "lat": 39.0}
    )
    now = pd.Timestamp("2026-11-28 03:30", tz="UTC").to_pydatetime()
    table = aqi_stations(stations, latest_per_subject(_aqi_rows()), now)
    assert list(table["aqi"].astype("Int64")) == [160, 75, pd.NA]
    assert table.loc[0, "state_label"] == (
        "AQI 160 · Moderately polluted · PM2.5 (1 h) · 2026-11-28 02:00–03:00 UTC"
    )
    assert table.loc[2, "state_label"] == "AQI NA · — · —"
    assert table.loc[2, "colour"] == [170, 170, 170, 230]


def test_a_station_greys_only_when_its_latest_complete_hour_is_over_2_hours_old() -> None:
    """Issue 14: "The hourly views are grey for about 45 minutes of every hour"; a station is
    grey only when the hour it shows is older than 2 hours, and the hour is named in the
    bureau's zone."""
    from zoneinfo import ZoneInfo

    from dashboards.views import aqi_colour, aqi_stations, is_stale, shown_hours

    ten = pd.Timestamp("2026-11-28 02:00", tz="UTC")  # 10:00 CST
    latest = pd.DataFrame(
        {
            "subject": ["A"],
            "start": [ten],
            "value": pd.array([160], dtype="Int64"),
            "level": pd.array([4], dtype="Int64"),
            "label": ["pm25_1h"],
        }
    )
    stations = pd.DataFrame({"id": ["A"], "name": ["a"], "kind": "air", "lon": 1.0, "lat": 1.0})
    tz = ZoneInfo("Asia/Shanghai")
    for minutes, grey in ((1, False), (59, False), (119, False), (121, True)):
        now = (ten + pd.Timedelta(hours=1, minutes=minutes)).to_pydatetime()  # after it ended
        (row,) = aqi_stations(stations, latest, now, tz).to_dict("records")
        assert is_stale(ten, now) is grey
        assert row["colour"] == (aqi_colour(None) if grey else aqi_colour(4)), minutes
        assert row["hour"] == "2026-11-28 10:00–11:00 CST"
    assert shown_hours(latest["start"], tz) == "Hour shown: 2026-11-28 10:00–11:00 CST"


def test_ranking_from_clean_to_polluted_with_na_last() -> None:
    from dashboards.views import latest_per_subject, ranking

    ranked = ranking(latest_per_subject(_aqi_rows()))
    assert list(ranked["city"]) == ["B", "A", "C"] and list(ranked["rank"]) == [1, 2, 3]
    assert list(ranked["primary pollutant"]) == ["PM10 (1 h)", "PM2.5 (1 h)", "—"]


def test_daily_report_lists_iaqi_and_concentrations() -> None:
    from zoneinfo import ZoneInfo

    from dashboards.views import daily_report

    daily = pd.DataFrame(
        {
            "subject": ["S1"],
            "start": [pd.Timestamp("2026-11-26 16:00", tz="UTC")],
            "value": pd.array([120], dtype="Int64"),
            "level": pd.array([3], dtype="Int64"),
            "label": ["pm25_24h"],
            "details": [{"pm25_24h": 120, "c_pm25_24h": 91.0, "o3_8h": None, "c_o3_8h": None}],
        }
    )
    (row,) = daily_report(daily, {"S1": "One"}, ZoneInfo("Asia/Shanghai")).to_dict("records")
    assert row["date"] == "2026-11-27"  # the bureau's day
    assert row["IAQI pm25_24h"] == 120 and row["pm25_24h"] == 91.0 and row["o3_8h"] is None
    assert row["category"] == "Lightly polluted" and row["name"] == "One"


def test_daily_report_rounds_concentrations_for_publication() -> None:
    """Issue 14: "the daily report shows CO 0.7973 and NO₂ 34.9661 (published values are
    rounded as the standard says)": HJ 633-2026 §4.2.2, GB/T 8170 — integers, CO one decimal."""
    from zoneinfo import ZoneInfo

    from dashboards.views import daily_report

    daily = pd.DataFrame(
        {
            "subject": ["S1"],
            "start": [pd.Timestamp("2026-11-26 16:00", tz="UTC")],
            "value": pd.array([44], dtype="Int64"),
            "level": pd.array([1], dtype="Int64"),
            "label": [""],
            "details": [
                {
                    "co_24h": 20,
                    "c_co_24h": 0.7973,
                    "no2_24h": 44,
                    "c_no2_24h": 34.9661,
                    "pm25_24h": 36,
                    "c_pm25_24h": 24.5,  # a tie goes to the even digit
                }
            ],
        }
    )
    (row,) = daily_report(daily, {}, ZoneInfo("Asia/Shanghai")).to_dict("records")
    assert (row["co_24h"], row["no2_24h"], row["pm25_24h"]) == (0.8, 35.0, 24.0)


def test_completeness_is_the_share_of_valid_hours() -> None:
    from dashboards.views import completeness

    starts = pd.date_range("2026-11-28", periods=24, freq="h", tz="UTC")
    hourly = pd.concat(
        [
            pd.DataFrame(
                {
                    "subject": "A",
                    "parameter": "pm25",
                    "start": starts,
                    "valid": [True] * 18 + [False] * 6,
                }
            ),
            pd.DataFrame({"subject": "B", "parameter": "do", "start": starts[:3], "valid": True}),
        ]
    )
    table = completeness(hourly, 24)
    assert table.loc["A", "pm25"] == 75.0 and table.loc["B", "do"] == 12.5
    assert pd.isna(table.loc["A", "do"])  # A does not measure DO


def _emission_rows() -> pd.DataFrame:
    from zoneinfo import ZoneInfo

    cst = ZoneInfo("Asia/Shanghai")
    rows = []
    for facility, region, sector, t in (
        ("P1", "110105", "1.A.1.a", 100.0),
        ("P2", "110108", "1.A.2", 50.0),
        ("C1", "130100", "2.A.1", 30.0),
    ):
        for year in (2022, 2023):
            rows.append(
                {
                    "subject": facility,
                    "gas": "CO2e",
                    "period": "P1Y",
                    "start": pd.Timestamp(datetime(year, 1, 1, tzinfo=cst)).tz_convert("UTC"),
                    "tonnes": t * (year - 2020),
                    "details": {"region": region, "sector": sector},
                }
            )
    return pd.DataFrame(rows)


def test_emissions_by_sector_region_and_target_region() -> None:
    from zoneinfo import ZoneInfo

    table = emission_table(_emission_rows(), ZoneInfo("Asia/Shanghai"))
    assert list(table["start"].dt.year.unique()) == [2022, 2023]  # local new year, not UTC
    by_sector = emissions_by(table, "sector")
    assert by_sector.loc[by_sector.index[1], "1.A.1.a"] == 300
    by_province = emissions_by(table, "region", "province")
    assert list(by_province.columns) == ["CN-BJ", "CN-HE"]
    assert list(by_province["CN-BJ"]) == [300, 450]
    by_city = emissions_by(table, "region", "city")
    assert list(by_city.columns) == ["110100", "130100"]
    assert annual_of_region(table, "CN-BJ").to_dict() == {2022: 300, 2023: 450}
    assert annual_of_region(table, "110108").to_dict() == {2022: 100, 2023: 150}
    assert emission_table(pd.DataFrame(), ZoneInfo("UTC")).empty
    # issue 12: what a roll-up leaves out is listed, not dropped silently
    assert left_out_of(table, "city").empty
    coarse = table.assign(region=table["region"].where(table["facility"] != "P1", "CN-BJ"))
    assert list(left_out_of(coarse, "city").index) == ["P1"]
    assert (
        left_out_of(coarse, "city")["P1"] == coarse.loc[coarse["facility"] == "P1", "tonnes"].sum()
    )


def test_target_chart_joins_projection_to_history() -> None:
    history = pd.Series({2022: 10.0, 2023: 12.0})
    projection = pd.Series({2024: 14.0, 2025: 16.0})
    required = pd.Series({2024: 6.0, 2025: 0.0})
    frame = target_chart(history, projection, required)
    assert list(frame.index) == [2022, 2023, 2024, 2025]
    assert frame.loc[2023].tolist() == [12.0, 12.0, 12.0]
    assert pd.isna(frame.loc[2022, "projection"]) and frame.loc[2025, "required path"] == 0


def test_one_imported_beijing_year_does_not_judge_the_nation() -> None:
    """Issue 14: "one imported Beijing year flips the national panel to 'on track'": the
    national panel judges the nation against years whose data cover it, or says it has too
    little data; a target warning names its region once ("CN-BJ: CN-BJ: …")."""
    from zoneinfo import ZoneInfo

    import pytest

    from carbon.errors import CarbonError
    from carbon.targets import Target, track_region
    from dashboards.views import annual_by_part

    cst = ZoneInfo("Asia/Shanghai")

    def year(facility: str, region: str, y: int, t: float) -> dict[str, object]:
        start = pd.Timestamp(datetime(y, 1, 1, tzinfo=cst)).tz_convert("UTC")
        return {
            "subject": facility,
            "gas": "CO2e",
            "period": "P1Y",
            "start": start,
            "tonnes": t,
            "details": {"region": region, "sector": "1.A.1.a"},
        }

    # the demo's plants (Tianjin, Jiangsu) in 2025, one Beijing plant imported for 2024 only
    rows = [year("TJ1", "120100", 2025, 1e6), year("JS1", "320100", 2025, 2e6)]
    rows.append(year("BJ1", "110105", 2024, 5e6))
    table = emission_table(pd.DataFrame(rows), cst)
    by_part = annual_by_part(table, "CN")
    assert sorted(by_part.columns) == ["CN-BJ", "CN-JS", "CN-TJ"]
    # the old panel: 2024 (Beijing alone, 5e6) → 2025 (the rest, 3e6) reads as falling
    assert annual_of_region(table, "CN").to_dict() == {2024: 5e6, 2025: 3e6}
    with pytest.raises(CarbonError) as err:
        track_region(by_part, Target("CN"))
    message = str(err.value)
    assert message.startswith("CN: too little data") and "2024 lacks CN-JS, CN-TJ" in message
    with pytest.raises(CarbonError) as err:
        track_region(annual_by_part(table, "CN-BJ"), Target("CN-BJ"))
    assert str(err.value).count("CN-BJ:") == 1
    # with every province in both years the nation is judged on its own totals
    rows += [year("TJ1", "120100", 2024, 1.5e6), year("JS1", "320100", 2024, 2.5e6)]
    rows.append(year("BJ1", "110105", 2025, 4e6))
    tracking = track_region(
        annual_by_part(emission_table(pd.DataFrame(rows), cst), "CN"), Target("CN")
    )
    assert tracking.history.to_dict() == {2024: 9e6, 2025: 7e6}


def test_sectors_provinces_and_water_parameters_by_name() -> None:
    """Issue 14: "sectors appear as IPCC codes, provinces as ISO codes, water parameters as
    ``codmn``"."""
    from dashboards.views import region_label, sector_label, water_parameter_label

    assert sector_label("1.A.1.a") == "Public electricity and heat production (1.A.1.a)"
    assert sector_label("2.A.1").startswith("Cement production")
    assert region_label("CN-BJ") == "Beijing" and region_label("CN") == "China"
    assert region_label("320100") == "Jiangsu · 320100"
    assert region_label("grid:north") == "North China grid"
    assert water_parameter_label("codmn") == "Permanganate index (CODMn)"
    assert water_parameter_label("not-a-parameter") == "not-a-parameter"


def test_the_time_axis_reads_real_times() -> None:
    """Issue 14: "the time axis reads ':01 :02'": the chart's time axis has an explicit
    format of real times (hours and minutes for a live window, dates, months, years)."""
    from dashboards.views import time_chart, time_format

    minutes = pd.date_range("2026-12-02 10:00", periods=90, freq="min")
    assert time_format(minutes) == "%H:%M"
    assert time_format(pd.date_range("2026-11-25", periods=7 * 24, freq="h")) == "%m-%d %H:%M"
    assert time_format(pd.date_range("2026-01-01", periods=12, freq="MS")) == "%Y-%m-%d"
    assert time_format(pd.date_range("2020-01-01", periods=5, freq="YS")) == "%Y-%m"
    frame = pd.DataFrame({"measured": range(90), "corrected": range(90)}, index=minutes)
    spec = time_chart(frame, y_label="PM2.5", x_label="time (Asia/Shanghai)").to_dict()
    x = spec["encoding"]["x"]
    assert x["type"] == "temporal" and x["axis"]["format"] == "%H:%M"
    assert x["title"] == "time (Asia/Shanghai)"
    years = pd.DataFrame({"history": [1.0, 2.0]}, index=pd.to_datetime(["2024", "2025"]))
    spec = time_chart(years, y_label="t", x_label="year", fmt="%Y").to_dict()
    assert spec["encoding"]["x"]["axis"]["format"] == "%Y"


def test_an_alert_says_which_hour_or_day_it_is_about() -> None:
    from zoneinfo import ZoneInfo

    from dashboards.views import alert_period

    tz = ZoneInfo("Asia/Shanghai")
    hour = {"start": "2026-12-02T02:00:00+00:00"}
    assert alert_period("", hour, tz) == "2026-12-02 10:00–11:00 CST"
    assert alert_period("P1D", {"start": "2026-11-30T16:00:00+00:00"}, tz) == "2026-12-01"
    assert alert_period("", {}, tz) == alert_period("", None, tz) == "—"


def test_current_rows_keep_the_columns_of_an_empty_frame() -> None:
    from dashboards.views import current_rows

    empty = pd.DataFrame(columns=["subject", "start", "value"])
    assert list(current_rows(empty, NOW).columns) == ["subject", "start", "value"]
    rows = pd.DataFrame(
        {"subject": ["A", "B"], "start": [NOW - timedelta(hours=2), NOW - timedelta(hours=4)]}
    )
    assert list(current_rows(rows, NOW)["subject"]) == ["A"]


def test_the_city_ranking_ranks_current_hours_and_lists_old_ones_after() -> None:
    from zoneinfo import ZoneInfo

    from dashboards.views import ranking

    rows = _aqi_rows().iloc[1:]  # A at 02:00 (160), B at 01:00 (75), C at 01:00 (NA)
    now = pd.Timestamp("2026-11-28 04:30", tz="UTC").to_pydatetime()  # 01:00 ended 2.5 h ago
    ranked = ranking(rows, now, ZoneInfo("Asia/Shanghai"))
    assert list(ranked["city"]) == ["A", "B", "C"]
    assert list(ranked["rank"]) == [1, pd.NA, pd.NA]
    assert ranked["hour"].iloc[0] == "2026-11-28 10:00–11:00 CST"
    assert ranked["hour"].iloc[1].endswith("out of date")


def test_city_ranking_in_chinese_names_cities_and_pollutants() -> None:
    """Trial finding: on the Chinese page the ranking read ``Zhengzhou`` and ``pm10_1h``."""
    from dashboards.i18n import use
    from dashboards.views import daily_report, latest_per_subject, ranking

    names = {"A": "Zhengzhou", "B": "Xi'an", "C": "Harbin"}
    rows = _aqi_rows().assign(subject=lambda f: f["subject"].map(names))
    with use("zh"):
        ranked = ranking(latest_per_subject(rows))
        daily = daily_report(
            pd.DataFrame(
                {
                    "subject": ["Xi'an"],
                    "start": [pd.Timestamp("2026-11-26 16:00", tz="UTC")],
                    "value": pd.array([120], dtype="Int64"),
                    "level": pd.array([3], dtype="Int64"),
                    "label": ["pm25_24h,pm10_24h"],
                    "details": [{}],
                }
            ),
            {},
            UTC,
        )
    assert list(ranked["城市"]) == ["西安", "郑州", "哈尔滨"]
    assert list(ranked["首要污染物"]) == ["可吸入颗粒物（1小时）", "细颗粒物（1小时）", "—"]
    assert daily.loc[0, "站点/城市"] == "西安"
    assert daily.loc[0, "首要污染物"] == "细颗粒物（24小时）、可吸入颗粒物（24小时）"


def test_the_live_page_opens_on_a_station_that_is_sending() -> None:
    """Trial finding: after the walkthrough the Live page opened on ``BJ-DC``, imported from
    a file of an earlier day, not on a station sending now."""
    latest = pd.DataFrame(
        {
            "station": ["BJ-DC", "BJ-DC", "DEMO-W", "DEMO-X", "DEMO-Y"],
            "parameter": ["pm25", "no2", "ph", "pm25", "pm25"],
            "time": pd.to_datetime(
                [NOW - timedelta(days=3)] * 2 + [NOW, NOW - timedelta(minutes=1), NOW],
                utc=True,
            ),
        }
    )
    assert default_choice(latest, ["BJ-DC", "DEMO-W", "DEMO-X", "DEMO-Y"]) == ("DEMO-X", "pm25")


NAMES = {
    "SIM-ZHENGZHOU": "郑州空气站（模拟） Zhengzhou air (simulated)",
    "DEMO-JN-STEEL": "济南钢厂 Jinan steel",
    "SOIL-1": "Plain name",
}


def test_stations_and_plants_are_shown_by_name_with_their_id() -> None:
    """New-user trial of issue 14: the Alerts, Review, Soil and Carbon pages showed ids
    (``SIM-ZHENGZHOU``, ``DEMO-JN-STEEL``) where a name should be."""
    from dashboards.i18n import use
    from dashboards.views import station_label, station_name

    with use("zh"):
        assert station_label("SIM-ZHENGZHOU", NAMES) == "郑州空气站（模拟） (SIM-ZHENGZHOU)"
        assert station_label("DEMO-JN-STEEL", NAMES) == "济南钢厂 (DEMO-JN-STEEL)"
        assert station_name(NAMES["DEMO-JN-STEEL"]) == "济南钢厂"
    assert station_label("SIM-ZHENGZHOU", NAMES) == "Zhengzhou air (simulated) (SIM-ZHENGZHOU)"
    assert station_label("SOIL-1", NAMES) == "Plain name (SOIL-1)"
    assert station_label("UNKNOWN", NAMES) == "UNKNOWN"
    assert station_label(None, NAMES) == ""


def test_the_alerts_table_names_the_station() -> None:
    from zoneinfo import ZoneInfo

    from dashboards import duty
    from dashboards.i18n import use

    row = {
        "id": 1,
        "state": "open",
        "severity": "warning",
        "rule": "offline",
        "station": "SIM-ZHENGZHOU",
        "parameter": None,
        "value": 90.0,
        "details": {"last_seen": "2026-12-02T01:00:00+00:00"},
        "message": "no data for 90 minutes",
        "opened_at": NOW,
        "last_seen": NOW,
        "acknowledged_at": None,
        "acknowledged_by": None,
        "acknowledge_comment": None,
        "closed_at": None,
        "closed_by": None,
        "close_comment": None,
    }
    with use("zh"):
        table = duty.alert_table([row], ZoneInfo("Asia/Shanghai"), NAMES)
    assert list(table["站点"]) == ["郑州空气站（模拟） (SIM-ZHENGZHOU)"]


def _cems_check() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "facility": ["DEMO-JN-STEEL", "DEMO-JN-STEEL"],
            "stations": ["SIM-ZHENGZHOU", "SIM-ZHENGZHOU"],
            "measured_t": [1200.0, 300.0],
            "substituted_hours": [0, 2],
            "calculated_t": [1011.6, None],
            "relative_difference": [0.18623, None],
            "finding": [True, True],
            "threshold": [0.05, 0.05],
            "reason": ["difference above the threshold", "CEMS without calculation"],
            "compared_hours": [720, 30],
        }
    )


def test_the_cems_table_names_plants_and_gives_the_threshold_in_percent() -> None:
    """New-user trial of issue 14: "差异 %" 18.62 beside a threshold written as a fraction
    (0.05); plants by id."""
    from dashboards.emissions import cems_table
    from dashboards.i18n import use

    with use("zh"):
        table = cems_table(_cems_check(), NAMES, NAMES)
    assert table["差异 %"].iloc[0] == 18.62
    assert list(table["阈值 %"]) == [5.0, 5.0]
    assert table["排放单位"].iloc[0] == "济南钢厂 (DEMO-JN-STEEL)"
    assert table["排放口"].iloc[0] == "郑州空气站（模拟） (SIM-ZHENGZHOU)"


def test_a_missing_number_is_a_dash_and_the_column_stays_numeric() -> None:
    """New-user trial of issue 14: the carbon data table showed ``None`` for months without
    CEMS readings."""
    from dashboards.emissions import _chart_table
    from dashboards.views import dashes

    frame = pd.DataFrame(
        {"CEMS measured": [None, 1200.04], "calculated (scope 1)": [980.0, 1011.6]},
        index=pd.to_datetime(["2026-10-01", "2026-11-01"]),
    )
    shown = dashes(_chart_table(frame, "month", "%Y-%m"))
    text = shown.to_string()
    assert "—" in text and "None" not in text and "nan" not in text
    assert "1200.0" in text
    assert shown.data["CEMS measured"].dtype.kind == "f"  # numeric: sorts as numbers


def test_the_live_page_writes_units_as_readers_do_and_rounds_values() -> None:
    """New-user trial of issue 14: the live page showed ``ug/m3``, ``degC`` and three
    decimals."""
    from dashboards.views import parameter_label, reading_value, unit_label

    assert unit_label("ug/m3") == "µg/m³"
    assert unit_label("mg/m3") == "mg/m³"
    assert unit_label("degC") == "°C"
    assert unit_label("deg") == "°"
    assert unit_label("uS/cm") == "µS/cm"
    assert unit_label("Nm3/h") == "Nm³/h"
    assert unit_label("pH") == ""
    assert parameter_label("pm25") == "PM2.5 (µg/m³)"
    assert parameter_label("co") == "Carbon monoxide (mg/m³)"
    assert "ug" not in parameter_label("so2") and "m3" not in parameter_label("so2")
    assert [reading_value(v) for v in (35.127, 7.979, 0.8534, 12.345, 1013.4)] == [
        35.1,
        7.98,
        0.853,
        12.3,
        1013.0,
    ]
    assert reading_value(None) is None


def _catalogue(principal: access.Principal) -> list[dict[str, Any]]:
    """The catalogue items ``principal`` may read, over a day of air readings around Beijing
    (links under the gateway ``http://gw:8080``), as the open-data page gets them."""
    from api.datasets import describe, readable

    first, last = datetime(2026, 11, 30, 16, tzinfo=UTC), datetime(2026, 12, 1, 15, tzinfo=UTC)
    extents = {
        "readings": {"air": (first, last)},
        "tables": {},
        "bounds": {"air": (116.2, 39.7, 116.6, 40.1)},
        "stations_updated": last,
        "emissions": (None, None, None),
        "layers": [],
        "layer_bounds": None,
    }
    tz = ZoneInfo("Asia/Shanghai")
    return [describe(e, extents, "http://gw:8080", tz) for e in readable(principal)]


def test_the_open_data_page_lists_what_the_visitor_may_read() -> None:
    """Issue 16, item 6: "the catalogue … for the public": an anonymous visitor gets the public
    datasets only (not the CEMS readings, soil risk, alerts or region emissions); an analyst
    those too, up to sensitive; the same :func:`access.authorize` as the API."""
    anonymous = {i["id"] for i in _catalogue(access.ANONYMOUS)}
    assert {"stations", "readings-air", "city-aqi-daily", "water-classes-daily"} <= anonymous
    assert not anonymous & {"readings-cems", "soil-risk", "alerts", "region-emissions"}
    analyst = {i["id"] for i in _catalogue(access.user("ana", access.Role.ANALYST))}
    assert {"readings-cems", "soil-risk", "alerts", "region-emissions"} <= analyst


def test_the_catalogue_table_gives_licence_coverage_in_bureau_time_and_the_area() -> None:
    """Each dataset's row: the page's language's title, grade, licence, the first and last
    reading in the bureau's zone (UTC 16:00 is 00:00 CST the next day), last update, the
    bounding box in words, formats by name; each format a link to the gateway's download."""
    from dashboards.i18n import use
    from dashboards.opendata import catalogue_table, downloads

    items = _catalogue(access.ANONYMOUS)
    air = next(i for i in items if i["id"] == "readings-air")
    table = catalogue_table(items, ZoneInfo("Asia/Shanghai")).set_index("id")
    row = table.loc["readings-air"]
    assert row["dataset"] == "Readings: ambient air"
    assert row["grade"] == "public" and row["licence"] == "CC-BY-4.0"
    assert row["coverage"] == "2026-12-01 00:00 CST – 2026-12-01 23:00 CST"
    assert row["last update"] == "2026-12-01 23:00 CST"
    assert row["area (WGS 84)"] == "lon 116.20–116.60, lat 39.70–40.10"
    assert row["formats"] == "CSV, Parquet, Excel (xlsx), NetCDF"
    assert table.loc["readings-water", "coverage"] == "—"  # no water reading yet
    assert downloads(air) == [
        (name, f"http://gw:8080/api/v1/datasets/readings-air/download?format={f}")
        for name, f in (
            ("CSV", "csv"),
            ("Parquet", "parquet"),
            ("Excel (xlsx)", "xlsx"),
            ("NetCDF", "netcdf"),
        )
    ]
    with use("zh"):
        zh = catalogue_table(items, ZoneInfo("Asia/Shanghai")).set_index("id")
    assert zh.loc["readings-air", "数据集"] == "环境空气监测数据"
    assert zh.loc["readings-air", "分级"] == "公开"
    assert zh.loc["readings-air", "空间范围 (WGS 84)"] == "经度 116.20–116.60，纬度 39.70–40.10"
