"""Bulk reads for the open-data downloads (issue 16, item 2): each dataset's rows as one SQL
``SELECT``, streamed out of PostgreSQL as CSV by ``COPY (…) TO STDOUT`` in chunks, so a
download of millions of readings holds one chunk in memory at a time (:mod:`api.formats`
turns the chunks into Parquet, xlsx, NetCDF or GeoJSON).

Times leave the database as ISO 8601 with the bureau's offset (``2026-11-28T08:00:00+08:00``,
a fraction of a second only where there is one): :func:`copy_csv` sets the transaction's
``TimeZone`` to the bureau's. Every query orders its rows, so one query gives the same rows in
the same order in every format.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import psycopg
import pyarrow as pa
from psycopg import sql

from store.derived import Connection


@dataclass(frozen=True)
class Column:
    """One column of a download: its ``name`` (the CSV header), Arrow ``type``, ``unit``
    (UDUNITS-style, ``None`` when unitless or given per row by a ``unit`` column) and a
    ``description``."""

    name: str
    type: pa.DataType
    unit: str | None = None
    description: str = ""


@dataclass(frozen=True)
class Query:
    """A dataset's rows: the ``SELECT`` (its output columns named as ``columns``), its
    parameters, and the columns' types and units."""

    select: sql.Composable
    params: Sequence[Any]
    columns: tuple[Column, ...]
    extra: dict[str, Any] = field(default_factory=dict)


def iso(column: str) -> sql.Composable:
    """SQL text of ``column`` (a ``timestamptz``) as ISO 8601 with the session's offset."""
    c = sql.SQL(column)
    return sql.SQL(
        "to_char({c}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_trunc('second', {c}) = {c}"
        " THEN '' ELSE to_char({c}, '.US') END || to_char({c}, 'TZH:TZM')"
    ).format(c=c)


TIME: Final = pa.timestamp("us", tz="UTC")
TEXT: Final = pa.string()
FLOAT: Final = pa.float64()
INT: Final = pa.int64()
BOOL: Final = pa.bool_()

#: chunk size of :func:`copy_csv` (bytes psycopg hands over at a time are the server's)
CHUNK: Final = 1 << 20


def copy_csv(conn: Connection, query: Query, tz: str) -> Iterator[bytes]:
    """The rows of ``query`` as CSV (one header row, UTF-8, no BOM), in chunks of about
    :data:`CHUNK` bytes, times in ``tz``; a transaction is open while the generator runs."""
    copy_sql = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)").format(query.select)
    with conn.transaction():
        conn.execute("SELECT set_config('TimeZone', %s, true)", (tz,))
        with conn.cursor() as cur, cur.copy(copy_sql, query.params) as copy:
            pending: list[bytes] = []
            size = 0
            for data in copy:
                pending.append(bytes(data))
                size += len(data)
                if size >= CHUNK:
                    yield b"".join(pending)
                    pending, size = [], 0
            if pending:
                yield b"".join(pending)


def cancel_streaming(conn: Connection) -> None:
    """Cancel the COPY ``conn`` is still streaming (of an abandoned download), from any
    thread: its reader — perhaps pyarrow's read-ahead thread — then ends with an error, and
    the connection can be rolled back and returned to the pool. Nothing when it is idle."""
    if conn.info.transaction_status == psycopg.pq.TransactionStatus.ACTIVE:
        with contextlib.suppress(psycopg.Error):
            conn.cancel_safe(timeout=5)


def count(conn: Connection, query: Query) -> int:
    """How many rows ``query`` gives."""
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM ({}) q").format(query.select), query.params
    ).fetchone()
    return int(row[0]) if row else 0


def _where(
    clauses: list[sql.Composable], params: list[Any], column: str, value: Any, op: str = "="
) -> None:
    if value is not None:
        clauses.append(sql.SQL(f"{column} {op} %s"))
        params.append(value)


def _and(clauses: list[sql.Composable]) -> sql.Composable:
    return sql.SQL(" AND ").join(clauses) if clauses else sql.SQL("TRUE")


# ------------------------------------------------------------------------------- datasets
STATION_COLUMNS: Final = (
    Column("id", TEXT, description="station id"),
    Column("name", TEXT),
    Column("kind", TEXT, description="air, water, wastewater, soil, radiation, cems, noise, met"),
    Column("lon", FLOAT, "degrees_east", "WGS 84 longitude"),
    Column("lat", FLOAT, "degrees_north", "WGS 84 latitude"),
    Column("city", TEXT),
    Column("simulated", BOOL, description="a demo or simulated station"),
)


