"""Activity files → inventory rows traceable to records and factors → roll-ups by region."""

from __future__ import annotations

from pathlib import Path

import pytest

from carbon import factors
from carbon.activity import read_activity, read_facilities
from carbon.inventory import account, region_at, rollup, rollup_exclusions

FACILITIES = """id,name,region,sector,lon,lat
P1,Chaoyang plant,110105,1.A.1.a,116.48,39.92
P2,Haidian works,110108,1.A.2,116.30,39.96
P3,Shanghai office,CN-SH,1.A.4.a,121.47,31.23
BAD,Nowhere,CN-ZZ,1.A.1.a,0,0
"""

ACTIVITY = """facility,start,end,activity,quantity,unit,source,method
P1,2023-01-01,2023-04-01,diesel,1000,t,meter 7,ipcc
P1,2023-01-01,2023-04-01,natural_gas,1000000,Nm3,gas bill,china
P2,2023-01-01,2024-01-01,electricity,10000,MWh,utility,
P3,2022-07-01,2023-07-01,electricity,2000,MWh,utility,
P1,2023-03-01,2023-05-01,diesel,5,t,double-counted,ipcc
P2,2023-01-01,2023-02-01,whale_oil,3,t,?,
P2,2023-01-01,2023-02-01,diesel,-3,t,?,
P9,2023-01-01,2023-02-01,diesel,3,t,?,
P2,2023-01-01,2023-02-01,diesel,3,t,meter,ipcc
"""


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "facilities.csv").write_text(FACILITIES)
    (tmp_path / "activity.csv").write_text(ACTIVITY)
    return tmp_path / "facilities.csv", tmp_path / "activity.csv"


def test_inventory_from_files_is_traceable_and_reports_what_it_left_out(
    files: tuple[Path, Path],
) -> None:
    facilities, bad_facilities = read_facilities(files[0])
    assert [f.id for f in facilities] == ["P1", "P2", "P3"]
    assert (
        bad_facilities[0].where.endswith("line 5") and "unknown region" in bad_facilities[0].reason
    )
    records, rejected = read_activity(files[1], facilities)
    reasons = {r.where: r.reason for r in rejected}
    assert "overlaps record activity.csv:2" in reasons["activity.csv:6"]
    assert "unknown activity 'whale_oil'" in reasons["activity.csv line 7"]
    assert "negative quantity" in reasons["activity.csv line 8"]
    assert "unknown facility 'P9'" in reasons["activity.csv line 9"]

    rows, refused = account(records, facilities)
    # P2 is manufacturing (1.A.2): IPCC CH4/N2O factors for it are not verified → reported
    assert [r.where for r in refused] == ["activity.csv:10"] and "Tables 2.3" in refused[0].reason
    diesel = rows[(rows["record"] == "activity.csv:2") & (rows["gas"] == "CO2")].iloc[0]
    assert diesel["tonnes"] == pytest.approx(3186.3) and diesel["scope"] == 1
    assert diesel["factor_ids"].startswith("ipcc-ncv-diesel;ipcc-co2-diesel")
    gas = rows[rows["record"] == "activity.csv:3"]
    assert list(gas["gas"]) == ["CO2"] and round(gas["tonnes"].iloc[0], 2) == 2165.02
    power = rows[rows["record"] == "activity.csv:4"].iloc[0]
    assert power["scope"] == 2 and power["tonnes"] == pytest.approx(10_000 * 0.5554)
    assert power["fallbacks"] == "grid-cn-bj-2023: region 110108 → CN-BJ"
    # a record spanning two years is split between them, each with its year's factor
    split = rows[rows["record"] == "activity.csv:5"].set_index("year")
    assert split.loc[2022, "tonnes"] == pytest.approx(2000 * 184 / 365 * 0.5366)
    shanghai_2023 = factors.grid("CN-SH", 2023).value
    assert split.loc[2023, "tonnes"] == pytest.approx(2000 * 181 / 365 * shanghai_2023)
    assert (
        "grid-cn-2022" in split.loc[2022, "factor_ids"]
        and "grid-cn-sh-2023" in split.loc[2023, "factor_ids"]
    )

    # roll-ups: province and nation keep the total; a city inventory has what lies in cities
    total = rows["co2e_t"].sum()
    for level in ("province", "nation"):
        assert rollup(rows, level)["co2e_t"].sum() == pytest.approx(total)
    in_cities = rows.loc[rows["region"] != "CN-SH", "co2e_t"].sum()
    assert rollup(rows, "city")["co2e_t"].sum() == pytest.approx(in_cities)
    cities = rollup(rows, "city", by=("scope",)).set_index(["region", "scope"])
    assert set(cities.index.get_level_values(0)) == {"110100"}  # P3 is province-level only
    nation = rollup(rows, "nation", by=("gas",)).set_index("gas")["co2e_t"]
    assert set(nation.index) == {"CO2", "CH4", "N2O"}


