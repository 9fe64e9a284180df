"""Derived series beside the raw readings: QC flags, aggregates, assessments, emissions, job marks.

Functions over one psycopg connection, so that a Dask worker can use them with a connection of
its own. Writes are upserts that change a row only when its values change (``computed_at``
stays put otherwise): running a job twice changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from store import reviews
from store.jobs import TIME_MAX, TIME_MIN

Connection = psycopg.Connection[tuple[Any, ...]]

#: table → (key columns, value columns); every upsert goes through :func:`upsert`.
TABLES: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "qc_flags": (("stream_id", "time"), ("mask",)),
    "aggregates": (
        ("scope", "subject", "parameter", "period", "start"),
        ("value", "count", "valid", "unit"),
    ),
    "assessments": (
        ("scope", "subject", "kind", "start"),
        ("value", "level", "label", "details"),
    ),
    "emissions": (
        ("source", "subject", "gas", "period", "start"),
        ("tonnes", "substitution", "details"),
    ),
    "facilities": (("id",), ("name", "region", "sector", "lon", "lat")),
    "activity_records": (
        ("id",),
        (
            "facility",
            "start",
            "end",
            "activity",
            "quantity",
            "unit",
            "source",
            "method",
            "ncv",
            "carbon_content",
            "oxidation",
            "emission_factor",
        ),
    ),
    "carbon_targets": (("region",), ("peak_year", "neutral_year")),
}


def _cell(value: Any) -> Any:
    """A Python value COPY can write: NaN/NA → NULL, NumPy scalars → Python, dicts → JSON."""
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, float | np.floating) and not np.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def upsert(conn: Connection, table: str, rows: pd.DataFrame) -> int:
    """Insert or update ``rows`` (columns: the table's keys and values) in one transaction;
    return how many rows were inserted or changed (unchanged rows are left alone)."""
    keys, values = TABLES[table]
    columns = keys + values
    if rows.empty:
        return 0
    missing = set(columns) - set(rows.columns)
    if missing:
        raise ValueError(f"{table}: rows lack {', '.join(sorted(missing))}")
    rows = rows.drop_duplicates(list(keys), keep="last")
    staging = sql.Identifier(f"{table}_staging")
    ident = sql.Identifier(table)
    cols = sql.SQL(", ").join(map(sql.Identifier, columns))
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS)"
                " ON COMMIT DELETE ROWS"
            ).format(staging, ident)
        )
        with (
            conn.cursor() as cur,
            cur.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(staging, cols)) as copy,
        ):
            for row in rows[list(columns)].itertuples(index=False, name=None):
                copy.write_row([_cell(v) for v in row])
        cur = conn.execute(
            sql.SQL(
                "INSERT INTO {t} ({cols}) SELECT {cols} FROM {s}"
                " ON CONFLICT ({keys}) DO UPDATE SET {sets}, computed_at = now()"
                " WHERE ({old}) IS DISTINCT FROM ({new})"
            ).format(
                t=ident,
                s=staging,
                cols=cols,
                keys=sql.SQL(", ").join(map(sql.Identifier, keys)),
                sets=sql.SQL(", ").join(
                    sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in values
                ),
                old=sql.SQL(", ").join(
                    sql.SQL("{}.{}").format(ident, sql.Identifier(c)) for c in values
                ),
                new=sql.SQL(", ").join(
                    sql.SQL("EXCLUDED.{}").format(sql.Identifier(c)) for c in values
                ),
            )
        )
        return cur.rowcount


def replace_emissions(
    conn: Connection,
    source: str,
    subject: str,
    stale: Sequence[tuple[str, str, datetime]],
    rows: pd.DataFrame,
) -> int:
    """Delete the ``stale`` emissions rows (``gas, period, start``) of ``source`` and
    ``subject`` and upsert ``rows`` (the ``emissions`` columns) in **one** transaction; return
    how many rows were deleted, inserted or changed."""
    with conn.transaction():
        deleted = 0
        for gas, period, start in stale:
            cur = conn.execute(
                "DELETE FROM emissions WHERE source = %s AND subject = %s AND gas = %s"
                " AND period = %s AND start = %s",
                (source, subject, gas, period, start),
            )
            deleted += cur.rowcount
        return deleted + (upsert(conn, "emissions", rows) if not rows.empty else 0)


def now(conn: Connection) -> datetime:
    """The database's clock (the clock ``ingest_time`` and ``computed_at`` come from)."""
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def get_mark(conn: Connection, job: str) -> datetime | None:
    """Where incremental job ``job`` got to (``None``: it never ran)."""
    row = conn.execute("SELECT mark FROM job_marks WHERE job = %s", (job,)).fetchone()
    return None if row is None else row[0]


def set_mark(conn: Connection, job: str, mark: datetime) -> None:
    """Record that ``job`` has processed everything ingested or derived before ``mark``."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO job_marks (job, mark) VALUES (%s, %s) ON CONFLICT (job)"
            " DO UPDATE SET mark = EXCLUDED.mark, updated_at = now()",
            (job, mark),
        )


def marks(conn: Connection) -> dict[str, datetime]:
    """Every job's mark."""
    return {r[0]: r[1] for r in conn.execute("SELECT job, mark FROM job_marks").fetchall()}


def touched_streams(
    conn: Connection,
    *,
    since: datetime | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> pd.DataFrame:
    """Streams with readings ingested after ``since`` and/or timed in [``start``, ``end``):
    one row each with ``stream_id, station, kind, parameter, interval, statistic, basis, unit``
    and the ``first`` and ``last`` such reading time (UTC; ``NaT`` when every one lies outside
    [:data:`TIME_MIN`, :data:`TIME_MAX`)) and ``outside``, the number of such readings left
    out for their time.

    With ``since``, the readings covered by a review (:mod:`store.reviews`) made after it count
    as touched too, so the periods the review changes are recomputed.
    """
    params: dict[str, Any] = {"since": since, "start": start, "end": end}
    conditions = [
        sql.SQL(clause)
        for clause, name in (
            ("o.ingest_time > %(since)s", "since"),
            ("o.time >= %(start)s", "start"),
            ("o.time < %(end)s", "end"),
        )
        if params[name] is not None
    ]
    inside = sql.SQL("o.time >= %(lo)s AND o.time < %(hi)s")
    arrived = sql.SQL("SELECT o.stream_id, o.time FROM observations o WHERE {}").format(
        sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("TRUE")
    )
    if since is not None:
        # readings a review made since the mark covers (whatever their ingest time)
        reviewed = sql.SQL(
            "SELECT o.stream_id, o.time FROM reviews r JOIN streams rs"
            " ON rs.station_id = r.station AND rs.parameter = r.parameter"
            " JOIN observations o ON o.stream_id = rs.id AND o.time >= r.start"
            ' AND o.time < r."end" WHERE r.at > %(since)s'
        )
        arrived = sql.SQL("{} UNION ALL {}").format(arrived, reviewed)
    query = sql.SQL(
        "SELECT s.id, s.station_id, st.kind, s.parameter, s.interval, s.statistic, s.basis,"
        " s.unit, t.first, t.last, t.outside FROM (SELECT o.stream_id,"
        " min(o.time) FILTER (WHERE {inside}) AS first,"
        " max(o.time) FILTER (WHERE {inside}) AS last,"
        " count(*) FILTER (WHERE NOT ({inside})) AS outside"
        " FROM ({arrived}) o GROUP BY o.stream_id) t JOIN streams s ON s.id = t.stream_id"
        " JOIN stations st ON st.id = s.station_id ORDER BY s.station_id, s.id"
    ).format(inside=inside, arrived=arrived)
    rows = conn.execute(query, {**params, "lo": TIME_MIN, "hi": TIME_MAX}).fetchall()
    cols = [
        "stream_id",
        "station",
        "kind",
        "parameter",
        "interval",
        "statistic",
        "basis",
        "unit",
        "first",
        "last",
        "outside",
    ]
    frame = pd.DataFrame(rows, columns=cols)
    for c in ("first", "last"):
        frame[c] = pd.to_datetime(frame[c], utc=True)
    frame["outside"] = frame["outside"].astype("int64")
    return frame


def read_readings(conn: Connection, stream_id: int, start: datetime, end: datetime) -> pd.DataFrame:
    """One stream's readings in [start, end) (within [:data:`TIME_MIN`, :data:`TIME_MAX`)) with
    their QC mask (``-1``: not checked yet) and whether a review invalidated them: columns
    ``time`` (UTC), ``value``, ``flag``, ``mask``, ``invalid``."""
    start, end = max(start, TIME_MIN), min(end, TIME_MAX)
    rows = conn.execute(
        "SELECT o.time, o.value, o.flag, coalesce(q.mask, -1) FROM observations o"
        " LEFT JOIN qc_flags q ON q.stream_id = o.stream_id AND q.time = o.time"
        " WHERE o.stream_id = %s AND o.time >= %s AND o.time < %s ORDER BY o.time",
        (stream_id, start, end),
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["time", "value", "flag", "mask"])
    frame["time"] = pd.to_datetime(frame["time"], utc=True)
    frame["value"] = frame["value"].astype("float64")
    frame["mask"] = frame["mask"].astype("int64")
    found = reviews.stream_reviews(conn, stream_id, start, end) if len(frame) else []
    frame["invalid"] = reviews.invalidated(frame["time"], found)
    return frame


def read_aggregates(
    conn: Connection,
    *,
    scope: str,
    period: str,
    start: datetime,
    end: datetime,
    subjects: Sequence[str] | None = None,
    parameters: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Aggregates of ``period`` starting in [start, end): columns ``subject, parameter, start,
    value, count, valid, unit`` (``start`` UTC)."""
    where = [sql.SQL("scope = %s AND period = %s AND start >= %s AND start < %s")]
    params: list[Any] = [scope, period, start, end]
    if subjects is not None:
        where.append(sql.SQL("subject = ANY(%s)"))
        params.append(list(subjects))
    if parameters is not None:
        where.append(sql.SQL("parameter = ANY(%s)"))
        params.append(list(parameters))
    query = sql.SQL(
        "SELECT subject, parameter, start, value, count, valid, unit FROM aggregates WHERE {}"
        " ORDER BY subject, parameter, start"
    ).format(sql.SQL(" AND ").join(where))
    rows = conn.execute(query, params)
    frame = pd.DataFrame(
        rows.fetchall(),
        columns=["subject", "parameter", "start", "value", "count", "valid", "unit"],
    )
    frame["start"] = pd.to_datetime(frame["start"], utc=True)
    frame["value"] = frame["value"].astype("float64")
    frame["count"] = frame["count"].astype("float64")
    frame["valid"] = frame["valid"].astype(bool)
    return frame


#: scopes and periods of the ``aggregates`` table (its CHECK constraints)
AGGREGATE_SCOPES: Final = ("station", "city")
AGGREGATE_PERIODS: Final = (
    "PT1H", "PT8H", "P1D", "P1D-MAX8H", "P1D-LD", "P1D-LN", "P1D-LDN", "P1M", "P1Y",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AggregateRow:
    """One stored aggregate: the period's ``start`` (UTC), ``value`` in ``unit`` (``None``
    when there is none), ``count`` the valid readings behind it, ``valid`` whether the
    validity rule was met."""

    subject: str
    parameter: str
    start: datetime
    value: float | None
    count: float
    valid: bool
    unit: str


def read_aggregate_page(
    conn: Connection,
    *,
    scope: str,
    period: str,
    start: datetime,
    end: datetime,
    subject: str | None = None,
    parameter: str | None = None,
    after: tuple[str, str, datetime] | None = None,
    limit: int = 1000,
    subjects: Sequence[str] | None = None,
) -> list[AggregateRow]:
    """One page of the aggregates of ``period`` starting in [start, end), ordered by
    (subject, parameter, start) — the table's key order, so a page is an index range.

    ``after`` is the (subject, parameter, start) of the last row of the previous page (keyset
    paging: a page is found in the same time however deep it is); at most ``limit`` rows;
    ``subjects``, when given, keeps only those subjects (the stations the caller may read).
    """
    where: list[sql.Composable] = [
        sql.SQL("scope = %s"),
        sql.SQL("period = %s"),
        sql.SQL("start >= %s"),
        sql.SQL("start < %s"),
    ]
    params: list[Any] = [scope, period, start, end]
    for column, value in (("subject", subject), ("parameter", parameter)):
        if value is not None:
            where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if subjects is not None:
        where.append(sql.SQL("subject = ANY(%s::text[])"))
        params.append(list(subjects))
    if after is not None:
        where.append(sql.SQL("(subject, parameter, start) > (%s, %s, %s)"))
        params.extend(after)
    query = sql.SQL(
        "SELECT subject, parameter, start, value, count, valid, unit FROM aggregates"
        " WHERE {} ORDER BY subject, parameter, start LIMIT %s"
    ).format(sql.SQL(" AND ").join(where))
    params.append(limit)
    return [AggregateRow(*r) for r in conn.execute(query, params).fetchall()]


#: the kinds of the ``assessments`` table and what each holds (value, level, label)
ASSESSMENT_KINDS: Final = (
    "aqi-hourly", "aqi-daily", "water-daily", "water-monthly", "soil", "soil-development",
    "noise-daily",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class AssessmentRow:
    """One stored assessment of a subject (a station or a city) for the period starting at
    ``start`` (UTC): ``value`` and ``level`` (AQI and its level 1–6; a water class 1–6; a soil
    risk class 1–3), ``label`` (the primary pollutants; the parameters worse than the target
    class; the risk class's name) and ``details`` (IAQIs and concentrations; per-parameter
    classes; ratios to the screening values)."""

    subject: str
    start: datetime
    value: int | None
    level: int | None
    label: str
    details: dict[str, Any]


def read_assessment_page(
    conn: Connection,
    *,
    kind: str,
    scope: str,
    start: datetime,
    end: datetime,
    subject: str | None = None,
    after: tuple[str, datetime] | None = None,
    limit: int = 1000,
    subjects: Sequence[str] | None = None,
) -> list[AssessmentRow]:
    """One page of the assessments of ``kind`` starting in [start, end), ordered by (subject,
    start); ``after`` the (subject, start) of the previous page's last row (keyset paging),
    ``subjects`` the subjects the caller may read (``None``: all)."""
    if kind not in ASSESSMENT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(ASSESSMENT_KINDS)}")
    where: list[sql.Composable] = [
        sql.SQL("scope = %s AND kind = %s AND start >= %s AND start < %s")
    ]
    params: list[Any] = [scope, kind, start, end]
    if subject is not None:
        where.append(sql.SQL("subject = %s"))
        params.append(subject)
    if subjects is not None:
        where.append(sql.SQL("subject = ANY(%s::text[])"))
        params.append(list(subjects))
    if after is not None:
        where.append(sql.SQL("(subject, start) > (%s, %s)"))
        params.extend(after)
    query = sql.SQL(
        "SELECT subject, start, value, level, label, details FROM assessments"
        " WHERE {} ORDER BY subject, start LIMIT %s"
    ).format(sql.SQL(" AND ").join(where))
    params.append(limit)
    return [AssessmentRow(*r) for r in conn.execute(query, params).fetchall()]


def touched_aggregates(
    conn: Connection, *, scope: str, period: str, since: datetime
) -> pd.DataFrame:
    """``subject, parameter, start`` of the aggregates of ``period`` computed after ``since``."""
    rows = conn.execute(
        "SELECT subject, parameter, start FROM aggregates WHERE computed_at > %s"
        " AND scope = %s AND period = %s",
        (since, scope, period),
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["subject", "parameter", "start"])
    frame["start"] = pd.to_datetime(frame["start"], utc=True)
    return frame


def read_assessments(
    conn: Connection,
    *,
    kind: str,
    start: datetime,
    end: datetime,
    scope: str | None = None,
    subjects: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Assessments of ``kind`` starting in [start, end): ``scope, subject, start, value, level,
    label, details``."""
    where = [sql.SQL("kind = %s AND start >= %s AND start < %s")]
    params: list[Any] = [kind, start, end]
    if scope is not None:
        where.append(sql.SQL("scope = %s"))
        params.append(scope)
    if subjects is not None:
        where.append(sql.SQL("subject = ANY(%s)"))
        params.append(list(subjects))
    query = sql.SQL(
        "SELECT scope, subject, start, value, level, label, details FROM assessments WHERE {}"
        " ORDER BY scope, subject, start"
    ).format(sql.SQL(" AND ").join(where))
    rows = conn.execute(query, params)
    frame = pd.DataFrame(
        rows.fetchall(),
        columns=["scope", "subject", "start", "value", "level", "label", "details"],
    )
    frame["start"] = pd.to_datetime(frame["start"], utc=True)
    for c in ("value", "level"):
        frame[c] = frame[c].astype("Int64")
    return frame


def delete_assessments(
    conn: Connection, *, scope: str, subject: str, kind: str, starts: Sequence[datetime]
) -> int:
    """Delete the assessments of ``kind`` of one subject at ``starts`` (a period that can no
    longer be assessed, e.g. its readings were invalidated); return how many went."""
    if not starts:
        return 0
    cur = conn.execute(
        "DELETE FROM assessments WHERE scope = %s AND subject = %s AND kind = %s"
        " AND start = ANY(%s)",
        (scope, subject, kind, [pd.Timestamp(t).to_pydatetime() for t in starts]),
    )
    return cur.rowcount


def read_emissions(
    conn: Connection, *, source: str, start: datetime, end: datetime, subject: str | None = None
) -> pd.DataFrame:
    """Emissions of ``source`` starting in [start, end): ``subject, gas, period, start, tonnes,
    substitution, details``."""
    where = [sql.SQL("source = %s AND start >= %s AND start < %s")]
    params: list[Any] = [source, start, end]
    if subject is not None:
        where.append(sql.SQL("subject = %s"))
        params.append(subject)
    query = sql.SQL(
        "SELECT subject, gas, period, start, tonnes, substitution, details FROM emissions"
        " WHERE {} ORDER BY subject, gas, start"
    ).format(sql.SQL(" AND ").join(where))
    rows = conn.execute(query, params).fetchall()
    frame = pd.DataFrame(
        rows, columns=["subject", "gas", "period", "start", "tonnes", "substitution", "details"]
    )
    frame["start"] = pd.to_datetime(frame["start"], utc=True)
    return frame


def read_facility_years(conn: Connection, tz: str) -> pd.DataFrame:
    """The calculated annual emissions of every facility (``P1Y`` rows of source
    ``calculation``): ``facility, gas, year`` (the bureau's calendar year in ``tz``), ``tonnes``
    and the ``region`` and ``sector`` the job recorded with them
    (:func:`carbon.inventory.region_totals` sums them by region)."""
    rows = conn.execute(
        "SELECT subject, gas, EXTRACT(YEAR FROM start AT TIME ZONE %s)::int, tonnes,"
        " coalesce(details->>'region', ''), coalesce(details->>'sector', '')"
        " FROM emissions WHERE source = 'calculation' AND period = 'P1Y'"
        " ORDER BY subject, gas, start",
        (tz,),
    ).fetchall()
    return pd.DataFrame(rows, columns=["facility", "gas", "year", "tonnes", "region", "sector"])


#: how far back :func:`latest_complete_hours` looks for a station's latest complete hour
HOURS_LOOKBACK: Final = timedelta(hours=48)


def latest_complete_hours(
    conn: Connection,
    now: datetime,
    *,
    what: str = "aqi",
    scope: str | None = None,
    parameters: Sequence[str] | None = None,
    subjects: Sequence[str] | None = None,
    lookback: timedelta = HOURS_LOOKBACK,
) -> pd.DataFrame:
    """Each subject's **latest valid complete hour** as of ``now``: the one rule every
    "current" hourly view (the AQI map and city ranking, the PM2.5 surface, the alerts) uses.

    An hour is *complete* when it has ended (``start + 1 h ≤ now``: never the running hour,
    whose aggregate is still e.g. ``count 30, valid false``) and *valid* when its value met the
    validity rule: for ``what="aqi"`` the ``aqi-hourly`` assessment has a value (the AQI is
    computed from valid hourly means only); for ``what="mean"`` the ``PT1H`` aggregate is
    marked ``valid``. Hours starting before ``now − lookback`` are not looked at.

    Returns, one row per subject (and parameter for ``"mean"``), ``scope, subject, start``
    (UTC) and for ``"aqi"``: ``value, level, label, details``; for ``"mean"``:
    ``parameter, value, count, unit`` (µg/m³, CO mg/m³, as stored).
    """
    if what not in ("aqi", "mean"):
        raise ValueError(f"what must be 'aqi' or 'mean', not {what!r}")
    last_start = now - timedelta(hours=1)  # the hour [start, start + 1 h) has ended
    where: list[sql.Composable] = [sql.SQL("start >= %s AND start <= %s")]
    params: list[Any] = [now - lookback, last_start]
    if scope is not None:
        where.append(sql.SQL("scope = %s"))
        params.append(scope)
    if subjects is not None:
        where.append(sql.SQL("subject = ANY(%s::text[])"))
        params.append(list(subjects))
    if what == "aqi":
        where.append(sql.SQL("kind = 'aqi-hourly' AND value IS NOT NULL"))
        columns = ["scope", "subject", "start", "value", "level", "label", "details"]
        query = sql.SQL(
            "SELECT DISTINCT ON (scope, subject) scope, subject, start, value, level, label,"
            " details FROM assessments WHERE {} ORDER BY scope, subject, start DESC"
        )
    else:
        where.append(sql.SQL("period = 'PT1H' AND valid AND value IS NOT NULL"))
        if parameters is not None:
            where.append(sql.SQL("parameter = ANY(%s::text[])"))
            params.append(list(parameters))
        columns = ["scope", "subject", "parameter", "start", "value", "count", "unit"]
        query = sql.SQL(
            "SELECT DISTINCT ON (scope, subject, parameter) scope, subject, parameter, start,"
            " value, count, unit FROM aggregates WHERE {}"
            " ORDER BY scope, subject, parameter, start DESC"
        )
    rows = conn.execute(query.format(sql.SQL(" AND ").join(where)), params).fetchall()
    frame = pd.DataFrame(rows, columns=columns)
    frame["start"] = pd.to_datetime(frame["start"], utc=True)
    if what == "aqi":
        for c in ("value", "level"):
            frame[c] = frame[c].astype("Int64")
    else:
        frame["value"] = frame["value"].astype("float64")
        frame["count"] = frame["count"].astype("float64")
    return frame
