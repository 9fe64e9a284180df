"""Many gateway instances on one database (issue 15, item 1): two ``ecosense up`` processes,
each with its own data dir, on one TimescaleDB database, connected as the gateway role.

- "an HJ 212 command posted to any instance reaches the unit through the instance that holds
  its connection, and its 9011/9012 answers come back to the caller; 404 only when no
  instance holds it";
- "stations, devices and credentials live in the database: one registered (or revoked)
  through any instance is recognised by every instance within seconds".
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ecosense.testing import Platform, environment, running
from ingest import hj212
from store import roles
from tests.conftest import require_service

pytestmark = pytest.mark.integration

MN, PW = "010000A8900016F000169DC0", "123456"
ADMIN = "es_admin_two-instances-test-token-0123456789abcdef"
ROLE_PASSWORD = "ecosense-test-role-password"  # as tests/integration/test_db_roles.py


@pytest.fixture
def shared_database() -> Iterator[str]:
    """A fresh database on the TimescaleDB server (the component roles made), dropped after."""
    admin = os.environ.get("ECOSENSE_TEST_TIMESCALE_URL", "")
    require_service("PostgreSQL 15 with TimescaleDB", bool(admin))
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        for statement in roles.create_sql():
            with contextlib.suppress(psycopg.errors.UniqueViolation):  # a parallel session
                conn.execute(statement)
        for role in roles.ROLES.values():
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(ROLE_PASSWORD)
                )
            )
    yield make_conninfo(admin, dbname=name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def instance_env(url: str) -> dict[str, str]:
    """An instance's settings: the shared database (the gateway as its own role), the same
    admin token on all, no scheduler."""
    return {
        "ECOSENSE_DATABASE_URL": url,
        "ECOSENSE_GATEWAY_DATABASE_URL": make_conninfo(
            url, user=roles.ROLES["gateway"], password=ROLE_PASSWORD
        ),
        "ECOSENSE_ADMIN_TOKEN": ADMIN,
        "ECOSENSE_JOBS_INTERVAL_SECONDS": "0",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }


@contextlib.contextmanager
def two_instances(url: str, tmp_path: Path) -> Iterator[tuple[Platform, Platform]]:
    """``ecosense up`` twice on ``url``, each with its own data dir."""
    env = instance_env(url)
    with running(tmp_path / "a", env=env) as a, running(tmp_path / "b", env=env) as b:
        yield a, b


def cli(tmp_path: Path, url: str, *args: str) -> str:
    """An ``ecosense`` command as run on instance A's machine; its last line of output."""
    r = subprocess.run(
        [sys.executable, "-m", "ecosense", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment(tmp_path / "a", instance_env(url)),
    )
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()[-1]


def wait_for(check: Callable[[], object], timeout: float) -> float:
    """Seconds until ``check()`` is true; fails after ``timeout`` seconds."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start


def holder(url: str, mn: str = MN) -> str | None:
    """The instance that the database says holds ``mn``."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT instance FROM hj212_links WHERE mn = %s", (mn,)).fetchone()
    return None if row is None else str(row[0])


def now_cst() -> str:
    return datetime.now(UTC).astimezone(hj212.CST).strftime("%Y%m%d%H%M%S")


