"""Device credentials and the break-glass admin token in the store (migration 0014).

CONTRACT
--------
- A device holds an API token (only its SHA-256 is stored: tokens are 256-bit random) and,
  for an HJ 212 field unit, an MN and a password stored as a salted Argon2id hash
  (:func:`access.passwords.hash_device_password`). Rows from before migration 0014 hold the
  unsalted SHA-256 of ``MN:PW``; :meth:`store.postgres.PostgresStore.device_for_mn` rehashes
  one at the unit's next successful login.
- :func:`revoke` and :func:`rotate` change a device's credentials and announce the change
  (:func:`store.notify.announce`, payload ``device:<id>``) in the same transaction: every
  process listening drops its caches the moment the change commits. Each change increments
  ``credential_version``.
- A revoked device is refused everywhere (API token and HJ 212) until it is rotated (or
  registered again with ``devices add``); rotating a revoked HJ 212 device needs a new
  password, so a revocation after a leak cannot be undone with the leaked password.
- The admin token: its SHA-256 is kept in table ``admin_token`` (one row) so that
  :func:`rotate_admin_token` reaches every running process (payload ``admin``); the token of
  ``ECOSENSE_ADMIN_TOKEN`` or the data directory only seeds it (:func:`seed_admin_token`). A
  rotated-away token is kept in ``admin_token_retired`` and never accepted again.
- Nothing here returns or logs a secret except the new token :func:`rotate` and
  :func:`rotate_admin_token` return once.

Device credentials are graded ``restricted`` (:data:`access.grades.DATASET_GRADES`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from access.passwords import hash_device_password
from store import notify
from store.db import Connection
from store.errors import Conflict, NotFound, StoreError

if TYPE_CHECKING:
    from store.postgres import PostgresStore

logger = logging.getLogger(__name__)


class DeviceNotFound(NotFound):
    """No such device."""


@dataclass(frozen=True, slots=True)
class DeviceRecord:
    """What ``ecosense devices list`` shows of a device (never a secret).

    ``credential``: ``token`` (an API token) or ``token+hj212`` (an API token and an HJ 212
    MN with its password); ``state``: ``active`` or ``revoked``; times in UTC.
    """

    id: str
    station: str
    credential: str
    mn: str | None
    simulated: bool
    state: Literal["active", "revoked"]
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None
    version: int


_COLUMNS = "id, station_id, mn, simulated, created_at, rotated_at, revoked_at, credential_version"


def _record(row: tuple[object, ...]) -> DeviceRecord:
    id_, station, mn, simulated, created, rotated, revoked, version = row
    assert isinstance(created, datetime)
    return DeviceRecord(
        str(id_),
        str(station),
        "token" if mn is None else "token+hj212",
        None if mn is None else str(mn),
        bool(simulated),
        "active" if revoked is None else "revoked",
        created,
        rotated if isinstance(rotated, datetime) else None,
        revoked if isinstance(revoked, datetime) else None,
        int(str(version)),
    )


def new_device_token() -> str:
    """A new device API token (``es_`` and 256 random bits)."""
    return "es_" + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """SHA-256 hex of a token (as :func:`store.postgres.hash_secret`)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def list_devices(conn: Connection) -> list[DeviceRecord]:
    """Every device, by id."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM devices ORDER BY id").fetchall()
    return [_record(r) for r in rows]


def get_device(conn: Connection, device_id: str) -> DeviceRecord:
    """One device (:class:`DeviceNotFound` when there is none)."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM devices WHERE id = %s", (device_id,)).fetchone()
    if row is None:
        raise DeviceNotFound(f"no device {device_id!r}")
    return _record(row)


