"""Issue 12, "Provenance on every reading" and "Raw data are never overwritten", against the
real embedded PostgreSQL and TimescaleDB (``observations`` a hypertable)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from ecosense.app import create_app
from ecosense.cli import main
from ingest.hj212_server import Hj212Server, ThreadedHj212Server
from ingest.spool import DurableWriter, Spool
from sensors.observations import Observation, Source
from sensors.stations import Station
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret
from tests.integration import test_hj212_server as hj

pytestmark = pytest.mark.integration
ADMIN = "operator-secret"
OP = {"Authorization": f"Bearer {ADMIN}"}
T = "2026-11-28T08:00:00+08:00"


@pytest.fixture
def client(store: PostgresStore) -> Iterator[TestClient]:
    store.upsert_stations(
        [Station("S1", "One", "air", 116.4, 39.9), Station("S2", "Two", "air", 121.5, 31.2)]
    )
    ctx = ServiceContext(store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"))
    with TestClient(create_app(ctx)) as c:
        yield c


@pytest.fixture
def token(store: PostgresStore, client: TestClient) -> str:
    return store.add_device("d1", "S1")


def push(client: TestClient, token: str, **kw: Any) -> dict[str, Any]:
    item = {"station": "S1", "parameter": "pm25", "time": T, "value": 35.2} | kw
    r = client.post(
        "/api/v1/observations",
        json={"observations": [item]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def versions(client: TestClient, headers: dict[str, str] = OP, **params: str) -> Any:
    return client.get(
        "/api/v1/observations/versions",
        params={"station": "S1", "parameter": "pm25", "time": T} | params,
        headers=headers,
    )


def items(client: TestClient, **params: str) -> list[dict[str, Any]]:
    r = client.get("/api/v1/observations", params=params, headers=OP)
    assert r.status_code == 200, r.text
    out: list[dict[str, Any]] = r.json()["items"]
    return out


def version_rows(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT count(*) FROM observation_versions").fetchone()
    assert row is not None
    return int(row[0])


def test_a_resent_reading_with_the_same_value_adds_nothing(
    client: TestClient, token: str, database_url: str
) -> None:
    """Issue 12: "A re-sent reading with the same value adds nothing ... A re-send is still
    answered as accepted (it is idempotent), it just adds no version."""
    assert push(client, token)["accepted"] == 1
    first = items(client, station="S1")
    assert push(client, token)["accepted"] == 1  # idempotent: still accepted
    assert items(client, station="S1") == first  # not even its receive time moved
    assert version_rows(database_url) == 0
    r = versions(client)
    assert r.status_code == 200, r.text
    (only,) = r.json()["items"]
    assert only["value"] == 35.2 and only["superseded_at"] is None
    assert only["source"] == {"protocol": "http", "device": "d1"}


def test_a_resent_reading_with_another_value_keeps_the_previous_as_a_version(
    client: TestClient, token: str, database_url: str
) -> None:
    """Issue 12: "A re-sent reading with another value silently replaces the old one;
    nothing records the writer, the protocol or the previous value." Now: "one with a
    different value becomes the current value and the previous one is kept as a version",
    oldest first, "the current version has "superseded_at": null"."""
    push(client, token, value=35.2)
    (before,) = items(client, station="S1")
    push(client, token, value=88.0, flag="M")
    (after,) = items(client, station="S1")
    assert (after["value"], after["flag"]) == (88.0, "M")
    assert after["received_at"] > before["received_at"]  # incremental jobs see the change
    assert after["received_at"].endswith("+08:00")  # the bureau's zone, like other times
    push(client, token, value=88.0, flag="M")  # the same correction again: nothing new
    assert version_rows(database_url) == 1

    r = versions(client)
    assert r.status_code == 200, r.text
    old, current = r.json()["items"]
    assert (old["value"], old["flag"], old["unit"]) == (35.2, "N", "ug/m3")
    assert (current["value"], current["flag"], current["superseded_at"]) == (88.0, "M", None)
    assert old["received_at"] == before["received_at"]
    assert old["superseded_at"] == current["received_at"] == after["received_at"]
    assert old["source"] == current["source"] == {"protocol": "http", "device": "d1"}


def test_each_protocol_is_recorded(
    client: TestClient,
    token: str,
    store: PostgresStore,
    cli_env: Path,
) -> None:
    """Issue 12: "Store, per reading: the protocol (http, lineprotocol, hj212, mqtt, file),
    the device (or the user who imported the file, and the file name), and the receive time.
    Items of GET /api/v1/observations gain "received_at" and "source"." (MQTT: test_mqtt.py.)"""
    push(client, token, value=1.0)
    r = client.post(
        "/api/v2/write",
        params={"precision": "s"},
        headers={"Authorization": f"Token {token}"},
        content="S1 pm10=61 1795824000\n",
    )
    assert r.status_code == 204, r.text
    csv = cli_env / "lab.csv"
    csv.write_text("station,parameter,time,value\nS2,pm25,2026-11-28 08:00,12\n")
    assert main(["import", str(csv), "--user", "alice"]) == 0
    store.upsert_stations([Station("W1", "Outfall 1", "wastewater", 120.1, 30.2)])
    store.add_device("logger-1", "W1", mn=hj.MN, password=hj.PW)
    threaded = ThreadedHj212Server(Hj212Server(store, idle_timeout=3.0))
    address = threaded.start("127.0.0.1", 0)
    try:
        with hj.connect(address) as s:
            s.sendall(hj.upload("20261128080000001", f"DataTime={hj.now_cst()};w01018-Rtd=16.9"))
            assert hj.receive(s).cn == "9014"
    finally:
        threaded.stop()

    seen = {(i["station"], i["parameter"]): i for i in items(client)}
    assert seen["S1", "pm25"]["source"] == {"protocol": "http", "device": "d1"}
    assert seen["S1", "pm10"]["source"] == {"protocol": "lineprotocol", "device": "d1"}
    assert seen["S2", "pm25"]["source"] == {
        "protocol": "file",
        "device": None,
        "user": "alice",
        "file": "lab.csv",
    }
    assert seen["W1", "cod"]["source"] == {"protocol": "hj212", "device": "logger-1"}
    for item in seen.values():
        received = datetime.fromisoformat(item["received_at"])
        assert abs(datetime.now(UTC) - received) < timedelta(minutes=5)


