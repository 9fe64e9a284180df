"""Manual review (数据审核): operators invalidate or restore raw readings, with a reason.

A review names one station and parameter (every stream of it: instantaneous readings and a
logger's own minute or hourly statistics alike) and a range of reading times ``[start, end)``.
Readings are never changed: the **latest review** (highest id) covering a reading decides
whether it counts — ``invalidate`` takes it out of every job's means, validity counts, AQI,
classes and alerts; ``restore`` puts it back. Reviews are never changed or deleted, so the
table is the audit trail of who decided what, when and why.

The incremental jobs find the periods a review touches by its time ``at`` (the database's
clock, like ``ingest_time``): :func:`store.derived.touched_streams` adds the readings of every
review made after the job's mark.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Final, Literal

import numpy as np
import pandas as pd
from psycopg import sql

from store.db import Connection
from store.errors import NotFound
from store.jobs import TIME_MAX, TIME_MIN

Action = Literal["invalidate", "restore"]
ACTIONS: Final[tuple[Action, ...]] = ("invalidate", "restore")
#: Longest reason kept (characters).
MAX_REASON: Final = 2000

_NAMES: Final = ("id", "station", "parameter", "start", "end", "action", "reason", "by", "at")
_COLUMNS: Final = sql.SQL(", ").join(map(sql.Identifier, _NAMES))
_R_COLUMNS: Final = sql.SQL(", ").join(sql.Identifier("r", c) for c in _NAMES)


#: An SQL condition true when the latest review covering the reading ``o`` (an
#: ``observations`` row) of the stream ``s`` (its ``streams`` row) invalidates it: for the few
#: queries that read raw readings in SQL rather than through :func:`invalidated`.
INVALIDATED_SQL: Final = sql.SQL(
    "EXISTS (SELECT 1 FROM (SELECT r.action FROM reviews r WHERE r.station = s.station_id"
    ' AND r.parameter = s.parameter AND o.time >= r.start AND o.time < r."end"'
    " ORDER BY r.id DESC LIMIT 1) latest WHERE latest.action = 'invalidate')"
)


@dataclass(frozen=True, slots=True)
class Review:
    """One decision: readings of ``station``/``parameter`` timed in [start, end) (UTC)."""

    id: int
    station: str
    parameter: str
    start: datetime
    end: datetime
    action: Action
    reason: str
    by: str
    at: datetime

    def covers(self, time: datetime) -> bool:
        """Whether a reading stamped ``time`` lies in this review's range."""
        return self.start <= time < self.end


def no_readings_warning(review: Review, tz: tzinfo | None = None) -> str:
    """The warning a review that covers no stored reading is recorded with (it still counts:
    readings that arrive later for its range are covered too — a wrong station, parameter or
    range is the likelier cause); its range in ``tz`` (the bureau's), as the reviewer gave it."""
    start, end = (t.astimezone(tz) if tz is not None else t for t in (review.start, review.end))
    return (
        f"review {review.id} covers no stored reading of {review.station} {review.parameter}"
        f" in [{start.isoformat()}, {end.isoformat()}): check the station, the"
        " parameter and the range (times without an offset are in the bureau's time zone);"
        " it is kept, and covers readings that arrive later for that range"
    )


def _review(row: Sequence[object]) -> Review:
    return Review(*row)  # type: ignore[arg-type]


