"""Dynamic carbon accounting over the store: ``ecosense carbon import`` → the
``carbon-inventory`` job → monthly and annual emissions traceable to records and factor
versions; late corrections and factor updates recompute only what they touch, and keep the
previous value for comparison; CEMS against calculation per facility."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import psycopg
import pytest

from carbon import accounting, factors
from carbon.activity import read_activity, read_facilities
from carbon.inventory import account
from ecosense.cli import main
from pipelines.carbon import WITHOUT_CALCULATION, FacilityPlan, cems_check, facility_inventory
from pipelines.jobs import JobContext, get
from pipelines.runner import Runner
from sensors.observations import Source
from sensors.stations import Station
from store import activity, derived
from store.postgres import PostgresStore

SOURCE = Source("file", None, "test", "meter.csv")

pytestmark = pytest.mark.integration
CST = ZoneInfo("Asia/Shanghai")

FACILITIES = """id,name,region,sector
P1,Chaoyang power,110105,1.A.1.a
C1,Hebei cement,130100,2.A.1
"""
ACTIVITY = """facility,start,end,activity,quantity,unit,method
P1,2023-01-01,2023-04-01,diesel,900,t,ipcc
P1,2023-01-01,2024-01-01,electricity,12000,MWh,
C1,2023-12-01,2024-02-01,cement_clinker,6200,t,
C1,2023-01-01,2023-02-01,whale_oil,1,t,
"""
TARGETS = "region,peak_year,neutral_year\nCN-BJ,2025,2050\n"


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    with Runner(local="threads", workers=2) as r:
        yield r


@pytest.fixture
def imported(cli_env: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    tmp_path = cli_env
    (tmp_path / "facilities.csv").write_text(FACILITIES)
    (tmp_path / "activity.csv").write_text(ACTIVITY)
    (tmp_path / "targets.csv").write_text(TARGETS)
    rc = main(
        [
            "carbon", "import", "--facilities", str(tmp_path / "facilities.csv"),
            "--activity", str(tmp_path / "activity.csv"),
            "--targets", str(tmp_path / "targets.csv"),
        ]
    )  # fmt: skip
    assert rc == 1  # the whale oil line is rejected, the rest stored
    assert "activity.csv line 5: unknown activity 'whale_oil'" in capsys.readouterr().err
    return tmp_path


def _emissions(url: str, subject: str) -> pd.DataFrame:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT gas, period, start, tonnes, details, computed_at FROM emissions"
            " WHERE source = 'calculation' AND subject = %s ORDER BY period, gas, start",
            (subject,),
        ).fetchall()
    return pd.DataFrame(rows, columns=["gas", "period", "start", "tonnes", "details", "at"])


def test_inventory_job_over_the_store(imported: Path, database_url: str, runner: Runner) -> None:
    with psycopg.connect(database_url) as conn:
        assert [f.id for f in activity.load_facilities(conn)] == ["C1", "P1"]
        assert len(activity.load_activity(conn)) == 3
        assert [t.region for t in activity.load_targets(conn)] == ["CN-BJ"]
    ctx = JobContext(database_url, runner)
    report = get("carbon-inventory").run(ctx, None, None)
    assert report.errors == [] and report.tasks == 2

    # the annual rows equal the pure inventory of the same files (traceable to records)
    facilities, _ = read_facilities(imported / "facilities.csv")
    records, _ = read_activity(imported / "activity.csv", facilities, natural_ids=True)
    pure, _ = account(records, facilities)
    p1 = _emissions(database_url, "P1")
    year = p1[(p1["period"] == "P1Y") & (p1["start"] == datetime(2023, 1, 1, tzinfo=CST))]
    by_gas = year.set_index("gas")["tonnes"]
    expected = pure[pure["facility"] == "P1"].groupby("gas")["tonnes"].sum()
    for gas in ("CO2", "CH4", "N2O"):
        assert by_gas[gas] == pytest.approx(expected[gas])
    assert by_gas["CO2e"] == pytest.approx(pure[pure["facility"] == "P1"]["co2e_t"].sum())
    details = year.set_index("gas").loc["CO2", "details"]
    assert details["records"] == [
        "P1/diesel/2023-01-01T00:00:00+08:00",
        "P1/electricity/2023-01-01T00:00:00+08:00",
    ]
    assert details["factor_versions"]["grid-cn-bj-2023"] == "2023"  # the provincial factor
    assert details["scope"]["2"] == pytest.approx(12000 * 0.5554)
    assert details["sector"] == "1.A.1.a" and details["region"] == "110105"
    # months: diesel split by duration over Jan-Mar; electricity over the 12 months
    months = p1[(p1["period"] == "P1M") & (p1["gas"] == "CO2")].set_index("start")["tonnes"]
    assert len(months) == 12 and months.sum() == pytest.approx(by_gas["CO2"])
    jan = datetime(2023, 1, 1, tzinfo=CST)
    diesel = 900 * 43.0 * 74.1 / 1000  # t CO2 of the whole record
    assert months[jan] == pytest.approx(diesel * 31 / 90 + 12000 * 0.5554 * 31 / 365)
    # clinker across the new year: each year its part, with that year's (fallback) factor
    c1 = _emissions(database_url, "C1")
    annual = c1[(c1["period"] == "P1Y") & (c1["gas"] == "CO2")].set_index("start")["tonnes"]
    assert annual[datetime(2023, 1, 1, tzinfo=CST)] == pytest.approx(3100 * 0.52)
    assert annual[datetime(2024, 1, 1, tzinfo=CST)] == pytest.approx(3100 * 0.52)

    # running again changes nothing
    before = pd.concat([p1, c1])
    again = get("carbon-inventory").run(ctx, None, None)
    assert again.rows == 0 and again.errors == []  # (re-planned within the overlap window)
    assert get("carbon-inventory").run(ctx, datetime(2023, 1, 1, tzinfo=CST), None).rows == 0
    after = pd.concat([_emissions(database_url, "P1"), _emissions(database_url, "C1")])
    assert before["at"].tolist() == after["at"].tolist()


def test_late_corrections_and_factor_updates_keep_the_previous_value(
    imported: Path, database_url: str, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = JobContext(database_url, runner, overlap=timedelta(0))
    get("carbon-inventory").run(ctx, None, None)
    c1_before = _emissions(database_url, "C1")
    # the cement plant's December clinker is corrected: only C1 is recomputed
    (imported / "fix.csv").write_text(
        "facility,start,end,activity,quantity,unit\n"
        "C1,2023-12-01,2024-02-01,cement_clinker,6510,t\n"
    )
    assert main(["carbon", "import", "--activity", str(imported / "fix.csv")]) == 0
    report = get("carbon-inventory").run(ctx, None, None)
    assert report.tasks == 1 and report.errors == []
    c1 = _emissions(database_url, "C1")
    dec = c1[(c1["period"] == "P1M") & (c1["gas"] == "CO2")].iloc[0]
    assert dec["tonnes"] == pytest.approx(3255 * 0.52)
    assert dec["details"]["previous"]["tonnes"] == pytest.approx(3100 * 0.52)
    assert len(c1) == len(c1_before)
    # an overlapping record under another id is refused, the stored one kept
    (imported / "clash.csv").write_text(
        "id,facility,start,end,activity,quantity,unit\n"
        "other,C1,2024-01-15,2024-03-01,cement_clinker,1,t\n"
    )
    assert main(["carbon", "import", "--activity", str(imported / "clash.csv")]) == 1

    # a factor update (the 2023 grid factors revised), re-run over the year
    p1_before = _emissions(database_url, "P1")
    real_grid = factors.grid

    def revised(region: str, year: int) -> factors.Factor:
        f = real_grid(region, year)
        return replace(f, value=f.value * 1.1, version="2023-rev1")

    monkeypatch.setattr(accounting.factors, "grid", revised)
    run = get("carbon-inventory").run(
        ctx, datetime(2023, 1, 1, tzinfo=CST), datetime(2024, 1, 1, tzinfo=CST)
    )
    assert run.errors == [] and not run.incremental
    p1 = _emissions(database_url, "P1")
    old = p1_before.set_index(["gas", "period", "start"])["tonnes"]
    new = p1.set_index(["gas", "period", "start"])
    co2 = new.loc[("CO2", "P1Y", datetime(2023, 1, 1, tzinfo=CST))]
    assert co2["details"]["previous"]["tonnes"] == pytest.approx(
        old[("CO2", "P1Y", datetime(2023, 1, 1, tzinfo=CST))]
    )
    assert co2["tonnes"] - co2["details"]["previous"]["tonnes"] == pytest.approx(
        12000 * 0.5554 * 0.1
    )
    # CH4 and N2O come from diesel only: unchanged, no previous value
    ch4 = new.loc[("CH4", "P1Y", datetime(2023, 1, 1, tzinfo=CST))]
    assert "previous" not in ch4["details"]


def test_cems_against_calculation_per_facility(
    imported: Path, store: PostgresStore, database_url: str, runner: Runner
) -> None:
    get("carbon-inventory").run(JobContext(database_url, runner), None, None)
    store.upsert_stations(
        [Station("STACK-P1", "P1 stack", "cems", 116.5, 39.9, attributes={"facility": "P1"})]
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        hours = pd.date_range("2023-01-01", "2023-04-01", freq="h", tz=CST, inclusive="left")
        calc_scope1 = 900 * 43.0 * 74.1 / 1000
        per_hour = calc_scope1 * 1.08 / len(hours)  # the stack measures 8 % more
        derived.upsert(
            conn,
            "emissions",
            pd.DataFrame(
                {
                    "source": "cems",
                    "subject": "STACK-P1",
                    "gas": "CO2",
                    "period": "PT1H",
                    "start": hours.tz_convert("UTC"),
                    "tonnes": per_hour,
                    "substitution": ["interpolated"] * 3 + [""] * (len(hours) - 3),
                    "details": [{}] * len(hours),
                }
            ),
        )
        check = cems_check(
            conn, datetime(2023, 1, 1, tzinfo=CST), datetime(2023, 4, 1, tzinfo=CST)
        ).set_index("facility")
    row = check.loc["P1"]
    assert row["calculated_t"] == pytest.approx(calc_scope1)
    assert row["relative_difference"] == pytest.approx(0.08)
    assert bool(row["finding"]) and row["substituted_hours"] == 3
    assert row["stations"] == "STACK-P1"


def test_cems_without_calculation_is_a_finding(store: PostgresStore, database_url: str) -> None:
    """Issue 12: "``cems_check`` skips a facility whose CEMS measures CO₂ but has no
    calculation — the very case it exists to flag": it is reported as the finding "CEMS
    without calculation"."""
    store.upsert_stations(
        [Station("STACK-N1", "N1 stack", "cems", 116.5, 39.9, attributes={"facility": "N1"})]
    )
    hours = pd.date_range("2023-01-01", "2023-01-02", freq="h", tz=CST, inclusive="left")
    with psycopg.connect(database_url, autocommit=True) as conn:
        derived.upsert(
            conn,
            "emissions",
            pd.DataFrame(
                {
                    "source": "cems",
                    "subject": "STACK-N1",
                    "gas": "CO2",
                    "period": "PT1H",
                    "start": hours.tz_convert("UTC"),
                    "tonnes": 2.0,
                    "substitution": "",
                    "details": [{}] * len(hours),
                }
            ),
        )
        check = cems_check(conn, datetime(2023, 1, 1, tzinfo=CST), datetime(2023, 2, 1, tzinfo=CST))
    (row,) = check.to_dict("records")
    assert row["facility"] == "N1" and row["stations"] == "STACK-N1"
    assert row["measured_t"] == pytest.approx(48.0) and row["calculated_t"] == 0.0
    assert bool(row["finding"]) and row["reason"] == WITHOUT_CALCULATION
    assert pd.isna(row["relative_difference"])


