"""The store: the one door to the database (PostgreSQL: embedded, external, TimescaleDB when
the extension is present).

``open_store`` opens it for a long-lived process: with a URL it connects to that server, without
one it starts (or attaches to) the embedded PostgreSQL in the data directory, and applies the
schema migrations (as the owner); :meth:`OpenedStore.open_as` then opens a store as one
component's least-privilege role (:mod:`store.roles`). A worker process (a Dask task) opens
its own connection with :func:`store.db.connect` instead.

Modules, one per concern:

- :mod:`store.postgres` — :class:`PostgresStore`: stations, devices and their credentials,
  streams, raw observations (binary COPY upserts, range reads into pandas/Arrow);
- :mod:`store.derived` — derived series over one connection: QC flags, aggregates,
  assessments (AQI, classes), emissions, job marks;
- :mod:`store.activity` — carbon accounting inputs: facilities, activity records, targets,
  stored runs;
- :mod:`store.gis` — vector layers, the raster catalogue, zonal statistics;
- :mod:`store.audit` — the append-only, hash-chained audit (append, read, verify, the
  background writer);
- :mod:`store.context` — what the HTTP routes share: the store, credentials, time settings;
- :mod:`store.db` — a worker's own connection; :mod:`store.embedded` — the embedded server;
  :mod:`store.migrations` — versioned schema migrations (``store/migrations/NNNN_*.sql``);
  :mod:`store.roles` — the database roles of the components and their privileges;
  :mod:`store.influx` — the optional InfluxDB-compatible mirror; :mod:`store.errors`.
"""

from __future__ import annotations

from pathlib import Path

from store.embedded import EmbeddedPostgres
from store.errors import Conflict, NotFound, StoreError, StoreUnavailable
from store.postgres import Device, PostgresStore, StoredObservation, StreamKey

__all__ = [
    "Conflict",
    "Device",
    "EmbeddedPostgres",
    "NotFound",
    "OpenedStore",
    "PostgresStore",
    "StoreError",
    "StoreUnavailable",
    "StoredObservation",
    "StreamKey",
    "open_store",
]


class OpenedStore:
    """A store and, when it runs the embedded server, the handle that stops it."""

    def __init__(self, store: PostgresStore, embedded: EmbeddedPostgres | None) -> None:
        self.store = store
        self.embedded = embedded

    @property
    def url(self) -> str:
        """The owner's database URL (for the embedded server: its Unix socket, as the
        superuser)."""
        return self.store.url

    def role_url(self, component: str, configured: str | None = None) -> str:
        """The URL a component (``gateway``, ``jobs``, ``reader``: :data:`store.roles.ROLES`)
        connects with: on the embedded server its own role's (the socket and the password
        file, no password); on an external server ``configured``
        (``ECOSENSE_<COMPONENT>_DATABASE_URL``), else the owner's URL as before."""
        if self.embedded is not None:
            return self.embedded.role_url(component)
        return configured or self.store.url

    def open_as(
        self, component: str, configured: str | None = None, *, max_size: int = 8
    ) -> PostgresStore:
        """A store (its own pool) connected as ``component``'s role (:meth:`role_url`)."""
        store = PostgresStore(self.role_url(component, configured), max_size=max_size)
        store.timescale = self.store.timescale
        return store

    def close(self) -> None:
        """Close the connections; let go of the embedded server (stopped by its last user)."""
        self.store.close()
        if self.embedded is not None:
            self.embedded.stop()

    def __enter__(self) -> OpenedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_store(
    *, database_url: str | None, data_dir: Path, migrate: bool = True, max_size: int = 8
) -> OpenedStore:
    """Open the store: ``database_url`` if given, else the embedded PostgreSQL in ``data_dir``."""
    embedded = None
    url = database_url
    if url is None:
        embedded = EmbeddedPostgres(data_dir)
        url = embedded.start()
    try:
        store = PostgresStore(url, max_size=max_size)
        if migrate:
            store.migrate()
    except BaseException:
        if embedded is not None:
            embedded.stop()
        raise
    return OpenedStore(store, embedded)
