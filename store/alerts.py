"""Alerts in the store: what the rules look at, the alerts' life cycle and the webhook outbox.

- :func:`load_state` reads what :func:`sensors.alerts.evaluate` needs as of a time;
- :func:`sync` opens, updates and closes alerts so that the live ones are exactly the
  conditions that hold (one live alert per rule, station and parameter), :func:`acknowledge`
  (with an optional comment), :func:`close` (by hand, with a comment) and :func:`list_alerts`
  serve the operator;
- each transition is queued in ``alert_notifications`` (the outbox) in the same transaction.
  The notifier (:mod:`pipelines.alerts`) takes due events with :func:`claim_due` (a short
  transaction that leases them), posts them with no transaction open, and records the outcome
  with :func:`record_delivered` or :func:`record_failed`; an event refused ``max_attempts``
  times is *abandoned* (``abandoned_at``) and listed by :func:`list_notifications`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, LiteralString

import pandas as pd
from psycopg import sql
from psycopg.types.json import Jsonb

from sensors import qc
from sensors.alert_text import message_zh
from sensors.alerts import AlertRules, Condition, State
from store import derived, reviews
from store.db import Connection

STATES: Final = ("open", "acknowledged", "closed")
#: states of a webhook event: waiting (or retrying), delivered, given up on
WEBHOOK_STATES: Final = ("pending", "delivered", "abandoned")

_NAMES: Final = (
    "id", "rule", "station_id", "parameter", "state", "severity", "message", "value", "details",
    "opened_at", "last_seen", "acknowledged_at", "acknowledged_by", "closed_at",
    "acknowledge_comment", "closed_by", "close_comment",
)  # fmt: skip
#: Longest comment kept on an acknowledgement or a closing (characters).
MAX_COMMENT: Final = 2000
_COLUMNS: Final = sql.SQL(", ").join(map(sql.Identifier, _NAMES))
_EVENT_NAMES: Final = (
    "id", "alert_id", "event", "attempts", "next_attempt", "delivered_at", "abandoned_at",
    "last_error", "payload",
)  # fmt: skip


_WEBHOOK_WHERE: Final = {
    "pending": sql.SQL("delivered_at IS NULL AND abandoned_at IS NULL"),
    "delivered": sql.SQL("delivered_at IS NOT NULL"),
    "abandoned": sql.SQL("abandoned_at IS NOT NULL"),
}


class AlertNotFound(LookupError):
    """No such alert."""


@dataclass(frozen=True)
class DueEvent:
    """A webhook event leased for delivery: its id, the JSON body and the attempts so far."""

    id: int
    event: str
    payload: Any
    attempts: int


# --------------------------------------------------------------------------- rules' input
def load_state(conn: Connection, now: datetime, rules: AlertRules | None = None) -> State:
    """What :func:`sensors.alerts.evaluate` needs, from the store, as of ``now`` (``rules``:
    the thresholds whose look-back windows it reads; the defaults when ``None``)."""
    rules = rules or AlertRules()
    stations = {
        r[0]: (r[1], dict(r[2] or {}))
        for r in conn.execute("SELECT id, kind, attributes FROM stations").fetchall()
    }
    since_hours = now - timedelta(hours=rules.sustained_hours + 2)
    # complete hours and days only (never the running one, even once its mean is valid)
    hourly = _read(
        conn,
        "SELECT subject, parameter, start, value, valid FROM aggregates WHERE scope = 'station'"
        " AND period = 'PT1H' AND start >= %s AND start <= %s",
        (since_hours, now - timedelta(hours=1)),
        ["subject", "parameter", "start", "value", "valid"],
    )
    daily = _read(
        conn,
        "SELECT DISTINCT ON (subject, parameter) subject, parameter, start, value, valid"
        " FROM aggregates WHERE scope = 'station' AND period = 'P1D' AND start >= %s"
        " AND start <= %s AND valid ORDER BY subject, parameter, start DESC",
        (now - timedelta(days=2), now - timedelta(days=1)),
        ["subject", "parameter", "start", "value", "valid"],
    )
    # the latest valid complete hour (never the running one) that is still current: it ended
    # at most 2 hours ago (the dashboard's rule, derived.latest_complete_hours)
    aqi = derived.latest_complete_hours(
        conn, now, what="aqi", scope="station", lookback=timedelta(hours=3)
    )[["subject", "start", "value", "level", "label"]]
    # the latest complete day with a daily AQI (computed from valid daily means)
    aqi_daily = _read(
        conn,
        "SELECT DISTINCT ON (subject) subject, start, value, level, label FROM assessments"
        " WHERE scope = 'station' AND kind = 'aqi-daily' AND value IS NOT NULL"
        " AND start >= %s AND start <= %s ORDER BY subject, start DESC",
        (now - timedelta(days=2), now - timedelta(days=1)),
        ["subject", "start", "value", "level", "label"],
    )
    last_seen = {
        r[0]: r[1]
        for r in conn.execute(
            "SELECT s.station_id, max(o.time) FROM observations o JOIN streams s"
            " ON s.id = o.stream_id WHERE o.time >= %s AND o.time <= %s GROUP BY s.station_id",
            (now - rules.offline_lookback, now + timedelta(hours=1)),
        ).fetchall()
    }
    flatlined = _read(
        conn,
        "SELECT s.station_id, s.parameter, min(q.time) FROM qc_flags q JOIN streams s"
        " ON s.id = q.stream_id WHERE q.time >= %s AND (q.mask & %s) <> 0"
        " GROUP BY s.station_id, s.parameter",
        (now - timedelta(hours=1), qc.FLATLINE),
        ["station", "parameter", "since"],
    )
    # the latest valid gamma reading (a reviewer's invalidation takes a reading out of the
    # alerts too); the offline rule above counts every reading: invalid or not, it shows the
    # device is sending
    gamma = _read(
        conn,
        sql.SQL(
            "SELECT DISTINCT ON (s.station_id) s.station_id, o.time, o.value FROM observations o"
            " JOIN streams s ON s.id = o.stream_id WHERE s.parameter = 'gamma'"
            " AND s.interval IS NULL AND o.time >= %s AND NOT {}"
            " ORDER BY s.station_id, o.time DESC"
        ).format(reviews.INVALIDATED_SQL),
        (now - timedelta(hours=1),),
        ["station", "time", "value"],
    )
    return State(now, stations, hourly, daily, aqi, last_seen, flatlined, gamma, aqi_daily)


def _read(
    conn: Connection,
    query: LiteralString | sql.Composed,
    params: Sequence[Any],
    columns: list[str],
) -> pd.DataFrame:
    """The rows of ``query`` as a frame of ``columns``, times as UTC, values as floats."""
    frame = pd.DataFrame(conn.execute(query, params).fetchall(), columns=columns)
    for c in ("start", "since", "time"):
        if c in frame:
            frame[c] = pd.to_datetime(frame[c], utc=True)
    if "valid" in frame:
        frame["valid"] = frame["valid"].astype(bool)
    if "value" in frame:
        frame["value"] = frame["value"].astype("float64")
    return frame


# --------------------------------------------------------------------------- life cycle
def _payload(row: Mapping[str, Any], event: str) -> dict[str, Any]:
    out = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in row.items()}
    value = out.get("value")
    if isinstance(value, float) and not math.isfinite(value):
        out["value"] = None
    return {"event": event, "alert": out}


def _row(cur_row: Sequence[Any]) -> dict[str, Any]:
    """An alert as the API, the webhook and the dashboard see it: its columns, ``station``,
    and ``message_zh`` (the message in Chinese, composed from the alert's fields by
    :func:`sensors.alert_text.message_zh`; ``message`` stays the English one)."""
    row = dict(zip(_NAMES, cur_row, strict=True))
    row["station"] = row.pop("station_id")
    row["message_zh"] = message_zh(row)
    return row


def _notify(conn: Connection, row: Mapping[str, Any], event: str) -> None:
    conn.execute(
        "INSERT INTO alert_notifications (alert_id, event, payload) VALUES (%s, %s, %s)",
        (row["id"], event, Jsonb(_payload(row, event))),
    )


def sync(conn: Connection, conditions: Iterable[Condition]) -> dict[str, int]:
    """Open, update and close alerts so that the live ones are exactly ``conditions``; queue a
    notification for each opening and closing, in the same transaction. Returns counts per
    transition."""
    counts = {"opened": 0, "updated": 0, "closed": 0}
    holding = {c.key: c for c in conditions}
    with conn.transaction():
        live = {
            (r[1], r[2], r[3]): r[0]
            for r in conn.execute(
                "SELECT id, rule, station_id, parameter FROM alerts WHERE state <> 'closed'"
                " FOR UPDATE"
            ).fetchall()
        }
        for key, c in holding.items():
            if key in live:
                conn.execute(
                    "UPDATE alerts SET last_seen = now(), value = %s, message = %s, severity = %s,"
                    " details = %s WHERE id = %s",
                    (c.value, c.message, c.severity, Jsonb(dict(c.details)), live[key]),
                )
                counts["updated"] += 1
                continue
            row = conn.execute(
                sql.SQL(
                    "INSERT INTO alerts (rule, station_id, parameter, severity, message, value,"
                    " details) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {}"
                ).format(_COLUMNS),
                (
                    c.rule,
                    c.station,
                    c.parameter,
                    c.severity,
                    c.message,
                    c.value,
                    Jsonb(dict(c.details)),
                ),
            ).fetchone()
            assert row is not None
            _notify(conn, _row(row), "opened")
            counts["opened"] += 1
        for key, alert_id in live.items():
            if key in holding:
                continue
            row = conn.execute(
                sql.SQL(
                    "UPDATE alerts SET state = 'closed', closed_at = now() WHERE id = %s"
                    " RETURNING {}"
                ).format(_COLUMNS),
                (alert_id,),
            ).fetchone()
            assert row is not None
            _notify(conn, _row(row), "closed")
            counts["closed"] += 1
    return counts


def comment_text(comment: str | None, *, required: bool = False) -> str | None:
    """A duty officer's comment, stripped (``None`` for none); ``ValueError`` when it is
    ``required`` and empty, longer than :data:`MAX_COMMENT` characters, or holds NUL or
    unpaired surrogate characters."""
    text = (comment or "").strip()
    if not text:
        if required:
            raise ValueError("a comment is needed")
        return None
    if len(text) > MAX_COMMENT:
        raise ValueError(f"comment longer than {MAX_COMMENT} characters")
    if "\x00" in text or any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        raise ValueError("comment: NUL or unpaired surrogate characters")
    return text


def acknowledge(
    conn: Connection, alert_id: int, by: str, comment: str | None = None
) -> dict[str, Any]:
    """Acknowledge an open alert, with an optional ``comment`` (an acknowledged one stays as
    it was); return it.

    Raises
    ------
    AlertNotFound
        for an unknown id.
    ValueError
        for a closed alert, or a comment :func:`comment_text` refuses.
    """
    return _transition(conn, alert_id, "acknowledged", by, comment_text(comment))


def close(conn: Connection, alert_id: int, by: str, comment: str) -> dict[str, Any]:
    """Close a live (open or acknowledged) alert by hand, with a ``comment`` (required): the
    duty officer dealt with it. Queues the ``closed`` webhook event; return the alert. Should
    its condition still hold at the next evaluation, the alert jobs open a new alert.

    Raises
    ------
    AlertNotFound
        for an unknown id.
    ValueError
        for an alert already closed, or a comment :func:`comment_text` refuses.
    """
    return _transition(conn, alert_id, "closed", by, comment_text(comment, required=True))


#: A hand-made transition's target state → the columns it sets (time, by whom, comment).
_TRANSITIONS: Final = {
    "acknowledged": ("acknowledged_at", "acknowledged_by", "acknowledge_comment"),
    "closed": ("closed_at", "closed_by", "close_comment"),
}


def _transition(
    conn: Connection, alert_id: int, state: str, by: str, text: str | None
) -> dict[str, Any]:
    """Move alert ``alert_id`` to ``state`` (``acknowledged`` or ``closed``), recording when,
    by whom and why, and queue the webhook event; return the alert. A closed alert refuses
    both; acknowledging an acknowledged alert returns it as it was."""
    at, by_column, comment_column = _TRANSITIONS[state]
    with conn.transaction():
        found = conn.execute(
            sql.SQL("SELECT {} FROM alerts WHERE id = %s FOR UPDATE").format(_COLUMNS),
            (alert_id,),
        ).fetchone()
        if found is None:
            raise AlertNotFound(f"no alert {alert_id}")
        row = _row(found)
        if row["state"] == "closed":
            raise ValueError(f"alert {alert_id} is closed")
        if row["state"] == state:
            return row
        updated = conn.execute(
            sql.SQL(
                "UPDATE alerts SET state = %s, {} = now(), {} = %s, {} = %s"
                " WHERE id = %s RETURNING {}"
            ).format(
                sql.Identifier(at),
                sql.Identifier(by_column),
                sql.Identifier(comment_column),
                _COLUMNS,
            ),
            (state, by, text, alert_id),
        ).fetchone()
        assert updated is not None
        row = _row(updated)
        _notify(conn, row, state)
    return row


def alert_station(conn: Connection, alert_id: int) -> str:
    """The station an alert is about (``AlertNotFound`` for an unknown id)."""
    row = conn.execute("SELECT station_id FROM alerts WHERE id = %s", (alert_id,)).fetchone()
    if row is None:
        raise AlertNotFound(f"no alert {alert_id}")
    return str(row[0])


def list_alerts(
    conn: Connection,
    state: str | None = None,
    station: str | None = None,
    limit: int = 500,
    after: tuple[datetime, int] | None = None,
    stations: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Alerts, newest first; ``state`` one of :data:`STATES` or ``live`` (open or
    acknowledged); ``after`` the (``opened_at``, ``id``) of the last alert of the previous
    page; ``stations``: only the alerts of these stations (``None``: every station), e.g.
    those the caller may read by their grade."""
    where: list[sql.Composable] = [sql.SQL("TRUE")]
    params: list[Any] = []
    if state == "live":
        where.append(sql.SQL("state <> 'closed'"))
    elif state is not None:
        if state not in STATES:
            raise ValueError(f"state must be live or one of {', '.join(STATES)}")
        where.append(sql.SQL("state = %s"))
        params.append(state)
    if station is not None:
        where.append(sql.SQL("station_id = %s"))
        params.append(station)
    if stations is not None:
        where.append(sql.SQL("station_id = ANY(%s)"))
        params.append(list(stations))
    if after is not None:
        where.append(sql.SQL("(opened_at, id) < (%s, %s)"))
        params.extend(after)
    params.append(limit)
    rows = conn.execute(
        sql.SQL("SELECT {} FROM alerts WHERE {} ORDER BY opened_at DESC, id DESC LIMIT %s").format(
            _COLUMNS, sql.SQL(" AND ").join(where)
        ),
        params,
    ).fetchall()
    return [_row(r) for r in rows]


