"""Least privilege in the database (issue 13, "What to build" 7), on the embedded server and
TimescaleDB: every table classified, each role holding exactly its privileges and refused
the rest, the platform's work done under the roles, and the embedded server's pg_hba.

The finding: "every connection, the read-only dashboard's included, is the database
superuser"."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from access.passwords import hash_password
from access.policy import Role
from pipelines.jobs import JobContext, get
from pipelines.runner import Runner
from sensors.observations import Observation, Source
from sensors.stations import Station
from store import audit, derived, keys, quarantine, roles, users
from store.embedded import EmbeddedPostgres
from store.postgres import PostgresStore

pytestmark = pytest.mark.integration

#: The password the tests give the roles on the TimescaleDB server (the embedded server's
#: are its own, in its password file).
TEST_PASSWORD = "ecosense-test-role-password"
T0 = datetime(2026, 11, 26, 16, tzinfo=UTC)

RoleUrl = Callable[[str], str]


@pytest.fixture
def role_url(
    request: pytest.FixtureRequest, server_admin_url: str, database_url: str, store: PostgresStore
) -> RoleUrl:
    """component → a URL of the test database as that component's role."""
    dbname = conninfo_to_dict(database_url)["dbname"]
    if request.node.callspec.params["server_admin_url"] == "embedded":
        server: EmbeddedPostgres = request.getfixturevalue("embedded_server")
        return lambda c: make_conninfo(server.role_url(c), dbname=dbname)
    with psycopg.connect(server_admin_url, autocommit=True) as conn:
        for statement in roles.create_sql():
            # a parallel session may make it meanwhile
            with contextlib.suppress(psycopg.errors.UniqueViolation):
                conn.execute(statement)
        for role in roles.ROLES.values():
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(TEST_PASSWORD)
                )
            )
    with psycopg.connect(database_url, autocommit=True) as conn:
        roles.apply(conn)
    return lambda c: make_conninfo(database_url, user=roles.ROLES[c], password=TEST_PASSWORD)


def test_every_table_of_the_schema_is_classified(store: PostgresStore, database_url: str) -> None:
    """A table a migration adds without a line in store/roles.py fails here."""
    with psycopg.connect(database_url) as conn:
        assert set(roles.tables(conn)) == set(roles.TABLES)
        sequences = {
            str(r[0])
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind = 'S'"
            )
        }
    assert sequences == {f"{t}_{s.sequence}_seq" for t, s in roles.TABLES.items() if s.sequence}


def test_each_role_holds_exactly_its_privileges(role_url: RoleUrl, database_url: str) -> None:
    with psycopg.connect(database_url) as conn:
        assert roles.granted(conn) == roles.expected()
        # applying again changes nothing (idempotent), and a stray grant is taken back
        conn.execute("GRANT DELETE ON observations TO ecosense_gateway")
        assert ("observations", None, "ecosense_gateway", "DELETE") in roles.granted(conn)
        roles.apply(conn)
        assert roles.granted(conn) == roles.expected()


