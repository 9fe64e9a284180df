"""Issue 12 §5 over the real protocols and store: bad items are refused one by one, with their
reason, and never stall or spoil the good ones (HTTP JSON, line protocol, HJ 212, file import).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from ecosense.app import create_app
from ecosense.cli import main
from ingest import hj212
from ingest.accept import ingest_items
from ingest.hj212_server import Hj212Server, ThreadedHj212Server
from sensors.observations import Source
from sensors.stations import Station
from store.context import Principal, ServiceContext
from store.postgres import PostgresStore, hash_secret

MQTT = Source("mqtt")

pytestmark = pytest.mark.integration
ADMIN = "operator-secret"
MN, PW = "010000A8900016F000169DC0", "123456"


def _recent(hours: int = 1) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat()


@pytest.fixture
def client(store: PostgresStore) -> Iterator[TestClient]:
    store.upsert_stations(
        [
            Station("S1", "One", "air", 116.4, 39.9),
            Station("W1", "River", "water", 120.1, 30.2),
            Station("E1", "Outfall", "wastewater", 120.2, 30.3),
        ]
    )
    ctx = ServiceContext(store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"))
    with TestClient(create_app(ctx)) as c:
        yield c


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_http_batch_with_one_nul_item_stores_the_other(
    client: TestClient, store: PostgresStore
) -> None:
    """Issue 12: "a batch with one NUL item stores neither item, so a retrying device never gets
    through" — now the NUL item is rejected with its reason and the other item is stored."""
    token = store.add_device("d1", "S1")
    t = _recent()
    body = (
        '{"observations": ['
        f'{{"station": "S1\\u0000", "parameter": "pm25", "time": "{t}", "value": 1}},'
        f'{{"station": "S1", "parameter": "pm25", "time": "{t}", "value": 2}},'
        f'{{"station": "S1", "parameter": "pm10", "time": "{t}", "value": 3, "flag": "N\\ud800"}}'
        "]}"
    )
    r = client.post("/api/v1/observations", content=body, headers=_auth(token))
    assert r.status_code == 200, r.text
    assert r.json() == {
        "accepted": 1,
        "rejected": 2,
        "errors": [
            {"index": 0, "reason": "station contains a NUL character"},
            {"index": 2, "reason": "flag contains an unpaired surrogate (not valid Unicode)"},
        ],
    }
    assert store.read_frame(station="S1")["value"].tolist() == [2.0]


def test_http_times_values_and_units_are_checked_per_item(
    client: TestClient, store: PostgresStore
) -> None:
    """Issue 12: backdating to year 1 or 1900, `value: 1e308`, negative PM2.5, PM2.5 in mg/L;
    devices limited to ECOSENSE_MAX_PAST_DAYS (30), the operator not."""
    token = store.add_device("d1", "S1")
    old = (datetime.now(UTC) - timedelta(days=40)).isoformat()
    items = [
        {"station": "S1", "parameter": "pm25", "time": "0001-01-01T00:00:00Z", "value": 1},
        {"station": "S1", "parameter": "pm25", "time": "1900-01-01T00:00:00Z", "value": 1},
        {"station": "S1", "parameter": "pm25", "time": old, "value": 1},
        {"station": "S1", "parameter": "pm25", "time": _recent(2), "value": 1e308},
        {"station": "S1", "parameter": "pm25", "time": _recent(3), "value": -5},
        {"station": "S1", "parameter": "pm25", "time": _recent(4), "value": 30, "unit": "mg/L"},
        {"station": "S1", "parameter": "pm25", "time": _recent(5), "value": 30},
    ]
    r = client.post("/api/v1/observations", json={"observations": items}, headers=_auth(token))
    answer = r.json()
    assert (answer["accepted"], answer["rejected"]) == (1, 6), answer
    reasons = [e["reason"] for e in answer["errors"]]
    assert "before 2000-01-01" in reasons[0] and "before 2000-01-01" in reasons[1]
    assert "more than 30 days in the past" in reasons[2]
    assert "physically impossible" in reasons[3] and "physically impossible" in reasons[4]
    assert "measured in air, per m3" in reasons[5]
    # The operator may re-send the 40-day-old reading (a logger offline longer than the
    # window), but not one from year 1.
    r = client.post("/api/v1/observations", json={"observations": items[:3]}, headers=_auth(ADMIN))
    assert (r.json()["accepted"], r.json()["rejected"]) == (1, 2)
    assert len(store.read_frame(station="S1")) == 2


