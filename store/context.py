"""What the HTTP routes of ingest/ and api/ share: the store, credentials and time settings."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from typing import Any

from sensors.observations import Observation
from store import audit as audit_log
from store.postgres import Device, PostgresStore, hash_secret


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: the operator (``device`` is ``None``) or a device."""

    device: Device | None

    @property
    def is_operator(self) -> bool:
        return self.device is None

    @property
    def actor(self) -> str:
        """Who this is in the audit: ``admin`` for the operator token, ``device:<id>``."""
        return "admin" if self.device is None else f"device:{self.device.id}"

    def may_access(self, station_id: str) -> bool:
        """Whether this principal may read or write ``station_id``."""
        return self.device is None or self.device.station == station_id


@dataclass(frozen=True)
class ServiceContext:
    """Everything a request handler needs, built once by the shell.

    ``timezone`` is the bureau's (times without offset are read in it; answers are given in
    it); ``max_future`` is how far ahead of the server clock a reading may be stamped.
    """

    store: PostgresStore
    admin_token_hash: str
    timezone: tzinfo
    max_future: timedelta = timedelta(hours=1)
    #: how a batch is made durable; default: straight into the store (the shell passes the
    #: spooling writer of ingest/)
    writer: Callable[[Sequence[Observation]], int] | None = field(default=None)
    #: where audit events go; default: appended at once (the shell passes the background
    #: :class:`store.audit.AuditWriter`, so that a request pays for no audit commit)
    auditor: audit_log.AuditWriter | None = field(default=None)

    def write(self, observations: Sequence[Observation]) -> int:
        """Make a batch durable; return its size."""
        if self.writer is not None:
            return self.writer(observations)
        return self.store.write_observations(observations)

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
        if hmac.compare_digest(hash_secret(token), self.admin_token_hash):
            return Principal(None)
        device = self.store.device_for_token(token)
        return None if device is None else Principal(device)
