"""API keys of open-data consumers in the store (migration 0018), and their usage counts.

- ``api_keys``: a consumer's name, the SHA-256 of its key (never the key: keys are 256-bit
  random, ``es_key_`` and 43 URL-safe characters, hashed as device tokens are by
  :func:`store.postgres.hash_secret`), its rate in requests a minute, created and revoked
  times, and its usage (requests served, requests refused with 429, last use).
- :class:`KeyUsage`: the API adds up each key's usage in memory and writes it to the table
  every ``interval`` seconds (10 by default) from a thread of its own and at shutdown, one
  additive ``UPDATE`` per key used since the last flush, so that a request pays for no write
  and several gateway instances add up rather than overwrite. What a process that is killed
  (SIGKILL) had not flushed yet is lost: at most ``interval`` seconds of counts.

A key is looked up in the database at each request that sends one (one indexed query, as a
user's bearer token is), so a revoked key is refused at once in every running gateway.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from store.db import Connection
from store.errors import Conflict, NotFound, StoreError
from store.postgres import hash_secret

logger = logging.getLogger(__name__)

#: what every consumer key starts with (tells a leaked one apart from a device token)
KEY_PREFIX: Final = "es_key_"
#: the rate of a key made without ``--rate``, requests a minute
DEFAULT_RATE: Final = 600
#: seconds between two writes of the usage counts
FLUSH_SECONDS: Final = 10.0


class KeyNotFound(NotFound):
    """No API key of that name."""


class KeyExists(Conflict):
    """An API key of that name exists already (revoked ones included)."""


@dataclass(frozen=True, slots=True)
class Consumer:
    """Who holds an active key: the key's row ``id``, its ``name`` and its rate (requests a
    minute)."""

    id: int
    name: str
    rate_per_minute: int


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One row of ``api_keys`` (never the key): usage ``requests`` (served), ``refused``
    (429), ``last_used_at``; ``revoked_at`` is ``None`` while the key works."""

    id: int
    name: str
    rate_per_minute: int
    created_at: datetime
    revoked_at: datetime | None
    requests: int
    refused: int
    last_used_at: datetime | None

    @property
    def state(self) -> str:
        """``active`` or ``revoked``."""
        return "active" if self.revoked_at is None else "revoked"


_COLUMNS = "id, name, rate_per_minute, created_at, revoked_at, requests, refused, last_used_at"


def _record(row: tuple[Any, ...]) -> ApiKey:
    id_, name, rate, created, revoked, requests, refused, last_used = row
    return ApiKey(
        int(id_), str(name), int(rate), created, revoked, int(requests), int(refused), last_used
    )


def new_key() -> str:
    """A new consumer key: ``es_key_`` and 256 random bits (URL-safe base 64)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def add_key(conn: Connection, name: str, rate_per_minute: int = DEFAULT_RATE) -> tuple[ApiKey, str]:
    """Make a key for the consumer ``name``; return its row and the key, which is stored only
    as its SHA-256 (:class:`KeyExists` for a name taken, even by a revoked key; ``ValueError``
    for a rate below 1 or a name outside ``[A-Za-z0-9._@-]``, at most 64 characters, starting
    with a letter or digit)."""
    import psycopg

    if rate_per_minute < 1:
        raise ValueError(f"--rate {rate_per_minute}: a key allows at least 1 request a minute")
    key = new_key()
    try:
        with conn.transaction():
            row = conn.execute(
                "INSERT INTO api_keys (name, key_hash, rate_per_minute) VALUES (%s, %s, %s)"
                f" ON CONFLICT (name) DO NOTHING RETURNING {_COLUMNS}",
                (name, hash_secret(key), rate_per_minute),
            ).fetchone()
    except psycopg.errors.CheckViolation:
        raise ValueError(
            f"bad key name {name!r}: letters, digits and . _ @ -, at most 64"
        ) from None
    except psycopg.errors.NumericValueOutOfRange:
        raise ValueError(f"--rate {rate_per_minute}: too large") from None
    if row is None:
        raise KeyExists(f"an API key named {name} exists already")
    return _record(row), key


def list_keys(conn: Connection) -> list[ApiKey]:
    """Every key (revoked ones too), by name."""
    rows = conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY name").fetchall()
    return [_record(r) for r in rows]


def revoke_key(conn: Connection, name: str) -> ApiKey:
    """Revoke the key ``name``: refused from its next request on (:class:`KeyNotFound`). A
    revoked key stays revoked; revoking it again changes nothing."""
    row = conn.execute(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE name = %s"
        f" RETURNING {_COLUMNS}",
        (name,),
    ).fetchone()
    if row is None:
        raise KeyNotFound(f"no API key named {name}")
    return _record(row)


def consumer_for_key(conn: Connection, key: str) -> Consumer | None:
    """The consumer of an active ``key``, or ``None`` (unknown or revoked)."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None  # not one of ours: no query
    row = conn.execute(
        "SELECT id, name, rate_per_minute FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
        (hash_secret(key),),
    ).fetchone()
    return None if row is None else Consumer(int(row[0]), str(row[1]), int(row[2]))


