"""Shared fixtures: real PostgreSQL servers (embedded, and TimescaleDB when the CI started it)."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings
from psycopg import sql
from psycopg.conninfo import make_conninfo

from store.embedded import EmbeddedPostgres
from store.postgres import PostgresStore

# Property tests check behaviour, not speed: Hypothesis's 200-ms deadline per example failed
# them on a loaded 2-core machine (a time limit is not what they assert).
hypothesis_settings.register_profile("ecosense", deadline=None)
hypothesis_settings.load_profile("ecosense")

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_service(name: str, available: bool) -> None:
    """Skip a test whose service is missing — except in CI, where that is a failure."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{name} is not available in CI: scripts/services.sh must start it")
    pytest.skip(f"{name} not available (run `make test` as root to install it)")


@pytest.fixture(autouse=True)
def _keep_main_module() -> Iterator[None]:
    """Streamlit's AppTest runs its script as ``sys.modules["__main__"]`` and leaves it there;
    a later test that starts Dask workers (spawned processes re-import ``__main__`` from its
    file) then fails with "Nanny failed to start worker process". Put the real one back."""
    main = sys.modules.get("__main__")
    yield
    if main is not None:
        sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """An embedded PostgreSQL started for this test session (its roles made)."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("embedded"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def embedded_admin_url(embedded_server: EmbeddedPostgres) -> str:
    """The admin (superuser) URL of the session's embedded PostgreSQL."""
    assert embedded_server.admin_url is not None
    return embedded_server.admin_url


@pytest.fixture(scope="session", params=["embedded", "timescaledb"])
def server_admin_url(request: pytest.FixtureRequest) -> str:
    """Each real server the storage tests run against."""
    if request.param == "embedded":
        url: str = request.getfixturevalue("embedded_admin_url")
        return url
    url = os.environ.get("ECOSENSE_TEST_TIMESCALE_URL", "")
    require_service("PostgreSQL 15 with TimescaleDB", bool(url))
    return url


@pytest.fixture
def database_url(server_admin_url: str) -> Iterator[str]:
    """A fresh, empty database on the server under test, dropped afterwards."""
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield make_conninfo(server_admin_url, dbname=name)
    with psycopg.connect(server_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def store(database_url: str) -> Iterator[PostgresStore]:
    """A migrated store on a fresh database."""
    s = PostgresStore(database_url)
    s.migrate()
    yield s
    s.close()


@pytest.fixture
def cli_env(
    store: PostgresStore, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """In-process ``ecosense`` commands (``ecosense.cli.main``) on the migrated test database;
    returns a folder for their input files."""
    monkeypatch.setenv("ECOSENSE_DATABASE_URL", database_url)
    monkeypatch.setenv("ECOSENSE_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
