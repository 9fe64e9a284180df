"""The one place a worker process opens its own database connection.

Dask tasks run in other processes and cannot share the gateway's pool: each opens a short-lived
autocommit connection here (``with connect(url) as conn: ...``) and hands it to the
repositories of :mod:`store`.
"""

from __future__ import annotations

from typing import Any

import psycopg

#: A connection as the repositories of :mod:`store` take it.
Connection = psycopg.Connection[tuple[Any, ...]]


def connect(url: str, *, autocommit: bool = True, connect_timeout: int = 10) -> Connection:
    """A new connection to ``url`` (autocommit by default; ``connect_timeout`` in seconds)."""
    return psycopg.connect(url, autocommit=autocommit, connect_timeout=connect_timeout)
