"""The tamper-evident audit against real PostgreSQL (embedded and TimescaleDB).

Issue 13, "What to build" 4: "Append-only table ``audit_log`` … a hash chaining each entry to
the one before. Logged: … every write (per request, packet or file — who, which station, how
many readings — not per reading) … imports … HJ 212 commands, alert acknowledgements
(acknowledged by the authenticated actor, not a query parameter). ``GET /api/v1/audit`` (admin,
paged) and ``ecosense audit verify``, which exits 0 when the chain is intact and non-zero naming
the first entry that was changed or deleted (a test edits and deletes rows directly in SQL)."
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from fastapi.testclient import TestClient

from access import Grade
from ecosense import cli
from ecosense.app import create_app
from ingest import hj212
from ingest.hj212_server import Hj212Server, ThreadedHj212Server
from sensors.stations import Station
from store import audit, users
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
ADMIN = "operator-secret"
WHO = "wang.reviewer"
ROOT = Path(__file__).resolve().parents[2]
UP = [sys.executable, "-m", "ecosense", "up", "--no-dashboard", "--http-port", "0"]


@pytest.fixture
def ctx(store: PostgresStore) -> ServiceContext:
    store.upsert_stations(
        [Station("S1", "One", "air", 116.4, 39.9), Station("S2", "Two", "air", 121.5, 31.2)]
    )
    return ServiceContext(store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"))


@pytest.fixture
def client(ctx: ServiceContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as c:
        yield c


def entries(database_url: str, **filters: str) -> list[audit.Entry]:
    """Every entry, oldest first (optionally only those of an actor or action)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        return list(reversed(audit.read(conn, limit=10_000, **filters)))  # type: ignore[arg-type]


