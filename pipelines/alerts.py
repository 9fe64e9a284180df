"""Alerts: rules over the derived series, a life cycle in the store, and a webhook.

Rules (:class:`AlertRules`; thresholds as in the README):

- ``exceedance``: the latest valid hourly mean of SO₂, NO₂, CO or O₃ above its GB 3095-2026
  1-hour limit, or the latest valid daily mean of any Table 1 pollutant above its 24-hour
  limit, for the station's area class (attribute ``area_class``, default 2);
- ``aqi``: the latest hourly AQI at or above a level (default 4, 中度污染; 5 and up critical);
- ``sustained``: the last ``sustained_hours`` (default 3) hourly means all valid and above the
  limit (the 1-hour limit, or the 24-hour one where Table 1 has no 1-hour limit);
- ``offline``: a station with readings in the last 7 days but none for ``offline_after``
  (default 30 minutes);
- ``flatline``: a QC flatline flag in the last hour (a stuck sensor);
- ``gamma``: the latest ambient gamma dose rate outside the station's background range
  (attribute ``background`` as ``[low, high]`` nGy/h; the national open-field range otherwise).

Life cycle: a condition opens an alert (``open``); while the condition holds, the same alert is
updated (de-duplicated: one live alert per rule, station and parameter); an operator may
acknowledge it (``acknowledged``); when the condition no longer holds it is ``closed``. Each
transition is queued in ``alert_notifications`` and POSTed to the webhook
(``ECOSENSE_ALERT_WEBHOOK``) until it answers 2xx, with exponential back-off.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import httpx
import pandas as pd
import psycopg
from psycopg.types.json import Jsonb

from sensors import qc
from sensors.standards import gb3095, radiation

logger = logging.getLogger(__name__)

Connection = psycopg.Connection[tuple[Any, ...]]
STATES: Final = ("open", "acknowledged", "closed")
ONE_HOUR_LIMITS: Final = ("so2", "no2", "co", "o3")
DAILY_LIMITS: Final = ("so2", "no2", "co", "pm10", "pm25")
MAX_ATTEMPTS: Final = 20


@dataclass(frozen=True)
class AlertRules:
    """Thresholds of the rules."""

    aqi_level: int = 4
    sustained_hours: int = 3
    offline_after: timedelta = timedelta(minutes=30)
    offline_lookback: timedelta = timedelta(days=7)


@dataclass(frozen=True)
class Condition:
    """A rule that holds now for a station (and parameter)."""

    rule: str
    station: str
    parameter: str
    severity: str
    message: str
    value: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.rule, self.station, self.parameter)


@dataclass(frozen=True)
class State:
    """What the rules look at (frames as loaded by :func:`load_state`)."""

    now: datetime
    stations: Mapping[str, tuple[str, Mapping[str, Any]]]
    hourly: pd.DataFrame  # subject, parameter, start, value, valid (last hours)
    daily: pd.DataFrame  # subject, parameter, start, value, valid (latest day each)
    aqi: pd.DataFrame  # subject, start, value, level, label (latest each)
    last_seen: Mapping[str, datetime]  # station → latest reading time
    flatlined: pd.DataFrame  # station, parameter, since
    gamma: pd.DataFrame  # station, time, value (latest each)


class _Row:
    """A record's fields as attributes (typed ``Any``)."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.__dict__.update(record)

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = frame.to_dict("records")  # type: ignore[assignment]
    return rows


def _limit(parameter: str, averaging: gb3095.Averaging, area: Any, on: datetime) -> float | None:
    try:
        return gb3095.limit(parameter, averaging, 1 if str(area) == "1" else 2, on.date())
    except ValueError:
        return None


