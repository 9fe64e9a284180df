"""HJ 212 codes the dictionary does not know: held per device, capped, mapped by an operator
(issue 12, "No bad input can stall, crash or pollute"), over real TCP sockets and a real store."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from ecosense.app import create_app
from ecosense.cli import main
from ingest.hj212_server import Hj212Server, ThreadedHj212Server
from pipelines.jobs import JobContext, get
from pipelines.runner import Runner
from sensors.stations import Station
from store import derived, quarantine
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret
from tests.integration.test_hj212_server import MN, PW, connect, now_cst, receive, upload

pytestmark = pytest.mark.integration
AIR_MN, AIR_PW = "010000A8900016F000169DC1", "654321"


@pytest.fixture
def gateway(store: PostgresStore) -> Iterator[ThreadedHj212Server]:
    """The HJ 212 server (default cap: 50 codes per device); logger-1 reports for wastewater
    outfall W1, air-1 for the air station A1."""
    store.upsert_stations(
        [
            Station("W1", "Outfall 1", "wastewater", 120.1, 30.2),
            Station("A1", "Air one", "air", 116.4, 39.9, {"city": "Beijing"}),
        ]
    )
    store.add_device("logger-1", "W1", mn=MN, password=PW)
    store.add_device("air-1", "A1", mn=AIR_MN, password=AIR_PW)
    threaded = ThreadedHj212Server(Hj212Server(store, idle_timeout=10.0))
    threaded.start("127.0.0.1", 0)
    yield threaded
    threaded.stop()


def _address(gateway: ThreadedHj212Server) -> tuple[str, int]:
    assert gateway.address is not None
    return gateway.address


def _counts(store: PostgresStore) -> tuple[int, int]:
    with store.connection() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM parameters), (SELECT count(*) FROM streams)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def test_600_invented_codes_leave_the_dictionary_alone_and_fill_only_the_cap(
    gateway: ThreadedHj212Server, store: PostgresStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 12: "One HJ 212 device sending 600 invented codes grew the shared parameter
    dictionary from 45 to 645 entries and created 600 streams." Now the dictionary and the
    streams are unchanged, 50 codes are held, and the readings of the other 550 are counted and
    dropped with one log line per packet. (An HJ 212 data segment holds at most 1024
    characters, so the 600 codes come in 12 packets of 50.)"""
    parameters, streams = _counts(store)
    caplog.set_level(logging.WARNING, logger="ingest.hj212_server")
    with connect(_address(gateway)) as s:
        for p in range(12):
            codes = ";".join(f"x{p * 50 + i:05d}-Rtd=1.5" for i in range(50))
            s.sendall(upload(f"{p}", f"DataTime={now_cst()};{codes}"))
            assert receive(s).cn == "9014"  # answered as the protocol says
    assert _counts(store) == (parameters, streams)
    with store.connection() as conn:
        held = quarantine.held_codes(conn, "logger-1")
        dropped = quarantine.dropped(conn, "logger-1")
    assert [h.code for h in held] == [f"x{i:05d}" for i in range(50)]
    assert all(h.readings == 1 for h in held)
    assert [(d.device, d.readings) for d in dropped] == [("logger-1", 550)]
    stats = gateway.server.stats
    assert (stats.readings_quarantined, stats.readings_dropped) == (50, 550)
    full = [r for r in caplog.records if "new codes dropped" in r.getMessage()]
    assert len(full) == 11  # one line per packet, not one per value
    # a held code is still held when re-sent, even with the quarantine full
    with connect(_address(gateway)) as s:
        s.sendall(upload("13", f"DataTime={now_cst(1)};x00007-Rtd=2.5;x99999-Rtd=1"))
        assert receive(s).cn == "9014"
    with store.connection() as conn:
        assert len(quarantine.held_readings(conn, "logger-1", "x00007")) == 2
        assert quarantine.dropped(conn, "logger-1")[0].readings == 551


