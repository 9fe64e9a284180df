"""Carbon accounting inputs in the store: facilities, activity records and regional targets.

Records are checked by :mod:`carbon.activity` before they get here; this module adds the
checks that need the store — a record overlapping a stored record of the same facility and
activity (another id) is refused, since both would count — and keeps ``computed_at`` (when a
row was stored or last changed) for the incremental ``carbon-inventory`` job.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

import pandas as pd
from psycopg import errors, sql
from psycopg.types.json import Jsonb

from carbon import factors
from carbon.activity import ActivityRecord, Facility, Rejected, drop_overlaps
from carbon.jobfile import JobResult
from carbon.targets import Target
from store.derived import Connection, upsert
from store.errors import NotFound

_RECORD_COLUMNS = sql.SQL(", ").join(
    map(
        sql.Identifier,
        (
            "id", "facility", "start", "end", "activity", "quantity", "unit", "source", "method",
            "ncv", "carbon_content", "oxidation", "emission_factor",
        ),
    )
)  # fmt: skip


def save_facilities(conn: Connection, facilities: Iterable[Facility]) -> int:
    """Insert or update facilities; return how many changed."""
    rows = pd.DataFrame([asdict(f) for f in facilities])
    return upsert(conn, "facilities", rows) if not rows.empty else 0


def load_facilities(conn: Connection) -> list[Facility]:
    """Every facility in the store."""
    rows = conn.execute("SELECT id, name, region, sector, lon, lat FROM facilities ORDER BY id")
    return [Facility(*r) for r in rows.fetchall()]


def _record(row: Sequence[Any]) -> ActivityRecord:
    return ActivityRecord(*row)


def load_activity(
    conn: Connection,
    *,
    facilities: Sequence[str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[ActivityRecord]:
    """Activity records of ``facilities`` (all when ``None``) overlapping [start, end)."""
    where: list[sql.Composable] = [sql.SQL("TRUE")]
    params: list[Any] = []
    if facilities is not None:
        where.append(sql.SQL("facility = ANY(%s)"))
        params.append(list(facilities))
    if start is not None:
        where.append(sql.SQL('"end" > %s'))
        params.append(start)
    if end is not None:
        where.append(sql.SQL("start < %s"))
        params.append(end)
    query = sql.SQL("SELECT {} FROM activity_records WHERE {} ORDER BY facility, start, id")
    rows = conn.execute(
        query.format(_RECORD_COLUMNS, sql.SQL(" AND ").join(where)), params
    ).fetchall()
    return [_record(r) for r in rows]


def save_activity(
    conn: Connection, records: Sequence[ActivityRecord]
) -> tuple[int, list[Rejected]]:
    """Store ``records`` (a record with a stored id replaces it); records overlapping a stored
    record of the same facility and activity are refused with the reason. Returns how many rows
    were inserted or changed, and the refused records."""
    if not records:
        return 0, []
    ids = {r.id for r in records}
    stored = [
        r for r in load_activity(conn, facilities=sorted({r.facility for r in records}))
        if r.id not in ids
    ]  # fmt: skip
    kept, rejected = drop_overlaps([*stored, *records])
    fresh = [r for r in kept if r.id in ids]
    rows = pd.DataFrame([asdict(r) for r in fresh])
    try:
        changed = upsert(conn, "activity_records", rows) if not rows.empty else 0
    except errors.ForeignKeyViolation as exc:
        raise NotFound(f"activity records of an unknown facility: {exc}") from exc
    return changed, rejected


def touched_facility_years(
    conn: Connection, since: datetime | None, tz: str
) -> dict[str, set[int]]:
    """Facility → the bureau's calendar years touched by records stored or changed after
    ``since`` (all records when ``None``)."""
    query = sql.SQL(
        "SELECT facility, min(start AT TIME ZONE %s), max((\"end\" - interval '1 microsecond')"
        " AT TIME ZONE %s) FROM activity_records WHERE {} GROUP BY facility"
    )
    params: list[Any] = [tz, tz]
    where = sql.SQL("TRUE")
    if since is not None:
        where = sql.SQL("computed_at > %s")
        params.append(since)
    rows = conn.execute(query.format(where), params).fetchall()
    return {f: set(range(lo.year, hi.year + 1)) for f, lo, hi in rows}


def meter_stations(conn: Connection) -> list[tuple[str, dict[str, Any]]]:
    """Plant meters: the stations with a ``facility`` and a ``meters`` attribute, as ``(id,
    attributes)``."""
    rows = conn.execute(
        "SELECT id, attributes FROM stations WHERE attributes ? 'meters'"
        " AND attributes ? 'facility' ORDER BY id"
    ).fetchall()
    return [(str(r[0]), dict(r[1])) for r in rows]


def stacks(conn: Connection) -> dict[str, list[str]]:
    """Facility → its CEMS stacks: the ``cems`` stations whose ``facility`` attribute names
    it."""
    rows = conn.execute(
        "SELECT attributes->>'facility', array_agg(id ORDER BY id) FROM stations"
        " WHERE kind = 'cems' AND attributes ? 'facility' GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return {str(f): list(ids) for f, ids in rows}


def save_targets(conn: Connection, targets: Iterable[Target]) -> int:
    """Insert or update regional targets."""
    rows = pd.DataFrame([asdict(t) for t in targets])
    return upsert(conn, "carbon_targets", rows) if not rows.empty else 0


def load_targets(conn: Connection) -> list[Target]:
    """Every regional target in the store."""
    rows = conn.execute("SELECT region, peak_year, neutral_year FROM carbon_targets ORDER BY 1")
    return [Target(*r) for r in rows.fetchall()]


def save_run(conn: Connection, result: JobResult, job_file: str) -> int:
    """Keep a job-file run: its period, GWP set, level, the roll-up, what was excluded and the
    versions of the factors used; return its id."""
    ids = {i for s in result.rows.get("factor_ids", pd.Series(dtype=str)) for i in s.split(";")}
    inventory = (
        json.loads(result.inventory.to_json(orient="records")) if len(result.inventory) else []
    )
    row = conn.execute(
        "INSERT INTO carbon_runs (name, job_file, period_start, period_end, gwp, level, records,"
        " total_co2e_t, inventory, excluded, factor_versions)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            result.name,
            job_file,
            result.start,
            result.end,
            result.gwp,
            result.level,
            int(result.rows["record"].nunique()) if not result.rows.empty else 0,
            result.total_co2e_t,
            Jsonb(inventory),
            Jsonb([{"where": r.where, "reason": r.reason} for r in result.excluded]),
            Jsonb(factors.versions(sorted(i for i in ids if i))),
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def load_runs(conn: Connection, limit: int = 20) -> pd.DataFrame:
    """The latest job-file runs, newest first."""
    rows = conn.execute(
        "SELECT id, name, job_file, period_start, period_end, gwp, level, records, total_co2e_t,"
        " run_at FROM carbon_runs ORDER BY id DESC LIMIT %s",
        (limit,),
    ).fetchall()
    return pd.DataFrame(
        rows,
        columns=[
            "id", "name", "job_file", "period_start", "period_end", "gwp", "level", "records",
            "total_co2e_t", "run_at",
        ],
    )  # fmt: skip