def evaluate(state: State, rules: AlertRules = AlertRules()) -> list[Condition]:
    """Every condition that holds now (pure)."""
    out: list[Condition] = []
    area = {s: attrs.get("area_class", 2) for s, (_k, attrs) in state.stations.items()}
    # exceedance of the 1-hour limits (latest valid hour) and 24-hour limits (latest valid day)
    checks: tuple[tuple[pd.DataFrame, gb3095.Averaging, tuple[str, ...]], ...] = (
        (state.hourly, "1h", ONE_HOUR_LIMITS),
        (state.daily, "24h", DAILY_LIMITS),
    )
    for frame, averaging, pollutants in checks:
        if frame.empty:
            continue
        good = frame[frame["valid"] & frame["parameter"].isin(pollutants)]
        latest = good.sort_values("start").groupby(["subject", "parameter"]).tail(1)
        for row in map(_Row, _records(latest)):
            lim = _limit(row.parameter, averaging, area.get(row.subject, 2), row.start)
            if lim is not None and row.value > lim:
                multiple = (row.value - lim) / lim
                out.append(
                    Condition(
                        "exceedance",
                        str(row.subject),
                        f"{row.parameter}_{averaging}",
                        "critical" if multiple >= 1 else "warning",
                        f"{row.parameter} {averaging} mean {row.value:.4g} above the GB 3095-2026"
                        f" limit {lim:g} ({multiple:.2f}× over)",
                        float(row.value),
                        {"limit": lim, "multiple": multiple, "start": row.start.isoformat()},
                    )
                )
    # sustained exceedance: the last N hours all valid and above the limit
    n = rules.sustained_hours
    if not state.hourly.empty and n > 0:
        last_hour = pd.Timestamp(state.now).floor("h") - pd.Timedelta(hours=1)
        wanted = pd.date_range(last_hour - pd.Timedelta(hours=n - 1), last_hour, freq="h")
        for (subject, parameter), g in state.hourly.groupby(["subject", "parameter"]):
            span: gb3095.Averaging = "1h" if parameter in ONE_HOUR_LIMITS else "24h"
            lim = _limit(str(parameter), span, area.get(str(subject), 2), state.now)
            if lim is None:
                continue
            g = g.set_index("start").reindex(wanted)
            if g["valid"].fillna(False).astype(bool).all() and (g["value"] > lim).all():
                out.append(
                    Condition(
                        "sustained",
                        str(subject),
                        str(parameter),
                        "critical",
                        f"{parameter} above {lim:g} ({span} limit) for {n} hours",
                        float(g["value"].iloc[-1]),
                        {"limit": lim, "hours": n},
                    )
                )
    # AQI level
    for row in map(_Row, _records(state.aqi)):
        if pd.notna(row.level) and row.level >= rules.aqi_level:
            out.append(
                Condition(
                    "aqi",
                    str(row.subject),
                    "",
                    "critical" if row.level >= 5 else "warning",
                    f"AQI {row.value} (level {row.level}) at {row.start.isoformat()};"
                    f" primary: {row.label or '-'}",
                    float(row.value),
                    {"level": int(row.level), "primary": row.label},
                )
            )
    # offline
    for station, seen in state.last_seen.items():
        if state.now - seen > rules.offline_after:
            minutes = (state.now - seen).total_seconds() / 60
            out.append(
                Condition(
                    "offline",
                    station,
                    "",
                    "warning",
                    f"no data for {minutes:.0f} minutes (last {seen.isoformat()})",
                    minutes,
                    {"last_seen": seen.isoformat()},
                )
            )
    for row in map(_Row, _records(state.flatlined)):
        out.append(
            Condition(
                "flatline",
                str(row.station),
                str(row.parameter),
                "warning",
                f"{row.parameter}: the same value repeated (stuck sensor?) since"
                f" {row.since.isoformat()}",
                None,
                {"since": row.since.isoformat()},
            )
        )
    for row in map(_Row, _records(state.gamma)):
        attrs = state.stations.get(str(row.station), ("", {}))[1]
        background = tuple(attrs.get("background") or radiation.NATIONAL_OPEN_FIELD)
        status = radiation.background_status(
            [row.value], (float(background[0]), float(background[1]))
        )[0]
        if status in ("below", "above"):
            out.append(
                Condition(
                    "gamma",
                    str(row.station),
                    "gamma",
                    "critical" if status == "above" else "warning",
                    f"gamma dose rate {row.value:.4g} nGy/h {status} the background range"
                    f" {background[0]:g}–{background[1]:g}",
                    float(row.value),
                    {"background": list(background), "status": status},
                )
            )
    return out