def test_http_gb3838_metals_in_mg_per_litre_from_water_stations(
    client: TestClient, store: PostgresStore
) -> None:
    """Issue 12: "cadmium or lead in `mg/L` from a water station is refused"."""
    t = _recent()
    items = [
        {"station": "W1", "parameter": "cd", "time": t, "value": 0.004, "unit": "mg/L"},
        {"station": "E1", "parameter": "pb", "time": t, "value": 12, "unit": "ug/L"},
    ]
    r = client.post("/api/v1/observations", json={"observations": items}, headers=_auth(ADMIN))
    assert r.json() == {"accepted": 2, "rejected": 0, "errors": []}
    r = client.get(
        "/api/v1/observations", params={"station": "E1", "parameter": "water_pb"},
        headers=_auth(ADMIN),
    )  # fmt: skip
    (item,) = r.json()["items"]
    assert (item["parameter"], item["unit"], item["value"]) == ("water_pb", "mg/L", 0.012)


def test_line_protocol_year_1_is_rejected_and_the_other_lines_stored(
    client: TestClient, store: PostgresStore
) -> None:
    """Issue 12: "One reading stamped `-62135596800` (line protocol, year 1) makes every later
    `hourly` run fail" — it is now refused at the door, the valid line is still written."""
    token = store.add_device("d1", "S1")
    now_s = int(datetime.now(UTC).timestamp()) // 60 * 60
    body = f"S1 pm25=300 -62135596800\nS1 pm25=35 {now_s}\nS1\\x00 pm25=1 {now_s}\n"
    body = body.replace("\\x00", "\x00")
    r = client.post(
        "/api/v2/write",
        params={"precision": "s", "org": "o", "bucket": "b"},
        content=body.encode(),
        headers={"Authorization": f"Token {token}"},
    )
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert message.startswith("partial write error (1 written)")
    assert "line 1: field pm25: time 0001-01-01T00:00:00+00:00 is before 2000-01-01" in message
    assert "line 3" in message and "NUL" in message
    frame = store.read_frame(station="S1")
    assert frame["value"].tolist() == [35.0]


# ---------------------------------------------------------------------------- HJ 212
@pytest.fixture
def hj_server(store: PostgresStore) -> Iterator[tuple[ThreadedHj212Server, tuple[str, int]]]:
    store.upsert_stations([Station("W1", "Outfall 1", "wastewater", 120.1, 30.2)])
    store.add_device("logger-1", "W1", mn=MN, password=PW)
    threaded = ThreadedHj212Server(
        Hj212Server(store, idle_timeout=3.0, max_past=timedelta(days=30))
    )
    address = threaded.start("127.0.0.1", 0)
    yield threaded, address
    threaded.stop()


def _cst(delta: timedelta) -> str:
    return (datetime.now(UTC) - delta).astimezone(hj212.CST).strftime("%Y%m%d%H%M%S")


def _answers(s: socket.socket, n: int) -> list[hj212.Packet]:
    decoder, frames = hj212.FrameDecoder(), []
    while len(frames) < n:
        chunk = s.recv(4096)
        assert chunk, "connection closed"
        frames += [f for f in decoder.feed(chunk) if isinstance(f, bytes)]
    return [hj212.parse(f) for f in frames]


