"""What the pipeline jobs read to plan their work, and the lock that keeps two runs of one job
apart.

A job run by hand (``ecosense jobs run NAME``) while ``ecosense up`` runs its scheduler takes
the same lock as the scheduler's run of that job: a PostgreSQL session-level advisory lock
keyed by the job's name, held on the run's own connection for the whole run (so it is let go
even when the process dies). The second run waits for the first, then plans from the mark the
first one left: the two never race on one mark nor write the same periods at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

import psycopg

from store.db import Connection

#: Reading times jobs can compute with (pandas' nanosecond timestamps span 1677-09-21 to
#: 2262-04-11): readings outside are left out of jobs and reported.
TIME_MIN: Final = datetime(1678, 1, 1, tzinfo=UTC)
TIME_MAX: Final = datetime(2262, 1, 1, tzinfo=UTC)
#: First key of the two-key advisory locks of jobs ("ES" "J" "B"); the second is the
#: ``hashtext`` of the job's name. (Two-key and one-key advisory locks never collide.)
LOCK_CLASS: Final = 0x45534A42


@contextmanager
def exclusive(
    conn: Connection, job: str, on_wait: Callable[[], None] | None = None
) -> Iterator[None]:
    """Hold job ``job``'s lock on ``conn`` for the block, waiting for a run that holds it
    (``on_wait`` is called once first, when one does)."""
    row = conn.execute(
        "SELECT pg_try_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, job)
    ).fetchone()
    if row is None or not row[0]:
        if on_wait is not None:
            on_wait()
        conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, job))
    try:
        yield
    finally:
        if not conn.closed and not conn.broken:
            conn.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", (LOCK_CLASS, job))


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` is the database going away (a task should fail and hold the job's
    mark) rather than one stream's data (reported, and the job goes on)."""
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def stations(conn: Connection) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every station: id → (kind, attributes)."""
    rows = conn.execute("SELECT id, kind, attributes FROM stations").fetchall()
    return {r[0]: (r[1], dict(r[2] or {})) for r in rows}


def measured_streams(
    conn: Connection, stations: Sequence[str]
) -> list[tuple[int, str, str, str | None, str | None]]:
    """The streams of basis ``measured`` of ``stations``: ``(id, station, parameter, interval,
    statistic)``."""
    rows = conn.execute(
        "SELECT id, station_id, parameter, interval, statistic FROM streams"
        " WHERE station_id = ANY(%s) AND basis = 'measured' ORDER BY id",
        (list(stations),),
    ).fetchall()
    return [(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]