def stations(stations: Sequence[str], kind: str | None = None) -> Query:
    """Station metadata, one row per station of ``stations`` (of ``kind``), by id."""
    clauses: list[sql.Composable] = [sql.SQL("id = ANY(%s::text[])")]
    params: list[Any] = [list(stations)]
    _where(clauses, params, "kind", kind)
    return Query(
        sql.SQL(
            "SELECT id, name, kind, lon, lat, attributes->>'city' AS city, simulated"
            " FROM stations WHERE {} ORDER BY id"
        ).format(_and(clauses)),
        params,
        STATION_COLUMNS,
    )


READING_COLUMNS: Final = (
    Column("station", TEXT),
    Column("parameter", TEXT, description="canonical parameter code"),
    Column("time", TIME, description="ISO 8601 with the bureau's offset"),
    Column("value", FLOAT, description="in the row's unit"),
    Column("unit", TEXT),
    Column("flag", TEXT, description="HJ 212 data flag (N valid)"),
    Column("interval", TEXT, description="PT1M, PT1H, P1D for a statistic; empty: instant"),
    Column("statistic", TEXT, description="avg, min, max, cou; empty: instant"),
    Column("basis", TEXT, description="measured or converted (to standard conditions)"),
)


def readings(
    kind: str,
    stations: Sequence[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    parameter: str | None = None,
) -> Query:
    """The readings of ``stations`` of ``kind`` (their current values), by station,
    parameter, kind of stream and time."""
    clauses: list[sql.Composable] = [
        sql.SQL("st.kind = %s"),
        sql.SQL("s.station_id = ANY(%s::text[])"),
    ]
    params: list[Any] = [kind, list(stations)]
    _where(clauses, params, "s.parameter", parameter)
    _where(clauses, params, "o.time", start, ">=")
    _where(clauses, params, "o.time", end, "<")
    return Query(
        sql.SQL(
            "SELECT s.station_id AS station, s.parameter, {} AS time, o.value, s.unit, o.flag,"
            " s.interval, s.statistic, s.basis"
            " FROM observations o JOIN streams s ON s.id = o.stream_id"
            " JOIN stations st ON st.id = s.station_id WHERE {}"
            " ORDER BY s.station_id, s.parameter, s.interval, s.statistic, s.basis, o.time"
        ).format(iso("o.time"), _and(clauses)),
        params,
        READING_COLUMNS,
    )


AGGREGATE_COLUMNS: Final = (
    Column("station", TEXT),
    Column("parameter", TEXT),
    Column("period", TEXT, description="PT1H, P1D, P1M or P1Y"),
    Column("start", TIME, description="the period's start (bureau days and months)"),
    Column("value", FLOAT, description="mean in the row's unit; empty when not valid"),
    Column("unit", TEXT),
    Column("count", FLOAT, description="valid values the mean holds"),
    Column("valid", BOOL, description="enough values by GB 3095-2026 Table 4"),
)


def aggregates(
    period: str,
    stations: Sequence[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    parameter: str | None = None,
) -> Query:
    """Station aggregates of ``period``, by station, parameter and start."""
    clauses: list[sql.Composable] = [
        sql.SQL("scope = 'station'"),
        sql.SQL("period = %s"),
        sql.SQL("subject = ANY(%s::text[])"),
    ]
    params: list[Any] = [period, list(stations)]
    _where(clauses, params, "parameter", parameter)
    _where(clauses, params, "start", start, ">=")
    _where(clauses, params, "start", end, "<")
    return Query(
        sql.SQL(
            "SELECT subject AS station, parameter, period, {} AS start, value, unit, count, valid"
            " FROM aggregates WHERE {} ORDER BY subject, parameter, start"
        ).format(iso("start"), _and(clauses)),
        params,
        AGGREGATE_COLUMNS,
    )


#: per assessment kind: its extra columns (SQL expression over ``details``, column)
_ASSESSMENT_COLUMNS: Final[dict[str, tuple[tuple[str, Column], ...]]] = {
    "aqi": (
        ("value", Column("aqi", INT, description="HJ 633-2026 AQI")),
        ("level", Column("level", INT, description="1 (excellent) … 6 (severely polluted)")),
        ("label", Column("primary_pollutants", TEXT, description="comma-separated")),
        (
            "(SELECT coalesce(jsonb_object_agg(k, v), '{}') FROM jsonb_each(details) e(k, v)"
            " WHERE left(k, 2) <> 'c_')::text",
            Column("iaqi", TEXT, description="JSON: IAQI per pollutant"),
        ),
        (
            "(SELECT coalesce(jsonb_object_agg(substr(k, 3), v), '{}') FROM jsonb_each(details)"
            " e(k, v) WHERE left(k, 2) = 'c_')::text",
            Column(
                "concentrations", TEXT, description="JSON: means per pollutant, µg/m³ (CO mg/m³)"
            ),
        ),
    ),
    "water": (
        ("value", Column("class", INT, description="GB 3838-2002 class 1–6 (I–V, 6 worse)")),
        ("label", Column("exceeding", TEXT, description="parameters worse than the target")),
        ("details->>'water_body'", Column("water_body", TEXT)),
        ("(details->>'target_class')::int", Column("target_class", INT)),
        ("coalesce(details->'classes', '{}')::text", Column("classes", TEXT, description="JSON")),
    ),
    "soil": (
        ("label", Column("risk_class", TEXT, description="GB 15618-2018 class")),
        ("level", Column("level", INT)),
        ("(details->>'ph')::float8", Column("ph", FLOAT, "1", "soil pH")),
        ("details->>'land_use'", Column("land_use", TEXT)),
        (
            "coalesce(details->'ratios', '{}')::text",
            Column("ratios", TEXT, description="JSON: each metal over its screening value"),
        ),
    ),
}


def assessments(
    kind: str,
    scope: str,
    subjects: Sequence[str] | None,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    subject: str | None = None,
) -> Query:
    """The assessments of ``kind`` (``aqi-hourly``, ``water-daily``, ``soil``, …) of
    ``scope``, of ``subjects`` (``None``: every one; a city scope), by subject and start."""
    family = kind.split("-")[0]
    extra = _ASSESSMENT_COLUMNS[family]
    clauses: list[sql.Composable] = [sql.SQL("scope = %s"), sql.SQL("kind = %s")]
    params: list[Any] = [scope, kind]
    if subjects is not None:
        clauses.append(sql.SQL("subject = ANY(%s::text[])"))
        params.append(list(subjects))
    _where(clauses, params, "subject", subject)
    _where(clauses, params, "start", start, ">=")
    _where(clauses, params, "start", end, "<")
    first = Column("station" if scope == "station" else "city", TEXT)
    columns = (first, Column("start", TIME), *(c for _, c in extra))
    select = sql.SQL(", ").join(
        sql.SQL("{} AS {}").format(sql.SQL(expr), sql.Identifier(c.name)) for expr, c in extra
    )
    return Query(
        sql.SQL(
            "SELECT subject AS {}, {} AS start, {} FROM assessments WHERE {}"
            " ORDER BY subject, start"
        ).format(sql.Identifier(first.name), iso("start"), select, _and(clauses)),
        params,
        columns,
    )


ZONAL_COLUMNS: Final = (
    Column("layer", TEXT),
    Column("raster", TEXT),
    Column("feature", TEXT),
    Column("stat", TEXT),
    Column("time", TIME, description="the raster's time; empty for one without"),
    Column("value", FLOAT, description="in the raster's unit; empty: no valid cell"),
)


def zonal(layer: str | None = None, raster: str | None = None) -> Query:
    """Zonal statistics, by layer, raster, feature and statistic (NaN written as empty)."""
    clauses: list[sql.Composable] = []
    params: list[Any] = []
    _where(clauses, params, "layer", layer)
    _where(clauses, params, "raster", raster)
    return Query(
        sql.SQL(
            "SELECT layer, raster, feature, stat, {} AS time,"
            " CASE WHEN value = 'NaN'::float8 THEN NULL ELSE value END AS value"
            " FROM zonal_stats WHERE {} ORDER BY layer, raster, feature, stat"
        ).format(iso("time"), _and(clauses)),
        params,
        ZONAL_COLUMNS,
    )


ALERT_COLUMNS: Final = (
    Column("id", INT),
    Column("rule", TEXT),
    Column("station", TEXT),
    Column("parameter", TEXT),
    Column("state", TEXT, description="open, acknowledged or closed"),
    Column("severity", TEXT),
    Column("message", TEXT),
    Column("value", FLOAT, description="in the parameter's unit"),
    Column("opened_at", TIME),
    Column("last_seen", TIME),
    Column("acknowledged_at", TIME),
    Column("acknowledged_by", TEXT),
    Column("closed_at", TIME),
)


def alerts(
    stations: Sequence[str],
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    parameter: str | None = None,
) -> Query:
    """Alerts of ``stations`` opened in [start, end), by id."""
    clauses: list[sql.Composable] = [sql.SQL("station_id = ANY(%s::text[])")]
    params: list[Any] = [list(stations)]
    _where(clauses, params, "parameter", parameter)
    _where(clauses, params, "opened_at", start, ">=")
    _where(clauses, params, "opened_at", end, "<")
    return Query(
        sql.SQL(
            "SELECT id, rule, station_id AS station, parameter, state, severity, message, value,"
            " {}, {}, {}, acknowledged_by, {} FROM alerts WHERE {} ORDER BY id"
        ).format(
            sql.SQL("{} AS opened_at").format(iso("opened_at")),
            sql.SQL("{} AS last_seen").format(iso("last_seen")),
            sql.SQL("{} AS acknowledged_at").format(iso("acknowledged_at")),
            sql.SQL("{} AS closed_at").format(iso("closed_at")),
            _and(clauses),
        ),
        params,
        ALERT_COLUMNS,
    )


# ------------------------------------------------------------------------------ extents
def reading_extents(conn: Connection) -> dict[str, tuple[datetime, datetime]]:
    """Per station kind: the first and last reading time, read per stream from the
    ``(stream_id, time)`` index (cheap however many readings there are)."""
    rows = conn.execute(
        "SELECT st.kind, min(e.first), max(e.last) FROM streams s"
        " JOIN stations st ON st.id = s.station_id"
        " CROSS JOIN LATERAL (SELECT"
        "  (SELECT time FROM observations o WHERE o.stream_id = s.id ORDER BY time LIMIT 1)"
        "   AS first,"
        "  (SELECT time FROM observations o WHERE o.stream_id = s.id ORDER BY time DESC LIMIT 1)"
        "   AS last) e"
        " WHERE e.first IS NOT NULL GROUP BY st.kind"
    ).fetchall()
    return {kind: (first, last) for kind, first, last in rows}


def table_extents(conn: Connection) -> dict[tuple[str, str], tuple[datetime, datetime, datetime]]:
    """First and last ``start`` and the last change of each derived series: keyed by
    (``"aggregates"``, period), (``"assessments"``, kind), (``"zonal"``, ``""``),
    (``"alerts"``, ``""``)."""
    out: dict[tuple[str, str], tuple[datetime, datetime, datetime]] = {}
    for table, key, time in (
        ("aggregates", "period", "start"),
        ("assessments", "kind", "start"),
        ("zonal_stats", "''", "time"),
        ("alerts", "''", "opened_at"),
    ):
        changed = "computed_at" if table != "alerts" else "last_seen"
        rows = conn.execute(
            sql.SQL("SELECT {k}, min({t}), max({t}), max({c}) FROM {tab}{g}").format(
                k=sql.SQL(key),
                g=sql.SQL(" GROUP BY {}").format(sql.SQL(key)) if key != "''" else sql.SQL(""),
                t=sql.Identifier(time),
                c=sql.Identifier(changed),
                tab=sql.Identifier(table),
            )
        ).fetchall()
        name = "zonal" if table == "zonal_stats" else table
        for k, first, last, updated in rows:
            if first is not None:
                out[(name, str(k))] = (first, last, updated)
    return out


def station_bounds(conn: Connection) -> dict[str, tuple[float, float, float, float]]:
    """Per station kind: the stations' bounding box (min lon, min lat, max lon, max lat)."""
    rows = conn.execute(
        "SELECT kind, min(lon), min(lat), max(lon), max(lat) FROM stations GROUP BY kind"
    ).fetchall()
    return {kind: (x0, y0, x1, y1) for kind, x0, y0, x1, y1 in rows}


def stations_updated(conn: Connection) -> datetime | None:
    """When the stations table last changed (``None``: no station)."""
    row = conn.execute("SELECT max(updated_at) FROM stations").fetchone()
    return None if row is None else row[0]


def emission_extent(conn: Connection) -> tuple[datetime | None, datetime | None, datetime | None]:
    """First and last year (their starts) of the calculated annual emissions, and when they
    were last computed (``None`` each: none yet)."""
    row = conn.execute(
        "SELECT min(start), max(start), max(computed_at) FROM emissions"
        " WHERE source = 'calculation' AND period = 'P1Y'"
    ).fetchone()
    return (None, None, None) if row is None else (row[0], row[1], row[2])


def station_meta(conn: Connection, stations: Sequence[str]) -> list[tuple[str, str, float, float]]:
    """(id, name, lon, lat) of ``stations``, by id."""
    rows = conn.execute(
        "SELECT id, name, lon, lat FROM stations WHERE id = ANY(%s::text[]) ORDER BY id",
        (list(stations),),
    ).fetchall()
    return [(str(i), str(n), float(x), float(y)) for i, n, x, y in rows]
