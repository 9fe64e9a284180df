"""The documented backup and restore, performed against PostgreSQL 15 with TimescaleDB (issue
15, "What to build" 3: "A documented backup and restore … that a test performs against a real
PostgreSQL").

The test runs the very command lines of ``docs/deploy.md`` ("Backup and restore", the block
after the ``backup-and-restore`` marker) — there run inside the ``timescaledb`` container, here
with the server's own PostgreSQL 15 client tools against the test server, with only the
database names changed. Before: a database migrated by the store, readings written through the
store API, the hourly job's aggregates and marks, a device, audit entries. After: every table
has the same rows, the hypertables the same chunks, the audit chain verifies (``ecosense audit
verify``), the store finds its schema current, and new readings are written.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pipelines.jobs import JobContext, get
from pipelines.runner import Runner
from sensors.observations import Observation, Source
from sensors.stations import Station
from store import audit, derived, migrations, roles
from store.postgres import PostgresStore
from tests.conftest import require_service
from tests.integration.test_audit import verify_cli
from tests.integration.test_compose import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "docs" / "deploy.md"
T0 = datetime(2026, 10, 1, tzinfo=UTC)
SOURCE = Source("http", "backup-test")


def deploy_text() -> str:
    return DEPLOY.read_text("utf-8")


def documented_commands(marker: str = "backup-and-restore") -> list[str]:
    """The ``$C …`` lines (without ``$C``) of the shell block after ``<!-- marker`` in
    docs/deploy.md, where ``$C`` runs a command in the ``timescaledb`` container."""
    text = deploy_text()
    assert 'C="docker-compose -f docker/compose.yaml exec -T timescaledb"' in text
    start = text.index(f"<!-- {marker}")
    block = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    assert block is not None, f"no shell block after the {marker} marker"
    lines = block.group(1).splitlines()
    return [line.removeprefix("$C ") for line in lines if line.startswith("$C ")]


def test_the_documented_block_is_a_dump_and_a_timescaledb_restore() -> None:
    commands = documented_commands()
    assert [c.split()[0] for c in commands] == [
        "pg_dump",
        "pg_dumpall",
        "psql",
        "psql",
        "pg_restore",
        "psql",
    ]
    assert "--format=custom" in commands[0]
    assert "timescaledb_pre_restore()" in commands[3]
    assert "timescaledb_post_restore()" in commands[5]


@pytest.fixture
def timescale_url() -> str:
    url = os.environ.get("ECOSENSE_TEST_TIMESCALE_URL", "")
    require_service("PostgreSQL 15 with TimescaleDB", bool(url))
    return url


@pytest.fixture
def databases(timescale_url: str) -> Iterator[tuple[str, str]]:
    """Two database names on the TimescaleDB server: the source (created, empty) and the
    restore's target (created by the documented commands); both dropped afterwards."""
    tag = uuid.uuid4().hex[:10]
    source, target = f"t_bk_{tag}", f"t_bk_{tag}_restore"
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(source)))
    yield source, target
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        for name in (source, target):
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def client_bin(url: str) -> Path:
    """The PostgreSQL client tools of the server's major version (Debian's layout)."""
    with psycopg.connect(url) as conn:
        major = conn.info.server_version // 10000
    path = Path(f"/usr/lib/postgresql/{major}/bin")
    require_service(f"PostgreSQL {major} client tools", (path / "pg_restore").exists())
    return path


def run_documented(line: str, url: str, bin_dir: Path, cwd: Path) -> None:
    """One documented command line, run by bash in ``cwd`` with the server's client tools
    first on the PATH and the server of ``url`` in libpq's variables (in the container:
    its local socket and ``PGUSER=ecosense``)."""
    params = conninfo_to_dict(url)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PGHOST": str(params.get("host") or "127.0.0.1"),
        "PGPORT": str(params.get("port") or 5432),
        "PGUSER": str(params.get("user") or "postgres"),
    }
    if params.get("password"):
        env["PGPASSWORD"] = str(params["password"])
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", line],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{line}\n{done.stderr}"


def populate(url: str) -> None:
    """Readings over six weeks (several chunks), a device, the hourly job, audit entries."""
    store = PostgresStore(url)
    try:
        store.migrate()
        store.upsert_stations(
            [
                Station("BK-A", "Backup A", "air", 116.40, 39.90, {"city": "Beijing"}),
                Station("BK-B", "Backup B", "air", 116.30, 39.95, {"city": "Beijing"}),
            ]
        )
        readings = [
            Observation(station, "pm25", T0 + timedelta(minutes=m), 20.0 + (m % 97) / 10)
            for station in ("BK-A", "BK-B")
            for m in range(0, 42 * 24 * 60, 60)
        ]
        readings += [
            Observation("BK-A", "pm25", T0 + timedelta(days=3, minutes=m), 50.0 + m)
            for m in range(0, 60, 5)
        ]
        assert store.write_observations(readings, source=SOURCE) > 0
        store.add_device("bk-logger", "BK-A", mn="BKA0001", password="hj212-secret")
    finally:
        store.close()
    with Runner(local="threads", workers=2) as runner:
        report = get("hourly").run(JobContext(url, runner, "Asia/Shanghai"), None, None)
    assert report.errors == []
    with psycopg.connect(url, autocommit=True) as conn:
        for i in range(5):
            audit.append(
                conn, "admin", "write", f"station:BK-{i}", "ok", "127.0.0.1", {"accepted": i}
            )


