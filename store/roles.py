"""Least privilege in the database: which PostgreSQL role may do what to which table.

Four roles (README "Least privilege in the database"):

- the **owner** (migrations): owns the schema, runs the migrations, is the only one that may
  ``ALTER``/``DROP`` and the only one that may ``UPDATE``/``DELETE`` the audit (its trigger
  lets a member of the owner role do so only with ``ecosense.audit_maintenance = 'on'``). On
  the embedded server this is the cluster's superuser ``postgres``, reachable over the private
  Unix socket only; on an external server, the role of ``ECOSENSE_DATABASE_URL``. The CLI
  runs as the owner.
- ``ecosense_gateway``: the HTTP API and the ingest listeners (HTTP, HJ 212, MQTT, spool
  replay). Inserts readings and what goes with them (streams, sources, the versions the
  trigger of migration 0008 writes on a correction, the quarantine), reads everything the API
  serves, appends to the audit, signs users in (sessions, failed sign-ins, a password rehash),
  records reviews and alert acknowledgements. It cannot delete a reading, change the audit,
  or write a derived series.
- ``ecosense_jobs``: the scheduler and its Dask workers. Reads readings, writes the derived
  tables (QC flags, aggregates, assessments, emissions), job marks, alerts and their webhook
  queue, carbon and GIS results. No user, session, device or audit access.
- ``ecosense_reader``: the dashboard. Reads what the dashboard shows; writes only what a
  sign-in must (a session, a failed sign-in, a password rehash), audit entries and the duty
  officer's decisions (an alert's acknowledgement or closing with its webhook event, a
  review). It reads
  neither device credentials nor the quarantine nor the audit itself (only the last entry's
  ``id``/``hash``, which appending a chained entry needs).

:data:`TABLES` classifies every table of the migrated schema; :func:`grant_sql` turns it
into ``REVOKE``/``GRANT`` statements, which :func:`apply` runs after every migration (so a
table that a migration adds gets exactly its listed privileges, and one left unlisted gets
none: ``tests/integration/test_db_roles.py`` fails on any table :data:`TABLES` lacks).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

logger = logging.getLogger(__name__)

#: The login roles EcoSense's components use, by component name.
ROLES: Final[Mapping[str, str]] = {
    "gateway": "ecosense_gateway",
    "jobs": "ecosense_jobs",
    "reader": "ecosense_reader",
}

R: Final = "SELECT"
RW: Final = "SELECT, INSERT, UPDATE"
RWD: Final = "SELECT, INSERT, UPDATE, DELETE"


@dataclass(frozen=True)
class Table:
    """One table's privileges per component (``gateway``, ``jobs``, ``reader``): a
    comma-separated privilege list as GRANT takes it (column lists allowed), or absent for
    none. ``sequence``: the column whose identity/serial sequence a role that inserts needs."""

    grants: Mapping[str, str] = field(default_factory=dict)
    sequence: str | None = None


#: Every table of the schema (``public``), with what each role may do. The owner has all.
TABLES: Final[Mapping[str, Table]] = {
    # --- registry
    "stations": Table({"gateway": R, "jobs": R, "reader": R}),
    "parameters": Table({"gateway": R, "jobs": R, "reader": R}),
    "station_grades": Table({"gateway": R, "jobs": R, "reader": R}),
    # credentials: the gateway checks tokens and HJ 212 passwords; the dashboard never
    # (a legacy SHA-256 HJ 212 password is rehashed to Argon2id at the unit's next login)
    "devices": Table({"gateway": "SELECT, UPDATE (pw_hash)"}),
    # the break-glass admin token in force (seeded and rotated by the owner; checked by the API)
    "admin_token": Table({"gateway": R}),
    "admin_token_retired": Table({}),
    # open-data consumers' API keys (made and revoked by the CLI, as owner): the API checks a
    # key and adds up its usage
    "api_keys": Table(
        {"gateway": "SELECT, UPDATE (requests, refused, last_used_at)"}, sequence="id"
    ),
    # --- readings (the gateway inserts; a re-sent reading updates, never deletes)
    "streams": Table({"gateway": "SELECT, INSERT", "jobs": R, "reader": R}, sequence="id"),
    "sources": Table({"gateway": RW, "jobs": R, "reader": R}, sequence="id"),
    "observations": Table({"gateway": RW, "jobs": R, "reader": R}),
    # written by the trigger of migration 0008, as the role that updates a reading
    "observation_versions": Table({"gateway": "SELECT, INSERT", "jobs": R, "reader": R}),
    "quarantine_codes": Table({"gateway": RW}),
    "quarantine_readings": Table({"gateway": RW}),
    "quarantine_dropped": Table({"gateway": RW}),
    "raw_code_maps": Table({"gateway": R}),
    # reviews: recorded by the API and the dashboard's review page (a reviewer)
    "reviews": Table(
        {"gateway": "SELECT, INSERT", "jobs": R, "reader": "SELECT, INSERT"}, sequence="id"
    ),
    # --- derived series (jobs write; the API and dashboard read)
    "qc_flags": Table({"gateway": R, "jobs": RWD, "reader": R}),
    "aggregates": Table({"gateway": R, "jobs": RWD, "reader": R}),
    "assessments": Table({"gateway": R, "jobs": RWD, "reader": R}),
    "emissions": Table({"gateway": R, "jobs": RWD, "reader": R}),
    "job_marks": Table({"gateway": R, "jobs": RW, "reader": R}),
    # written by the trigger of migration 0017, as the role that moves a mark
    "job_mark_moves": Table({"gateway": R, "jobs": "SELECT, INSERT", "reader": R}, sequence="id"),
    # alerts: jobs open/close them; the API and the dashboard's duty officer acknowledge (the
    # dashboard closes with a comment too) and queue the webhook event
    "alerts": Table(
        {
            "gateway": "SELECT, UPDATE",
            "jobs": RW,
            "reader": "SELECT, UPDATE (state, acknowledged_at, acknowledged_by,"
            " acknowledge_comment, closed_at, closed_by, close_comment)",
        },
        sequence="id",
    ),
    "alert_notifications": Table(
        {"gateway": "SELECT, INSERT", "jobs": RW, "reader": "SELECT, INSERT"}, sequence="id"
    ),
    # --- carbon and GIS (imports by the CLI, as owner; jobs write results)
    "facilities": Table({"gateway": R, "jobs": R, "reader": R}),
    "activity_records": Table({"gateway": R, "jobs": RW, "reader": R}),
    "carbon_targets": Table({"gateway": R, "jobs": R, "reader": R}),
    "carbon_runs": Table({"gateway": R, "jobs": "SELECT, INSERT", "reader": R}, sequence="id"),
    "gis_layers": Table({"gateway": R, "jobs": R, "reader": R}),
    "gis_features": Table({"gateway": R, "jobs": R, "reader": R}),
    "gis_rasters": Table({"gateway": R, "jobs": R, "reader": R}),
    "zonal_stats": Table({"gateway": R, "jobs": RW, "reader": R}),
    "ecology_trends": Table({"gateway": R, "jobs": RWD, "reader": R}),
    "landcover_changes": Table({"gateway": R, "jobs": RWD, "reader": R}),
    # --- users and sign-in (the API and the dashboard sign users in; a rehash updates)
    "users": Table(
        {
            "gateway": "SELECT, UPDATE (password_hash, updated_at)",
            "reader": "SELECT, UPDATE (password_hash, updated_at)",
        }
    ),
    "sessions": Table({"gateway": RW, "reader": RW}),
    "login_failures": Table(
        {"gateway": "SELECT, INSERT, DELETE", "reader": "SELECT, INSERT, DELETE"}
    ),
    # --- the audit: append-only for everyone but the owner
    "audit_log": Table(
        {"gateway": "SELECT, INSERT", "reader": "SELECT (id, hash), INSERT"}, sequence="id"
    ),
    "ecosense_migrations": Table({"gateway": R, "jobs": R, "reader": R}),
    # --- gateway instances on one database: which holds which HJ 212 unit, commands routed
    # between them (store/instances.py); a command may carry a unit's new password
    "gateway_instances": Table({"gateway": RWD}),
    "hj212_links": Table({"gateway": RWD}),
    "hj212_commands": Table({"gateway": RWD}),
}


def _privileges(text: str) -> tuple[list[str], list[str]]:
    """``"SELECT (id, hash), INSERT"`` → (table privileges, column privileges as written)."""
    table: list[str] = []
    columns: list[str] = []
    depth, start = 0, 0
    parts: list[str] = []
    for i, ch in enumerate(text + ","):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    for part in filter(None, parts):
        (columns if "(" in part else table).append(part)
    return table, columns


def _privilege_sql(part: str) -> sql.Composable:
    """One privilege, column list included, as SQL (names quoted; the keyword checked)."""
    name, _, cols = part.partition("(")
    keyword = name.strip().upper()
    if keyword not in ("SELECT", "INSERT", "UPDATE", "DELETE"):
        raise ValueError(f"unknown privilege {keyword!r}")
    if not cols:
        return sql.SQL(keyword)
    names = [c.strip() for c in cols.rstrip(") ").split(",")]
    return sql.SQL("{} ({})").format(
        sql.SQL(keyword), sql.SQL(", ").join(sql.Identifier(c) for c in names)
    )


def grant_sql(roles: Mapping[str, str] | None = None) -> list[sql.Composed]:
    """The statements that give each role in ``roles`` (component → role name; default
    :data:`ROLES`) exactly its privileges on every table of :data:`TABLES`: schema usage,
    then per table ``REVOKE ALL`` (columns included) and the ``GRANT``\\s, and ``USAGE`` on
    the sequence of a table the role inserts into."""
    roles = ROLES if roles is None else roles
    out: list[sql.Composed] = []
    for role in roles.values():
        out.append(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
    for table, spec in TABLES.items():
        t = sql.Identifier(table)
        for component, role in roles.items():
            r = sql.Identifier(role)
            out.append(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(t, r))
            seq = sql.Identifier(f"{table}_{spec.sequence}_seq")
            if spec.sequence is not None:
                out.append(sql.SQL("REVOKE ALL ON SEQUENCE {} FROM {}").format(seq, r))
            text = spec.grants.get(component)
            if not text:
                continue
            whole, columns = _privileges(text)
            privileges = [_privilege_sql(p) for p in [*whole, *columns]]
            out.append(
                sql.SQL("GRANT {} ON TABLE {} TO {}").format(sql.SQL(", ").join(privileges), t, r)
            )
            if spec.sequence is not None and "INSERT" in whole:
                out.append(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(seq, r))
    return out


def create_sql(roles: Iterable[str] | None = None) -> list[sql.Composed]:
    """``CREATE ROLE … LOGIN`` for each role that does not exist yet (a ``DO`` block; the
    password is for the DBA to set: ``ALTER ROLE … PASSWORD``, or ``\\password`` in psql)."""
    out: list[sql.Composed] = []
    for role in ROLES.values() if roles is None else roles:
        out.append(
            sql.SQL(
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {}) THEN"
                " CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;"
                " END IF; END $$"
            ).format(sql.Literal(role), sql.Identifier(role))
        )
    return out


def existing(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """The components whose role exists on this server (component → role name)."""
    rows = conn.execute(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (list(ROLES.values()),)
    ).fetchall()
    present = {str(r[0]) for r in rows}
    return {c: r for c, r in ROLES.items() if r in present}


def apply(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """Give the roles that exist on this server exactly their privileges (idempotent; run by
    the owner after the migrations, in the caller's transaction if any); return them.

    A table of the schema that :data:`TABLES` does not list is logged: no role gets anything
    on it until it is classified."""
    roles = existing(conn)
    present = set(tables(conn))
    unknown = sorted(present - set(TABLES))
    if unknown:
        logger.warning(
            "tables not classified in store/roles.py (no role may use them): %s", unknown
        )
    missing = [t for t in TABLES if t not in present]
    if missing:
        raise ValueError(f"the schema lacks {', '.join(missing)}: migrate first")
    if roles and granted(conn, roles) != expected(roles):
        with conn.cursor() as cur:
            cur.execute(sql.SQL("; ").join(grant_sql(roles)))
    return roles


#: One privilege: (table or sequence, column or ``None``, role, privilege type).
Privilege = tuple[str, str | None, str, str]


def expected(roles: Mapping[str, str] | None = None) -> set[Privilege]:
    """The privileges :data:`TABLES` gives ``roles`` (default :data:`ROLES`), as
    :func:`granted` reads them from the catalogue."""
    roles = ROLES if roles is None else roles
    out: set[Privilege] = set()
    for table, spec in TABLES.items():
        for component, role in roles.items():
            whole, columns = _privileges(spec.grants.get(component, ""))
            for p in whole:
                out.add((table, None, role, p.strip().upper()))
            for p in columns:
                name, _, cols = p.partition("(")
                for c in cols.rstrip(") ").split(","):
                    out.add((table, c.strip(), role, name.strip().upper()))
            if spec.sequence is not None and "INSERT" in whole:
                out.add((f"{table}_{spec.sequence}_seq", None, role, "USAGE"))
    return out


def granted(
    conn: psycopg.Connection[Any], roles: Mapping[str, str] | None = None
) -> set[Privilege]:
    """The privileges ``roles`` hold on the tables, columns and sequences of ``public``."""
    names = list((ROLES if roles is None else roles).values())
    rows = conn.execute(
        "SELECT c.relname, NULL, r.rolname, a.privilege_type"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,"
        " LATERAL aclexplode(c.relacl) a JOIN pg_roles r ON r.oid = a.grantee"
        " WHERE n.nspname = 'public' AND r.rolname = ANY(%(roles)s)"
        " UNION ALL"
        " SELECT c.relname, t.attname, r.rolname, a.privilege_type"
        " FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace,"
        " LATERAL aclexplode(t.attacl) a JOIN pg_roles r ON r.oid = a.grantee"
        " WHERE n.nspname = 'public' AND r.rolname = ANY(%(roles)s)",
        {"roles": names},
    ).fetchall()
    out = {(str(t), None if c is None else str(c), str(r), str(p)) for t, c, r, p in rows}
    usage = conn.execute(
        "SELECT r FROM unnest(%s::text[]) r WHERE NOT has_schema_privilege(r, 'public', 'USAGE')",
        (names,),
    ).fetchall()
    out |= {("public", None, str(r[0]), "NO SCHEMA USAGE") for r in usage}
    return out


def create_and_grant(conn: psycopg.Connection[Any]) -> list[str]:
    """Create the roles that are missing (``LOGIN``, no password: the DBA sets one), let
    them connect to this database, and grant (``ecosense db roles --apply``, as the owner
    with ``CREATEROLE``); return the role names."""
    with conn.transaction():
        for statement in create_sql():
            conn.execute(statement)
        database = conn.execute("SELECT current_database()").fetchone()
        assert database is not None
        for role in ROLES.values():
            conn.execute(
                sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                    sql.Identifier(str(database[0])), sql.Identifier(role)
                )
            )
        apply(conn)
    return list(ROLES.values())


def tables(conn: psycopg.Connection[Any]) -> list[str]:
    """The tables (plain, partitioned, views, foreign) of the ``public`` schema."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
        " ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows]


def script(database_url: str | None = None) -> str:
    """The SQL a DBA runs on an external server (``ecosense db roles --print``): create the
    roles, let them connect to the database of ``database_url`` (when it names one), then
    (after the migrations) the grants EcoSense re-applies at every start anyway."""
    database = conninfo_to_dict(database_url).get("dbname") if database_url else None
    lines = [
        "-- EcoSense database roles (store/roles.py). Run as a role with CREATEROLE, on the",
        "-- database of ECOSENSE_DATABASE_URL, after `ecosense` has migrated it once.",
        "-- Then set each role's password: ALTER ROLE ecosense_gateway PASSWORD '…';",
        "-- (or \\password ecosense_gateway in psql), and give the components their URLs:",
        "-- ECOSENSE_GATEWAY_DATABASE_URL, ECOSENSE_JOBS_DATABASE_URL and",
        "-- ECOSENSE_READER_DATABASE_URL.",
    ]
    statements = create_sql()
    if database:
        for role in ROLES.values():
            statements.append(
                sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                    sql.Identifier(str(database)), sql.Identifier(role)
                )
            )
    body = [s.as_string(None) + ";" for s in [*statements, *grant_sql()]]
    return "\n".join([*lines, "BEGIN;", *body, "COMMIT;", ""])