def test_one_unknown_code_does_not_fail_the_station_hourly_job(
    gateway: ThreadedHj212Server, store: PostgresStore, database_url: str
) -> None:
    """Issue 12: "one HJ 212 packet with an unknown code fails the whole station's task; the
    job's mark then never advances". The known codes of the packet are stored, the unknown one
    is held, and the hourly job computes the station's means without an error."""
    with connect(_address(gateway)) as s:
        for i, minutes in enumerate((50, 40, 30)):
            s.sendall(
                upload(
                    f"{i}",
                    f"DataTime={now_cst(minutes)};a34004-Rtd=300,a34004-Flag=N;a99999-Rtd=7",
                    mn=AIR_MN,
                    pw=AIR_PW,
                    st="22",
                )
            )
            assert receive(s).cn == "9014"
    frame = store.read_frame(station="A1")
    assert set(frame["parameter"]) == {"pm25"} and len(frame) == 3
    with store.connection() as conn:
        assert [(h.code, h.readings) for h in quarantine.held_codes(conn)] == [("a99999", 3)]
    with Runner(local="threads", workers=1) as runner:
        report = get("hourly").run(
            JobContext(database_url, runner, "Asia/Shanghai", overlap=timedelta(0)), None, None
        )
    assert report.errors == []
    with store.connection() as conn:
        means = derived.read_aggregates(
            conn,
            scope="station",
            period="PT1H",
            start=datetime.now(UTC) - timedelta(hours=3),
            end=datetime.now(UTC) + timedelta(hours=1),
            subjects=["A1"],
            parameters=["pm25"],
        )
    assert not means.empty and means["value"].max() == pytest.approx(300.0)