def revoke(conn: Connection, device_id: str) -> DeviceRecord:
    """Revoke every credential of a device (its API token and HJ 212 password) and announce
    it (:class:`DeviceNotFound`; revoking a revoked device changes nothing more)."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE devices SET revoked_at = coalesce(revoked_at, now()),"
            " credential_version = credential_version + 1"
            f" WHERE id = %s RETURNING {_COLUMNS}",
            (device_id,),
        ).fetchone()
        if row is None:
            raise DeviceNotFound(f"no device {device_id!r}")
        notify.announce(conn, notify.device_payload(device_id))
    return _record(row)


def rotate(
    conn: Connection, device_id: str, password: str | None = None
) -> tuple[DeviceRecord, str]:
    """Give a device a new API token (and, with ``password``, a new HJ 212 password), making
    it active again; the old token (and password) stop working when this commits. Returns the
    device and its new token.

    Raises
    ------
    DeviceNotFound
        when there is no such device.
    ValueError
        for a ``password`` of a device without an HJ 212 MN.
    Conflict
        when the device is revoked and has an HJ 212 password but no new ``password`` is given.
    """
    token = new_device_token()
    pw_hash = None if password is None else hash_device_password(password)
    with conn.transaction():
        row = conn.execute(
            "SELECT mn, revoked_at FROM devices WHERE id = %s FOR UPDATE", (device_id,)
        ).fetchone()
        if row is None:
            raise DeviceNotFound(f"no device {device_id!r}")
        mn, revoked_at = row
        if password is not None and mn is None:
            raise ValueError(f"device {device_id} has no HJ 212 MN (register it with --mn)")
        if revoked_at is not None and mn is not None and password is None:
            raise Conflict(
                f"device {device_id} is revoked: give its HJ 212 unit a new password"
                " (--password-stdin) to rotate it"
            )
        got = conn.execute(
            "UPDATE devices SET token_hash = %s, pw_hash = coalesce(%s, pw_hash),"
            " rotated_at = now(), revoked_at = NULL,"
            " credential_version = credential_version + 1"
            f" WHERE id = %s RETURNING {_COLUMNS}",
            (token_hash(token), pw_hash, device_id),
        ).fetchone()
        assert got is not None
        notify.announce(conn, notify.device_payload(device_id))
    return _record(got), token


# --------------------------------------------------------------------------- admin token
@dataclass(frozen=True, slots=True)
class AdminSeed:
    """What :func:`seed_admin_token` found: the ``current`` hash in force, and ``outcome``:
    ``seeded`` (first start), ``current`` (the given token is the one in force),
    ``adopted`` (a new token given: it replaced the one in force) or ``retired`` (the given
    token was rotated away: refused, the one in force stays)."""

    current: str
    outcome: Literal["seeded", "current", "adopted", "retired"]


def current_admin_hash(conn: Connection) -> str | None:
    """The SHA-256 of the admin token in force (``None`` before it was ever seeded)."""
    row = conn.execute("SELECT token_hash FROM admin_token").fetchone()
    return None if row is None else str(row[0])


def seed_admin_token(conn: Connection, seed_hash: str) -> AdminSeed:
    """Make the token of ``ECOSENSE_ADMIN_TOKEN`` or the data directory (its SHA-256,
    ``seed_hash``) the admin token in force, unless it was rotated away (several processes
    starting together agree: the row is locked)."""
    with conn.transaction():
        inserted = conn.execute(
            "INSERT INTO admin_token (token_hash) VALUES (%s) ON CONFLICT (id) DO NOTHING"
            " RETURNING token_hash",
            (seed_hash,),
        ).fetchone()
        if inserted is not None:
            return AdminSeed(seed_hash, "seeded")
        row = conn.execute("SELECT token_hash FROM admin_token FOR UPDATE").fetchone()
        assert row is not None
        current = str(row[0])
        if current == seed_hash:
            return AdminSeed(current, "current")
        retired = conn.execute(
            "SELECT 1 FROM admin_token_retired WHERE token_hash = %s", (seed_hash,)
        ).fetchone()
        if retired is not None:
            return AdminSeed(current, "retired")
        _replace_admin(conn, current, seed_hash)
    return AdminSeed(seed_hash, "adopted")


def _replace_admin(conn: Connection, old: str, new: str) -> None:
    conn.execute(
        "INSERT INTO admin_token_retired (token_hash) VALUES (%s) ON CONFLICT DO NOTHING",
        (old,),
    )
    conn.execute("UPDATE admin_token SET token_hash = %s, rotated_at = now()", (new,))
    notify.announce(conn, notify.ADMIN)


def rotate_admin_token(conn: Connection, seed_hash: str) -> str:
    """Replace the admin token in force by a new random one, retire the old one for good and
    announce it; return the new token (``es_admin_`` and 256 random bits). ``seed_hash``
    seeds the table first when it was never seeded."""
    token = "es_admin_" + secrets.token_urlsafe(32)
    with conn.transaction():
        conn.execute(
            "INSERT INTO admin_token (token_hash) VALUES (%s) ON CONFLICT (id) DO NOTHING",
            (seed_hash,),
        )
        row = conn.execute("SELECT token_hash FROM admin_token FOR UPDATE").fetchone()
        assert row is not None
        _replace_admin(conn, str(row[0]), token_hash(token))
    return token


class AdminToken:
    """The admin token in force, as every request checks it: its SHA-256, cached.

    The cache is dropped at once on the ``admin`` (or ``*``) announcement (subscribe
    :meth:`changed` to a :class:`store.notify.CredentialListener`) and re-read from the
    database at most every ``ttl`` seconds otherwise; while the database is unreachable the
    last hash read stays in force. ``initial``: the hash in force at start (from
    :func:`seed_admin_token`).
    """

    def __init__(self, store: PostgresStore, initial: str, *, ttl: float = 5.0) -> None:
        self.store = store
        self.ttl = ttl
        self._hash = initial
        self._expires = time.monotonic() + ttl

    def current(self) -> str:
        """The SHA-256 of the admin token in force."""
        now = time.monotonic()
        if now < self._expires:
            return self._hash
        self._expires = now + self.ttl
        try:
            with self.store.connection() as conn:
                got = current_admin_hash(conn)
        except StoreError as exc:
            logger.debug("admin token not re-read: %s", exc)
            return self._hash
        if got is not None:
            self._hash = got
        return self._hash

    def changed(self, payload: str) -> None:
        """A credential change was announced: re-read at the next check."""
        if payload in (notify.ADMIN, notify.EVERYTHING):
            self._expires = 0.0