def test_rollup_lists_the_coarser_region_rows_it_leaves_out(files: tuple[Path, Path]) -> None:
    """Issue 12: "the carbon roll-up drops coarser-region rows without listing them" — each
    facility (or record) whose region is coarser than the level is listed with the reason and
    its t CO2e."""
    facilities, _ = read_facilities(files[0])
    records, _ = read_activity(files[1], facilities)
    rows, _ = account(records, facilities)
    (p3,) = rollup_exclusions(rows, "city")
    shanghai = rows.loc[rows["facility"] == "P3", "co2e_t"].sum()
    assert p3.where == "facility P3"
    assert "region CN-SH is coarser than the city roll-up" in p3.reason
    assert f"{shanghai:,.3f} t CO2e" in p3.reason
    assert rollup(rows, "city")["co2e_t"].sum() + shanghai == pytest.approx(rows["co2e_t"].sum())
    county = {e.where for e in rollup_exclusions(rows, "county")}
    assert county == {"facility P3"}  # P1 and P2 lie in counties
    assert rollup_exclusions(rows, "province") == [] == rollup_exclusions(rows, "nation")


def test_region_levels() -> None:
    assert region_at("110105", "county") == "110105"
    assert region_at("110105", "city") == "110100"
    assert region_at("110105", "province") == "CN-BJ"
    assert region_at("CN-SH", "city") is None
    assert region_at("CN-SH", "nation") == "CN"


def test_many_records_at_once_equal_one_at_a_time() -> None:
    """``account_frame`` (one accounting per distinct combination, multiplied through) gives
    what ``account`` gives record by record."""
    from datetime import timedelta

    import pandas as pd

    from carbon.activity import ActivityRecord, Facility
    from carbon.inventory import account_frame

    facilities = [
        Facility("F1", "", "110105", "1.A.1.a"),
        Facility("F2", "", "CN-SH", "1.A.1.c"),
        Facility("F3", "", "440300", "1.A.1.a"),
    ]
    t0 = pd.Timestamp("2023-03-01", tz="Asia/Shanghai").to_pydatetime()
    records = []
    for i in range(60):
        f = facilities[i % 3]
        activity, unit = [("diesel", "t"), ("natural_gas", "Nm3"), ("electricity", "MWh")][
            i % 3 if i % 2 else 0
        ]
        start = t0 + timedelta(hours=i)
        records.append(
            ActivityRecord(
                f"r{i}", f.id, start, start + timedelta(hours=1), activity, 1.5 + i, unit
            )
        )
    one_by_one, rejected = account(records, facilities)
    assert rejected == []
    frame = pd.DataFrame(
        {
            "facility": [r.facility for r in records],
            "start": [r.start for r in records],
            "activity": [r.activity for r in records],
            "quantity": [r.quantity for r in records],
            "unit": [r.unit for r in records],
        }
    )
    at_once, failed = account_frame(frame, pd.DataFrame([vars(f) for f in facilities]))
    assert failed.empty
    a = one_by_one.groupby(["facility", "gas", "scope"])["co2e_t"].sum()
    b = at_once.groupby(["facility", "gas", "scope"])["co2e_t"].sum()
    pd.testing.assert_series_equal(a, b, rtol=1e-12)
    assert at_once["records"].sum() == len(records)
    assert rollup(at_once, "nation")["co2e_t"].sum() == pytest.approx(one_by_one["co2e_t"].sum())


