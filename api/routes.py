"""Read routes: ``GET /healthz``, ``/api/v1/stations``, ``/api/v1/observations``,
``/api/v1/aggregates`` (with validity), ``/api/v1/alerts`` and
``POST /api/v1/alerts/{id}/acknowledge`` (operator), ``/api/v1/audit`` (admin). Every read
of non-public data is audited (:mod:`store.audit`), once per request.

Times in answers are ISO 8601 in the bureau's timezone (with offset); a query time without
offset is read in the bureau's timezone. Every list route pages: ``limit`` and ``cursor`` in,
``{"items", "next_cursor"}`` out (:mod:`api.params`); a bad query parameter is a 400 or 422.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api import params
from api.params import DEFAULT_LIMIT, MAX_LIMIT, query_time
from sensors.errors import SensorsError
from sensors.observations import BASES, INTERVALS, STATISTICS
from sensors.parameters import lookup
from store import audit, derived
from store.context import Principal, ServiceContext
from store.postgres import StoredObservation

router = APIRouter(tags=["read"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _audit_read(
    request: Request,
    principal: Principal,
    dataset: str,
    details: dict[str, Any],
    outcome: str = "ok",
) -> None:
    """Audit a read of non-public data, or a refused one (one entry per request, off the
    event loop)."""
    await run_in_threadpool(
        _ctx(request).audit,
        principal.actor,
        "read",
        dataset,
        outcome,
        request.client.host if request.client else None,
        details,
    )


@router.get("/healthz", summary="200 when the store is reachable")
async def healthz(request: Request) -> JSONResponse:
    """``{"status": "ok"}`` when the store answers, else 503."""
    ok = await run_in_threadpool(_ctx(request).store.ping)
    if ok:
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "unavailable", "detail": "store unreachable"}, status_code=503)


@router.get("/api/v1/stations", summary="Every station (public metadata), paginated")
async def stations(
    request: Request, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> JSONResponse:
    """Stations with id, name, kind, lon/lat (WGS 84, degrees), attributes, simulated, by id;
    follow ``next_cursor`` for the next page."""
    try:
        after = cast(str, params.decode_cursor(cursor, str)[0]) if cursor else None
    except ValueError as exc:
        return _error(400, str(exc))
    rows = await run_in_threadpool(
        lambda: _ctx(request).store.list_stations(after=after, limit=limit + 1)
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return JSONResponse(
        {
            "items": [
                {
                    "id": s.id,
                    "name": s.name,
                    "kind": s.kind,
                    "lon": s.lon,
                    "lat": s.lat,
                    "attributes": dict(s.attributes),
                    "simulated": s.simulated,
                }
                for s in rows
            ],
            "next_cursor": params.encode_cursor(rows[-1].id) if more and rows else None,
        }
    )


def encode_cursor(row: StoredObservation) -> str:
    """An opaque cursor naming the position after ``row``."""
    return params.encode_cursor(row.stream_id, row.time)


def decode_cursor(cursor: str) -> tuple[int, datetime]:
    """The (stream id, time) of a cursor; ``ValueError`` when it is not one of ours."""
    sid, when = params.decode_cursor(cursor, int, datetime)
    return cast(int, sid), cast(datetime, when)


@router.get("/api/v1/observations", summary="Readings with flags, paginated")
async def observations(
    request: Request,
    station: Annotated[
        str | None, Query(description="station id (a device token: its own)")
    ] = None,
    parameter: Annotated[str | None, Query(description="canonical or HJ 212 code")] = None,
    start: Annotated[str | None, Query(description="ISO 8601, inclusive")] = None,
    end: Annotated[str | None, Query(description="ISO 8601, exclusive")] = None,
    interval: Annotated[str | None, Query(description="PT1M, PT1H or P1D")] = None,
    statistic: Annotated[str | None, Query(description="avg, min, max or cou")] = None,
    basis: Annotated[str | None, Query(description="measured or converted")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Observations ordered by stream and time; follow ``next_cursor`` for the next page."""
    ctx = _ctx(request)
    principal = await run_in_threadpool(ctx.authenticate, authorization, "Bearer")
    if principal is None:
        return _error(401, "missing or wrong token", {"WWW-Authenticate": "Bearer"})
    if station is None and principal.device is not None:
        station = principal.device.station
    if station is not None and not principal.may_access(station):
        await _audit_read(request, principal, f"station:{station}", {}, "denied")
        return _error(403, f"this token may not read station {station}")
    try:
        code = lookup(parameter).code if parameter else None
        t0 = query_time(start, ctx.timezone) if start else None
        t1 = query_time(end, ctx.timezone) if end else None
        after = decode_cursor(cursor) if cursor else None
    except (SensorsError, ValueError) as exc:
        return _error(400, str(exc))
    for name, value, allowed in (
        ("interval", interval, INTERVALS),
        ("statistic", statistic, STATISTICS),
        ("basis", basis, BASES),
    ):
        if value is not None and value not in allowed:
            return _error(400, f"{name} must be one of {', '.join(allowed)}")

    rows = await run_in_threadpool(
        lambda: ctx.store.read_observations(
            station=station,
            parameter=code,
            start=t0,
            end=t1,
            interval=interval,
            statistic=statistic,
            basis=basis,
            after=after,
            limit=limit + 1,
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    await _audit_read(
        request,
        principal,
        f"station:{station}" if station is not None else "observations",
        {
            "dataset": "observations",
            "parameter": code,
            "start": start,
            "end": end,
            "items": len(rows),
        },
    )
    tz = ctx.timezone
    items = [
        {
            "station": r.station,
            "parameter": r.parameter,
            "time": r.time.astimezone(tz).isoformat(),
            "value": r.value,
            "unit": r.unit,
            "flag": r.flag,
            "interval": r.interval,
            "statistic": r.statistic,
            "basis": r.basis,
        }
        for r in rows
    ]
    return JSONResponse(
        {"items": items, "next_cursor": encode_cursor(rows[-1]) if more and rows else None}
    )


# --------------------------------------------------------------------------- derived series
async def _operator(request: Request, authorization: str | None) -> Principal | JSONResponse:
    """The operator's principal, or an error answer unless the operator token was given."""
    principal = await run_in_threadpool(_ctx(request).authenticate, authorization, "Bearer")
    if principal is None:
        return _error(401, "missing or wrong token", {"WWW-Authenticate": "Bearer"})
    if not principal.is_operator:
        await run_in_threadpool(
            _ctx(request).audit,
            principal.actor,
            request.method,
            request.url.path,
            "denied",
            request.client.host if request.client else None,
        )
        return _error(403, "this needs the operator token")
    return principal


def _alert_json(row: dict[str, Any], tz: Any) -> dict[str, Any]:
    return {
        k: (v.astimezone(tz).isoformat() if isinstance(v, datetime) else v) for k, v in row.items()
    }


async def _operator_page(
    request: Request,
    authorization: str | None,
    cursor: str | None,
    limit: int,
    kinds: tuple[type[params.CursorKey], ...],
    key: Callable[[dict[str, Any]], tuple[params.CursorKey, ...]],
    read: Callable[[Any, tuple[Any, ...] | None, int], list[dict[str, Any]]],
    dataset: str,
    query: dict[str, Any],
) -> JSONResponse:
    """One page ``{"items": [...], "next_cursor"}`` of ``read(connection, after, limit)`` for
    the operator (times in the bureau's timezone); ``after`` is the decoded cursor (its parts of
    ``kinds``), ``key(row)`` the cursor of a row; 400 for a bad cursor or when ``read`` refuses
    its arguments (``ValueError``). The read is audited (``dataset``, with ``query``)."""
    principal = await _operator(request, authorization)
    if isinstance(principal, JSONResponse):
        return principal
    ctx = _ctx(request)
    try:
        after = params.decode_cursor(cursor, *kinds) if cursor else None
    except ValueError as exc:
        return _error(400, str(exc))

    def run() -> list[dict[str, Any]]:
        with ctx.store.connection() as conn:
            return read(conn, after, limit + 1)

    try:
        rows = await run_in_threadpool(run)
    except ValueError as exc:
        return _error(400, str(exc))
    more = len(rows) > limit
    rows = rows[:limit]
    await _audit_read(request, principal, dataset, {**query, "items": len(rows)})
    return JSONResponse(
        {
            "items": [_alert_json(r, ctx.timezone) for r in rows],
            "next_cursor": params.encode_cursor(*key(rows[-1])) if more and rows else None,
        }
    )


@router.get("/api/v1/alerts", summary="Alerts, newest first (operator)")
async def list_alerts_route(
    request: Request,
    state: Annotated[
        str | None, Query(description="open, acknowledged, closed, or live (open or acknowledged)")
    ] = None,
    station: Annotated[str | None, Query()] = None,
    limit: Limit = 500,
    cursor: Cursor = None,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """``{"items": [{"id", "rule", "station", "parameter", "state", "severity", "message",
    "value", "details", "opened_at", "last_seen", "acknowledged_at", "acknowledged_by",
    "closed_at"}, …], "next_cursor"}``; follow ``next_cursor`` for older alerts."""
    from store import alerts

    return await _operator_page(
        request,
        authorization,
        cursor,
        limit,
        (datetime, int),
        lambda row: (row["opened_at"], row["id"]),
        lambda conn, after, n: alerts.list_alerts(
            conn, state, station, n, after=None if after is None else (after[0], after[1])
        ),
        f"alerts:station={station}" if station else "alerts",
        {"state": state},
    )


@router.get("/api/v1/alerts/webhooks", summary="Webhook events by delivery state (operator)")
async def list_webhook_events_route(
    request: Request,
    state: Annotated[
        str,
        Query(description="abandoned (given up after the maximum attempts), pending or delivered"),
    ] = "abandoned",
    limit: Limit = 500,
    cursor: Cursor = None,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """``{"items": [{"id", "alert_id", "event", "attempts", "next_attempt", "delivered_at",
    "abandoned_at", "last_error", "payload"}, …], "next_cursor"}``, newest first."""
    from store import alerts

    return await _operator_page(
        request,
        authorization,
        cursor,
        limit,
        (int,),
        lambda row: (row["id"],),
        lambda conn, after, n: alerts.list_notifications(
            conn, state, n, after=None if after is None else int(after[0])
        ),
        "alerts:webhooks",
        {"state": state},
    )


@router.post("/api/v1/alerts/{alert_id}/acknowledge", summary="Acknowledge an alert (operator)")
async def acknowledge_route(
    request: Request,
    alert_id: int,
    by: Annotated[
        str | None,
        Query(
            max_length=200,
            deprecated=True,
            description="ignored: the alert is acknowledged by the authenticated caller",
        ),
    ] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """The alert, now ``acknowledged`` by the authenticated caller (``acknowledged_by``:
    ``admin`` for the operator token), audited; 404 unknown, 409 closed."""
    from store import alerts

    principal = await _operator(request, authorization)
    if isinstance(principal, JSONResponse):
        return principal
    ctx = _ctx(request)
    actor = principal.actor
    address = request.client.host if request.client else None

    def ack() -> dict[str, Any]:
        with ctx.store.connection() as conn:
            return alerts.acknowledge(conn, alert_id, actor)

    try:
        row = await run_in_threadpool(ack)
    except alerts.AlertNotFound as exc:
        outcome, answer = "failed", _error(404, str(exc))
    except ValueError as exc:
        outcome, answer = "refused", _error(409, str(exc))
    else:
        outcome = "ok"
        answer = JSONResponse(_alert_json(row, ctx.timezone))
    details = {"station": row.get("station"), "rule": row.get("rule")} if outcome == "ok" else None
    await run_in_threadpool(
        ctx.audit, actor, "alert.acknowledge", f"alert:{alert_id}", outcome, address, details
    )
    return answer


@router.get("/api/v1/audit", summary="The audit, newest first (admin)")
async def audit_route(
    request: Request,
    actor: Annotated[
        str | None, Query(max_length=1000, description="e.g. admin, device:D1")
    ] = None,
    action: Annotated[
        str | None, Query(max_length=200, description="e.g. write, read, import")
    ] = None,
    start: Annotated[str | None, Query(description="ISO 8601, inclusive")] = None,
    end: Annotated[str | None, Query(description="ISO 8601, exclusive")] = None,
    limit: Limit = 500,
    cursor: Cursor = None,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """``{"items": [{"id", "time", "actor", "address", "action", "object", "outcome",
    "details", "prev_hash", "hash"}, …], "next_cursor"}``, newest first; follow
    ``next_cursor`` for older entries. ``ecosense audit verify`` checks the chain."""
    tz = _ctx(request).timezone
    try:
        t0 = query_time(start, tz) if start else None
        t1 = query_time(end, tz) if end else None
    except ValueError as exc:
        return _error(400, str(exc))
    return await _operator_page(
        request,
        authorization,
        cursor,
        limit,
        (int,),
        lambda row: (row["id"],),
        lambda conn, after, n: [
            e.as_json(tz)
            for e in audit.read(
                conn,
                actor=actor,
                action=action,
                start=t0,
                end=t1,
                after=None if after is None else int(after[0]),
                limit=n,
            )
        ],
        "audit",
        {"actor": actor, "action": action, "start": start, "end": end},
    )


@router.get("/api/v1/aggregates", summary="Aggregates with validity (public), paginated")
async def aggregates_route(
    request: Request,
    period: Annotated[str, Query(description="PT1H, PT8H, P1D, P1D-MAX8H, P1M or P1Y")],
    start: Annotated[str, Query(description="ISO 8601, inclusive")],
    end: Annotated[str, Query(description="ISO 8601, exclusive")],
    scope: Annotated[str, Query(description="station or city")] = "station",
    subject: Annotated[str | None, Query(description="station id or city")] = None,
    parameter: Annotated[str | None, Query()] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> JSONResponse:
    """``{"items": [{"scope", "subject", "parameter", "period", "start", "value", "count",
    "valid", "unit"}, …], "next_cursor"}`` ordered by subject, parameter and start; ``start``
    is the period's start in the bureau's time zone. Follow ``next_cursor`` for the next
    page."""
    ctx = _ctx(request)
    if period not in derived.AGGREGATE_PERIODS:
        return _error(400, f"period must be one of {', '.join(derived.AGGREGATE_PERIODS)}")
    if scope not in derived.AGGREGATE_SCOPES:
        return _error(400, f"scope must be one of {', '.join(derived.AGGREGATE_SCOPES)}")
    try:
        t0 = query_time(start, ctx.timezone)
        t1 = query_time(end, ctx.timezone)
        code = lookup(parameter).code if parameter else None
        after = params.decode_cursor(cursor, str, str, datetime) if cursor else None
    except (SensorsError, ValueError) as exc:
        return _error(400, str(exc))

    def read() -> list[derived.AggregateRow]:
        key = None
        if after is not None:
            key = (cast(str, after[0]), cast(str, after[1]), cast(datetime, after[2]))
        with ctx.store.connection() as conn:
            return derived.read_aggregate_page(
                conn,
                scope=scope,
                period=period,
                start=t0,
                end=t1,
                subject=subject,
                parameter=code,
                after=key,
                limit=limit + 1,
            )

    rows = await run_in_threadpool(read)
    more = len(rows) > limit
    rows = rows[:limit]
    tz = ctx.timezone
    items = [
        {
            "scope": scope,
            "subject": r.subject,
            "parameter": r.parameter,
            "period": period,
            "start": r.start.astimezone(tz).isoformat(),
            "value": r.value,
            "count": r.count,
            "valid": r.valid,
            "unit": r.unit,
        }
        for r in rows
    ]
    last = rows[-1] if more and rows else None
    return JSONResponse(
        {
            "items": items,
            "next_cursor": None
            if last is None
            else params.encode_cursor(last.subject, last.parameter, last.start),
        }
    )
