"""Many instances on one database (issue 15, item 1): ``ecosense up --roles``, the jobs leader
and its takeover, ``/healthz`` naming roles and leadership, one admin token for all.

Every instance is a real ``ecosense up`` process with its own data dir, on a fresh database of
the TimescaleDB service (``ECOSENSE_TEST_TIMESCALE_URL``).
"""

from __future__ import annotations

import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from sensors.stations import Station
from store.postgres import PostgresStore
from tests.conftest import require_service

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ADMIN_TOKEN = "es_admin_" + "shared-by-every-instance-0123456789"
#: the issue's bound on a takeover after the leader's death (seconds)
TAKEOVER_SECONDS = 30.0


@pytest.fixture
def shared_db() -> Iterator[str]:
    """A fresh database on the TimescaleDB service, dropped afterwards."""
    admin = os.environ.get("ECOSENSE_TEST_TIMESCALE_URL", "")
    require_service("PostgreSQL 15 with TimescaleDB", bool(admin))
    name = "t_roles_" + uuid.uuid4().hex[:10]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_conninfo(admin, dbname=name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclass
class Instance:
    """One running ``ecosense up``."""

    proc: subprocess.Popen[str]
    ready: str
    stderr: Path

    @property
    def http(self) -> str:
        m = re.search(r"http=(\S+)", self.ready)
        assert m is not None
        return m.group(1)

    @property
    def hj212(self) -> tuple[str, int]:
        m = re.search(r"hj212=(\S+):(\d+)", self.ready)
        assert m is not None
        return m.group(1), int(m.group(2))

    def health(self) -> dict[str, object]:
        r = httpx.get(self.http + "/healthz", timeout=10)
        assert r.status_code == 200, r.text
        answer: dict[str, object] = r.json()
        return answer

    def log(self) -> str:
        return self.stderr.read_text("utf-8", "replace")


def environment(db: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """No EcoSense setting of this process's environment but the database, the data dir and
    ``extra``; the admin token the same for every instance (given as a file, as compose
    secrets are)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOSENSE_")}
    secret = data_dir.parent / (data_dir.name + "-admin-token")
    secret.write_text(ADMIN_TOKEN + "\n")
    env.update(
        PYTHONPATH=str(REPO),
        ECOSENSE_DATABASE_URL=db,
        ECOSENSE_DATA_DIR=str(data_dir),
        ECOSENSE_ADMIN_TOKEN_FILE=str(secret),
        **extra,
    )
    return env


def start(
    db: str,
    data_dir: Path,
    roles: str,
    *args: str,
    interval: str = "2",
    timeout: float = 180,
    env: dict[str, str] | None = None,
) -> Instance:
    """``ecosense up --roles ROLES`` on free ports until its ``ready`` line (``env``: more
    settings); started again on the same data dir, it appends to the same log."""
    data_dir.mkdir(parents=True, exist_ok=True)
    err = data_dir.parent / (data_dir.name + ".stderr")
    cmd = [sys.executable, "-m", "ecosense", "-v", "up", "--roles", roles, "--http-port", "0"]
    cmd += ["--hj212-port", "0", "--dashboard-port", "0", *args]
    with open(err, "a") as stderr:
        proc = subprocess.Popen(
            cmd,
            env=environment(db, data_dir, ECOSENSE_JOBS_INTERVAL_SECONDS=interval, **(env or {})),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if line.startswith("ready "):
            return Instance(proc, line.strip(), err)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    proc.wait()
    proc.stdout.close()
    raise AssertionError(f"no ready line from --roles {roles}:\n{err.read_text()[-4000:]}")


def stop(*instances: Instance) -> None:
    for i in instances:
        if i.proc.poll() is None:
            i.proc.terminate()
    for i in instances:
        try:
            i.proc.wait(60)
        except subprocess.TimeoutExpired:
            i.proc.kill()
            i.proc.wait()
        if i.proc.stdout is not None:
            i.proc.stdout.close()


def wait_for(what: str, check: object, timeout: float, every: float = 0.5) -> float:
    """Poll ``check()`` until true; return the seconds it took."""
    assert callable(check)
    began = time.monotonic()
    while time.monotonic() - began < timeout:
        if check():
            return time.monotonic() - began
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout} s")


def moves(db: str) -> list[tuple[str, datetime | None, datetime, str]]:
    """Every move of a job mark (migration 0017), oldest first."""
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT job, from_mark, to_mark, moved_by FROM job_mark_moves ORDER BY id"
        ).fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def moved_by(db: str, pid: int) -> int:
    return sum(1 for m in moves(db) if m[3].endswith(f":{pid}"))


def check_mark_chains(db: str, first: int, second: int, *, handed_over: bool = True) -> None:
    """Every job's mark moved in one chain (each run planned from where the previous one left
    the mark: no period run twice), by the leader of pid ``first``, then by ``second`` only
    (``handed_over``; else by either)."""
    every = moves(db)
    jobs = {m[0] for m in every}
    assert {"hourly", "daily", "carbon-inventory"} <= jobs  # alerts keep no mark
    for job in jobs:
        chain = [m for m in every if m[0] == job]
        # one chain: each run planned from where the previous one left the mark
        assert chain[0][1] is None
        for prev, nxt in itertools.pairwise(chain):
            assert nxt[1] == prev[2], (job, prev, nxt)
            assert nxt[2] > prev[2]
        starts = [m[1] for m in chain]
        assert len(starts) == len(set(starts)), f"{job}: a period run twice"
        # by the first leader, then by the second: never both
        who = [m[3].rsplit(":", 1)[1] for m in chain]
        assert set(who) <= {str(first), str(second)}, (job, who)
        if handed_over:
            by_first = [w for w in who if w == str(first)]
            assert who == by_first + [str(second)] * (len(who) - len(by_first)), (job, who)
        assert all(m[3].startswith("ecosense jobs ") for m in chain)


def test_one_jobs_leader_and_a_takeover_within_30_s_without_a_period_run_twice(
    shared_db: str, tmp_path: Path
) -> None:
    """Two ``--roles jobs`` instances: exactly one leads (``/healthz``); SIGKILL of the leader
    and the other leads within 30 s; every job's mark moved in one chain (no two runs planned
    from the same mark), by the first leader only, then by the second only."""
    a = start(shared_db, tmp_path / "a", "jobs")
    b = start(shared_db, tmp_path / "b", "jobs")
    try:
        for i in (a, b):
            assert i.ready == f"ready http={i.http} roles=jobs", i.ready  # no gateway, no hj212
        wait_for("a leader", lambda: a.health()["jobs_leader"] or b.health()["jobs_leader"], 30)
        time.sleep(2 * 3.0 + 1)  # the standby tried twice more meanwhile
        answers = [a.health(), b.health()]
        assert [h["status"] for h in answers] == ["ok", "ok"]
        assert [h["roles"] for h in answers] == [["jobs"], ["jobs"]]
        assert sorted(h["jobs_leader"] for h in answers) == [False, True], answers
        leader, standby = (a, b) if answers[0]["jobs_leader"] else (b, a)

        # a jobs-only instance serves the health route only, nothing that ingests or reads
        for path in ("/api/v1/stations", "/docs", "/openapi.json"):
            assert httpx.get(standby.http + path, timeout=10).status_code == 404
        r = httpx.post(standby.http + "/api/v1/observations", json={}, timeout=10)
        assert r.status_code == 404
        # one admin token on every instance sharing the database (the same secret file)
        for i in (a, b):
            ok = httpx.get(i.http + "/healthz", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            assert ok.status_code == 200
            bad = httpx.get(i.http + "/healthz", headers={"Authorization": "Bearer es_admin_x"})
            assert bad.status_code == 401

        # the leader runs the jobs (every 2 s), the standby none
        wait_for("the leader's runs", lambda: moved_by(shared_db, leader.proc.pid) >= 8, 180)
        assert moved_by(shared_db, standby.proc.pid) == 0
        assert "leads the scheduler now" in leader.log()
        assert "is a standby" in standby.log()

        leader.proc.kill()  # SIGKILL: no goodbye; its session (and lock) ends with it
        leader.proc.wait()
        took = wait_for(
            "the takeover", lambda: standby.health()["jobs_leader"], TAKEOVER_SECONDS, 0.25
        )
        print(f"takeover after SIGKILL of the leader: {took:.1f} s")
        assert f"WARNING store.leader: jobs leader: vm:{standby.proc.pid} took over" in (
            standby.log().replace(socket.gethostname(), "vm")
        )
        before = moved_by(shared_db, standby.proc.pid)
        wait_for("the new leader's runs", lambda: moved_by(shared_db, standby.proc.pid) >= 8, 180)
        assert before == 0 or before < moved_by(shared_db, standby.proc.pid)

        check_mark_chains(shared_db, leader.proc.pid, standby.proc.pid)
    finally:
        stop(a, b)
    assert "steps down (stopping)" in standby.log()


def test_a_hung_leader_is_taken_over_within_30_s(shared_db: str, tmp_path: Path) -> None:
    """A leader that hangs (SIGSTOP) keeps its session and lock alive — its host still answers
    the keepalives — but stops checking: the standby ends its sessions and leads within 30 s
    (a new-user trial finding: it waited forever), and the jobs go on under it (the hung one's
    job locks are gone too). Woken up (SIGCONT), the old leader steps down; no period of any job
    is run twice."""
    a = start(shared_db, tmp_path / "a", "jobs")
    b = start(shared_db, tmp_path / "b", "jobs")
    try:
        wait_for("a leader", lambda: a.health()["jobs_leader"] or b.health()["jobs_leader"], 30)
        leader, standby = (a, b) if a.health()["jobs_leader"] else (b, a)
        wait_for("the leader's runs", lambda: moved_by(shared_db, leader.proc.pid) >= 4, 180)
        leader.proc.send_signal(signal.SIGSTOP)  # hangs: its sessions stay open
        try:
            took = wait_for(
                "the takeover", lambda: standby.health()["jobs_leader"], TAKEOVER_SECONDS, 0.25
            )
            print(f"takeover from a hung leader: {took:.1f} s")
            assert "(it hangs)" in standby.log()
            before = moved_by(shared_db, standby.proc.pid)
            wait_for(
                "the new leader's runs",
                lambda: moved_by(shared_db, standby.proc.pid) >= before + 4,
                120,
            )
        finally:
            leader.proc.send_signal(signal.SIGCONT)
        wait_for("the old leader to step down", lambda: not leader.health()["jobs_leader"], 30)
        assert standby.health()["jobs_leader"]
        wait_for(
            "the old leader's log",
            lambda: "lost the lead" in leader.log() or "cannot reach" in leader.log(),
            30,
        )
        check_mark_chains(shared_db, leader.proc.pid, standby.proc.pid, handed_over=False)
    finally:
        stop(a, b)


def test_a_gateway_instance_ingests_and_runs_no_scheduler(shared_db: str, tmp_path: Path) -> None:
    """``--roles gateway``: HTTP ingest and HJ 212 listen, ``/healthz`` names the role; no job
    runs however short the interval."""
    g = start(shared_db, tmp_path / "g", "gateway", interval="1")
    try:
        assert re.fullmatch(r"ready http=\S+ hj212=\S+:\d+ roles=gateway", g.ready), g.ready
        assert g.health() == {"status": "ok", "roles": ["gateway"], "jobs_leader": False}
        store = PostgresStore(shared_db)
        try:
            store.upsert_stations([Station("R1", "Roles 1", "air", 116.4, 39.9)])
            token = store.add_device("R1-dev", "R1")
        finally:
            store.close()
        now = datetime.now(UTC).replace(microsecond=0).isoformat()
        body = {"observations": [{"station": "R1", "parameter": "pm25", "time": now, "value": 7}]}
        r = httpx.post(
            g.http + "/api/v1/observations",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert r.status_code == 200 and r.json()["accepted"] == 1, r.text
        read = httpx.get(
            g.http + "/api/v1/observations",
            params={"station": "R1", "parameter": "pm25"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=10,
        )
        assert [i["value"] for i in read.json()["items"]] == [7]
        time.sleep(5)  # five intervals: a scheduler would have moved every mark
        with psycopg.connect(shared_db) as conn:
            row = conn.execute("SELECT count(*) FROM job_marks").fetchone()
            assert row is not None and row[0] == 0
            held = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND application_name LIKE 'ecosense jobs%'"
            ).fetchone()
            assert held is not None and held[0] == 0
        assert (tmp_path / "g" / "spool").is_dir()  # the gateway's own state, in its data dir
    finally:
        stop(g)


def test_a_dashboard_instance_serves_health_and_the_dashboard_only(
    shared_db: str, tmp_path: Path
) -> None:
    """``--roles dashboard``: the Streamlit child and ``/healthz``; no ingest, no read API, no
    device listener, no spool."""
    d = start(shared_db, tmp_path / "d", "dashboard")
    try:
        m = re.fullmatch(r"ready http=(\S+) dashboard=(\S+) roles=dashboard", d.ready)
        assert m is not None, d.ready
        assert d.health() == {"status": "ok", "roles": ["dashboard"], "jobs_leader": False}
        assert httpx.get(m.group(2) + "/_stcore/health", timeout=10).status_code == 200
        for path in ("/api/v1/stations", "/api/v2/write", "/docs"):
            assert httpx.get(d.http + path, timeout=10).status_code == 404
        assert httpx.post(d.http + "/api/v1/observations", json={}).status_code == 404
        assert not (tmp_path / "d" / "spool").exists()
    finally:
        stop(d)


def test_the_leader_steps_down_when_its_session_is_gone(database_url: str) -> None:
    """Two claims on one database: one leads; when the leader's session ends (its backend
    terminated, as when its host vanished and the keepalives gave up) its next check steps
    down at once and the other's next check leads."""
    from store.leader import Leadership

    first, second = Leadership(database_url, name="first"), Leadership(database_url, name="second")
    try:
        assert first.check() and first.leading
        assert not second.check() and not second.leading
        assert first.check() and not second.check()  # held, checked again
        with psycopg.connect(database_url, autocommit=True) as conn:
            ended = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'ecosense jobs leader first'"
            ).fetchall()
        assert ended == [(True,)]

        def gone() -> bool:
            with psycopg.connect(database_url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE application_name = 'ecosense jobs leader first'"
                ).fetchone()
            return row is not None and row[0] == 0

        wait_for("the terminated backend to end", gone, 10, 0.1)
        assert not first.check() and not first.leading  # lost: stepped down
        assert second.check() and second.leading
        assert not first.check()  # the lock is the other's now
        second.release()  # stopping lets go at once
        assert first.check()
    finally:
        first.release()
        second.release()
