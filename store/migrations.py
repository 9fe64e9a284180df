"""Versioned, idempotent schema migrations, applied at start.

Each ``migrations/NNNN_name.sql`` file is applied once, in order, in its own transaction, under
an advisory lock so that several gateway replicas starting together do not race. After them,
in the same transaction, :func:`store.roles.apply` gives the component roles that exist on the
server exactly their privileges (README "Least privilege in the database").
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from store import roles

logger = logging.getLogger(__name__)

_LOCK_KEY = 0x45636F53  # "EcoS"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One schema version: its number, name and SQL text."""

    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """The migrations shipped with this version of EcoSense, in order."""
    out: list[Migration] = []
    for entry in resources.files("store").joinpath("migrations").iterdir():
        m = _NAME.match(entry.name)
        if m:
            out.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    out.sort(key=lambda m: m.version)
    return out


def apply(conn: psycopg.Connection[tuple[object, ...]]) -> list[int]:
    """Apply every migration not yet applied; return the versions applied now."""
    applied_now: list[int] = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS ecosense_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM ecosense_migrations")}
        for mig in available():
            if mig.version in done:
                continue
            logger.info("applying schema migration %04d_%s", mig.version, mig.name)
            conn.execute(mig.sql.encode())
            conn.execute(
                "INSERT INTO ecosense_migrations (version, name) VALUES (%s, %s)",
                (mig.version, mig.name),
            )
            applied_now.append(mig.version)
        # the roles' privileges, re-applied on every start (a new table is then covered)
        roles.apply(conn)
    return applied_now


def current_version(conn: psycopg.Connection[tuple[object, ...]]) -> int:
    """The highest applied migration version (0 for an empty database)."""
    row = conn.execute("SELECT coalesce(max(version), 0) FROM ecosense_migrations").fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]
