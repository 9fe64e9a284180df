"""What the HTTP routes of ingest/ and api/ share: the store, credentials and time settings."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from typing import Any

import access
from sensors.observations import Observation, Source
from store import audit as audit_log
from store import keys, users
from store.devices import AdminToken
from store.postgres import Device, PostgresStore, SourcedBatch, hash_secret

#: the schemes an ``Authorization`` header may use (``Token``: InfluxDB clients)
SCHEMES = ("bearer", "token")


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: the operator (``device`` is ``None``) or a device."""

    device: Device | None

    @property
    def is_operator(self) -> bool:
        return self.device is None

    @property
    def actor(self) -> str:
        """Who this is in the audit when no authenticated caller is known: ``admin`` for
        the operator, ``device:<id>`` (routes pass :attr:`access.Principal.actor`)."""
        return "admin" if self.device is None else f"device:{self.device.id}"

    @classmethod
    def of(cls, principal: access.Principal) -> Principal:
        """The writer identity of an authorised ``principal`` (a device, or anyone allowed
        to write anywhere)."""
        if principal.kind == "device":
            assert principal.station is not None
            return cls(Device(principal.name, principal.station))
        return cls(None)

    def may_access(self, station_id: str) -> bool:
        """Whether this principal may read or write ``station_id``."""
        return self.device is None or self.device.station == station_id


@dataclass(frozen=True)
class ServiceContext:
    """Everything a request handler needs, built once by the shell.

    ``timezone`` is the bureau's (times without offset are read in it; answers are given in
    it); ``max_future`` is how far ahead of the server clock a reading may be stamped;
    ``max_past`` how far behind it a device may write (``ECOSENSE_MAX_PAST_DAYS``; the
    operator token has no past limit).
    """

    store: PostgresStore
    #: SHA-256 of the admin token at start (in force while ``admin_token`` is not given)
    admin_token_hash: str
    timezone: tzinfo
    max_future: timedelta = timedelta(hours=1)
    max_past: timedelta = timedelta(days=30)
    #: how batches (each with its provenance) are made durable; default: straight into the
    #: store (the shell passes the spooling writer of ingest/)
    writer: Callable[[Sequence[SourcedBatch]], int] | None = field(default=None)
    #: how long a user's bearer token lives (``ECOSENSE_TOKEN_TTL_SECONDS``)
    token_ttl: timedelta = timedelta(hours=8)
    #: where audit events go; default: appended at once (the shell passes the background
    #: :class:`store.audit.AuditWriter`, so that a request pays for no audit commit)
    auditor: audit_log.AuditWriter | None = field(default=None)
    #: the admin token in force, kept in the database so that ``ecosense admin
    #: rotate-token`` reaches this process at once (the shell passes it); without it,
    #: ``admin_token_hash`` is the admin token for the process's life (tests)
    admin_token: AdminToken | None = field(default=None)

    def is_admin_token(self, key: str) -> bool:
        """Whether ``key`` (a token's SHA-256) is the break-glass admin token in force."""
        current = self.admin_token_hash if self.admin_token is None else self.admin_token.current()
        return hmac.compare_digest(key, current)

    def write(self, observations: Sequence[Observation], source: Source) -> int:
        """Make a batch of one provenance durable; return its size."""
        if self.writer is not None:
            return self.writer([(source, observations)])
        return self.store.write_observations(observations, source=source)

    def audit(
        self,
        actor: str,
        action: str,
        object: str,
        outcome: str = "ok",
        address: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        """Append an entry to the audit, or queue it for the background writer (never raises:
        a failure is logged)."""
        if self.auditor is not None:
            return self.auditor.submit(actor, action, object, outcome, address, details)
        return audit_log.record(self.store, actor, action, object, outcome, address, details)

    def authenticate(self, authorization: str | None, scheme: str = "Bearer") -> Principal | None:
        """The principal of an ``Authorization: <scheme> <token>`` header, or ``None``."""
        if not authorization:
            return None
        given_scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if given_scheme.lower() != scheme.lower() or not token:
            return None
        if self.is_admin_token(hash_secret(token)):
            return Principal(None)
        device = self.store.device_for_token(token)
        return None if device is None else Principal(device)

    def resolve(self, authorization: str | None) -> access.Principal | None:
        """Who sent an ``Authorization`` header: :data:`access.ANONYMOUS` without one, the
        break-glass admin, a device (its API token) or a signed-in user (a live session of an
        enabled user); ``None`` when credentials were given but are wrong, expired or
        revoked. Schemes ``Bearer`` and ``Token``."""
        if authorization is None or not authorization.strip():
            return access.ANONYMOUS
        given_scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if given_scheme.lower() not in SCHEMES or not token:
            return None
        key = hash_secret(token)
        if self.is_admin_token(key):
            return access.BREAK_GLASS
        device = self.store.device_for_token(token)
        if device is not None:
            return access.device(device.id, device.station)
        with self.store.connection() as conn:
            user = users.user_for_session(conn, key)
        return None if user is None else access.user(user.name, user.role)

    def consumer(self, api_key: str) -> keys.Consumer | None:
        """The open-data consumer of an active ``X-API-Key``, or ``None`` for a key unknown or
        revoked (blocking: one indexed query, so a revocation applies at once)."""
        if not api_key.startswith(keys.KEY_PREFIX):
            return None
        with self.store.connection() as conn:
            return keys.consumer_for_key(conn, api_key)