# --------------------------------------------------------------------------- webhook outbox
def claim_due(conn: Connection, *, lease: timedelta, limit: int = 50) -> list[DueEvent]:
    """Lease up to ``limit`` due webhook events (oldest first) for ``lease``: they are not due
    again for that long, so concurrent notifiers do not send them twice. Commits before it
    returns, so the caller posts them with no transaction open."""
    with conn.transaction():
        rows = conn.execute(
            "UPDATE alert_notifications n SET next_attempt = now() + %s FROM ("
            " SELECT id FROM alert_notifications WHERE delivered_at IS NULL"
            " AND abandoned_at IS NULL AND next_attempt <= now()"
            " ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) due"
            " WHERE n.id = due.id RETURNING n.id, n.event, n.payload, n.attempts",
            (lease, limit),
        ).fetchall()
    return sorted((DueEvent(int(r[0]), r[1], r[2], int(r[3])) for r in rows), key=lambda e: e.id)


def record_delivered(conn: Connection, event_id: int) -> None:
    """Mark a webhook event delivered (one more attempt, the one that succeeded)."""
    with conn.transaction():
        conn.execute(
            "UPDATE alert_notifications SET delivered_at = now(), attempts = attempts + 1,"
            " last_error = NULL WHERE id = %s",
            (event_id,),
        )