def test_hj212_backdated_packets_are_answered_counted_and_logged_once(
    hj_server: tuple[ThreadedHj212Server, tuple[str, int]],
    store: PostgresStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 12 §3: "for HJ 212 the packet is still answered and the refused values are
    counted and logged" — a 40-day-old packet, a 1900 one, and a current one."""
    threaded, address = hj_server
    packets = [
        ("1", f"DataTime={_cst(timedelta(days=40))};w01018-Rtd=10;w21003-Rtd=1"),
        ("2", "DataTime=19000101000000;w01018-Rtd=11"),
        ("3", f"DataTime={_cst(timedelta(minutes=5))};w01018-Rtd=12;w20115-Rtd=4;w21003-Rtd=-3"),
    ]
    with (
        caplog.at_level(logging.WARNING, logger="ingest.hj212_server"),
        socket.create_connection(address, timeout=5) as s,
    ):
        s.settimeout(5)
        for qn, cp in packets:
            s.sendall(hj212.encode(cn="2011", mn=MN, pw=PW, st="32", qn=qn, flag=5, cp=cp))
        answers = _answers(s, 3)
    assert [(a.cn, a.qn) for a in answers] == [("9014", "1"), ("9014", "2"), ("9014", "3")]
    assert threaded.server.stats.readings_refused == 4
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 3  # one line per packet, not per value
    assert "2 value(s) refused" in refused[0] and "more than 30 days in the past" in refused[0]
    assert "before 2000-01-01" in refused[1]
    assert "physically impossible" in refused[2]
    frame = store.read_frame(station="W1")
    # HJ 212-2017 Table B.1 sends total cadmium (w20115) in µg/L: stored as mg/L
    assert dict(zip(frame["parameter"], frame["value"], strict=True)) == {
        "cod": 12.0,
        "water_cd": pytest.approx(0.004),
    }


# ---------------------------------------------------------------------- file import
def test_file_import_keeps_ids_as_written(
    cli_env: Path, store: PostgresStore, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 12: "`ecosense import` turns station `001` into `1.0` and the HJ/T 212-2005 code
    `011` into `11.0`; a station id `0` is silently credited to `--station`"."""
    store.upsert_stations(
        [Station("001", "Outfall", "wastewater", 120.1, 30.2), Station("S9", "Nine", "air", 1, 1)]
    )
    readings = cli_env / "readings.csv"
    readings.write_text(
        "station,parameter,time,value,unit\n"
        "001,011,2026-11-28T08:00:00+08:00,25.5,\n"
        "001,cd,2026-11-28T08:00:00+08:00,0.002,mg/L\n"
        "0,pm25,2026-11-28T08:00:00+08:00,35,\n"
        "001,011,1999-12-31T08:00:00+08:00,1,\n"
    )
    rc = main(["import", str(readings), "--station", "S9"])
    out = capsys.readouterr().out
    assert rc == 1, out
    assert "readings.csv:4: unknown station '0'" in out
    assert "readings.csv:5: time 1999-12-31T00:00:00+00:00 is before 2000-01-01" in out
    assert "imported 2 readings" in out
    frame = store.read_frame(station="001")
    assert dict(zip(frame["parameter"], frame["value"], strict=True)) == {
        "cod": 25.5,
        "water_cd": 0.002,
    }
    assert store.read_frame(station="S9").empty


def test_mqtt_devices_are_held_to_the_past_window(store: PostgresStore) -> None:
    """MQTT authenticates no device token (the broker does), yet its publishers are devices:
    `ingest_items(..., device=True)` applies ECOSENSE_MAX_PAST_DAYS as for a device token."""
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    ctx = ServiceContext(
        store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"), max_past=timedelta(days=7)
    )
    old = (datetime.now(UTC) - timedelta(days=8)).isoformat()
    items = [{"station": "S1", "parameter": "pm25", "time": old, "value": 5}]
    result = ingest_items(ctx, Principal(None), items, MQTT, device=True)
    assert result.accepted == [] and "more than 7 days in the past" in result.rejected[0][1]
    assert len(ingest_items(ctx, Principal(None), items, MQTT).accepted) == 1  # the operator may