def test_process_records_are_scope_1_process_co2(tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_text("id,region,sector\nC1,130100,2.A.1\nL1,130100,2.A.2\n")
    (tmp_path / "a.csv").write_text(
        "facility,start,end,activity,quantity,unit,emission_factor\n"
        "C1,2023-01-01,2023-02-01,cement_clinker,1000,t,\n"
        "C1,2023-01-01,2023-02-01,lime,10,t,0.7\n"
        "L1,2023-01-01,2023-02-01,clinker,10,t,\n"
        "L1,2023-01-01,2023-02-01,lime,10,t,zero\n"
    )
    facilities, _ = read_facilities(tmp_path / "f.csv")
    records, rejected = read_activity(tmp_path / "a.csv", facilities)
    assert ["unknown activity 'clinker'" in r.reason for r in rejected] == [True, False]
    assert "emission_factor 'zero' is not a number" in rejected[1].reason
    rows, refused = account(records, facilities)
    assert refused == []
    by = rows.set_index(["record", "gas"])
    assert by.loc[("a.csv:2", "CO2"), "tonnes"] == pytest.approx(520.0)
    assert by.loc[("a.csv:2", "CO2"), "factor_ids"] == "ipcc-2006-process-cement_clinker"
    assert by.loc[("a.csv:3", "CO2"), "tonnes"] == pytest.approx(7.0)
    assert set(rows["scope"]) == {1}


def test_demo_plants_account_cleanly_and_own_the_demo_stacks() -> None:
    from datetime import UTC, datetime

    from ecosense.demo import demo_carbon, demo_stations

    facilities, records, targets = demo_carbon(datetime(2026, 11, 28, tzinfo=UTC))
    rows, refused = account(records, facilities)
    assert refused == [] and not rows.empty
    assert {r.start.year for r in records} == {2022, 2023, 2024, 2025, 2026}
    assert max(r.end for r in records).month == 11  # up to the last complete month
    ids = {f.id for f in facilities}
    stacks = [s for s in demo_stations() if s.kind == "cems"]
    assert {s.attributes["facility"] for s in stacks} == ids
    assert {"CN", "CN-TJ"} <= {t.region for t in targets}


def test_daily_activity_from_a_plant_meter() -> None:
    from datetime import UTC, datetime, timedelta

    import pandas as pd

    from carbon.activity import daily_from_meter

    day = datetime(2026, 3, 1, tzinfo=UTC) - timedelta(hours=8)  # 1 March, Beijing time
    hours = [day + timedelta(hours=h) for h in range(72)]
    frame = pd.DataFrame(
        {
            "start": hours,
            "value": [100.0] * 24 + [100.0 if h % 2 else 999.0 for h in range(24)] + [5.0] * 24,
            "valid": [True] * 24 + [bool(h % 2) for h in range(24)] + [False] * 24,
            "unit": "Nm3/h",
        }
    )
    records, rejected = daily_from_meter("P1", "M1", "fuel_gas_flow", "natural_gas", frame)
    assert [r.quantity for r in records] == [2400.0, 2400.0]  # invalid hours take the day's mean
    assert records[0].id == "stream:M1/fuel_gas_flow/2026-03-01" and records[0].unit == "Nm3"
    assert records[1].source == "stream M1/fuel_gas_flow: 12 of 24 hours measured"
    assert records[0].end - records[0].start == timedelta(days=1)
    assert [r.reason for r in rejected] == ["no valid hour that day"]
    # a day of 23 hours (daylight saving) counts 23 hours
    berlin = pd.DataFrame(
        {
            "start": pd.date_range("2026-03-29", periods=23, freq="h", tz="Europe/Berlin"),
            "value": 10.0,
            "valid": True,
            "unit": "kW",
        }
    )
    (r,), _ = daily_from_meter("P1", "M1", "power_active", "electricity", berlin, "Europe/Berlin")
    assert r.quantity == 230.0 and r.unit == "kWh"
    bad, why = daily_from_meter("P1", "M1", "x", "diesel", berlin.assign(unit="L/s"), "UTC")
    assert bad == [] and "rate unit" in why[0].reason