def add(
    conn: Connection,
    *,
    station: str,
    parameter: str,
    start: datetime,
    end: datetime,
    action: str,
    reason: str,
    by: str,
) -> tuple[Review, int]:
    """Record a review; return it and the number of stored readings it covers.

    ``ValueError`` for a bad action, an empty or over-long reason, or ``start >= end``;
    :class:`NotFound` for an unknown station or parameter.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
    reason = reason.strip()
    if not reason:
        raise ValueError("a review needs a reason")
    if len(reason) > MAX_REASON:
        raise ValueError(f"reason longer than {MAX_REASON} characters")
    if start >= end:
        raise ValueError("start must be before end")
    with conn.transaction():
        if conn.execute("SELECT 1 FROM stations WHERE id = %s", (station,)).fetchone() is None:
            raise NotFound(f"unknown station {station!r}")
        if (
            conn.execute("SELECT 1 FROM parameters WHERE code = %s", (parameter,)).fetchone()
            is None
        ):
            raise NotFound(f"unknown parameter {parameter!r}")
        row = conn.execute(
            sql.SQL(
                'INSERT INTO reviews (station, parameter, start, "end", action, reason, "by")'
                " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {}"
            ).format(_COLUMNS),
            (station, parameter, start, end, action, reason, by),
        ).fetchone()
        count = conn.execute(
            "SELECT count(*) FROM observations o JOIN streams s ON s.id = o.stream_id"
            " WHERE s.station_id = %s AND s.parameter = %s AND o.time >= %s AND o.time < %s",
            (station, parameter, start, end),
        ).fetchone()
    assert row is not None and count is not None
    return _review(row), int(count[0])


def list_reviews(
    conn: Connection,
    *,
    station: str | None = None,
    before: int | None = None,
    limit: int = 500,
) -> list[Review]:
    """Reviews newest first (of ``station`` if given), those with id below ``before`` (the
    last id of the previous page) if given; at most ``limit``."""
    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM reviews WHERE (%(station)s::text IS NULL OR station = %(station)s)"
            " AND (%(before)s::bigint IS NULL OR id < %(before)s) ORDER BY id DESC"
            " LIMIT %(limit)s"
        ).format(_COLUMNS),
        {"station": station, "before": before, "limit": limit},
    ).fetchall()
    return [_review(r) for r in rows]


def covering(
    conn: Connection, subjects: Iterable[tuple[str, str]], start: datetime, end: datetime
) -> dict[tuple[str, str], list[Review]]:
    """Reviews of ``subjects`` ((station, parameter) pairs) whose range meets [start, end],
    oldest first, per subject."""
    pairs = sorted(set(subjects))
    if not pairs:
        return {}
    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM reviews WHERE (station, parameter) IN"
            ' (SELECT * FROM unnest(%s::text[], %s::text[])) AND start <= %s AND "end" > %s'
            " ORDER BY id"
        ).format(_COLUMNS),
        ([p[0] for p in pairs], [p[1] for p in pairs], end, start),
    ).fetchall()
    out: dict[tuple[str, str], list[Review]] = {}
    for r in rows:
        review = _review(r)
        out.setdefault((review.station, review.parameter), []).append(review)
    return out


def stream_reviews(
    conn: Connection, stream_id: int, start: datetime, end: datetime
) -> list[Review]:
    """Reviews of the station and parameter of stream ``stream_id`` that meet [start, end),
    oldest first."""
    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM reviews r"
            " JOIN streams s ON s.station_id = r.station AND s.parameter = r.parameter"
            ' WHERE s.id = %s AND r.start < %s AND r."end" > %s ORDER BY r.id'
        ).format(_R_COLUMNS),
        (stream_id, end, start),
    ).fetchall()
    return [_review(r) for r in rows]


def invalidations(
    conn: Connection, readings: Sequence[tuple[str, str, datetime]]
) -> list[Review | None]:
    """Per reading ``(station, parameter, time)``, the review that invalidated it, or ``None``
    (never reviewed, or restored since)."""
    if not readings:
        return []
    times = [t for _s, _p, t in readings]
    found = covering(conn, ((s, p) for s, p, _t in readings), min(times), max(times))
    out: list[Review | None] = []
    for station, parameter, time in readings:
        review = decisive(found.get((station, parameter), ()), time)
        out.append(review if review is not None and review.action == "invalidate" else None)
    return out


def decisive(reviews: Sequence[Review], time: datetime) -> Review | None:
    """The review that decides a reading stamped ``time``: the latest covering it, if any
    (``reviews`` oldest first)."""
    for review in reversed(reviews):
        if review.covers(time):
            return review
    return None


def invalidated(times: pd.Series | pd.DatetimeIndex, reviews: Sequence[Review]) -> np.ndarray:
    """Per reading time (aware), whether the latest review covering it invalidates it
    (``reviews`` oldest first)."""
    index = pd.DatetimeIndex(times)
    out: np.ndarray = np.zeros(len(index), dtype=bool)
    for review in reviews:  # later reviews overwrite earlier ones
        lo = pd.Timestamp(max(review.start, TIME_MIN))
        hi = pd.Timestamp(min(review.end, TIME_MAX))
        inside = (index >= lo) & (index < hi)
        out[inside] = review.action == "invalidate"
    return out


__all__ = [
    "ACTIONS",
    "Action",
    "NotFound",
    "Review",
    "add",
    "covering",
    "decisive",
    "invalidated",
    "invalidations",
    "list_reviews",
    "stream_reviews",
]