def record_failed(
    conn: Connection, event_id: int, error: str, retry_in: timedelta, max_attempts: int
) -> bool:
    """Record a refused or unanswered attempt: retried after ``retry_in``, or abandoned when
    this was attempt number ``max_attempts``. Returns whether the event is now abandoned."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE alert_notifications SET attempts = attempts + 1, last_error = %s,"
            " next_attempt = now() + %s,"
            " abandoned_at = CASE WHEN attempts + 1 >= %s THEN now() END"
            " WHERE id = %s RETURNING abandoned_at IS NOT NULL",
            (error, retry_in, max_attempts, event_id),
        ).fetchone()
    return bool(row and row[0])


def list_notifications(
    conn: Connection,
    state: str = "abandoned",
    limit: int = 500,
    after: int | None = None,
    stations: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Webhook events in ``state`` (one of :data:`WEBHOOK_STATES`), newest first: ``id,
    alert_id, event, attempts, next_attempt, delivered_at, abandoned_at, last_error,
    payload``; ``after`` the id of the last event of the previous page; ``stations``: only
    the events of these stations' alerts (``None``: every station)."""
    if state not in _WEBHOOK_WHERE:
        raise ValueError(f"state must be one of {', '.join(WEBHOOK_STATES)}")
    among = sql.SQL("")
    params: list[Any] = [2**63 - 1 if after is None else after]
    if stations is not None:
        among = sql.SQL(" AND alert_id IN (SELECT id FROM alerts WHERE station_id = ANY(%s))")
        params.append(list(stations))
    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM alert_notifications WHERE {} AND id < %s{} ORDER BY id DESC LIMIT %s"
        ).format(
            sql.SQL(", ").join(map(sql.Identifier, _EVENT_NAMES)), _WEBHOOK_WHERE[state], among
        ),
        [*params, limit],
    ).fetchall()
    return [dict(zip(_EVENT_NAMES, r, strict=True)) for r in rows]