def load_state(conn: Connection, now: datetime, rules: AlertRules = AlertRules()) -> State:
    """What :func:`evaluate` needs, from the store, as of ``now``."""
    stations = {
        r[0]: (r[1], dict(r[2] or {}))
        for r in conn.execute("SELECT id, kind, attributes FROM stations").fetchall()
    }
    since_hours = now - timedelta(hours=rules.sustained_hours + 2)
    hourly = _frame(
        conn.execute(
            "SELECT subject, parameter, start, value, valid FROM aggregates WHERE scope = 'station'"
            " AND period = 'PT1H' AND start >= %s AND start <= %s",
            (since_hours, now),
        ).fetchall(),
        ["subject", "parameter", "start", "value", "valid"],
    )
    daily = _frame(
        conn.execute(
            "SELECT DISTINCT ON (subject, parameter) subject, parameter, start, value, valid"
            " FROM aggregates WHERE scope = 'station' AND period = 'P1D' AND start >= %s"
            " AND start <= %s AND valid ORDER BY subject, parameter, start DESC",
            (now - timedelta(days=2), now),
        ).fetchall(),
        ["subject", "parameter", "start", "value", "valid"],
    )
    aqi = _frame(
        conn.execute(
            "SELECT DISTINCT ON (subject) subject, start, value, level, label FROM assessments"
            " WHERE scope = 'station' AND kind = 'aqi-hourly' AND start >= %s AND start <= %s"
            " ORDER BY subject, start DESC",
            (now - timedelta(hours=3), now),
        ).fetchall(),
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
    flatlined = _frame(
        conn.execute(
            "SELECT s.station_id, s.parameter, min(q.time) FROM qc_flags q JOIN streams s"
            " ON s.id = q.stream_id WHERE q.time >= %s AND (q.mask & %s) <> 0"
            " GROUP BY s.station_id, s.parameter",
            (now - timedelta(hours=1), qc.FLATLINE),
        ).fetchall(),
        ["station", "parameter", "since"],
    )
    gamma = _frame(
        conn.execute(
            "SELECT DISTINCT ON (s.station_id) s.station_id, o.time, o.value FROM observations o"
            " JOIN streams s ON s.id = o.stream_id WHERE s.parameter = 'gamma'"
            " AND s.interval IS NULL AND o.time >= %s ORDER BY s.station_id, o.time DESC",
            (now - timedelta(hours=1),),
        ).fetchall(),
        ["station", "time", "value"],
    )
    return State(now, stations, hourly, daily, aqi, last_seen, flatlined, gamma)


def _frame(rows: Sequence[tuple[Any, ...]], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
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


_COLUMNS: Final = (
    "id, rule, station_id, parameter, state, severity, message, value, details, opened_at,"
    " last_seen, acknowledged_at, acknowledged_by, closed_at"
)


def _row(cur_row: Sequence[Any]) -> dict[str, Any]:
    names = [c.strip() for c in _COLUMNS.split(",")]
    row = dict(zip(names, cur_row, strict=True))
    row["station"] = row.pop("station_id")
    return row


def _notify(conn: Connection, row: Mapping[str, Any], event: str) -> None:
    conn.execute(
        "INSERT INTO alert_notifications (alert_id, event, payload) VALUES (%s, %s, %s)",
        (row["id"], event, Jsonb(_payload(row, event))),
    )


def sync(conn: Connection, conditions: Iterable[Condition]) -> dict[str, int]:
    """Open, update and close alerts so that the live ones are exactly ``conditions``; queue a
    notification for each opening and closing. Returns counts per transition."""
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
                "INSERT INTO alerts (rule, station_id, parameter, severity, message, value,"
                f" details) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
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
                f"UPDATE alerts SET state = 'closed', closed_at = now() WHERE id = %s"
                f" RETURNING {_COLUMNS}",
                (alert_id,),
            ).fetchone()
            assert row is not None
            _notify(conn, _row(row), "closed")
            counts["closed"] += 1
    return counts


class AlertNotFound(LookupError):
    """No such alert."""


def acknowledge(conn: Connection, alert_id: int, by: str) -> dict[str, Any]:
    """Acknowledge an open alert (an acknowledged one stays as it was); return it.

    Raises
    ------
    AlertNotFound
        for an unknown id.
    ValueError
        for a closed alert.
    """
    with conn.transaction():
        found = conn.execute(
            f"SELECT {_COLUMNS} FROM alerts WHERE id = %s FOR UPDATE",
            (alert_id,),
        ).fetchone()
        if found is None:
            raise AlertNotFound(f"no alert {alert_id}")
        row = _row(found)
        if row["state"] == "closed":
            raise ValueError(f"alert {alert_id} is closed")
        if row["state"] == "acknowledged":
            return row
        updated = conn.execute(
            "UPDATE alerts SET state = 'acknowledged', acknowledged_at = now(),"
            f" acknowledged_by = %s WHERE id = %s RETURNING {_COLUMNS}",
            (by, alert_id),
        ).fetchone()
        assert updated is not None
        row = _row(updated)
        _notify(conn, row, "acknowledged")
    return row


def list_alerts(
    conn: Connection,
    state: str | None = None,
    station: str | None = None,
    limit: int = 500,
    after: tuple[datetime, int] | None = None,
) -> list[dict[str, Any]]:
    """Alerts, newest first; ``state`` one of :data:`STATES` or ``live`` (open or
    acknowledged); ``after`` the (``opened_at``, ``id``) of the last alert of the previous
    page."""
    where, params = ["TRUE"], []  # type: list[str], list[Any]
    if state == "live":
        where.append("state <> 'closed'")
    elif state is not None:
        if state not in STATES:
            raise ValueError(f"state must be live or one of {', '.join(STATES)}")
        where.append("state = %s")
        params.append(state)
    if station is not None:
        where.append("station_id = %s")
        params.append(station)
    if after is not None:
        where.append("(opened_at, id) < (%s, %s)")
        params.extend(after)
    params.append(limit)
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM alerts WHERE {' AND '.join(where)}"
        " ORDER BY opened_at DESC, id DESC LIMIT %s",
        params,
    ).fetchall()
    return [_row(r) for r in rows]


