"""What the HTTP routes of ingest/ and api/ share: the store, credentials and time settings."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo

from sensors.observations import Observation, Source
from store.postgres import Device, PostgresStore, SourcedBatch, hash_secret


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: the operator (``device`` is ``None``) or a device."""

    device: Device | None

    @property
    def is_operator(self) -> bool:
        return self.device is None

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
    admin_token_hash: str
    timezone: tzinfo
    max_future: timedelta = timedelta(hours=1)
    max_past: timedelta = timedelta(days=30)
    #: how batches (each with its provenance) are made durable; default: straight into the
    #: store (the shell passes the spooling writer of ingest/)
    writer: Callable[[Sequence[SourcedBatch]], int] | None = field(default=None)

    def write(self, observations: Sequence[Observation], source: Source) -> int:
        """Make a batch of one provenance durable; return its size."""
        if self.writer is not None:
            return self.writer([(source, observations)])
        return self.store.write_observations(observations, source=source)

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
