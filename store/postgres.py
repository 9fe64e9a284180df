"""The PostgreSQL store: metadata, device credentials, and observations through binary COPY.

Works on any PostgreSQL ≥ 15 (``UNIQUE NULLS NOT DISTINCT``); when the TimescaleDB extension
is installed on the server, ``observations`` becomes a hypertable partitioned by time.
Every SQL value is a bound parameter; identifiers are composed with :mod:`psycopg.sql`.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import logging
import operator
import secrets
import threading
import time as _time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, NamedTuple, TypedDict, Unpack

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
from pgpq import ArrowToPostgresBinaryEncoder
from psycopg import sql
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from sensors.observations import Observation, ObservationColumns, Source, is_clean_text
from sensors.parameters import Parameter, is_canonical, stream_unit
from sensors.stations import Station
from store import migrations
from store.errors import Conflict, NotFound, StoreUnavailable

if TYPE_CHECKING:
    from store.devices import DeviceRecord

logger = logging.getLogger(__name__)

#: how long an answer about a device credential is cached at most (a change announced on
#: ``ecosense_credentials`` drops it at once; this bounds a missed announcement)
CREDENTIAL_CACHE_SECONDS: Final = 5.0
_PROBE_SECONDS: Final = 1.0
_COPY_TYPES: Final = ("int4", "timestamptz", "float8", "text", "int4")

#: Readings of one provenance: what :meth:`PostgresStore.write_batches` takes a list of
#: (``None``: unknown provenance, only for spool files written before provenance existed).
SourcedBatch = tuple[Source | None, Sequence[Observation]]


class StreamKey(NamedTuple):
    """What identifies a stream: station × parameter × kind of series.

    A named tuple, so that a plain tuple of the same fields finds it in a dict (fast path).
    """

    station: str
    parameter: str
    interval: str | None = None
    statistic: str | None = None
    basis: str = "measured"

    @classmethod
    def of(cls, obs: Observation) -> StreamKey:
        return cls(*_stream_fields(obs))


#: A row of the COPY: (stream_id, time, value, flag, source_id).
_Row = tuple[int, datetime, float, str, int | None]
# Fields of an Observation (a named tuple) by position: faster than by name in the write loop.
_stream_items: Callable[[Observation], StreamTuple] = operator.itemgetter(0, 1, 5, 6, 7)
_time_item: Callable[[Observation], datetime] = operator.itemgetter(2)
_value_item: Callable[[Observation], float] = operator.itemgetter(3)
_flag_item: Callable[[Observation], str] = operator.itemgetter(4)

#: (station, parameter, interval, statistic, basis): a :class:`StreamKey` or a plain tuple.
StreamTuple = tuple[str, str, str | None, str | None, str]
_stream_fields: Callable[[Observation], StreamTuple] = operator.attrgetter(
    "station", "parameter", "interval", "statistic", "basis"
)


class ObservationFilters(TypedDict, total=False):
    """Filters of an observation read; each one left out matches everything.

    ``start`` is inclusive and ``end`` exclusive (timezone-aware); ``parameter`` is a
    canonical code; ``interval``/``statistic``/``basis`` select the kind of stream.
    """

    station: str | None
    #: only these stations (the ones the caller may read)
    stations: Sequence[str] | None
    parameter: str | None
    start: datetime | None
    end: datetime | None
    interval: str | None
    statistic: str | None
    basis: str | None


@dataclass(frozen=True, slots=True)
class Device:
    """A registered field device, bound to one station."""

    id: str
    station: str
    simulated: bool = False
    #: the credential version it was authenticated with (0: unknown; not compared)
    version: int = field(default=0, compare=False)


@dataclass(frozen=True, slots=True, repr=False)
class PasswordCheck:
    """The slow part of an HJ 212 login (:meth:`PostgresStore.look_up_mn`): verifying a
    password against its Argon2id hash, tens of ms of CPU and 19 MiB. :meth:`run` is
    blocking: run it in a worker thread, a bounded number at a time."""

    store: PostgresStore
    device: Device
    mn: str
    password: str
    key: str
    stored: str
    generation: int

    def run(self) -> Device | None:
        """The device when the password matches, else ``None``."""
        return self.store._check_password(self)


@dataclass(frozen=True, slots=True)
class StoredObservation:
    """An observation as read back, with its stream's unit and kind."""

    station: str
    parameter: str
    time: datetime
    value: float
    unit: str
    flag: str
    interval: str | None
    statistic: str | None
    basis: str
    stream_id: int
    #: when the store received the current value (``ingest_time``); set by
    #: :meth:`PostgresStore.read_observations`
    received_at: datetime | None = None
    #: who sent it; ``None`` for readings stored before provenance was recorded
    source: Source | None = None


class AmbiguousStream(ValueError):
    """Several streams of a station and parameter match where one is needed."""


@dataclass(frozen=True, slots=True)
class ObservationVersion:
    """One version of a reading: a superseded value, or the current one
    (``superseded_at`` is ``None``). ``value`` is in ``unit``; times are UTC."""

    value: float
    flag: str
    unit: str
    received_at: datetime
    source: Source | None
    superseded_at: datetime | None


def _source(
    protocol: str | None, device: str | None, user: str | None, file: str | None
) -> Source | None:
    return None if protocol is None else Source(protocol, device, user, file)


