"""Users, sessions, failed sign-ins and station grades in the store (migration 0012).

- users: name, role, Argon2id password hash (made by :mod:`access.passwords`), disabled;
- sessions: the SHA-256 of each bearer token issued by ``POST /api/v1/auth/token`` with its
  expiry, so a token can be revoked and stops working when its user is disabled;
- login_failures: one row per failed sign-in per key (``user:<name>``, ``address:<ip>``),
  counted over a sliding window for throttling;
- station_grades: the per-station grade that overrides the default of the station's kind.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from access.grades import station_dataset
from access.policy import Action, Dataset, Grade, Principal, Role, authorize, ceiling
from store.db import Connection
from store.errors import Conflict, NotFound


class UserNotFound(NotFound):
    """No such user."""


class UserExists(Conflict):
    """A user of that name exists already."""


class StationNotFound(NotFound):
    """No such station."""


@dataclass(frozen=True, slots=True)
class User:
    """A user: ``name``, ``role``, whether ``disabled``, when created."""

    name: str
    role: Role
    disabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class StationGrade:
    """A station's kind and its grade override (``None``: the kind's default)."""

    station: str
    kind: str
    override: Grade | None


def _user(row: tuple[object, ...]) -> User:
    name, role, disabled_at, created_at = row
    assert isinstance(created_at, datetime)
    return User(str(name), Role.parse(str(role)), disabled_at is not None, created_at)


def add_user(conn: Connection, name: str, role: Role, password_hash: str) -> User:
    """Create a user (:class:`UserExists` when the name is taken, ``ValueError`` for a name
    outside ``[A-Za-z0-9._@-]``, at most 64 characters, starting with a letter or digit)."""
    import psycopg

    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO users (name, role, password_hash) VALUES (%s, %s, %s)"
                " ON CONFLICT (name) DO NOTHING"
                " RETURNING name, role, disabled_at, created_at",
                (name, role.label, password_hash),
            ).fetchone()
    except psycopg.errors.CheckViolation:
        raise ValueError(
            f"bad user name {name!r}: letters, digits and . _ @ -, at most 64"
        ) from None
    if row is None:
        raise UserExists(f"user {name} exists already")
    return _user(row)


def list_users(conn: Connection) -> list[User]:
    """Every user, by name."""
    rows = conn.execute(
        "SELECT name, role, disabled_at, created_at FROM users ORDER BY name"
    ).fetchall()
    return [_user(r) for r in rows]


def get_user(conn: Connection, name: str) -> User:
    """The user ``name`` (:class:`UserNotFound`)."""
    row = conn.execute(
        "SELECT name, role, disabled_at, created_at FROM users WHERE name = %s", (name,)
    ).fetchone()
    if row is None:
        raise UserNotFound(f"no user {name}")
    return _user(row)


def set_role(conn: Connection, name: str, role: Role) -> User:
    """Give ``name`` the role ``role`` (:class:`UserNotFound`)."""
    row = conn.execute(
        "UPDATE users SET role = %s, updated_at = now() WHERE name = %s"
        " RETURNING name, role, disabled_at, created_at",
        (role.label, name),
    ).fetchone()
    if row is None:
        raise UserNotFound(f"no user {name}")
    return _user(row)


def _revoke_sessions(conn: Connection, name: str) -> None:
    """Revoke every live session (bearer token) of ``name`` at once."""
    conn.execute(
        "UPDATE sessions SET revoked_at = now() WHERE user_name = %s AND revoked_at IS NULL",
        (name,),
    )


def disable(conn: Connection, name: str) -> User:
    """Disable ``name``: no more sign-ins, and its sessions are revoked at once
    (:class:`UserNotFound`)."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE users SET disabled_at = coalesce(disabled_at, now()), updated_at = now()"
            " WHERE name = %s RETURNING name, role, disabled_at, created_at",
            (name,),
        ).fetchone()
        if row is None:
            raise UserNotFound(f"no user {name}")
        _revoke_sessions(conn, name)
    return _user(row)


def enable(conn: Connection, name: str) -> User:
    """Let a disabled user sign in again (its old tokens stay revoked) (:class:`UserNotFound`)."""
    row = conn.execute(
        "UPDATE users SET disabled_at = NULL, updated_at = now() WHERE name = %s"
        " RETURNING name, role, disabled_at, created_at",
        (name,),
    ).fetchone()
    if row is None:
        raise UserNotFound(f"no user {name}")
    return _user(row)


def reset_password(conn: Connection, name: str, password_hash: str) -> User:
    """Give ``name`` a new password and revoke its sessions at once, so a leaked password's
    tokens stop working too (:class:`UserNotFound`)."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE users SET password_hash = %s, updated_at = now() WHERE name = %s"
            " RETURNING name, role, disabled_at, created_at",
            (password_hash, name),
        ).fetchone()
        if row is None:
            raise UserNotFound(f"no user {name}")
        _revoke_sessions(conn, name)
    return _user(row)


def set_password(conn: Connection, name: str, password_hash: str) -> None:
    """Replace ``name``'s password hash (:class:`UserNotFound`)."""
    cur = conn.execute(
        "UPDATE users SET password_hash = %s, updated_at = now() WHERE name = %s",
        (password_hash, name),
    )
    if cur.rowcount == 0:
        raise UserNotFound(f"no user {name}")


