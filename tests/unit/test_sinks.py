"""Land-use sinks by the stock-difference method: worked values, bad input, job files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from carbon.errors import CarbonError
from carbon.jobfile import run_job
from carbon.sinks import annual_rows, read_changes, read_stocks, stock_difference
from tests.unit.test_inventory import ACTIVITY, FACILITIES
from tests.unit.test_jobfile import JOB

STOCKS = """class,carbon_t_per_ha,source
forest,120,planner's provincial forest survey 2020
cropland,50,planner's soil survey 2019
water,0,by definition
"""

CHANGES = """region,from_class,to_class,start_year,end_year,area,unit
110105,cropland,forest,2020,2025,1000,ha
110105,forest,forest,2020,2025,5000,ha
CN-BJ,forest,cropland,2020,2025,2,km2
CN-BJ,forest,wetland,2020,2025,10,ha
CN-ZZ,forest,cropland,2020,2025,10,ha
CN-BJ,forest,cropland,2025,2020,10,ha
CN-BJ,forest,cropland,2020,2025,lots,ha
CN-BJ,forest,cropland,2020,2025,3,acre-feet
"""


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "stocks.csv").write_text(STOCKS)
    (tmp_path / "changes.csv").write_text(CHANGES)
    return tmp_path


def test_stock_difference_worked_values(files: Path) -> None:
    changes, rejected = read_changes(files / "changes.csv")
    reasons = [r.reason for r in rejected]
    assert len(changes) == 4 and len(reasons) == 4
    assert "unknown region" in reasons[0] and "not after start_year" in reasons[1]
    assert "is not an area" in reasons[2] and "unit must be one of" in reasons[3]
    rows, refused = stock_difference(changes, read_stocks(files / "stocks.csv"))
    assert [r.reason for r in refused] == ["no carbon stock for class wetland"]
    by = rows.set_index("record")
    # afforestation: 1,000 ha × (120 − 50) t C/ha = 70,000 t C over 5 years → removal
    assert by.loc["changes.csv:2", "delta_c_t"] == pytest.approx(70_000)
    assert by.loc["changes.csv:2", "co2_t_per_year"] == pytest.approx(-70_000 * 44 / 12 / 5)
    assert by.loc["changes.csv:3", "co2_t_per_year"] == 0  # unchanged land
    # deforestation of 2 km² = 200 ha: emits 200 × 70 × 44/12 / 5 t CO2 a year
    assert by.loc["changes.csv:4", "co2_t_per_year"] == pytest.approx(200 * 70 * 44 / 12 / 5)
    assert "survey" in by.loc["changes.csv:4", "stock_sources"]
    annual = annual_rows(rows)
    assert sorted(set(annual["year"])) == [2020, 2021, 2022, 2023, 2024]
    assert annual["tonnes"].sum() == pytest.approx(rows["co2_t_per_year"].sum() * 5)
    assert set(annual["sector"]) == {"3.B"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("class,carbon_t_per_ha,source\nforest,-1,x\n", "non-negative"),
        ("class,carbon_t_per_ha,source\nforest,1,\n", "source"),
        ("class,carbon_t_per_ha,source\nforest,1,x\nforest,2,y\n", "twice"),
        ("class,carbon_t_per_ha\nforest,1\n", "missing columns source"),
    ],
)
def test_bad_stock_tables(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "s.csv").write_text(text)
    with pytest.raises(CarbonError, match=message):
        read_stocks(tmp_path / "s.csv")


def test_job_file_with_sinks(files: Path) -> None:
    (files / "facilities.csv").write_text(FACILITIES)
    (files / "activity.csv").write_text(ACTIVITY)
    (files / "job.toml").write_text(
        JOB.replace(
            "[outputs]", '[sinks]\nland_change = "changes.csv"\nstocks = "stocks.csv"\n\n[outputs]'
        )
    )
    result = run_job(files / "job.toml")
    land = result.rows[result.rows["sector"] == "3.B"]
    assert set(land["year"]) == {2023}  # only the job's year of the 2020-2025 changes
    assert land["tonnes"].sum() == pytest.approx((-70_000 + 200 * 70) * 44 / 12 / 5)
    assert any("wetland" in r.reason for r in result.excluded)
    beijing = result.inventory[
        (result.inventory["region"] == "CN-BJ") & (result.inventory["sector"] == "3.B")
    ]
    assert beijing["co2e_t"].sum() == pytest.approx(land["co2e_t"].sum())
    report = (files / "out" / "report.html").read_text()
    assert "3.B" in report and "#1565c0" in report  # a removal drawn as such
    assert "wetland" in pd.read_csv(files / "out" / "excluded.csv")["reason"].str.cat()