# --------------------------------------------------------------------------- webhook
def deliver(
    conn: Connection,
    url: str | None,
    *,
    backoff: float = 5.0,
    timeout: float = 5.0,
    client: httpx.Client | None = None,
) -> dict[str, int]:
    """POST every due notification to ``url`` (JSON: ``{"event", "alert"}``); a 2xx answer
    marks it delivered, anything else (or no answer) schedules a retry after
    ``backoff × 2^attempts`` seconds (at most an hour), up to :data:`MAX_ATTEMPTS` attempts.
    Without a URL nothing is sent (notifications stay queued for the dashboard)."""
    counts = {"delivered": 0, "failed": 0}
    if not url:
        return counts
    own = client is None
    http = client or httpx.Client(timeout=timeout)
    try:
        while True:
            with conn.transaction():
                due = conn.execute(
                    "SELECT id, payload, attempts FROM alert_notifications"
                    " WHERE delivered_at IS NULL AND next_attempt <= now() AND attempts < %s"
                    " ORDER BY id LIMIT 50 FOR UPDATE SKIP LOCKED",
                    (MAX_ATTEMPTS,),
                ).fetchall()
                if not due:
                    return counts
                for nid, payload, attempts in due:
                    error = _post(http, url, payload)
                    if error is None:
                        conn.execute(
                            "UPDATE alert_notifications SET delivered_at = now(), attempts = %s,"
                            " last_error = NULL WHERE id = %s",
                            (attempts + 1, nid),
                        )
                        counts["delivered"] += 1
                    else:
                        delay = min(backoff * 2**attempts, 3600.0)
                        conn.execute(
                            "UPDATE alert_notifications SET attempts = %s, last_error = %s,"
                            " next_attempt = now() + make_interval(secs => %s) WHERE id = %s",
                            (attempts + 1, error, delay, nid),
                        )
                        counts["failed"] += 1
                        logger.warning("webhook %s: %s (retry in %.0f s)", url, error, delay)
            if counts["failed"]:
                return counts
    finally:
        if own:
            http.close()


def _post(http: httpx.Client, url: str, payload: Any) -> str | None:
    body = payload if isinstance(payload, dict) else json.loads(payload)
    try:
        answer = http.post(url, json=body)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= answer.status_code < 300:
        return None
    return f"HTTP {answer.status_code}"