def verify_cli(database_url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """``ecosense audit verify`` in a child process (this worktree first on the path)."""
    env = {
        **os.environ,
        "ECOSENSE_DATABASE_URL": database_url,
        "ECOSENSE_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    return subprocess.run(
        [sys.executable, "-m", "ecosense", "audit", "verify"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def seed(database_url: str, n: int) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        for i in range(n):
            audit.append(
                conn,
                "admin" if i % 2 else "device:d1",
                "write",
                f"station:S{i}",
                "ok",
                "127.0.0.1",
                {"accepted": i, "ratio": i / 3, "text": "污染物 ✓"},
            )


# --------------------------------------------------------------------------- what is logged
def test_an_http_write_is_one_entry_per_request(
    client: TestClient, store: PostgresStore, database_url: str
) -> None:
    """ "every write (per request …) — who, which station, how many readings"."""
    token = store.add_device("d1", "S1")
    body = {
        "observations": [
            {"station": "S1", "parameter": "pm25", "time": "2026-11-28T08:00:00+08:00", "value": 1},
            {"station": "S1", "parameter": "pm25", "time": "2026-11-28T08:01:00+08:00", "value": 2},
            {"station": "S1", "parameter": "nope", "time": "2026-11-28T08:02:00+08:00", "value": 3},
        ]
    }
    r = client.post("/api/v1/observations", json=body, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()["accepted"] == 2
    r = client.post(
        "/api/v2/write?precision=s",
        content="S1 pm25=3,pm10=4 1795824000\n",
        headers={"Authorization": f"Token {token}"},
    )
    assert r.status_code == 204, r.text
    denied = client.post(
        "/api/v1/observations",
        json={"observations": [{**body["observations"][0], "station": "S2"}]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert denied.status_code == 403
    writes = entries(database_url, action="write")
    assert [(e.actor, e.object, e.outcome) for e in writes] == [
        ("device:d1", "station:S1", "ok"),
        ("device:d1", "station:S1", "ok"),
        ("device:d1", "station:S2", "denied"),
    ]
    assert writes[0].address == "testclient"
    assert writes[0].details == {"protocol": "http", "device": "d1", "accepted": 2, "rejected": 1}
    assert writes[1].details == {
        "protocol": "lineprotocol",
        "device": "d1",
        "accepted": 2,
        "rejected": 0,
    }


def test_an_hj212_packet_is_audited_per_group_commit(
    store: PostgresStore, database_url: str
) -> None:
    """ "every write (per … packet …)": one entry per device and group commit, off the loop."""
    mn, pw = "010000A8900016F000169DC0", "123456"
    store.upsert_stations([Station("W1", "Outfall 1", "wastewater", 120.1, 30.2)])
    store.add_device("logger-1", "W1", mn=mn, password=pw)
    threaded = ThreadedHj212Server(Hj212Server(store, idle_timeout=5.0))
    address = threaded.start("127.0.0.1", 0)
    try:
        when = time.strftime("%Y%m%d%H%M00", time.gmtime(time.time() + 8 * 3600 - 600))
        packet = hj212.encode(
            cn="2011",
            mn=mn,
            pw=pw,
            st="32",
            qn="20261128080000001",
            flag=5,
            cp=f"DataTime={when};w01018-Rtd=12.5,w01018-Flag=N;w21003-Rtd=0.8,w21003-Flag=N",
        )
        with socket.create_connection(address, timeout=5) as s:
            s.sendall(packet)
            decoder = hj212.FrameDecoder()
            frames: list[bytes | hj212.ProtocolError] = []
            while not frames:
                frames = decoder.feed(s.recv(4096))
            reply = frames[0]
            assert isinstance(reply, bytes) and hj212.parse(reply).cn == "9014"
        deadline = time.monotonic() + 10
        while not (found := entries(database_url, actor="device:logger-1")):
            assert time.monotonic() < deadline, "no audit entry for the packet"
            time.sleep(0.05)
    finally:
        threaded.stop()
    assert [(e.action, e.object, e.outcome, e.address) for e in found] == [
        ("write", "station:W1", "ok", "127.0.0.1")
    ]
    assert found[0].details == {
        "protocol": "hj212",
        "device": "logger-1",
        "packets": 1,
        "accepted": 2,
        "rejected": 0,
        "held": 0,
    }


def test_a_file_import_is_audited(cli_env: Path, database_url: str) -> None:
    """ "imports": who, which stations, how many readings accepted and rejected."""
    stations = cli_env / "stations.csv"
    stations.write_text("id,name,kind,lon,lat\nS1,One,air,116.4,39.9\n", "utf-8")
    assert cli.main(["stations", "import", str(stations)]) == 0
    readings = cli_env / "readings.csv"
    readings.write_text(
        "station,parameter,time,value\n"
        "S1,pm25,2026-11-28T08:00:00+08:00,35\n"
        "S1,pm25,2026-11-28T09:00:00+08:00,36\n"
        "S1,pm25,not a time,37\n",
        "utf-8",
    )
    assert cli.main(["import", str(readings)]) == 1  # one row rejected, the rest imported
    assert cli.main(["devices", "add", "d9", "--station", "S1"]) == 0
    found = entries(database_url)
    assert [(e.action, e.object, e.outcome) for e in found] == [
        ("import.stations", "stations", "ok"),
        ("import.readings", "station:S1", "partial"),
        ("device.token_issue", "station:S1", "ok"),
    ]
    assert all(e.actor.startswith("cli:") for e in found)
    assert found[1].details is not None
    assert (found[1].details["accepted"], found[1].details["rejected"]) == (2, 1)


def test_an_acknowledgement_is_by_the_authenticated_actor(
    client: TestClient, database_url: str
) -> None:
    """ "alert acknowledgements (acknowledged by the authenticated actor, not a query
    parameter)": the operator token is ``admin``, whatever ``by`` says."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO alerts (rule, station_id, parameter, message)"
            " VALUES ('exceedance', 'S1', 'so2', 'SO2 above 500') RETURNING id"
        ).fetchone()
    assert row is not None
    admin = {"Authorization": f"Bearer {ADMIN}"}
    r = client.post(f"/api/v1/alerts/{row[0]}/acknowledge", params={"by": "mallory"}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["acknowledged_by"] == "admin"
    acks = entries(database_url, action="alert.acknowledge")
    assert [(e.actor, e.object, e.outcome) for e in acks] == [("admin", f"alert:{row[0]}", "ok")]
    assert acks[0].details == {"station": "S1", "rule": "exceedance"}


def test_reads_of_non_public_data_are_audited(client: TestClient, database_url: str) -> None:
    """ "every read of non-public data": the break-glass token reading a sensitive station's
    observations and the (internal) alerts; a public station's readings are not audited."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        users.set_station_grade(conn, "S1", Grade.SENSITIVE)
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert client.get("/api/v1/observations?station=S2", headers=admin).status_code == 200
    assert client.get("/api/v1/observations?station=S1", headers=admin).status_code == 200
    assert client.get("/api/v1/alerts", headers=admin).status_code == 200
    assert client.get("/api/v1/stations").status_code == 200  # public: not audited
    reads = entries(database_url, action="read")
    assert [(e.actor, e.object) for e in reads] == [("admin", "station:S1"), ("admin", "alerts")]


def test_sign_ins_reviews_and_refusals_are_audited(
    client: TestClient, store: PostgresStore, database_url: str
) -> None:
    """ "logins (success and failure)", "reviews", and a read refused to a signed-in user
    (403) as ``denied``; each entry's actor is the user's name as is."""
    from access import Role
    from access.passwords import hash_password

    with psycopg.connect(database_url, autocommit=True) as conn:
        users.set_station_grade(conn, "S2", Grade.RESTRICTED)
    with store.connection() as conn:
        users.add_user(conn, WHO, Role.REVIEWER, hash_password("pw-right"))
    wrong = client.post("/api/v1/auth/token", data={"username": WHO, "password": "nope"})
    assert wrong.status_code == 401
    r = client.post("/api/v1/auth/token", data={"username": WHO, "password": "pw-right"})
    assert r.status_code == 200, r.text
    me = {"Authorization": f"Bearer {r.json()['access_token']}"}
    logins = entries(database_url, action="login")
    assert [(e.actor, e.object, e.outcome, e.address) for e in logins] == [
        (WHO, f"user:{WHO}", "failed", "testclient"),
        (WHO, f"user:{WHO}", "ok", "testclient"),
    ]
    assert logins[0].details == {"reason": "wrong password"}
    body = {
        "station": "S1",
        "parameter": "pm25",
        "start": "2026-11-28T08:00:00+08:00",
        "end": "2026-11-28T09:00:00+08:00",
        "action": "invalidate",
        "reason": "calibration",
    }
    r = client.post("/api/v1/reviews", json=body, headers=me)
    assert r.status_code == 201, r.text
    reviews = entries(database_url, action="review.invalidate")
    assert [(e.actor, e.object, e.outcome) for e in reviews] == [(WHO, "station:S1", "ok")]
    assert reviews[0].details is not None and reviews[0].details["reason"] == "calibration"
    assert client.get("/api/v1/observations?station=S2", headers=me).status_code == 403
    denied = entries(database_url, actor=WHO, action="read")
    assert [(e.object, e.outcome) for e in denied] == [("station:S2", "denied")]


def test_user_and_grade_changes_and_cli_reviews_are_audited(
    cli_env: Path, store: PostgresStore, database_url: str
) -> None:
    """ "reviews, classification and role changes": ``ecosense users add|role|disable``,
    ``ecosense classify`` and ``ecosense review``, each by ``cli:<login>``."""
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    assert cli.main(["users", "add", "li", "--role", "viewer"]) == 0
    assert cli.main(["users", "role", "li", "analyst"]) == 0
    assert cli.main(["users", "disable", "li"]) == 0
    assert cli.main(["classify", "station", "S1", "--class", "sensitive"]) == 0
    argv = ["review", "invalidate", "--station", "S1", "--parameter", "pm25"]
    argv += ["--start", "2026-11-28T08:00", "--end", "2026-11-28T09:00", "--reason", "drift"]
    assert cli.main(argv) == 0
    found = entries(database_url)
    assert [(e.action, e.object, e.outcome) for e in found] == [
        ("user.add", "user:li", "ok"),
        ("user.role", "user:li", "ok"),
        ("user.disable", "user:li", "ok"),
        ("classify", "station:S1", "ok"),
        ("review.invalidate", "station:S1", "ok"),
    ]
    assert all(e.actor.startswith("cli:") for e in found)
    assert found[1].details == {"role": "analyst"}
    assert found[3].details == {"grade": "sensitive", "default": False}


# --------------------------------------------------------------------------- the chain
def test_verify_names_an_entry_changed_directly_in_sql(
    store: PostgresStore, database_url: str, tmp_path: Path
) -> None:
    """ "non-zero naming the first entry that was changed (a test edits … rows directly in
    SQL)" — as a superuser would, after switching the append-only trigger off."""
    seed(database_url, 6)
    ok = verify_cli(database_url, tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip().splitlines()[-1] == "audit chain intact: 6 entries"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE audit_log SET outcome = 'denied' WHERE id = 4")
    bad = verify_cli(database_url, tmp_path)
    assert bad.returncode != 0
    assert "entry 4 was changed" in bad.stderr, bad.stderr


def test_verify_names_a_details_change_and_a_rehashed_entry(
    store: PostgresStore, database_url: str
) -> None:
    """A change inside ``details`` is caught; so is a forger who recomputes the changed entry's
    own hash (the next entry no longer follows it)."""
    seed(database_url, 5)
    with psycopg.connect(database_url, autocommit=True) as conn:
        assert audit.verify(conn) is None
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER ALL")
        conn.execute("UPDATE audit_log SET details = details || '{\"accepted\": 99}' WHERE id = 2")
        broken = audit.verify(conn)
        assert broken is not None and broken.id == 2
        e = next(e for e in audit.read(conn, limit=10) if e.id == 2)
        forged = audit.entry_hash(
            e.id, e.time, e.actor, e.address, e.action, e.object, e.outcome, e.details, e.prev_hash
        )
        conn.execute("UPDATE audit_log SET hash = %s WHERE id = 2", (forged,))
        broken = audit.verify(conn)
        assert broken is not None and broken.id == 3 and "does not follow entry 2" in broken.reason


def test_verify_names_a_deleted_entry(
    store: PostgresStore, database_url: str, tmp_path: Path
) -> None:
    """ "non-zero naming the first entry that was … deleted"."""
    seed(database_url, 6)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_log DISABLE TRIGGER ALL")
        conn.execute("DELETE FROM audit_log WHERE id = 3")
    bad = verify_cli(database_url, tmp_path)
    assert bad.returncode != 0
    assert "entry 3 deleted" in bad.stderr and "entry 4 does not follow entry 2" in bad.stderr


def test_verify_names_reordered_and_first_entries(store: PostgresStore, database_url: str) -> None:
    """Entries moved to other ids, or the first entries removed, break the chain too."""
    seed(database_url, 5)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("UPDATE audit_log SET id = -id WHERE id IN (2, 3)")
        conn.execute("UPDATE audit_log SET id = CASE id WHEN -2 THEN 3 ELSE 2 END WHERE id < 0")
        broken = audit.verify(conn)
        assert broken is not None and broken.id == 2
        conn.execute("DELETE FROM audit_log WHERE id <= 3")
        broken = audit.verify(conn)
        assert broken is not None and broken.id == 1 and broken.missing == (1, 2, 3)


def test_the_table_is_append_only(store: PostgresStore, database_url: str) -> None:
    """The trigger refuses UPDATE, DELETE and TRUNCATE in normal operation, even to the
    table's owner; only an explicit maintenance session may."""
    seed(database_url, 3)
    with psycopg.connect(database_url, autocommit=True) as conn:
        for statement in (
            "UPDATE audit_log SET outcome = 'ok'",
            "DELETE FROM audit_log WHERE id = 1",
            "TRUNCATE audit_log",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (3,)
        assert audit.verify(conn) is None
        conn.execute("SET ecosense.audit_maintenance = 'on'")
        conn.execute("DELETE FROM audit_log WHERE id = 3")
        assert conn.execute("SELECT count(*) FROM audit_log").fetchone() == (2,)


def test_concurrent_appends_keep_one_linear_chain(store: PostgresStore, database_url: str) -> None:
    """Threads appending at once (each its own connection) take turns under the advisory lock."""
    threads, per_thread = 8, 25
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                for i in range(per_thread):
                    audit.append(
                        conn, f"device:d{n}", "write", f"station:S{n}", "ok", None, {"i": i}
                    )
        except BaseException as exc:
            errors.append(exc)

    running = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in running:
        t.start()
    for t in running:
        t.join()
    assert errors == []
    with psycopg.connect(database_url, autocommit=True) as conn:
        result = audit.check(conn)
    assert result.broken is None and result.entries == threads * per_thread


def test_a_failed_audit_write_loses_no_reading(
    client: TestClient, store: PostgresStore, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """ "Failed writes of the audit must not lose the reading nor crash the server: log an
    error." The audit table is gone (as if its migration failed): the write still succeeds."""
    token = store.add_device("d1", "S1")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_log RENAME TO audit_log_away")
    item = {"station": "S1", "parameter": "pm25", "time": "2026-11-28T08:00:00+08:00", "value": 1}
    r = client.post(
        "/api/v1/observations",
        json={"observations": [item]},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200 and r.json()["accepted"] == 1
    assert store.count_observations() == 1
    assert any(
        rec.levelname == "ERROR" and "audit entry not written" in rec.getMessage()
        for rec in caplog.records
    )


# --------------------------------------------------------------------------- the route
def test_the_audit_route_pages_and_is_admin_only(
    client: TestClient, store: PostgresStore, database_url: str
) -> None:
    """ "``GET /api/v1/audit?actor=&action=&start=&end=`` (admin, paged)"."""
    seed(database_url, 5)
    token = store.add_device("d1", "S1")
    assert client.get("/api/v1/audit").status_code == 401
    device = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/audit", headers=device).status_code == 403
    refused = entries(database_url, actor="device:d1", action="read")
    assert [(e.object, e.outcome) for e in refused] == [("audit", "denied")]
    admin = {"Authorization": f"Bearer {ADMIN}"}
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": "2", "action": "write"} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/v1/audit", params=params, headers=admin).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [5, 4, 3, 2, 1]  # newest first; the route's own reads are action "read"
    mine = client.get("/api/v1/audit", params={"actor": "device:d1"}, headers=admin).json()
    assert [i["id"] for i in mine["items"]] == [6, 5, 3, 1]  # 6: the refused read
    assert mine["items"][1]["time"].endswith("+08:00")
    assert mine["items"][1]["details"] == {"accepted": 4, "ratio": 4 / 3, "text": "污染物 ✓"}
    future = client.get("/api/v1/audit", params={"start": "2100-01-01"}, headers=admin).json()
    assert future["items"] == []
    assert client.get("/api/v1/audit", params={"start": "x"}, headers=admin).status_code == 400
    reads = entries(database_url, actor="admin", action="read")
    assert reads and all(e.object == "audit" and e.outcome == "ok" for e in reads)


def test_the_background_writer_batches_and_keeps_the_chain(
    store: PostgresStore, database_url: str
) -> None:
    """As in ``ecosense up``: requests queue their entries, one thread appends them in batches;
    the chain stays linear, every entry is written by ``flush``/``stop``, and an entry keeps the
    time it happened."""
    writer = audit.AuditWriter(store, max_batch=50).start()
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    token = store.add_device("d1", "S1")
    ctx = ServiceContext(store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"), auditor=writer)
    try:
        with TestClient(create_app(ctx)) as client:
            item = {"station": "S1", "parameter": "pm25", "time": "2026-11-28T08:00:00+08:00"}
            r = client.post(
                "/api/v1/observations",
                json={"observations": [{**item, "value": 1}]},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200
        before = time.time()
        running = [
            threading.Thread(
                target=lambda n=n: [
                    writer.submit(f"device:d{n}", "write", "station:S1") for _ in range(40)
                ]
            )
            for n in range(6)
        ]
        for t in running:
            t.start()
        for t in running:
            t.join()
        assert writer.flush(30)
    finally:
        writer.stop()
    assert writer.written == 241 and writer.failed == 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        result = audit.check(conn)
    assert result.broken is None and result.entries == 241
    first = entries(database_url, action="write")[0]
    assert first.actor == "device:d1" and first.details == {
        "protocol": "http",
        "device": "d1",
        "accepted": 1,
        "rejected": 0,
    }
    assert first.time.timestamp() <= before


def test_ecosense_up_audits_http_and_hj212_writes(
    store: PostgresStore, database_url: str, tmp_path: Path
) -> None:
    """The shell's wiring: ``ecosense up`` hands HTTP and HJ 212 entries to its background
    writer; they are in the table while it runs, and the chain verifies after it stops."""
    import httpx

    mn, pw = "010000A8900016F000169DC1", "654321"
    store.upsert_stations(
        [
            Station("S1", "One", "air", 116.4, 39.9),
            Station("W1", "Outfall 1", "wastewater", 120.1, 30.2),
        ]
    )
    token = store.add_device("d1", "S1")
    store.add_device("logger-2", "W1", mn=mn, password=pw)
    env = {
        **os.environ,
        "ECOSENSE_DATABASE_URL": database_url,
        "ECOSENSE_DATA_DIR": str(tmp_path / "data"),
        "ECOSENSE_ADMIN_TOKEN": ADMIN,
        "ECOSENSE_JOBS_INTERVAL_SECONDS": "0",
        "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    proc = subprocess.Popen(
        [*UP, "--hj212-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("ready "), line
        parts = dict(p.split("=", 1) for p in line.split()[1:])
        r = httpx.post(
            parts["http"] + "/api/v1/observations",
            json={
                "observations": [
                    {
                        "station": "S1",
                        "parameter": "pm25",
                        "time": "2026-11-28T08:00:00+08:00",
                        "value": 1,
                    }
                ]
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text
        host, port = parts["hj212"].rsplit(":", 1)
        when = time.strftime("%Y%m%d%H%M00", time.gmtime(time.time() + 8 * 3600 - 600))
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(
                hj212.encode(
                    cn="2011",
                    mn=mn,
                    pw=pw,
                    st="32",
                    qn="20261128080000002",
                    flag=5,
                    cp=f"DataTime={when};w01018-Rtd=12.5,w01018-Flag=N",
                )
            )
            decoder = hj212.FrameDecoder()
            frames: list[bytes | hj212.ProtocolError] = []
            while not frames:
                frames = decoder.feed(s.recv(4096))
        deadline = time.monotonic() + 20
        while len(found := entries(database_url, action="write")) < 2:
            assert time.monotonic() < deadline, found
            time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    assert sorted((e.actor, e.object, e.outcome) for e in found) == [
        ("device:d1", "station:S1", "ok"),
        ("device:logger-2", "station:W1", "ok"),
    ]
    assert verify_cli(database_url, tmp_path).returncode == 0


def test_the_background_writer_waits_out_an_outage(store: PostgresStore, database_url: str) -> None:
    """Entries queued while the database cannot be reached are written once it answers (the
    outage: the first two connection attempts fail as the store's pool fails when the server
    is down); an entry with text PostgreSQL cannot hold is cleaned, not refused."""
    from store.errors import StoreUnavailable

    class Outage:
        def __init__(self) -> None:
            self.failures = 2

        def connection(self, timeout: float | None = None) -> Any:
            if self.failures:
                self.failures -= 1
                raise StoreUnavailable("database unavailable: connection refused")
            return store.connection(timeout)

    writer = audit.AuditWriter(Outage(), retry_seconds=30).start()
    try:
        writer.submit("admin", "read", "alerts")
        writer.submit("admin", "read", "observations")
        assert writer.flush(30)
        assert writer.written == 2 and writer.failed == 0
        writer.submit("admin", "read", "bad\x00name", details={"nested": [float("nan")]})
        assert writer.flush(30) and writer.written == 3  # cleaned, not refused
    finally:
        writer.stop()
    with psycopg.connect(database_url, autocommit=True) as conn:
        result = audit.check(conn)
        objects = [e.object for e in reversed(audit.read(conn))]
    assert result.broken is None and result.entries == 3
    assert objects == ["alerts", "observations", "bad\ufffdname"]