def test_parameters_map_rehomes_held_readings_and_routes_later_ones(
    gateway: ThreadedHj212Server,
    store: PostgresStore,
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 12: "an operator can map a raw code to a parameter later (`ecosense parameters map
    DEVICE RAWCODE PARAMETER`), which re-homes its readings" — through the store's normal write
    path (unit conversion), visible in GET /api/v1/observations; later packets of that device
    with that code go straight to the parameter."""
    hours = [
        (datetime.now(UTC) - timedelta(hours=h)).astimezone(ZoneInfo("Asia/Shanghai"))
        for h in (3, 2)
    ]
    with connect(_address(gateway)) as s:
        for i, hour in enumerate(hours):
            stamp = hour.strftime("%Y%m%d%H0000")
            s.sendall(upload(f"{i}", f"DataTime={stamp};x01-Avg=40100,x01-Flag=N", cn="2061"))
            assert receive(s).cn == "9014"
    assert store.read_frame(station="W1").empty

    assert main(["parameters", "quarantine", "logger-1"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split("\t")[:3] == ["logger-1", "x01", "2"]
    assert listed[-1] == "1 codes held (2 readings), 0 readings dropped"

    assert main(["parameters", "map", "logger-1", "x01", "cod", "--unit", "ug/L"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "logger-1 x01 mapped to cod: 2 held readings re-homed, 0 refused"

    client = TestClient(create_app(ServiceContext(store, hash_secret("op"), ZoneInfo("UTC"))))
    r = client.get(
        "/api/v1/observations",
        params={"station": "W1", "parameter": "cod"},
        headers={"Authorization": "Bearer op"},
    )
    items = r.json()["items"]
    assert [(i["value"], i["unit"], i["interval"], i["statistic"]) for i in items] == [
        (pytest.approx(40.1), "mg/L", "PT1H", "avg")
    ] * 2
    with store.connection() as conn:
        assert quarantine.held_codes(conn, "logger-1") == []

    # the mapping is remembered: the next packet's x01 goes straight to cod
    with connect(_address(gateway)) as s:
        stamp = datetime.now(UTC).astimezone(ZoneInfo("Asia/Shanghai")).strftime("%Y%m%d%H0000")
        s.sendall(upload("9", f"DataTime={stamp};x01-Avg=30000", cn="2061"))
        assert receive(s).cn == "9014"
    assert len(store.read_frame(station="W1", parameter="cod")) == 3
    with store.connection() as conn:
        assert quarantine.held_codes(conn, "logger-1") == []


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["parameters", "map", "nobody", "x01", "cod"], "unknown device"),
        (["parameters", "map", "logger-1", "x01", "unobtainium"], "unknown parameter"),
        (["parameters", "map", "logger-1", "w01018", "cod"], "is in the dictionary"),
        (["parameters", "map", "logger-1", "x01", "cod", "--unit", "dB"], "--unit dB for cod"),
        # found trying it as a new user: a typo used to "re-home 0 readings" and exit 0
        (["parameters", "map", "logger-1", "x0l", "cod"], "has sent no x0l that is held"),
    ],
)
def test_parameters_map_errors_are_one_line(
    gateway: ThreadedHj212Server,
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    reason: str,
) -> None:
    assert main(args) == 1
    err = [
        line
        for line in capsys.readouterr().err.strip().splitlines()
        if not line.startswith("ecosense: data dir ")  # the data dir in use (issue 14)
    ]
    assert len(err) == 1 and err[0].startswith("ecosense: error:") and reason in err[0]


def test_parameters_map_refuses_to_replace_readings_unless_asked(
    gateway: ThreadedHj212Server,
    store: PostgresStore,
    cli_env: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Found trying it as a new user: mapping a raw code to a parameter the logger already
    sends (COD as w01018 and as x01 at the same hours) silently made the held values the
    current ones. Now it is refused, naming the clash; ``--replace`` does it (the replaced
    values stay as versions) and the re-homed readings name the operator who mapped them;
    ``--ahead`` maps a code not sent yet."""
    hour = (datetime.now(UTC) - timedelta(hours=2)).astimezone(ZoneInfo("Asia/Shanghai"))
    stamp = hour.strftime("%Y%m%d%H0000")
    with connect(_address(gateway)) as s:
        s.sendall(upload("1", f"DataTime={stamp};w01018-Avg=26.0;x01-Avg=8000", cn="2061"))
        assert receive(s).cn == "9014"
    assert main(["parameters", "map", "logger-1", "x01", "cod", "--unit", "ug/L"]) == 1
    err = capsys.readouterr().err
    assert "1 held readings fall where cod already has a reading" in err and "--replace" in err
    assert store.read_frame(station="W1", parameter="cod")["value"].tolist() == [26.0]
    args = ["parameters", "map", "logger-1", "x01", "cod", "--unit", "ug/L", "--replace"]
    assert main(args) == 0
    (row,) = store.read_observations(station="W1", parameter="cod")
    assert row.value == pytest.approx(8.0)
    assert row.source is not None and row.source.protocol == "hj212"
    assert row.source.device == "logger-1" and row.source.user  # the operator who mapped it
    assert main(["parameters", "map", "logger-1", "x02", "codmn", "--ahead"]) == 0


def test_http_and_line_protocol_refuse_unknown_parameters_per_item(store: PostgresStore) -> None:
    """Only HJ 212 has a quarantine: JSON and line protocol items naming a parameter the
    dictionary does not know are rejected with their reason, and create no parameter."""
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    token = store.add_device("d1", "S1")
    before = _counts(store)
    client = TestClient(create_app(ServiceContext(store, hash_secret("op"), ZoneInfo("UTC"))))
    auth = {"Authorization": f"Bearer {token}"}
    now = datetime.now(UTC).isoformat()
    r = client.post(
        "/api/v1/observations",
        json={
            "observations": [
                {"station": "S1", "parameter": "x00001", "time": now, "value": 1.0},
                {"station": "S1", "parameter": "pm25", "time": now, "value": 35.0},
            ]
        },
        headers=auth,
    )
    answer = r.json()
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    assert "unknown parameter 'x00001'" in answer["errors"][0]["reason"]
    seconds = int(datetime.now(UTC).timestamp())
    r = client.post(
        "/api/v2/write",
        params={"precision": "s"},
        content=f"S1 x00002=1,pm10=61 {seconds}",
        headers={"Authorization": f"Token {token}"},
    )
    assert r.status_code == 400 and "x00002" in r.json()["message"]
    parameters, streams = _counts(store)
    assert parameters == before[0] and streams == 2  # pm25 and pm10 only