def credentials(conn: Connection, name: str) -> tuple[User, str] | None:
    """The user ``name`` and its password hash, or ``None`` when there is no such user."""
    row = conn.execute(
        "SELECT name, role, disabled_at, created_at, password_hash FROM users WHERE name = %s",
        (name,),
    ).fetchone()
    return None if row is None else (_user(row[:4]), str(row[4]))


# ----------------------------------------------------------------------------- sessions
def open_session(conn: Connection, name: str, token_hash: str, expires_at: datetime) -> None:
    """Record a bearer token (its SHA-256) issued to ``name``, valid until ``expires_at``."""
    conn.execute(
        "INSERT INTO sessions (token_hash, user_name, expires_at) VALUES (%s, %s, %s)",
        (token_hash, name, expires_at),
    )


def user_for_session(conn: Connection, token_hash: str) -> User | None:
    """The enabled user holding the live (unexpired, unrevoked) token of this hash."""
    row = conn.execute(
        "SELECT u.name, u.role, u.disabled_at, u.created_at FROM sessions s"
        " JOIN users u ON u.name = s.user_name"
        " WHERE s.token_hash = %s AND s.revoked_at IS NULL AND s.expires_at > now()"
        " AND u.disabled_at IS NULL",
        (token_hash,),
    ).fetchone()
    return None if row is None else _user(row)


def revoke_session(conn: Connection, token_hash: str) -> bool:
    """Revoke one token; whether it was live."""
    cur = conn.execute(
        "UPDATE sessions SET revoked_at = now() WHERE token_hash = %s AND revoked_at IS NULL",
        (token_hash,),
    )
    return cur.rowcount > 0


# ------------------------------------------------------------------------ failed sign-ins
def failures(conn: Connection, key: str, window: timedelta) -> tuple[int, datetime | None]:
    """How many failures ``key`` had within the last ``window``, and the oldest of them."""
    row = conn.execute(
        "SELECT count(*), min(at) FROM login_failures WHERE key = %s AND at > now() - %s",
        (key, window),
    ).fetchone()
    assert row is not None
    return int(row[0]), row[1]


def record_failure(conn: Connection, keys: Sequence[str], window: timedelta) -> None:
    """Record one failed sign-in under each of ``keys``; forget those older than ``window``."""
    with conn.transaction():
        conn.execute("DELETE FROM login_failures WHERE at <= now() - %s", (window,))
        for key in keys:
            conn.execute("INSERT INTO login_failures (key) VALUES (%s)", (key,))


def clear_failures(conn: Connection, key: str) -> None:
    """Forget ``key``'s failures (after a successful sign-in)."""
    conn.execute("DELETE FROM login_failures WHERE key = %s", (key,))


# ------------------------------------------------------------------------ station grades
def station_grades(conn: Connection, stations: Sequence[str] | None = None) -> list[StationGrade]:
    """Each station's kind and grade override (all stations, or those named), by id."""
    rows = conn.execute(
        "SELECT s.id, s.kind, g.grade FROM stations s"
        " LEFT JOIN station_grades g ON g.station_id = s.id"
        " WHERE %s::text[] IS NULL OR s.id = ANY(%s::text[]) ORDER BY s.id",
        (None if stations is None else list(stations),) * 2,
    ).fetchall()
    return [
        StationGrade(str(i), str(k), None if g is None else Grade.parse(str(g))) for i, k, g in rows
    ]


def set_station_grade(conn: Connection, station: str, grade: Grade | None) -> StationGrade:
    """Set (``None``: clear) the grade override of ``station`` (:class:`StationNotFound`)."""
    with conn.transaction():
        row = conn.execute("SELECT kind FROM stations WHERE id = %s", (station,)).fetchone()
        if row is None:
            raise StationNotFound(f"no station {station}")
        if grade is None:
            conn.execute("DELETE FROM station_grades WHERE station_id = %s", (station,))
        else:
            conn.execute(
                "INSERT INTO station_grades (station_id, grade) VALUES (%s, %s)"
                " ON CONFLICT (station_id) DO UPDATE SET grade = EXCLUDED.grade,"
                " changed_at = now()",
                (station, grade.label),
            )
    return StationGrade(station, str(row[0]), grade)


def station_datasets(conn: Connection, stations: Sequence[str] | None = None) -> list[Dataset]:
    """The graded datasets of ``stations`` (all stations for ``None``) that exist, by id."""
    return [station_dataset(r.station, r.kind, r.override) for r in station_grades(conn, stations)]


def readable_stations(conn: Connection, principal: Principal) -> list[str] | None:
    """The stations ``principal`` may read by their grade (``None``: every station, no filter
    needed), as :func:`access.authorize` decides."""
    if ceiling(principal) == Grade.RESTRICTED:
        return None
    return [
        d.station
        for d in station_datasets(conn)
        if d.station is not None and authorize(principal, Action.READ, d)
    ]
