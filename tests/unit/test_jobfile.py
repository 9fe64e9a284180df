"""Planners' job files: ``ecosense carbon run JOB.toml`` end to end on files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from carbon.errors import CarbonError
from carbon.jobfile import run_job
from tests.unit.test_inventory import ACTIVITY, FACILITIES

JOB = """
[job]
name = "Test inventory 2023"
start = "2023-01-01"
end = "2024-01-01"
facilities = "facilities.csv"
activity = ["activity.csv"]
gwp = "AR6"
level = "province"

[outputs]
dir = "out"
formats = ["csv", "xlsx", "html"]
"""


@pytest.fixture
def job(tmp_path: Path) -> Path:
    (tmp_path / "facilities.csv").write_text(FACILITIES)
    (tmp_path / "activity.csv").write_text(ACTIVITY)
    (tmp_path / "job.toml").write_text(JOB)
    return tmp_path / "job.toml"


def test_job_file_outputs(job: Path) -> None:
    result = run_job(job)
    out = job.parent / "out"
    assert {f.name for f in result.files} == {
        "rows.csv",
        "inventory.csv",
        "excluded.csv",
        "inventory.xlsx",
        "report.html",
    }
    rows = pd.read_csv(out / "rows.csv")
    # P3's record from 2022-07-01 counts only for its 2023 part (181 of 365 days)
    p3 = rows[rows["facility"] == "P3"]
    assert list(p3["year"]) == [2023]
    assert p3["tonnes"].iloc[0] == pytest.approx(2000 * 181 / 365 * 0.5737, rel=1e-3)
    assert "gwp-ar6-ch4" in rows.loc[rows["gas"] == "CH4", "factor_ids"].iloc[0]
    excluded = pd.read_csv(out / "excluded.csv")
    assert len(excluded) == 6 and excluded["reason"].str.contains("unknown region").any()
    sheets = pd.read_excel(out / "inventory.xlsx", sheet_name=None)
    assert set(sheets) == {"inventory", "rows", "excluded"}
    assert sheets["inventory"]["co2e_t"].sum() == pytest.approx(result.total_co2e_t)
    report = (out / "report.html").read_text()
    assert (
        "<svg" in report
        and "<script" not in report
        and "http://" not in report.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert "Test inventory 2023" in report and "unknown activity" in report


def test_a_city_job_lists_the_province_level_facility_it_leaves_out(job: Path) -> None:
    """Issue 12: roll-up exclusions listed with their reason (excluded.csv and the report)."""
    job.write_text(JOB.replace('level = "province"', 'level = "city"'))
    result = run_job(job)
    out = job.parent / "out"
    excluded = pd.read_csv(out / "excluded.csv")
    p3 = excluded[excluded["where"] == "facility P3"]
    assert len(excluded) == 7 and len(p3) == 1
    assert "coarser than the city roll-up" in p3["reason"].iloc[0]
    assert "facility P3" in (out / "report.html").read_text()
    assert result.inventory["co2e_t"].sum() < result.total_co2e_t


def test_accounting_in_parallel_chunks_gives_the_same_inventory(job: Path) -> None:
    plain = run_job(job)
    calls: list[int] = []

    def mapper(fn: Any, plans: list[Any], *args: Any) -> list[Any]:
        calls.append(len(plans))
        return [fn(*args, p) for p in plans]

    chunked = run_job(job, mapper=mapper, chunks_hint=2)
    assert calls == [2]
    key = ["record", "gas", "year"]
    pd.testing.assert_frame_equal(
        plain.rows.sort_values(key).reset_index(drop=True),
        chunked.rows.sort_values(key).reset_index(drop=True),
    )
    pd.testing.assert_frame_equal(plain.inventory, chunked.inventory)
    assert sorted(plain.excluded, key=str) == sorted(chunked.excluded, key=str)


def test_bad_job_files(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text("[job]\nstart = 2023-01-01\n")
    with pytest.raises(CarbonError, match="lacks end, facilities, activity"):
        run_job(tmp_path / "a.toml")
    (tmp_path / "b.toml").write_text("not toml [")
    with pytest.raises(CarbonError):
        run_job(tmp_path / "b.toml")