def test_stale_rows_go_only_with_their_replacement(
    imported: Path, database_url: str, runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 12: "a stale-row delete and its upsert run in separate transactions" — the
    recompute of a facility deletes its stale rows and upserts the new ones in one transaction:
    when the upsert fails, the stale rows are still there (nothing half done)."""
    ctx = JobContext(database_url, runner)
    assert get("carbon-inventory").run(ctx, None, None).errors == []
    assert "CH4" in set(_emissions(database_url, "P1")["gas"])  # CH4 comes from diesel only
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM activity_records WHERE facility = 'P1' AND activity = 'diesel'")
        (p1,) = [f for f in activity.load_facilities(conn) if f.id == "P1"]
    plan = FacilityPlan(p1, (2023,), "Asia/Shanghai")
    before = _emissions(database_url, "P1")

    def broken(*args: object, **kwargs: object) -> int:
        raise RuntimeError("disk full")

    with monkeypatch.context() as m:
        m.setattr(derived, "upsert", broken)
        with pytest.raises(RuntimeError, match="disk full"):
            facility_inventory(database_url, plan)
    kept = _emissions(database_url, "P1")
    assert kept[["gas", "period", "start", "tonnes"]].equals(
        before[["gas", "period", "start", "tonnes"]]
    )
    touched = facility_inventory(database_url, plan)
    assert touched.errors == [] and touched.rows > 0
    assert set(_emissions(database_url, "P1")["gas"]) == {"CO2", "CO2e"}  # the stale CH4, N2O went


def test_activity_derived_from_a_plant_meter(
    imported: Path, store: PostgresStore, database_url: str, runner: Runner
) -> None:
    import math

    from sensors.observations import Observation

    store.upsert_stations(
        [
            Station(
                "METER-P1", "P1 gas meter", "meter", 116.5, 39.9,
                attributes={"facility": "P1", "meters": {"fuel_gas_flow": "natural_gas"}},
            )
        ]
    )  # fmt: skip
    day = datetime(2023, 1, 1, tzinfo=CST)
    store.write_observations(
        [
            Observation(
                "METER-P1", "fuel_gas_flow", day + timedelta(minutes=m),
                round(1000 + 50 * math.sin(m / 37), 3),
            )
            for m in range(0, 24 * 60 - 120, 10)  # the last two hours are missing
        ],
        source=SOURCE,
    )  # fmt: skip
    ctx = JobContext(database_url, runner)
    assert get("hourly").run(ctx, None, None).errors == []
    report = get("carbon-inventory").run(ctx, None, None)
    assert report.errors == [] and report.warnings == []
    with psycopg.connect(database_url) as conn:
        hourly = derived.read_aggregates(
            conn, scope="station", period="PT1H", start=day, end=day + timedelta(days=1),
            subjects=["METER-P1"],
        )  # fmt: skip
        (record,) = [r for r in activity.load_activity(conn) if r.id.startswith("stream:")]
    assert hourly["valid"].sum() == 22
    assert record.id == "stream:METER-P1/fuel_gas_flow/2023-01-01"
    assert record.quantity == pytest.approx(hourly[hourly["valid"]]["value"].mean() * 24)
    assert record.unit == "Nm3" and "22 of 24 hours measured" in record.source
    p1 = _emissions(database_url, "P1")
    jan = p1[(p1["period"] == "P1M") & (p1["gas"] == "CO2") & (p1["start"] == day)].iloc[0]
    assert record.id in jan["details"]["records"]
    gas_t = record.quantity / 1e6 * 2165.02  # the carbon.md worked value per 10^6 Nm3
    diesel = 900 * 43.0 * 74.1 / 1000 * 31 / 90
    assert jan["tonnes"] == pytest.approx(diesel + 12000 * 0.5554 * 31 / 365 + gas_t, rel=1e-6)


def test_job_file_on_dask_kept_in_the_store(
    cli_env: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.unit.test_inventory import ACTIVITY as JOB_ACTIVITY
    from tests.unit.test_inventory import FACILITIES as JOB_FACILITIES
    from tests.unit.test_jobfile import JOB

    tmp_path = cli_env
    (tmp_path / "facilities.csv").write_text(JOB_FACILITIES)
    (tmp_path / "activity.csv").write_text(JOB_ACTIVITY)
    (tmp_path / "job.toml").write_text(JOB)
    # issue 14: "non-zero whenever something was rejected or excluded, with the count"
    assert main(["carbon", "run", str(tmp_path / "job.toml"), "--store"]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("Test inventory 2023: ") and "6 excluded" in out
    assert err.strip().splitlines()[-1].startswith("ecosense: error: 6 excluded")
    assert "excluded: activity.csv line 7: unknown activity 'whale_oil'" in err
    assert "job.toml: running on local cluster" in err and "job.toml: accounting 1/" in err
    assert "stored as run 1" in out
    with psycopg.connect(database_url) as conn:
        runs = activity.load_runs(conn)
        inventory, excluded, versions = conn.execute(
            "SELECT inventory, excluded, factor_versions FROM carbon_runs WHERE id = 1"
        ).fetchone()
    assert runs.loc[0, "name"] == "Test inventory 2023" and runs.loc[0, "gwp"] == "AR6"
    assert {r["region"] for r in inventory} >= {"CN-BJ", "CN-SH"}
    assert any("whale_oil" in e["reason"] for e in excluded)
    assert versions["ipcc-co2-diesel"] == "2006"