def hash_secret(secret: str) -> str:
    """SHA-256 hex digest of a token (tokens are 256-bit random, so no slow hash is needed)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class PostgresStore:
    """The time-series store on PostgreSQL (TimescaleDB when present).

    Parameters
    ----------
    url:
        a libpq connection string or ``postgresql://`` URL.
    min_size, max_size:
        connection pool bounds.
    """

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8) -> None:
        self.url = url
        self.timescale = False
        try:  # fail fast, with the server's own reason, before the pool retries in background
            psycopg.connect(url, connect_timeout=10).close()
        except psycopg.Error as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise StoreUnavailable(f"cannot connect to the database: {reason}") from exc
        self._pool: ConnectionPool[psycopg.Connection[tuple[Any, ...]]] = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            timeout=5.0,
            name="ecosense",
        )
        try:
            self._pool.open(wait=True, timeout=15.0)
        except PoolTimeout as exc:
            self._pool.close()
            raise StoreUnavailable(f"cannot connect to the database: {exc}") from exc
        self._streams: dict[StreamTuple, int] = {}
        self._streams_lock = threading.Lock()
        self._sources: dict[Source | None, int | None] = {None: None}
        self._tokens: dict[str, tuple[Device | None, float]] = {}
        self._credentials_lock = threading.Lock()
        #: incremented by every change heard: an answer read before it is not cached
        self._credentials_generation = 0
        self._cache_key = secrets.token_bytes(32)
        #: HJ 212 (MN, password) pairs verified, by keyed hash: the device and the stored hash
        self._mn_verified: dict[str, tuple[Device, str]] = {}
        #: password hashes verified (Argon2id or legacy) by this process, for tests and health
        self.password_verifications = 0
        # What the database said, for answering while it is unreachable.
        self._station_kinds: dict[str, str] = {}
        self._down_since: float | None = None
        self._next_probe = 0.0
        self._probe_lock = threading.Lock()
        self._mn_devices: dict[str, Device] = {}

    # ----------------------------------------------------------------- lifecycle
    @contextmanager
    def _connection(self, timeout: float | None = None) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; a database that cannot be reached is :class:`StoreUnavailable`.

        After a failure the store is "down": calls fail at once instead of waiting for the
        pool, and one caller at a time, at most once a second, probes with a fresh connection;
        when the probe succeeds the pool's broken connections are checked out and calls resume.
        """
        if self._down_since is not None:
            self._probe()
        try:
            with self._pool.connection(timeout=timeout) as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            now = _time.monotonic()
            if self._down_since is None:
                self._down_since = now
                self._next_probe = now + _PROBE_SECONDS
            raise StoreUnavailable(f"database unavailable: {exc}".strip()) from exc

    def connection(self, timeout: float | None = None) -> Any:
        """A pooled connection for the repositories of :mod:`store` (:mod:`store.derived`,
        :mod:`store.alerts`, …; a context manager; :class:`StoreUnavailable` when down)."""
        return self._connection(timeout)

    def _probe(self) -> None:
        now = _time.monotonic()
        if now < self._next_probe or not self._probe_lock.acquire(blocking=False):
            raise StoreUnavailable("database unavailable (waiting to retry)")
        try:
            self._next_probe = now + _PROBE_SECONDS
            try:
                psycopg.connect(self.url, connect_timeout=3).close()
            except psycopg.Error as exc:
                raise StoreUnavailable(f"database unavailable: {exc}".strip()) from exc
            self._pool.check()  # drop connections broken by the outage
            self._down_since = None
            logger.info("database reachable again")
        finally:
            self._probe_lock.release()

    def close(self) -> None:
        """Close every pooled connection."""
        self._pool.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def migrate(self) -> None:
        """Apply pending schema migrations, enable TimescaleDB when available, sync parameters."""
        with self._connection() as conn:
            migrations.apply(conn)
            self.timescale = self._enable_timescale(conn)
        self.sync_parameters()

    @staticmethod
    def _enable_timescale(conn: psycopg.Connection[tuple[Any, ...]]) -> bool:
        row = conn.execute(
            "SELECT installed_version FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        if row is None:
            return False
        try:
            with conn.transaction():
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                conn.execute(
                    "SELECT create_hypertable('observations', 'time',"
                    " chunk_time_interval => INTERVAL '7 days',"
                    " if_not_exists => TRUE, migrate_data => TRUE)"
                )
        except psycopg.Error as exc:
            logger.warning("TimescaleDB is installed but could not be enabled: %s", exc)
            return False
        logger.info("TimescaleDB: observations is a hypertable")
        return True

    def ping(self) -> bool:
        """Whether the database answers ``SELECT 1``."""
        try:
            with self._connection(timeout=5.0) as conn:
                conn.execute("SELECT 1")
            return True
        except (psycopg.Error, StoreUnavailable):
            return False

    def server_info(self) -> dict[str, Any]:
        """Server version and whether TimescaleDB is in use."""
        with self._connection() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return {"server_version": row[0] if row else None, "timescaledb": self.timescale}

    # ----------------------------------------------------------------- metadata
    def sync_parameters(self, parameters: Iterable[Parameter] | None = None) -> None:
        """Write the parameter dictionary into the ``parameters`` table (upsert)."""
        from sensors.parameters import all_parameters

        params = list(parameters if parameters is not None else all_parameters())
        with self._connection() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO parameters (code, name_zh, name_en, unit, domain, valid_min,"
                " valid_max, hj212, hj212_2005) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (code) DO UPDATE SET name_zh = EXCLUDED.name_zh,"
                " name_en = EXCLUDED.name_en, unit = EXCLUDED.unit, domain = EXCLUDED.domain,"
                " valid_min = EXCLUDED.valid_min, valid_max = EXCLUDED.valid_max,"
                " hj212 = EXCLUDED.hj212, hj212_2005 = EXCLUDED.hj212_2005",
                [
                    (
                        p.code,
                        p.name_zh,
                        p.name_en,
                        p.unit,
                        p.domain,
                        p.valid_min,
                        p.valid_max,
                        list(p.hj212),
                        list(p.hj212_2005),
                    )
                    for p in params
                ],
            )

    def upsert_stations(self, stations: Sequence[Station]) -> int:
        """Insert or update stations by id (idempotent); return how many were given."""
        with self._connection() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO stations (id, name, kind, lon, lat, attributes, simulated)"
                " VALUES (%s,%s,%s,%s,%s,%s,%s)"
                " ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, kind = EXCLUDED.kind,"
                " lon = EXCLUDED.lon, lat = EXCLUDED.lat, attributes = EXCLUDED.attributes,"
                " simulated = EXCLUDED.simulated, updated_at = now()"
                " WHERE (stations.name, stations.kind, stations.lon, stations.lat,"
                " stations.attributes, stations.simulated) IS DISTINCT FROM (EXCLUDED.name,"
                " EXCLUDED.kind, EXCLUDED.lon, EXCLUDED.lat, EXCLUDED.attributes,"
                " EXCLUDED.simulated)",
                [
                    (s.id, s.name, s.kind, s.lon, s.lat, Jsonb(dict(s.attributes)), s.simulated)
                    for s in stations
                ],
            )
        return len(stations)

    def list_stations(
        self,
        *,
        after: str | None = None,
        limit: int | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[Station]:
        """Stations ordered by id: every one (or those of ``ids``), or (paging) at most
        ``limit`` after id ``after``."""
        query: sql.Composable = sql.SQL(
            "SELECT id, name, kind, lon, lat, attributes, simulated FROM stations WHERE true"
        )
        params: list[Any] = []
        if after is not None:
            query += sql.SQL(" AND id > %s")
            params.append(after)
        if ids is not None:
            query += sql.SQL(" AND id = ANY(%s)")
            params.append(list(ids))
        query += sql.SQL(" ORDER BY id")
        if limit is not None:
            query += sql.SQL(" LIMIT %s")
            params.append(limit)
        with self._connection() as conn:
            rows = conn.execute(query, params).fetchall()
        return [Station(r[0], r[1], r[2], r[3], r[4], r[5] or {}, r[6]) for r in rows]

    def get_station(self, station_id: str) -> Station | None:
        """One station by id, or ``None``."""
        with self._connection() as conn:
            r = conn.execute(
                "SELECT id, name, kind, lon, lat, attributes, simulated FROM stations"
                " WHERE id = %s",
                (station_id,),
            ).fetchone()
        return None if r is None else Station(r[0], r[1], r[2], r[3], r[4], r[5] or {}, r[6])

    def existing_station_ids(self, ids: Iterable[str]) -> set[str]:
        """The subset of ``ids`` that are registered stations (see :meth:`station_kinds`)."""
        return set(self.station_kinds(ids))

    def station_kinds(self, ids: Iterable[str]) -> dict[str, str]:
        """The kind of each of ``ids`` that is a registered station (unknown ids left out).

        While the database is down, answered from what it said before — but only when every id
        is known: a station we cannot vouch for must not be rejected. An id PostgreSQL text cannot
        hold (NUL, an unpaired surrogate) names none.
        """
        wanted = [i for i in set(ids) if is_clean_text(i)]
        if not wanted:
            return {}
        try:
            with self._connection() as conn:
                rows = conn.execute(
                    "SELECT id, kind FROM stations WHERE id = ANY(%s)", (wanted,)
                ).fetchall()
        except StoreUnavailable:
            if set(wanted) <= self._station_kinds.keys():
                return {i: self._station_kinds[i] for i in wanted}
            raise
        found = {r[0]: r[1] for r in rows}
        self._station_kinds.update(found)
        return found

    # ----------------------------------------------------------------- devices
    def add_device(
        self,
        device_id: str,
        station_id: str,
        *,
        mn: str | None = None,
        password: str | None = None,
        simulated: bool = False,
    ) -> str:
        """Register a device (or register it again: new token, active again) and return its
        new API token.

        The token is shown once: only its SHA-256 is stored. HJ 212 devices also get an MN
        and password (stored as a salted Argon2id hash). The change is announced on
        ``ecosense_credentials`` (:mod:`store.notify`) in the same transaction.

        Raises
        ------
        NotFound
            when the station does not exist.
        Conflict
            when the device id is bound to another station, or the MN to another device.
        """
        from access.passwords import hash_device_password
        from store import devices, notify

        if (mn is None) != (password is None):
            raise ValueError("an HJ 212 device needs both --mn and --password")
        token = devices.new_device_token()
        pw_hash = hash_device_password(password) if password is not None else None
        with self._connection() as conn, conn.transaction():
            if (
                conn.execute("SELECT 1 FROM stations WHERE id = %s", (station_id,)).fetchone()
                is None
            ):
                raise NotFound(f"unknown station {station_id!r}")
            row = conn.execute(
                "SELECT station_id FROM devices WHERE id = %s FOR UPDATE", (device_id,)
            ).fetchone()
            if row is not None and row[0] != station_id:
                raise Conflict(f"device {device_id!r} belongs to station {row[0]!r}")
            try:
                with conn.transaction():
                    conn.execute(
                        "INSERT INTO devices (id, station_id, token_hash, mn, pw_hash, simulated)"
                        " VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT (id) DO UPDATE SET"
                        " token_hash = EXCLUDED.token_hash, mn = EXCLUDED.mn,"
                        " pw_hash = EXCLUDED.pw_hash, simulated = EXCLUDED.simulated,"
                        " revoked_at = NULL, rotated_at = now(),"
                        " credential_version = devices.credential_version + 1",
                        (device_id, station_id, hash_secret(token), mn, pw_hash, simulated),
                    )
            except psycopg.errors.UniqueViolation as exc:
                raise Conflict(f"MN {mn!r} is registered to another device") from exc
            notify.announce(conn, notify.device_payload(device_id))
        self.credentials_changed(notify.device_payload(device_id))
        return token

    def list_devices(self) -> list[DeviceRecord]:
        """Every device with its kind of credential, state and times (never a secret)."""
        from store import devices

        with self._connection() as conn:
            return devices.list_devices(conn)

    def revoke_device(self, device_id: str) -> DeviceRecord:
        """Revoke a device's API token and HJ 212 password, at once in every process
        listening on ``ecosense_credentials`` (:class:`store.devices.DeviceNotFound`)."""
        from store import devices, notify

        with self._connection() as conn:
            record = devices.revoke(conn, device_id)
        self.credentials_changed(notify.device_payload(device_id))
        return record

    def rotate_device(
        self, device_id: str, password: str | None = None
    ) -> tuple[DeviceRecord, str]:
        """A new API token (and with ``password`` a new HJ 212 password) for a device; the
        old ones stop working at once (see :func:`store.devices.rotate`)."""
        from store import devices, notify

        with self._connection() as conn:
            got = devices.rotate(conn, device_id, password)
        self.credentials_changed(notify.device_payload(device_id))
        return got

    def credentials_changed(self, payload: str) -> None:
        """Drop what this process cached of the credentials ``payload`` names
        (:mod:`store.notify` payloads: ``device:<id>``, or ``*`` for everything). Thread-safe;
        the credential listener calls it."""
        from store import notify

        device_id = notify.changed_device(payload)
        if payload == notify.ADMIN:
            return
        with self._credentials_lock:
            self._credentials_generation += 1
            if device_id is None:
                self._tokens.clear()
                self._mn_verified.clear()
                return
            # the device's entries, and every "unknown" answer (it may be known now)
            self._tokens = {
                k: v for k, v in self._tokens.items() if v[0] is not None and v[0].id != device_id
            }
            self._mn_verified = {k: v for k, v in self._mn_verified.items() if v[0].id != device_id}
            self._mn_devices = {k: v for k, v in self._mn_devices.items() if v.id != device_id}

    def device_for_token(self, token: str) -> Device | None:
        """The active device holding this API token, or ``None``.

        Answers are cached for ``CREDENTIAL_CACHE_SECONDS`` (5 s) at most, and dropped at
        once when the credential listener (:mod:`store.notify`) hears of a change. While the
        database is unreachable a device it knew (and has not heard revoked) is still
        recognised."""
        key = hash_secret(token)
        now = _time.monotonic()
        cached = self._tokens.get(key)
        if cached is not None and cached[1] > now:
            return cached[0]
        generation = self._credentials_generation
        try:
            with self._connection() as conn:
                r = conn.execute(
                    "SELECT id, station_id, simulated, credential_version FROM devices"
                    " WHERE token_hash = %s AND revoked_at IS NULL",
                    (key,),
                ).fetchone()
        except StoreUnavailable:
            if cached is not None and cached[0] is not None:
                return cached[0]  # the database is down: a device it knew keeps writing
            raise
        device = None if r is None else Device(r[0], r[1], r[2], r[3])
        with self._credentials_lock:
            if generation != self._credentials_generation:
                return device  # a change was heard meanwhile: this answer may predate it
            if len(self._tokens) > 10_000:
                self._tokens.clear()
            self._tokens[key] = (device, now + CREDENTIAL_CACHE_SECONDS)
        return device

    def _mn_key(self, mn: str, password: str) -> str:
        """A keyed hash of an MN and password, for this process's caches only (the key is
        random per process: a memory dump does not give an offline dictionary attack)."""
        return hmac.new(self._cache_key, f"{mn}\0{password}".encode(), "sha256").hexdigest()

    def device_for_mn(self, mn: str, password: str) -> Device | None:
        """The active device with this HJ 212 MN and password, or ``None`` (blocking:
        :meth:`look_up_mn`, then the password check when one is due)."""
        found = self.look_up_mn(mn, password)
        return found.run() if isinstance(found, PasswordCheck) else found

    def look_up_mn(self, mn: str, password: str) -> Device | PasswordCheck | None:
        """The first, quick part of an HJ 212 login (blocking: one indexed query): the active
        device with this MN when this process verified this password against its stored
        hash before, ``None`` for an MN unknown or revoked, otherwise the
        :class:`PasswordCheck` to run (slow: callers bound how many run at once).

        A pair verified once is remembered by this process, keyed by the stored hash, so it
        is not verified again until that hash changes; the device's row (active or revoked)
        is read every time. While the database is unreachable a device it knew is still
        recognised.
        """
        key = self._mn_key(mn, password)
        generation = self._credentials_generation
        try:
            with self._connection() as conn:
                r = conn.execute(
                    "SELECT id, station_id, simulated, credential_version, pw_hash FROM devices"
                    " WHERE mn = %s AND revoked_at IS NULL",
                    (mn,),
                ).fetchone()
        except StoreUnavailable:
            known = self._mn_devices.get(key)
            if known is not None:
                return known  # the database is down: a device it knew keeps uploading
            raise
        if r is None or r[4] is None:
            return None
        device = Device(r[0], r[1], r[2], r[3])
        stored: str = r[4]
        verified = self._mn_verified.get(key)
        if verified is not None and verified[1] == stored:
            return device
        return PasswordCheck(self, device, mn, password, key, stored, generation)

    def _check_password(self, check: PasswordCheck) -> Device | None:
        """Run a :class:`PasswordCheck`: Argon2id (or a legacy SHA-256 of ``MN:PW``, then
        replaced by Argon2id on a match)."""
        from access.passwords import (
            device_needs_rehash,
            hash_device_password,
            verify_device_password,
        )

        device, stored, password = check.device, check.stored, check.password
        verified = self._mn_verified.get(check.key)
        if verified is not None and verified[1] == stored:
            return device  # verified meanwhile (units of one MN logging in together)
        self.password_verifications += 1
        if stored.startswith("$argon2"):
            if not verify_device_password(stored, password):
                return None
        elif not hmac.compare_digest(stored, hash_secret(f"{check.mn}:{password}")):
            return None  # legacy: unsalted SHA-256 of MN:PW (before migration 0014)
        if device_needs_rehash(stored):
            renewed = hash_device_password(password)
            try:
                with self._connection() as conn:
                    conn.execute(
                        "UPDATE devices SET pw_hash = %s WHERE id = %s AND pw_hash = %s",
                        (renewed, device.id, stored),
                    )
                stored = renewed
                logger.info("device %s: HJ 212 password rehashed with Argon2id", device.id)
            except StoreUnavailable as exc:  # rehashed at the next login
                logger.warning("device %s: password not rehashed: %s", device.id, exc)
        with self._credentials_lock:
            if check.generation != self._credentials_generation:
                return device  # a change was heard meanwhile: not remembered
            if len(self._mn_verified) > 10_000:
                self._mn_verified.clear()
            self._mn_verified[check.key] = (device, stored)
            self._mn_devices[check.key] = device
        return device

    def device_versions(self, ids: Iterable[str]) -> dict[str, int]:
        """The credential version of each active device of ``ids`` (a revoked or deleted one
        is missing): a cheap check that connections authenticated earlier are still valid."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT id, credential_version FROM devices"
                " WHERE id = ANY(%s) AND revoked_at IS NULL",
                (wanted,),
            ).fetchall()
        return {str(i): int(v) for i, v in rows}

    # ----------------------------------------------------------------- streams
    def stream_ids(self, keys: Iterable[StreamTuple]) -> dict[StreamTuple, int]:
        """Ids of the streams named by ``keys``, creating the missing ones.

        Raises
        ------
        NotFound
            when a key names a station that does not exist.
        """
        wanted = set(keys)
        streams = self._streams
        missing = [StreamKey(*k) for k in wanted if k not in streams]
        if missing:
            self._create_streams(missing)
        return {k: streams[k] for k in wanted}

    def _create_streams(self, keys: list[StreamKey]) -> None:
        # A stream is only ever of a parameter of the dictionary: codes it does not know are
        # held per device by store.quarantine, never added to the shared parameters table.
        unknown = sorted({k.parameter for k in keys if not is_canonical(k.parameter)})
        if unknown:
            raise NotFound(f"unknown parameter {', '.join(map(repr, unknown[:5]))}")
        stations = sorted({k.station for k in keys})
        with self._connection() as conn:
            with conn.cursor() as cur:
                try:
                    cur.executemany(
                        "INSERT INTO streams (station_id, parameter, interval, statistic, basis,"
                        " unit) VALUES (%s,%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING",
                        [
                            (
                                k.station,
                                k.parameter,
                                k.interval,
                                k.statistic,
                                k.basis,
                                stream_unit(k.parameter, k.statistic),
                            )
                            for k in keys
                        ],
                    )
                except psycopg.errors.ForeignKeyViolation as exc:
                    raise NotFound(
                        f"unknown station or parameter: {exc.diag.message_detail}"
                    ) from exc
            rows = conn.execute(
                "SELECT id, station_id, parameter, interval, statistic, basis FROM streams"
                " WHERE station_id = ANY(%s)",
                (stations,),
            ).fetchall()
        with self._streams_lock:
            for r in rows:
                self._streams[StreamKey(r[1], r[2], r[3], r[4], r[5])] = r[0]

    # ----------------------------------------------------------------- provenance
    def source_ids(self, sources: Iterable[Source | None]) -> dict[Source | None, int | None]:
        """Ids of the ``sources`` rows of these provenances, creating the missing ones (cached:
        a source is looked up in the database once per process); ``None`` maps to ``None``."""
        known = self._sources
        missing = [src for src in set(sources) if src not in known]
        if missing:
            with self._connection() as conn, conn.cursor() as cur:
                for src in missing:
                    assert src is not None
                    cur.execute(
                        "INSERT INTO sources (protocol, device, user_name, file)"
                        " VALUES (%s, %s, %s, %s) ON CONFLICT (protocol, device, user_name, file)"
                        " DO UPDATE SET protocol = EXCLUDED.protocol RETURNING id",
                        (src.protocol, src.device, src.user, src.file),
                    )
                    row = cur.fetchone()
                    assert row is not None
                    known[src] = row[0]
        return known

    # ----------------------------------------------------------------- observations
    def write_observations(self, observations: Sequence[Observation], *, source: Source) -> int:
        """Store a batch of one provenance durably (committed when this returns); return the
        rows written. See :meth:`write_batches`."""
        return self.write_batches([(source, observations)])

    def write_batches(self, batches: Sequence[SourcedBatch]) -> int:
        """Store batches, each with its provenance, in one transaction; return the rows written.

        Raw data are never overwritten: a re-sent reading with the same value and flag changes
        nothing (its first provenance stays); one with another value or flag becomes the
        current value, stamped with a new ``ingest_time``, and the database keeps the previous
        one in ``observation_versions`` (trigger of migration 0008). Within the call the last
        reading of a (stream, time) wins, and the earlier ones of the call are kept as its
        versions too (as if sent one after the other). The fast path is one binary COPY into
        ``observations``; a batch that hits an existing (stream, time) is rolled back to a
        savepoint and merged through a staging table.
        """
        batches = [(src, obs) for src, obs in batches if obs]
        if not batches:
            return 0
        if all(isinstance(obs, ObservationColumns) for _, obs in batches):
            columns = self._columns(batches)  # type: ignore[arg-type]
            if columns is not None:  # no (stream, time) twice in the call
                with self._connection() as conn, conn.transaction():
                    try:
                        with conn.transaction():
                            self._copy(conn, "observations", columns)
                    except psycopg.errors.UniqueViolation:
                        self._merge(conn, columns)
                return int(columns.num_rows)
        keys = [list(map(_stream_items, obs)) for _, obs in batches]
        ids = self.stream_ids({k for ks in keys for k in ks})
        sids = self.source_ids(src for src, _ in batches)
        # One row per (stream, time), the last one winning; built by C-level iteration (no
        # Python code per reading): (stream_id, time, value, flag, source_id).
        rows: dict[tuple[int, datetime], _Row] = {}
        for (src, obs), ks in zip(batches, keys, strict=True):
            streams = list(map(ids.__getitem__, ks))
            times = list(map(_time_item, obs))
            rows.update(
                zip(
                    zip(streams, times, strict=True),
                    zip(
                        streams,
                        times,
                        map(_value_item, obs),
                        map(_flag_item, obs),
                        itertools.repeat(sids[src], len(obs)),
                        strict=True,
                    ),
                    strict=True,
                )
            )
        # Readings of one (stream, time) sent twice in the call (rare): the earlier ones are
        # written first, the later ones merged over them, so their versions are kept.
        later = (
            self._later_readings(batches, keys, ids, sids)
            if len(rows) < sum(len(obs) for _, obs in batches)
            else []
        )
        with self._connection() as conn, conn.transaction():
            first = rows
            if later:  # the first reading of each (stream, time) goes in first
                first = {k: later[0].get(k, r) for k, r in rows.items()}
            try:
                with conn.transaction():
                    self._copy(conn, "observations", first)
            except psycopg.errors.UniqueViolation:
                self._merge(conn, first)
            for generation in later[1:]:
                self._merge(conn, generation)
        return len(rows)

    def _columns(
        self, batches: Sequence[tuple[Source | None, ObservationColumns]]
    ) -> pa.RecordBatch | None:
        """The rows of columnar batches as one Arrow record batch of the COPY's columns
        (``stream_id, time, value, flag, source_id``), built without Python code per reading;
        ``None`` when a (stream, time) comes twice (the row path keeps its versions)."""
        keys = list(
            itertools.chain.from_iterable(
                zip(
                    obs.station,
                    obs.parameter,
                    obs.column("interval"),
                    obs.column("statistic"),
                    obs.column("basis"),
                    strict=True,
                )
                for _, obs in batches
            )
        )
        ids = self.stream_ids(keys)
        sids = self.source_ids(src for src, _ in batches)
        stream = np.fromiter(map(ids.__getitem__, keys), dtype=np.int32, count=len(keys))
        time_us = np.concatenate([obs.time_us for _, obs in batches])
        if len(stream) > 1:
            order = np.lexsort((time_us, stream))
            s, t = stream[order], time_us[order]
            if bool(((s[1:] == s[:-1]) & (t[1:] == t[:-1])).any()):
                return None
        lengths = [len(obs) for _, obs in batches]
        source_of = [sids[src] for src, _ in batches]
        source = np.repeat(np.array([k or 0 for k in source_of], dtype=np.int32), lengths)
        unknown = np.repeat(np.array([k is None for k in source_of], dtype=bool), lengths)
        return pa.record_batch(
            [
                pa.array(stream, type=pa.int32()),
                pa.array(time_us, type=pa.int64()).view(pa.timestamp("us", tz="UTC")),
                pa.array(np.concatenate([obs.value for _, obs in batches]), type=pa.float64()),
                pa.array(
                    list(itertools.chain.from_iterable(obs.flag for _, obs in batches)),
                    type=pa.string(),
                ),
                pa.array(source, type=pa.int32(), mask=unknown if unknown.any() else None),
            ],
            names=["stream_id", "time", "value", "flag", "source_id"],
        )

    @staticmethod
    def _later_readings(
        batches: Sequence[SourcedBatch],
        keys: list[list[StreamTuple]],
        ids: dict[StreamTuple, int],
        sids: dict[Source | None, int | None],
    ) -> list[dict[tuple[int, datetime], _Row]]:
        """The rows of a call whose (stream, time) repeats, by generation: the first reading of
        each repeated (stream, time), then the second, … (the last generation ends with the
        last reading of each)."""
        seen: dict[tuple[int, datetime], int] = {}
        generations: list[dict[tuple[int, datetime], _Row]] = []
        for (src, obs), ks in zip(batches, keys, strict=True):
            for o, k in zip(obs, ks, strict=True):
                key = (ids[k], o.time)
                n = seen.get(key, 0)
                seen[key] = n + 1
                if n == len(generations):
                    generations.append({})
                generations[n][key] = (ids[k], o.time, o.value, o.flag, sids[src])
        repeated = {k for k, n in seen.items() if n > 1}
        out = [{k: r for k, r in g.items() if k in repeated} for g in generations]
        return [g for g in out if g]

    @staticmethod
    def _copy(
        conn: psycopg.Connection[tuple[Any, ...]],
        table: str,
        rows: dict[tuple[int, datetime], _Row] | pa.RecordBatch,
    ) -> None:
        """Binary COPY of ``rows`` into ``table``: tuples through psycopg's ``write_row``, or
        an Arrow record batch encoded by pgpq (Rust: no Python code per row)."""
        stmt = sql.SQL(
            "COPY {} (stream_id, time, value, flag, source_id) FROM STDIN (FORMAT BINARY)"
        ).format(sql.Identifier(table))
        with conn.cursor() as cur, cur.copy(stmt) as copy:
            if isinstance(rows, pa.RecordBatch):
                encoder = ArrowToPostgresBinaryEncoder(rows.schema)
                copy.write(encoder.write_header())
                copy.write(encoder.write_batch(rows))
                copy.write(encoder.finish())
                return
            copy.set_types(list(_COPY_TYPES))
            write = copy.write_row
            for row in rows.values():
                write(row)

    def _merge(
        self,
        conn: psycopg.Connection[tuple[Any, ...]],
        rows: dict[tuple[int, datetime], _Row] | pa.RecordBatch,
    ) -> None:
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS observations_staging"
            " (LIKE observations INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        conn.execute("DELETE FROM observations_staging")  # several merges in one transaction
        self._copy(conn, "observations_staging", rows)
        # Only a changed value or flag updates the row (and its trigger keeps the old version);
        # a re-send of the same reading leaves it, and its provenance, as it was.
        conn.execute(
            "INSERT INTO observations (stream_id, time, value, flag, ingest_time, source_id)"
            " SELECT stream_id, time, value, flag, ingest_time, source_id"
            " FROM observations_staging"
            " ON CONFLICT (stream_id, time) DO UPDATE SET value = EXCLUDED.value,"
            " flag = EXCLUDED.flag, ingest_time = EXCLUDED.ingest_time,"
            " source_id = EXCLUDED.source_id"
            " WHERE (observations.value, observations.flag)"
            " IS DISTINCT FROM (EXCLUDED.value, EXCLUDED.flag)"
        )

    def _select(
        self,
        filters: ObservationFilters,
        after: tuple[int, datetime] | None = None,
        limit: int | None = None,
        provenance: bool = False,
    ) -> tuple[sql.Composed, list[Any]]:
        where: list[sql.Composable] = []
        params: list[Any] = []
        for column, value in (
            ("station_id", filters.get("station")),
            ("parameter", filters.get("parameter")),
            ("interval", filters.get("interval")),
            ("statistic", filters.get("statistic")),
            ("basis", filters.get("basis")),
        ):
            if value is not None:
                where.append(sql.SQL("s.{} = %s").format(sql.Identifier(column)))
                params.append(value)
        stations = filters.get("stations")
        if stations is not None:
            where.append(sql.SQL("s.station_id = ANY(%s::text[])"))
            params.append(list(stations))
        start, end = filters.get("start"), filters.get("end")
        if start is not None:
            where.append(sql.SQL("o.time >= %s"))
            params.append(start)
        if end is not None:
            where.append(sql.SQL("o.time < %s"))
            params.append(end)
        if after is not None:
            where.append(sql.SQL("(o.stream_id, o.time) > (%s, %s)"))
            params.extend(after)
        query = sql.SQL(
            "SELECT s.station_id, s.parameter, o.time, o.value, s.unit, o.flag, s.interval,"
            " s.statistic, s.basis, o.stream_id{}"
            " FROM observations o JOIN streams s ON s.id = o.stream_id{}"
            " WHERE {} ORDER BY o.stream_id, o.time"
        ).format(
            sql.SQL(
                ", o.ingest_time, src.protocol, src.device, src.user_name, src.file"
                if provenance
                else ""
            ),
            sql.SQL(" LEFT JOIN sources src ON src.id = o.source_id" if provenance else ""),
            sql.SQL(" AND ").join(where) if where else sql.SQL("TRUE"),
        )
        if limit is not None:
            query = query + sql.SQL(" LIMIT %s")
            params.append(limit)
        return query, params

    def read_observations(
        self,
        *,
        after: tuple[int, datetime] | None = None,
        limit: int = 1000,
        **filters: Unpack[ObservationFilters],
    ) -> list[StoredObservation]:
        """One page of observations, ordered by (stream, time), ``start`` ≤ time < ``end``,
        each with its provenance (``received_at``, ``source``).

        ``after`` is the (stream id, time) of the last row of the previous page. A filter
        left out (or ``None``) matches every value.
        """
        query, params = self._select(filters, after, limit, provenance=True)
        with self._connection() as conn:
            rows = conn.execute(query, params).fetchall()
        return [
            StoredObservation(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
                r[8],
                r[9],
                r[10],
                _source(*r[11:15]),
            )
            for r in rows
        ]

    def observation_versions(
        self,
        *,
        station: str,
        parameter: str,
        time: datetime,
        interval: str | None = None,
        statistic: str | None = None,
        basis: str | None = None,
    ) -> list[ObservationVersion]:
        """Every version of the reading of ``station`` × ``parameter`` at ``time``, oldest
        first; the last is the current one (``superseded_at`` ``None``). ``interval``,
        ``statistic`` and ``basis`` (left out: any; ``""``: none, the instantaneous stream)
        select the stream among those with a reading at ``time``.

        Raises
        ------
        NotFound
            when no stream has a reading at ``time``.
        AmbiguousStream
            when several do (its message names them).
        """
        where: list[sql.Composable] = [
            sql.SQL("s.station_id = %s"),
            sql.SQL("s.parameter = %s"),
            sql.SQL("o.time = %s"),
        ]
        params: list[Any] = [station, parameter, time]
        for column, value in (("interval", interval), ("statistic", statistic), ("basis", basis)):
            if value == "":
                where.append(sql.SQL("s.{} IS NULL").format(sql.Identifier(column)))
            elif value is not None:
                where.append(sql.SQL("s.{} = %s").format(sql.Identifier(column)))
                params.append(value)
        current = sql.SQL(
            "SELECT o.stream_id, s.interval, s.statistic, s.basis, s.unit, o.value, o.flag,"
            " o.ingest_time, src.protocol, src.device, src.user_name, src.file"
            " FROM observations o JOIN streams s ON s.id = o.stream_id"
            " LEFT JOIN sources src ON src.id = o.source_id WHERE {} ORDER BY o.stream_id"
        ).format(sql.SQL(" AND ").join(where))
        with self._connection() as conn:
            rows = conn.execute(current, params).fetchall()
            if not rows:
                raise NotFound(f"no reading of {station} {parameter} at {time.isoformat()}")
            if len(rows) > 1:
                kinds = "; ".join(
                    f"interval={r[1] or ''}&statistic={r[2] or ''}&basis={r[3]}" for r in rows
                )
                raise AmbiguousStream(
                    f"{len(rows)} streams of {station} {parameter} have a reading at "
                    f"{time.isoformat()}; choose one with interval, statistic, basis (empty for an"
                    f" instantaneous reading): {kinds}"
                )
            stream_id, unit = rows[0][0], rows[0][4]
            old = conn.execute(
                "SELECT v.value, v.flag, v.received_at, src.protocol, src.device, src.user_name,"
                " src.file, v.superseded_at FROM observation_versions v"
                " LEFT JOIN sources src ON src.id = v.source_id"
                " WHERE v.stream_id = %s AND v.time = %s"
                " ORDER BY v.superseded_at, v.received_at",
                (stream_id, time),
            ).fetchall()
        versions = [ObservationVersion(r[0], r[1], unit, r[2], _source(*r[3:7]), r[7]) for r in old]
        r = rows[0]
        versions.append(ObservationVersion(r[5], r[6], unit, r[7], _source(*r[8:12]), None))
        return versions

    def read_frame(self, **filters: Unpack[ObservationFilters]) -> pd.DataFrame:
        """A range of observations as a DataFrame (``time`` is UTC; ``value`` in ``unit``)."""
        query, params = self._select(filters)
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute(query, params)
            rows = cur.fetchall()
        frame = pd.DataFrame(rows, columns=list(_FRAME_COLUMNS))
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        frame["value"] = frame["value"].astype("float64")
        return frame

    def read_arrow(self, **filters: Unpack[ObservationFilters]) -> pa.Table:
        """Like :meth:`read_frame`, as an Arrow table."""
        return pa.Table.from_pandas(self.read_frame(**filters), preserve_index=False)

    def latest(self, station: str | None = None) -> pd.DataFrame:
        """The latest observation of every stream (of one station, or of all)."""
        query = (
            "SELECT s.station_id AS station, s.parameter, s.unit, s.interval, s.statistic,"
            " s.basis, o.time, o.value, o.flag FROM streams s CROSS JOIN LATERAL"
            " (SELECT time, value, flag FROM observations WHERE stream_id = s.id"
            "  ORDER BY time DESC LIMIT 1) o"
        )
        params: list[Any] = []
        if station is not None:
            query += " WHERE s.station_id = %s"
            params.append(station)
        query += " ORDER BY s.station_id, s.parameter"
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute(query.encode(), params)
            rows = cur.fetchall()
        cols = [
            "station",
            "parameter",
            "unit",
            "interval",
            "statistic",
            "basis",
            "time",
            "value",
            "flag",
        ]
        frame = pd.DataFrame(rows, columns=cols)
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        return frame

    def count_observations(self) -> int:
        """How many observations are stored (all streams)."""
        with self._connection() as conn:
            row = conn.execute("SELECT count(*) FROM observations").fetchone()
        return int(row[0]) if row else 0


_FRAME_COLUMNS: Final = (
    "station",
    "parameter",
    "time",
    "value",
    "unit",
    "flag",
    "interval",
    "statistic",
    "basis",
    "stream_id",
)
