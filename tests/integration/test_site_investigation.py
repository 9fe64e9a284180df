"""A development-land site investigation (GB 36600-2018) through ingest: a lab file of
boreholes (sampling points with depth) imported with ``ecosense import``, each sample a soil
station, assessed by the hourly job on the real store at, just below and just above every
Table 1 metal's screening and intervention values, for both land classes (issue 18, item 2)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from ecosense import cli
from pipelines.jobs import JobContext, get
from pipelines.runner import Runner
from store import derived
from store.postgres import PostgresStore

pytestmark = pytest.mark.integration
SAMPLED = datetime(2026, 11, 20, 2, tzinfo=UTC)
#: Typed in again from GB 36600-2018 Table 1: item → (screening 1, screening 2,
#: intervention 1, intervention 2), mg/kg.
TABLE_1 = {
    "as": (20, 60, 120, 140),
    "cd": (20, 65, 47, 172),
    "cr6": (3.0, 5.7, 30, 78),
    "cu": (2000, 18000, 8000, 36000),
    "pb": (400, 800, 800, 2500),
    "hg": (8, 38, 33, 82),
    "ni": (150, 900, 600, 2000),
}
FACTORS = {"below": 0.999, "at": 1.0, "above": 1.001}


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    with Runner(local="threads", workers=2) as r:
        yield r


def _expected(item: str, land_class: int, value: float) -> str:
    screening = TABLE_1[item][land_class - 1]
    intervention = TABLE_1[item][land_class + 1]
    if value > intervention * (1 + 1e-9):
        return "above_intervention"
    if value > screening * (1 + 1e-9):
        return "above_screening"
    return "below_screening"


def test_every_metal_at_its_values_through_a_lab_file_and_the_job(
    store: PostgresStore, database_url: str, runner: Runner, cli_env: Path
) -> None:
    lines = ["station,time,lon,lat,depth,site,land_class," + ",".join(TABLE_1)]
    expected: dict[str, str] = {}
    n = 0
    for land_class in (1, 2):
        for item, values in TABLE_1.items():
            for which in ("screening", "intervention"):
                limit = values[land_class - 1 if which == "screening" else land_class + 1]
                for position, factor in FACTORS.items():
                    n += 1
                    point, depth = f"BH{n:03d}", (0.5, 1.5, 3.0)[n % 3]
                    value = round(limit * factor, 6)
                    cells = [str(value) if i == item else "" for i in TABLE_1]
                    lines.append(
                        f"{point},{SAMPLED.isoformat()},{116 + n / 1000:.4f},39.9,{depth},"
                        f"Old factory,{land_class}," + ",".join(cells)
                    )
                    expected[f"{point}-{depth:g}m"] = _expected(item, land_class, value)
                    assert position != "above" or expected[f"{point}-{depth:g}m"] != (
                        "below_screening"
                    )
    lab = cli_env / "site.csv"
    lab.write_text("\n".join(lines) + "\n", "utf-8")
    assert cli.main(["import", str(lab)]) == 0
    stations = {s.id: s for s in store.list_stations()}
    one = stations["BH001-1.5m"]
    assert one.kind == "soil" and one.attributes["point"] == "BH001"
    assert one.attributes["depth_m"] == 1.5 and one.attributes["site"] == "Old factory"

    job = JobContext(database_url, runner, "Asia/Shanghai", overlap=timedelta(0))
    assert get("hourly").run(job, None, None).errors == []
    with psycopg.connect(database_url) as conn:
        found = derived.read_assessments(
            conn,
            kind="soil-development",
            start=SAMPLED,
            end=SAMPLED + timedelta(seconds=1),
        ).set_index("subject")
        farmland = derived.read_assessments(
            conn, kind="soil", start=SAMPLED, end=SAMPLED + timedelta(seconds=1)
        )
    assert farmland.empty  # development land is not judged by GB 15618
    assert {s: str(found.loc[s, "label"]) for s in expected} == expected
    levels = {"below_screening": 1, "above_screening": 2, "above_intervention": 3}
    for s, risk in expected.items():
        assert found.loc[s, "value"] == levels[risk]
        details = found.loc[s, "details"]
        assert details["land_class"] in (1, 2) and details["depth_m"] in (0.5, 1.5, 3.0)
        assert set(details["ratios"]) <= set(TABLE_1)  # cr6, not the dictionary's soil_cr6
    # a second run changes nothing
    assert get("hourly").run(job, None, None).rows == 0


def test_a_land_class_that_is_not_1_or_2_is_refused_at_import(
    store: PostgresStore, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Found by the new user's trial: land_class 3 was stored, then the job judged the point
    by nothing (it vanished from the Sites page without a word)."""
    lab = cli_env / "site.csv"
    lab.write_text(
        "station,time,lon,lat,depth,land_class,pb\n"
        f"BH1,{SAMPLED.isoformat()},116.1,39.9,0.5,1,300\n"
        f"BH2,{SAMPLED.isoformat()},116.2,39.9,0.5,3,300\n",
        "utf-8",
    )
    assert cli.main(["import", str(lab)]) == 1
    out = capsys.readouterr().out
    assert "site.csv:3: land_class '3' is not 1 (housing, schools, parks) or 2" in out
    assert {s.id for s in store.list_stations()} == {"BH1-0.5m"}
