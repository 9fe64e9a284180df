"""Every GB 3838-2002 item through ingest: sent by water stations over HTTP (by name and by
HJ 212-2017 code, in mg/L or µg/L), Table 2 items from a lab file, and classed at its class
boundaries by the daily job on the real store (issue 18, item 1)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from ecosense import cli
from ecosense.app import create_app
from pipelines.jobs import JobContext, get
from pipelines.runner import Runner
from sensors.parameters import lookup
from sensors.stations import Station
from store import derived
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
#: 00:00 China Standard Time, 20 November 2026.
T0 = datetime(2026, 11, 19, 16, tzinfo=UTC)

#: Typed in again from the reference table (classes I–V), lakes and reservoirs (TP, TN).
LIMITS: dict[str, tuple[float, ...]] = {
    "codmn": (2, 4, 6, 10, 15),
    "cod": (15, 15, 20, 30, 40),
    "bod5": (3, 3, 4, 6, 10),
    "nh3n": (0.15, 0.5, 1.0, 1.5, 2.0),
    "tp": (0.01, 0.025, 0.05, 0.1, 0.2),
    "tn": (0.2, 0.5, 1.0, 1.5, 2.0),
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
DO_MINIMUMS = (7.5, 6, 5, 3, 2)
TABLE_2 = {"sulfate": 250, "chloride": 250, "nitrate": 10, "fe": 0.3, "mn": 0.1}
#: µg/L is HJ 212-2017's unit for these metals: sent so, converted to mg/L on the way in.
MICROGRAMS = {"hg", "cd", "cr6", "as", "pb", "se"}


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    with Runner(local="threads", workers=2) as r:
        yield r


def _expected(parameter: str, k: int) -> int:
    """The class of class ``k``'s limit (``k`` = 6: 1.001 × class V's limit)."""
    limits = LIMITS[parameter]
    return 6 if k == 6 else limits.index(limits[k - 1]) + 1


def _value(parameter: str, k: int) -> float:
    if parameter == "do":
        return DO_MINIMUMS[k - 1] if k < 6 else DO_MINIMUMS[-1] * 0.99
    if parameter == "ph":
        return (6.0, 7.0, 9.0, 6.5, 8.5, 9.1)[k - 1]
    limits = LIMITS[parameter]
    return limits[k - 1] if k < 6 else limits[-1] * 1.001


def _reading(parameter: str, station: str, value: float, n: int) -> dict[str, object]:
    """One reading, sent every other item by its HJ 212-2017 code; metals in µg/L."""
    p = lookup(parameter, "water")
    code = p.hj212[0] if n % 2 and p.hj212 else parameter
    unit = {"ph": "", "faecal_coliforms": "MPN/L"}.get(parameter, "mg/L")
    if parameter in MICROGRAMS:
        value, unit = round(value * 1000, 6), "ug/L"
    time = (T0 + timedelta(hours=3)).isoformat()
    return {"station": station, "parameter": code, "time": time, "value": value, "unit": unit}


def test_every_item_at_its_class_limits_through_ingest_and_the_daily_job(
    store: PostgresStore, database_url: str, runner: Runner, cli_env: Path
) -> None:
    items = ["ph", "do", *LIMITS]
    stations = [f"W{k}" for k in range(1, 7)]
    store.upsert_stations(
        [Station(s, f"Lake {s}", "water", 116.2, 39.8, {"water_body": "lake"}) for s in stations]
    )
    ctx = ServiceContext(
        store, hash_secret("admin"), ZoneInfo("Asia/Shanghai"), max_past=timedelta(days=3650)
    )
    with TestClient(create_app(ctx)) as client:
        for k, s in enumerate(stations, start=1):
            token = store.add_device(f"gw-{s}", s)
            readings = [_reading(p, s, _value(p, k), n) for n, p in enumerate(items)]
            answer = client.post(
                "/api/v1/observations",
                json={"observations": readings},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["accepted"] == len(readings), answer.json()
    # Table 2 items from a lab file (wide layout), at their limits at W1 and above at W6.
    lab = cli_env / "lab.csv"
    header = ",".join(TABLE_2)
    rows = [
        f"{s},{(T0 + timedelta(hours=5)).isoformat()},"
        + ",".join(str(v * (1.2 if s == "W6" else 1)) for v in TABLE_2.values())
        for s in ("W1", "W6")
    ]
    lab.write_text(f"station,time,{header}\n" + "\n".join(rows) + "\n", "utf-8")
    assert cli.main(["import", str(lab)]) == 0

    job = JobContext(database_url, runner)
    for name in ("hourly", "daily"):
        assert get(name).run(job, None, None).errors == []
    with psycopg.connect(database_url) as conn:
        found = derived.read_assessments(
            conn, kind="water-daily", start=T0, end=T0 + timedelta(days=1), subjects=stations
        ).set_index("subject")
    for k, s in enumerate(stations, start=1):
        details = found.loc[s, "details"]
        classes = details["classes"]
        got = {lookup(p, "water").shares or p: c for p, c in classes.items()}
        want = {p: _expected(p, k) for p in LIMITS}
        want["do"] = k
        want["ph"] = 6 if k == 6 else 1
        assert got == want, s
        counted = [c for p, c in want.items() if p != "faecal_coliforms"]
        assert found.loc[s, "value"] == max(counted)
    assert found.loc["W1", "details"]["supplementary"] == {
        ("water_" + p if p in ("fe", "mn") else p): True for p in TABLE_2
    }
    assert set(found.loc["W6", "details"]["supplementary"].values()) == {False}
    exceeding = set(str(found.loc["W6", "label"]).split(","))
    assert {"sulfate", "chloride", "nitrate", "water_fe", "water_mn"} <= exceeding
    assert "supplementary" not in found.loc["W3", "details"]