REFUSED = [
    ("reader", "INSERT INTO observations SELECT * FROM observations LIMIT 0"),
    ("reader", "UPDATE observations SET value = 0"),
    ("reader", "DELETE FROM observations"),
    ("reader", "SELECT token_hash FROM devices"),
    ("reader", "SELECT actor FROM audit_log"),
    ("reader", "UPDATE users SET role = 'admin'"),
    # the duty officer's decisions only: an alert's life cycle, never what it says
    ("reader", "UPDATE alerts SET message = 'x', value = 0"),
    ("reader", "DELETE FROM alerts"),
    ("reader", "DELETE FROM reviews"),
    ("reader", "INSERT INTO aggregates SELECT * FROM aggregates LIMIT 0"),
    ("gateway", "DELETE FROM observations"),
    ("gateway", "TRUNCATE observations"),
    ("gateway", "SET ecosense.audit_maintenance = 'on'; UPDATE audit_log SET actor = 'x'"),
    ("gateway", "SET ecosense.audit_maintenance = 'on'; DELETE FROM audit_log"),
    ("gateway", "INSERT INTO aggregates SELECT * FROM aggregates LIMIT 0"),
    ("gateway", "DELETE FROM qc_flags"),
    ("gateway", "DELETE FROM emissions"),
    ("gateway", "UPDATE users SET role = 'admin'"),
    ("gateway", "INSERT INTO users (name, role, password_hash) VALUES ('x', 'admin', 'x')"),
    ("gateway", "DROP TABLE observations"),
    ("gateway", "ALTER TABLE observations ADD COLUMN x integer"),
    ("gateway", "CREATE TABLE intruder (a integer)"),
    # consumers' API keys: the gateway checks them and adds up usage, never makes or changes one
    ("gateway", "INSERT INTO api_keys (name, key_hash, rate_per_minute) VALUES ('x', 'x', 1)"),
    ("gateway", "UPDATE api_keys SET rate_per_minute = 1000000, revoked_at = NULL"),
    ("gateway", "DELETE FROM api_keys"),
    ("reader", "SELECT key_hash FROM api_keys"),
    ("jobs", "SELECT key_hash FROM api_keys"),
    ("jobs", "INSERT INTO users (name, role, password_hash) VALUES ('x', 'admin', 'x')"),
    ("jobs", "UPDATE users SET role = 'admin'"),
    ("jobs", "DELETE FROM users"),
    ("jobs", "SELECT * FROM devices"),
    ("jobs", "INSERT INTO observations SELECT * FROM observations LIMIT 0"),
    ("jobs", "INSERT INTO audit_log SELECT * FROM audit_log LIMIT 0"),
]


def test_each_role_is_refused_what_it_need_not_do(role_url: RoleUrl) -> None:
    """ "every connection, the read-only dashboard's included, is the database superuser":
    now the reader cannot write readings, the gateway cannot delete them nor change the
    audit (not even opting into its maintenance) nor write derived series, the jobs cannot
    write users. (One test for all statements: a fresh database each costs seconds.)"""
    for component in roles.ROLES:
        with psycopg.connect(role_url(component), autocommit=True) as conn:
            row = conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            assert row.fetchone() == (False,)
    allowed = []
    for component, statement in REFUSED:
        with psycopg.connect(role_url(component), autocommit=True) as conn:
            try:
                conn.execute(statement.encode())
            except psycopg.errors.InsufficientPrivilege as exc:
                assert re.search(r"permission denied|must be owner", str(exc)), exc
            else:
                allowed.append((component, statement))
    assert allowed == []


def test_the_platform_works_under_the_roles(
    store: PostgresStore, database_url: str, role_url: RoleUrl
) -> None:
    """What each component does, done as its role: ingest (a correction kept as a version,
    the quarantine, the audit), sign-in, a job run, the dashboard's reads."""
    store.upsert_stations([Station("A1", "Air one", "air", 116.4, 39.9, {"city": "Beijing"})])
    store.add_device("dev1", "A1")
    with store.connection() as conn:
        users.add_user(conn, "ana", Role.ANALYST, hash_password("pw-ana-123456"))
    source = Source("http", "dev1")
    readings = [
        Observation("A1", "pm25", T0 + timedelta(minutes=m), 40.0 + m % 7) for m in range(0, 120, 5)
    ]

    gateway = PostgresStore(role_url("gateway"))
    try:
        assert gateway.write_observations(readings, source=source) == len(readings)
        corrected = [Observation("A1", "pm25", T0, 99.0)]
        gateway.write_observations(corrected, source=source)  # the trigger keeps the old value
        versions = gateway.observation_versions(station="A1", parameter="pm25", time=T0)
        assert [v.value for v in versions] == [40.0, 99.0]
        with gateway.connection() as conn:
            held = quarantine.hold(
                conn, "dev1", "A1", [("a99999", T0, 1.0, "N", None, None, "measured")], cap=5
            )
            assert held.held == 1
            audit.append(conn, "device:dev1", "observations.write", "station:A1")
            users.record_failure(conn, ["user:ana"], timedelta(minutes=15))
            users.clear_failures(conn, "user:ana")
            users.open_session(conn, "ana", "f" * 64, datetime.now(UTC) + timedelta(hours=1))
            users.set_password(conn, "ana", hash_password("pw-ana-654321"))
        with store.connection() as conn:
            _, key = keys.add_key(conn, "portal", 60)
        with gateway.connection() as conn:
            consumer = keys.consumer_for_key(conn, key)
        assert consumer is not None and consumer.name == "portal"
        usage = keys.KeyUsage(gateway)
        usage.count(consumer.id, served=True)
        usage.count(consumer.id, served=False)
        assert usage.flush() == 1
        with store.connection() as conn:
            assert [(k.requests, k.refused) for k in keys.list_keys(conn)] == [(1, 1)]
    finally:
        gateway.close()

    with Runner(local="threads", workers=1) as runner:
        ctx = JobContext(role_url("jobs"), runner, "Asia/Shanghai", overlap=timedelta(0))
        for job in ("hourly", "daily", "alerts"):
            report = get(job).run(ctx, None, None)
            assert report.errors == [], (job, report.errors)

    reader = PostgresStore(role_url("reader"))
    try:
        assert len(reader.read_frame(station="A1", parameter="pm25")) == len(readings)
        with reader.connection() as conn:
            hours = derived.read_aggregates(
                conn, scope="station", period="PT1H", start=T0, end=T0 + timedelta(hours=2)
            )
            assert len(hours) >= 2
            audit.append(conn, "ana", "login", "user:ana")
            assert users.credentials(conn, "ana") is not None
    finally:
        reader.close()
    with psycopg.connect(database_url) as conn:
        assert audit.verify(conn) is None  # appended by two roles, still one chain