class FieldUnit:
    """A simulated HJ 212 field unit on a real TCP connection: logs in with an upload
    (answered 9014), then answers every platform command with 9011 ``QnRtn`` and, when it
    accepts (``qn_rtn="1"``), 9012 ``ExeRtn=1`` — or, ``silent``, with nothing."""

    def __init__(
        self, address: tuple[str, int], *, qn_rtn: str = "1", silent: bool = False
    ) -> None:
        self.qn_rtn, self.silent = qn_rtn, silent
        self.commands: list[hj212.Packet] = []
        self.sock = socket.create_connection(address, timeout=10)
        self.decoder = hj212.FrameDecoder()
        self.frames: list[bytes] = []
        self.sock.sendall(
            hj212.encode(
                cn="2011",
                st="32",
                mn=MN,
                pw=PW,
                qn=hj212.qn_now(),
                flag=5,
                cp=f"DataTime={now_cst()};w01018-Rtd=16.9,w01018-Flag=N",
            )
        )
        assert self.receive().cn == "9014"
        self.sock.settimeout(None)
        self.thread = threading.Thread(target=self._answer, daemon=True)
        self.thread.start()

    def receive(self) -> hj212.Packet:
        while not self.frames:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed by the platform")
            self.frames += [f for f in self.decoder.feed(chunk) if isinstance(f, bytes)]
        return hj212.parse(self.frames.pop(0))

    def _answer(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                command = self.receive()
                self.commands.append(command)
                if self.silent:
                    continue
                answer = {"cn": "9011", "cp": f"QnRtn={self.qn_rtn}"}
                self.send(command, **answer)
                if self.qn_rtn == "1":
                    self.send(command, cn="9012", cp="ExeRtn=1")

    def send(self, command: hj212.Packet, *, cn: str, cp: str) -> None:
        self.sock.sendall(hj212.encode(cn=cn, st="91", mn=MN, pw=PW, qn=command.qn, flag=4, cp=cp))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


def post_command(platform: Platform, mn: str = MN, **body: str) -> httpx.Response:
    return httpx.post(
        f"{platform.http}/api/v1/hj212/{mn}/commands",
        json=body or {"cn": "1062", "cp": "RtdInterval=30"},
        headers={"Authorization": f"Bearer {ADMIN}"},
        timeout=60,
    )


def test_a_command_reaches_the_unit_through_the_instance_that_holds_it(
    shared_database: str, tmp_path: Path
) -> None:
    url = shared_database
    with two_instances(url, tmp_path) as (a, b):
        stations = tmp_path / "stations.csv"
        stations.write_text("id,name,kind,lon,lat\nW1,Outfall,wastewater,120.1,30.2\n")
        cli(tmp_path, url, "stations", "import", str(stations))
        cli(tmp_path, url, "devices", "add", "logger-1", "--station", "W1", "--mn", MN,
            "--password", PW)  # fmt: skip

        # connected nowhere: 404 on both
        for platform in (a, b):
            r = post_command(platform)
            assert r.status_code == 404, r.text

        unit = FieldUnit(a.hj212)
        try:
            wait_for(lambda: holder(url) is not None, 10)
            at_a = holder(url)
            # posted to B, sent through A: the unit's 9011/9012 come back in B's answer
            r = post_command(b)
            assert r.status_code == 200, r.text
            assert r.json()["QnRtn"] == "1" and r.json()["ExeRtn"] == "1"
            (seen,) = unit.commands
            assert (seen.cn, seen.cp, seen.qn) == ("1062", "RtdInterval=30", r.json()["qn"])
            # posted to A itself: its own link, as before
            r = post_command(a, cn="1061", cp="")
            assert r.status_code == 200 and r.json()["QnRtn"] == "1"
            assert len(unit.commands) == 2
            # a 1072 (new password) through B reaches it; nothing too long for HJ 212 is sent
            r = post_command(b, cn="1072", cp="NewPW=654321")
            assert r.status_code == 200 and unit.commands[-1].cp == "NewPW=654321"
            r = post_command(b, cn="1062", cp="RtdInterval=" + "9" * 1100)
            assert r.status_code == 400, r.text
            assert len(unit.commands) == 3
        finally:
            unit.close()
        wait_for(lambda: holder(url) is None, 10)  # disconnected: its row is removed
        assert post_command(b).status_code == 404

        # a unit that refuses, and one that stays silent, reconnected to B: through A
        unit = FieldUnit(b.hj212, qn_rtn="2")
        try:
            wait_for(lambda: holder(url) is not None, 10)
            assert holder(url) != at_a  # the row moved with the unit
            r = post_command(a)
            assert r.status_code == 200 and r.json()["QnRtn"] == "2"
            assert r.json()["ExeRtn"] is None
        finally:
            unit.close()
        unit = FieldUnit(b.hj212, silent=True)
        try:
            wait_for(lambda: holder(url) is not None, 10)
            started = time.monotonic()
            r = post_command(a)
            assert r.status_code == 504, r.text  # the local path's time-out: 15 s
            assert 14 < time.monotonic() - started < 30
        finally:
            unit.close()

        # the unit reconnected to B, its old connection to A left open (half-open, silent):
        # A sends the command through B, where it logged in last, not on the dead link
        stale = FieldUnit(a.hj212, silent=True)
        try:
            wait_for(lambda: holder(url) == at_a, 10)
            unit = FieldUnit(b.hj212)
            try:
                wait_for(lambda: holder(url) not in (None, at_a), 10)
                r = post_command(a)
                assert r.status_code == 200 and r.json()["ExeRtn"] == "1", r.text
                assert stale.commands == [] and len(unit.commands) == 1
            finally:
                unit.close()
        finally:
            stale.close()

        # the audit: each command recorded once, by the instance that received the request
        # (written by the gateway's background audit writer: wait for the last one)
        def commands_audited() -> list[Any]:
            with psycopg.connect(url) as conn:
                return conn.execute(
                    "SELECT outcome, details FROM audit_log WHERE action = 'hj212.command'"
                    " ORDER BY id"
                ).fetchall()

        wait_for(lambda: len(commands_audited()) >= 10, 10)
        entries = commands_audited()
        assert [e[0] for e in entries] == [
            *["failed"] * 2,
            "ok",
            "ok",
            "ok",
            "failed",
            "failed",
            "refused",
            "failed",
            "ok",
        ]
        assert entries[2][1]["QnRtn"] == "1" and entries[4][1]["cp"] == "(new password withheld)"

        # the instance holding the unit killed: 404 within seconds, not a hang
        unit = FieldUnit(a.hj212)
        try:
            wait_for(lambda: holder(url) is not None, 10)
            assert post_command(b).status_code == 200
            a.process.kill()
            a.process.wait(10)
            started = time.monotonic()
            r = post_command(b)
            assert r.status_code == 404, r.text
            assert time.monotonic() - started < 10
        finally:
            unit.close()
        started = time.monotonic()
        assert post_command(b).status_code == 404
        assert time.monotonic() - started < 10


def test_what_is_registered_through_one_instance_is_recognised_by_the_other(
    shared_database: str, tmp_path: Path
) -> None:
    """Devices, their credentials and stations are rows of the one database; each instance's
    caches of them are dropped on the announcement of a change (store/notify.py)."""
    url = shared_database
    stations = tmp_path / "stations.csv"
    stations.write_text("id,name,kind,lon,lat\nS1,One,air,116.4,39.9\n")
    with two_instances(url, tmp_path) as (a, b), httpx.Client(timeout=30) as client:

        def write(platform: Platform, token: str, station: str = "S1") -> httpx.Response:
            reading = {
                "station": station,
                "parameter": "pm25",
                "time": datetime.now(UTC).isoformat(),
                "value": 35.2,
            }
            return client.post(
                f"{platform.http}/api/v1/observations",
                json={"observations": [reading]},
                headers={"Authorization": f"Bearer {token}"},
            )

        cli(tmp_path, url, "stations", "import", str(stations))
        token = cli(tmp_path, url, "devices", "add", "d1", "--station", "S1")
        # registered on A's side: B accepts its first upload at once, and A too
        assert write(b, token).json()["accepted"] == 1
        assert write(a, token).json()["accepted"] == 1
        # revoked on A's side: B refuses it within seconds (B had cached it as valid)
        cli(tmp_path, url, "devices", "revoke", "d1")
        assert wait_for(lambda: write(b, token).status_code == 401, 5) < 5
        assert wait_for(lambda: write(a, token).status_code == 401, 5) < 5

        # a station imported through A: B's ingest accepts its readings at once
        stations.write_text("id,name,kind,lon,lat\nS2,Two,air,121.5,31.2\n")
        cli(tmp_path, url, "stations", "import", str(stations))
        token3 = cli(tmp_path, url, "devices", "add", "d3", "--station", "S2")
        r = write(b, token3, "S2")
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text

        # an HJ 212 unit refused by B, registered through A, then accepted on its connection
        hj_stations = tmp_path / "w.csv"
        hj_stations.write_text("id,name,kind,lon,lat\nW1,Outfall,wastewater,120.1,30.2\n")
        cli(tmp_path, url, "stations", "import", str(hj_stations))
        with socket.create_connection(b.hj212, timeout=10) as s:
            decoder = hj212.FrameDecoder()

            def upload() -> hj212.Packet | None:
                s.sendall(
                    hj212.encode(
                        cn="2011",
                        st="32",
                        mn=MN,
                        pw=PW,
                        qn=hj212.qn_now(),
                        flag=5,
                        cp=f"DataTime={now_cst()};w01018-Rtd=16.9,w01018-Flag=N",
                    )
                )
                s.settimeout(2)
                try:
                    while True:
                        for frame in decoder.feed(s.recv(4096)):
                            assert isinstance(frame, bytes)
                            return hj212.parse(frame)
                except TimeoutError:
                    return None

            assert upload() is None  # unknown MN: nothing answered (B keeps that answer)
            cli(tmp_path, url, "devices", "add", "logger-1", "--station", "W1", "--mn", MN,
                "--password", PW)  # fmt: skip

            def answered() -> bool:
                answer = upload()
                return answer is not None and answer.cn == "9014"

            assert wait_for(answered, 10) < 10  # the same connection: the answer dropped
            # revoked through A: B closes the unit's connection within seconds
            cli(tmp_path, url, "devices", "revoke", "logger-1")
            s.settimeout(10)
            closed = time.monotonic()
            with contextlib.suppress(ConnectionError):
                while s.recv(4096):
                    pass
            assert time.monotonic() - closed < 10