class _Pooled(Protocol):
    def connection(self, timeout: float | None = None) -> Any: ...


@dataclass
class _Usage:
    requests: int = 0
    refused: int = 0
    last_used: datetime | None = None


class KeyUsage:
    """Usage counts of the keys, held in memory and added to ``api_keys`` by :meth:`flush`
    (every ``interval`` seconds in a thread of its own once :meth:`start` ed, and at
    :meth:`stop`). :meth:`count` never blocks on the database. A flush that fails (the
    database is down) keeps its counts for the next one."""

    def __init__(self, store: _Pooled, interval: float = FLUSH_SECONDS) -> None:
        self.store = store
        self.interval = interval
        self._pending: dict[int, _Usage] = {}
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def count(self, key_id: int, served: bool, at: datetime | None = None) -> None:
        """One request with the key ``key_id``: ``served``, or refused (429)."""
        when = at or datetime.now(UTC)
        with self._lock:
            usage = self._pending.setdefault(key_id, _Usage())
            if served:
                usage.requests += 1
            else:
                usage.refused += 1
            if usage.last_used is None or when > usage.last_used:
                usage.last_used = when

    def pending(self) -> int:
        """Requests counted and not flushed yet (served and refused)."""
        with self._lock:
            return sum(u.requests + u.refused for u in self._pending.values())

    def flush(self) -> int:
        """Add the counts held to the table (blocking: one transaction); return how many
        keys were written. On failure the counts are kept and the error raised."""
        with self._flush_lock:
            with self._lock:
                taken, self._pending = self._pending, {}
            if not taken:
                return 0
            try:
                with self.store.connection() as conn, conn.transaction():
                    for key_id, usage in sorted(taken.items()):
                        conn.execute(
                            "UPDATE api_keys SET requests = requests + %s,"
                            " refused = refused + %s,"
                            " last_used_at = greatest(last_used_at, %s) WHERE id = %s",
                            (usage.requests, usage.refused, usage.last_used, key_id),
                        )
            except Exception:
                with self._lock:
                    for key_id, usage in taken.items():
                        kept = self._pending.setdefault(key_id, _Usage())
                        kept.requests += usage.requests
                        kept.refused += usage.refused
                        if kept.last_used is None or (
                            usage.last_used is not None and usage.last_used > kept.last_used
                        ):
                            kept.last_used = usage.last_used
                raise
            return len(taken)

    def start(self) -> KeyUsage:
        """Flush every ``interval`` seconds in a background thread."""
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="key-usage", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            self._flush_logged()

    def _flush_logged(self) -> None:
        try:
            self.flush()
        except (StoreError, OSError) as exc:
            logger.warning("API key usage not written yet (kept for the next try): %s", exc)
        except Exception:
            logger.exception("API key usage not written yet (kept for the next try)")

    def stop(self) -> None:
        """End the thread and write what is held (a failure is logged)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self._flush_logged()