def _assert_no_trust_nor_tcp(server: EmbeddedPostgres) -> None:
    hba = (server.pgdata / "pg_hba.conf").read_text()
    rules = [line.split() for line in hba.splitlines() if line and not line.startswith("#")]
    assert rules and all(rule[0] == "local" for rule in rules)
    assert all("trust" not in rule or rule[2] == "postgres" for rule in rules)
    assert rules[-1] == ["local", "all", "all", "scram-sha-256"]


def test_the_embedded_server_trusts_no_one_but_its_superuser_over_its_socket(
    tmp_path: Path,
) -> None:
    """No ``trust`` line but the superuser's local one (here ``peer``: stricter), no TCP
    line, role passwords in a 0600 file; an existing data directory (initdb's trust for all)
    is upgraded on its next start."""
    data = tmp_path / "data"
    server = EmbeddedPostgres(data)
    server.start()
    try:
        _assert_no_trust_nor_tcp(server)
        assert stat.S_IMODE(os.stat(data / "pgpass").st_mode) == 0o600
        url = server.role_url("gateway")
        psycopg.connect(url).close()
        nopass = make_conninfo(url, passfile=os.devnull)
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(nopass).close()
    finally:
        server.stop()

    # an old data directory: initdb's rules, no roles' passwords yet
    (server.pgdata / "pg_hba.conf").write_text(
        "local all all trust\nhost all all 127.0.0.1/32 trust\n"
    )
    (data / "pgpass").unlink()
    server = EmbeddedPostgres(data)
    server.start()
    try:
        _assert_no_trust_nor_tcp(server)
        for component in roles.ROLES:
            psycopg.connect(server.role_url(component)).close()  # the new passwords work
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(make_conninfo(server.role_url("reader"), passfile=os.devnull)).close()
    finally:
        server.stop()


def test_db_roles_print_is_runnable_sql_and_apply_grants(
    cli_env: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ecosense db roles --print`` for a DBA, ``--apply`` as the owner (README)."""
    from ecosense.cli import main

    with psycopg.connect(database_url, autocommit=True) as conn:
        for role in roles.ROLES.values():  # as a server whose roles had none of their grants
            with contextlib.suppress(psycopg.errors.UndefinedObject):
                conn.execute(
                    sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(
                        sql.Identifier(role)
                    )
                )
    assert main(["db", "roles", "--print"]) == 0
    script = capsys.readouterr().out
    assert all(f'ON TABLE "{table}"' in script for table in roles.TABLES)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(script.encode())
        assert roles.granted(conn) == roles.expected()
        conn.execute("REVOKE ALL ON observations FROM ecosense_gateway")
        assert roles.granted(conn) != roles.expected()
    assert main(["db", "roles", "--apply"]) == 0
    assert "ecosense_gateway" in capsys.readouterr().out
    with psycopg.connect(database_url) as conn:
        assert roles.granted(conn) == roles.expected()