def test_a_file_import_defaults_to_the_os_user(cli_env: Path, store: PostgresStore) -> None:
    """Issue 12 (brief): file imports record the importing user — the OS user unless
    ``--user`` is given — and the file name."""
    import getpass

    store.upsert_stations([Station("S2", "Two", "air", 121.5, 31.2)])
    csv = cli_env / "night.csv"
    csv.write_text("station,parameter,time,value\nS2,pm25,2026-11-28 08:00,12\n")
    assert main(["import", str(csv)]) == 0
    (row,) = store.read_observations(station="S2")
    assert row.source == Source("file", None, getpass.getuser(), "night.csv")


def test_the_operator_token_writes_as_user_operator(client: TestClient) -> None:
    push(client, ADMIN)
    (item,) = items(client, station="S1")
    assert item["source"] == {"protocol": "http", "device": None, "user": "operator"}


def test_a_spooled_batch_is_replayed_with_its_own_source(
    store: PostgresStore, tmp_path: Path
) -> None:
    """Issue 12 (brief): "a replayed batch is stored with its real provenance"; spool files
    of the first format (no provenance) are still replayed."""
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    t0 = datetime(2026, 11, 28, tzinfo=UTC)
    spool = Spool(tmp_path / "spool")
    legacy = spool.directory / "00000000000000000001.json"
    legacy.write_text(json.dumps([["S1", "so2", t0.isoformat(), 9.0, "N", None, None, "measured"]]))
    spool = Spool(tmp_path / "spool")  # as after a restart with an old file waiting
    hj212 = Source("hj212", "logger-1")
    spool.append(
        [
            (hj212, [Observation("S1", "pm25", t0, 30.0)]),
            (Source("lineprotocol", "d9"), [Observation("S1", "pm10", t0, 60.0)]),
        ]
    )
    assert DurableWriter(store, spool).drain() == 2 and spool.pending() == 0
    got = {r.parameter: r.source for r in store.read_observations(station="S1")}
    assert got == {"pm25": hj212, "pm10": Source("lineprotocol", "d9"), "so2": None}