def snapshot(url: str) -> dict[str, Any]:
    """What must survive: every table's rows, the hypertables and their chunks, the schema's
    version, the audit chain's length and head."""
    out: dict[str, Any] = {}
    with psycopg.connect(url) as conn:
        for table in roles.tables(conn):
            rows = conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table)))
            out[table] = sorted(map(repr, rows.fetchall()))
        out["hypertables"] = conn.execute(
            "SELECT hypertable_name, num_chunks FROM timescaledb_information.hypertables ORDER BY 1"
        ).fetchall()
        out["chunks"] = conn.execute(
            "SELECT hypertable_name, range_start, range_end FROM timescaledb_information.chunks"
            " ORDER BY 1, 2"
        ).fetchall()
        out["version"] = migrations.current_version(conn)
        out["marks"] = derived.marks(conn)
        check = audit.check(conn)
        out["audit"] = (check.entries, check.broken, check.head)
    return out


def test_the_documented_backup_and_restore_keeps_everything(
    timescale_url: str, databases: tuple[str, str], tmp_path: Path
) -> None:
    source, target = databases
    source_url = make_conninfo(timescale_url, dbname=source)
    target_url = make_conninfo(timescale_url, dbname=target)
    bin_dir = client_bin(timescale_url)
    populate(source_url)
    before = snapshot(source_url)
    assert before["hypertables"] and before["hypertables"][0][0] == "observations"
    assert before["hypertables"][0][1] >= 3  # several chunks
    assert len(before["observations"]) > 2000 and before["aggregates"] and before["devices"]
    assert before["marks"] and before["audit"][:2] == (5, None)

    for command in documented_commands():
        line = command.replace("ecosense_restore", target).replace("-d ecosense ", f"-d {source} ")
        run_documented(line, timescale_url, bin_dir, tmp_path)
    assert (tmp_path / "ecosense.dump").stat().st_size > 0
    assert "CREATE ROLE" in (tmp_path / "roles.sql").read_text()

    after = snapshot(target_url)
    assert after == before
    with psycopg.connect(target_url) as conn:
        restoring = conn.execute("SHOW timescaledb.restoring").fetchone()
        assert restoring == ("off",)
    verified = verify_cli(target_url, tmp_path)
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.strip().splitlines()[-1] == "audit chain intact: 5 entries"

    # the restored database is a working one: migrations current, new readings in a new chunk
    store = PostgresStore(target_url)
    try:
        store.migrate()
        later = T0 + timedelta(days=90)
        assert store.write_observations([Observation("BK-A", "pm25", later, 12.5)], source=SOURCE)
        frame = store.read_frame(station="BK-A", parameter="pm25", start=later)
        assert list(frame["value"]) == [12.5]
    finally:
        store.close()
    with psycopg.connect(target_url) as conn:
        chunks = conn.execute(
            "SELECT num_chunks FROM timescaledb_information.hypertables"
            " WHERE hypertable_name = 'observations'"
        ).fetchone()
        assert chunks is not None and chunks[0] == before["hypertables"][0][1] + 1


def test_the_documented_base_backup_restores_the_server(
    timescale_url: str, databases: tuple[str, str], tmp_path: Path
) -> None:
    """``pg_basebackup`` as documented, unpacked into an empty folder as the documented
    restore does in the container's volume, and a server started on it: the database is
    there with the same rows, chunks and audit chain."""
    source, _ = databases
    bin_dir = client_bin(timescale_url)
    populate(make_conninfo(timescale_url, dbname=source))
    before = snapshot(make_conninfo(timescale_url, dbname=source))
    [line] = documented_commands("physical-backup")
    assert "pg_basebackup " in line and line.endswith("> base.tar")
    run_documented(line, timescale_url, bin_dir, tmp_path)
    assert (tmp_path / "base.tar").stat().st_size > 0

    # the documented restore script, run here: the volume is an empty folder, /b the backup's
    restore = re.search(r"^  '(cd /var/lib/postgresql/data .*)'$", deploy_text(), re.M)
    assert restore is not None, "no restore script in docs/deploy.md"
    data = Path(tempfile.mkdtemp(prefix="ecosense-basebackup-"))
    owner: list[str] = []
    script = restore.group(1).replace("/var/lib/postgresql/data", str(data))
    script = script.replace("/b/", f"{tmp_path}/")
    if os.geteuid() == 0:
        owner = ["su", "postgres", "-s", "/bin/sh", "-c"]  # Debian's server runs as postgres
    else:  # no one else to give the files to
        script = script.replace(" && chown -R postgres:postgres .", "")
    try:
        done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        assert (data / "PG_VERSION").exists() and any((data / "pg_wal").iterdir())
        port = free_port()
        options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={data}"
        ctl = f"{bin_dir}/pg_ctl -D {data} -l {data}/log -w -t 120 -o '{options}'"
        start = subprocess.run(
            [*owner, f"{ctl} start"] if owner else ["sh", "-c", f"{ctl} start"],
            capture_output=True,
            text=True,
            timeout=180,
        )
        log = data / "log"
        assert start.returncode == 0, start.stderr + (log.read_text() if log.exists() else "")
        try:
            copy_url = make_conninfo(timescale_url, port=port, host="127.0.0.1", dbname=source)
            assert snapshot(copy_url) == before
            verified = verify_cli(copy_url, tmp_path)
            assert verified.returncode == 0, verified.stderr
            assert verified.stdout.strip().splitlines()[-1] == "audit chain intact: 5 entries"
        finally:
            stop = f"{bin_dir}/pg_ctl -D {data} -m fast -w stop"
            subprocess.run(
                [*owner, stop] if owner else ["sh", "-c", stop], capture_output=True, timeout=120
            )
    finally:
        shutil.rmtree(data, ignore_errors=True)