def test_versions_route_access_and_bad_input(
    client: TestClient, token: str, store: PostgresStore
) -> None:
    """Same access rule as /api/v1/observations; bad input is 400/404/422, never 500;
    several matching streams need interval/statistic/basis (400 naming them)."""
    push(client, token)
    other = store.add_device("d2", "S2")
    # S1 is an air station, public by default: anyone may read it, a forged token may not
    assert versions(client, headers={}).status_code == 200
    assert versions(client, headers={"Authorization": "Bearer forged"}).status_code == 401
    assert versions(client, headers={"Authorization": f"Bearer {other}"}).status_code == 403
    own = versions(client, headers={"Authorization": f"Bearer {token}"})
    assert own.status_code == 200 and len(own.json()["items"]) == 1
    assert versions(client, time="2026-11-28T09:00:00+08:00").status_code == 404
    assert versions(client, parameter="pm10").status_code == 404
    assert versions(client, station="NOPE").status_code == 404
    # a time past datetime's range is clamped to its edge (any time may be named): no reading
    assert versions(client, time="9999-12-31T23:59:59-14:00").status_code == 404
    for bad in (
        {"time": "yesterday"},
        {"parameter": "unobtainium"},
        {"station": "S\x001"},
        {"interval": "PT5M"},
        {"statistic": "median"},
        {"basis": "guessed"},
    ):
        r = versions(client, **bad)
        assert r.status_code == 400, (bad, r.text)
    r = client.get("/api/v1/observations/versions", params={"station": "S1"}, headers=OP)
    assert r.status_code == 422

    store.write_observations(
        [Observation("S1", "pm25", datetime(2026, 11, 28, tzinfo=UTC), 30.0, "N", "PT1H", "avg")],
        source=Source("hj212", "logger-1"),
    )
    r = versions(client)
    assert r.status_code == 400 and "interval=PT1H statistic=avg" in r.json()["detail"]
    r = versions(client, interval="PT1H", statistic="avg")
    assert r.status_code == 200
    assert r.json()["items"][0]["source"] == {"protocol": "hj212", "device": "logger-1"}


def test_migration_0008_upgrades_a_database_in_use(database_url: str) -> None:
    """Migration 0008 on a database that already holds readings (``observations`` a
    hypertable when TimescaleDB is installed): old readings read back with no provenance,
    and a correction of one of them keeps its previous value."""
    from store import migrations

    earlier = [m for m in migrations.available() if m.version < 8]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE ecosense_migrations (version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for m in earlier:
            conn.execute(m.sql.encode())
            conn.execute(
                "INSERT INTO ecosense_migrations (version, name) VALUES (%s, %s)",
                (m.version, m.name),
            )
        if PostgresStore._enable_timescale(conn):  # type: ignore[arg-type]
            row = conn.execute(
                "SELECT count(*) FROM timescaledb_information.hypertables"
                " WHERE hypertable_name = 'observations'"
            ).fetchone()
            assert row == (1,)
        conn.execute(
            "INSERT INTO stations (id, name, kind, lon, lat) VALUES ('S1', 'One', 'air', 116, 40)"
        )
        conn.execute(
            "INSERT INTO parameters (code, name_zh, name_en, unit, domain, valid_min, valid_max)"
            " VALUES ('pm25', 'PM2.5', 'PM2.5', 'ug/m3', 'air', 0, 1000)"
        )
        conn.execute(
            "INSERT INTO streams (station_id, parameter, unit) VALUES ('S1', 'pm25', 'ug/m3')"
        )
        conn.execute(
            "INSERT INTO observations (stream_id, time, value, flag)"
            " SELECT id, '2026-11-28T00:00:00Z', 30, 'N' FROM streams"
        )
    store = PostgresStore(database_url)
    try:
        store.migrate()
        t0 = datetime(2026, 11, 28, tzinfo=UTC)
        (old,) = store.read_observations(station="S1")
        assert old.source is None and old.received_at is not None
        store.write_observations([Observation("S1", "pm25", t0, 31.0)], source=Source("http", "d1"))
        first, current = store.observation_versions(station="S1", parameter="pm25", time=t0)
        assert (first.value, first.source, current.value) == (30.0, None, 31.0)
        assert current.source == Source("http", "d1") and current.superseded_at is None
    finally:
        store.close()
