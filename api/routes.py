"""Read routes of the contract: ``/healthz``, ``/api/v1/stations``, ``/api/v1/observations``
(each reading with its provenance), ``/api/v1/observations/versions``.

Times in answers are ISO 8601 in the bureau's timezone (with offset); a query time without
offset is read in the bureau's timezone.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from sensors.errors import SensorsError
from sensors.observations import BASES, INTERVALS, STATISTICS, Source, parse_time
from sensors.parameters import lookup
from store.context import ServiceContext
from store.errors import NotFound
from store.postgres import AmbiguousStream, StoredObservation

router = APIRouter(tags=["read"])

MAX_LIMIT = 10_000


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


@router.get("/healthz", summary="200 when the store is reachable")
async def healthz(request: Request) -> JSONResponse:
    """``{"status": "ok"}`` when the store answers, else 503."""
    ok = await run_in_threadpool(_ctx(request).store.ping)
    if ok:
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "unavailable", "detail": "store unreachable"}, status_code=503)


@router.get("/api/v1/stations", summary="Every station (public metadata)")
async def stations(request: Request) -> dict[str, Any]:
    """Stations with id, name, kind, lon/lat (WGS 84, degrees), attributes, simulated."""
    rows = await run_in_threadpool(_ctx(request).store.list_stations)
    return {
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
        ]
    }


def source_json(source: Source | None) -> dict[str, str | None]:
    """A reading's provenance as the API gives it: ``{"protocol", "device"}``, plus ``user``
    and ``file`` when set (file imports, operator writes); nulls for readings stored before
    provenance was recorded."""
    if source is None:
        return {"protocol": None, "device": None}
    out = {"protocol": source.protocol, "device": source.device}
    if source.user is not None:
        out["user"] = source.user
    if source.file is not None:
        out["file"] = source.file
    return out


def _text_problem(name: str, value: str | None) -> str | None:
    """Why a query text cannot be looked up (NUL, unpaired surrogate), or ``None``."""
    if value is None:
        return None
    if "\x00" in value:
        return f"{name} must not contain NUL characters"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{name} must be valid Unicode text"
    return None


def encode_cursor(row: StoredObservation) -> str:
    """An opaque cursor naming the position after ``row``."""
    raw = json.dumps([row.stream_id, row.time.isoformat()]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, datetime]:
    """The (stream id, time) of a cursor; ``ValueError`` when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        sid, t = json.loads(raw)
        when = datetime.fromisoformat(t)
        if not isinstance(sid, int) or when.tzinfo is None:
            raise ValueError
        return sid, when
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise ValueError("invalid cursor") from exc


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
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 1000,
    cursor: Annotated[str | None, Query()] = None,
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
        return _error(403, f"this token may not read station {station}")
    try:
        code = lookup(parameter).code if parameter else None
        t0 = parse_time(start, ctx.timezone) if start else None
        t1 = parse_time(end, ctx.timezone) if end else None
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
            "received_at": r.received_at.astimezone(tz).isoformat() if r.received_at else None,
            "source": source_json(r.source),
        }
        for r in rows
    ]
    return JSONResponse(
        {"items": items, "next_cursor": encode_cursor(rows[-1]) if more and rows else None}
    )


@router.get(
    "/api/v1/observations/versions",
    summary="Every version of one reading, oldest first",
    responses={
        400: {"description": "bad input, or several streams match (they are named)"},
        404: {"description": "no reading of that station and parameter at that time"},
    },
)
async def observation_versions(
    request: Request,
    station: Annotated[str, Query(description="station id (a device token: its own)")],
    parameter: Annotated[str, Query(description="canonical or HJ 212 code")],
    time: Annotated[str, Query(description="ISO 8601 time of the reading")],
    interval: Annotated[str | None, Query(description="PT1M, PT1H or P1D")] = None,
    statistic: Annotated[str | None, Query(description="avg, min, max or cou")] = None,
    basis: Annotated[str | None, Query(description="measured or converted")] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """``{"items": [{"value", "flag", "unit", "received_at", "source", "superseded_at"}, …]}``:
    the values a reading had, oldest first; the current one has ``"superseded_at": null``.
    Raw data are never overwritten: a re-sent reading with another value becomes the current
    one and the previous value stays here. Same access rule as ``/api/v1/observations``."""
    ctx = _ctx(request)
    principal = await run_in_threadpool(ctx.authenticate, authorization, "Bearer")
    if principal is None:
        return _error(401, "missing or wrong token", {"WWW-Authenticate": "Bearer"})
    for name, text in (("station", station), ("parameter", parameter), ("time", time)):
        problem = _text_problem(name, text)
        if problem:
            return _error(400, problem)
    if not principal.may_access(station):
        return _error(403, f"this token may not read station {station}")
    try:
        code = lookup(parameter).code
        when = parse_time(time, ctx.timezone)
    except (SensorsError, ValueError, OverflowError) as exc:
        return _error(400, str(exc))
    for name, value, allowed in (
        ("interval", interval, INTERVALS),
        ("statistic", statistic, STATISTICS),
        ("basis", basis, BASES),
    ):
        if value is not None and value not in allowed:
            return _error(400, f"{name} must be one of {', '.join(allowed)}")
    try:
        versions = await run_in_threadpool(
            lambda: ctx.store.observation_versions(
                station=station,
                parameter=code,
                time=when,
                interval=interval,
                statistic=statistic,
                basis=basis,
            )
        )
    except NotFound as exc:
        return _error(404, str(exc))
    except AmbiguousStream as exc:
        return _error(400, str(exc))
    tz = ctx.timezone
    items = [
        {
            "value": v.value,
            "flag": v.flag,
            "unit": v.unit,
            "received_at": v.received_at.astimezone(tz).isoformat(),
            "source": source_json(v.source),
            "superseded_at": (
                v.superseded_at.astimezone(tz).isoformat() if v.superseded_at else None
            ),
        }
        for v in versions
    ]
    return JSONResponse({"items": items})


# --------------------------------------------------------------------------- derived series
async def _operator(request: Request, authorization: str | None) -> JSONResponse | None:
    """An error answer unless the operator token was given."""
    principal = await run_in_threadpool(_ctx(request).authenticate, authorization, "Bearer")
    if principal is None:
        return _error(401, "missing or wrong token", {"WWW-Authenticate": "Bearer"})
    if not principal.is_operator:
        return _error(403, "this needs the operator token")
    return None


def _alert_json(row: dict[str, Any], tz: Any) -> dict[str, Any]:
    return {
        k: (v.astimezone(tz).isoformat() if isinstance(v, datetime) else v) for k, v in row.items()
    }


@router.get("/api/v1/alerts", summary="Alerts, newest first (operator)")
async def list_alerts_route(
    request: Request,
    state: Annotated[
        str | None, Query(description="open, acknowledged, closed, or live (open or acknowledged)")
    ] = None,
    station: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 500,
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """``{"items": [{"id", "rule", "station", "parameter", "state", "severity", "message",
    "value", "details", "opened_at", "last_seen", "acknowledged_at", "acknowledged_by",
    "closed_at"}, …]}``."""
    from pipelines import alerts

    denied = await _operator(request, authorization)
    if denied is not None:
        return denied
    ctx = _ctx(request)

    def read() -> list[dict[str, Any]]:
        with ctx.store.connection() as conn:
            return alerts.list_alerts(conn, state, station, limit)

    try:
        rows = await run_in_threadpool(read)
    except ValueError as exc:
        return _error(400, str(exc))
    return JSONResponse({"items": [_alert_json(r, ctx.timezone) for r in rows]})


@router.post("/api/v1/alerts/{alert_id}/acknowledge", summary="Acknowledge an alert (operator)")
async def acknowledge_route(
    request: Request,
    alert_id: int,
    by: Annotated[str, Query(max_length=200, description="who acknowledges")] = "operator",
    authorization: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """The alert, now ``acknowledged`` (404 unknown, 409 closed)."""
    from pipelines import alerts

    denied = await _operator(request, authorization)
    if denied is not None:
        return denied
    ctx = _ctx(request)

    def ack() -> dict[str, Any]:
        with ctx.store.connection() as conn:
            return alerts.acknowledge(conn, alert_id, by)

    try:
        row = await run_in_threadpool(ack)
    except alerts.AlertNotFound as exc:
        return _error(404, str(exc))
    except ValueError as exc:
        return _error(409, str(exc))
    return JSONResponse(_alert_json(row, ctx.timezone))


@router.get("/api/v1/aggregates", summary="Aggregates with validity (public)")
async def aggregates_route(
    request: Request,
    period: Annotated[str, Query(description="PT1H, PT8H, P1D, P1D-MAX8H, P1M or P1Y")],
    start: Annotated[str, Query(description="ISO 8601, inclusive")],
    end: Annotated[str, Query(description="ISO 8601, exclusive")],
    scope: Annotated[str, Query(description="station or city")] = "station",
    subject: Annotated[str | None, Query(description="station id or city")] = None,
    parameter: Annotated[str | None, Query()] = None,
) -> JSONResponse:
    """``{"items": [{"scope", "subject", "parameter", "period", "start", "value", "count",
    "valid", "unit"}, …]}``; ``start`` is the period's start in the bureau's time zone."""
    from store import derived

    ctx = _ctx(request)
    try:
        t0 = parse_time(start, ctx.timezone)
        t1 = parse_time(end, ctx.timezone)
        code = lookup(parameter).code if parameter else None
    except (SensorsError, ValueError) as exc:
        return _error(400, str(exc))

    def read() -> Any:
        with ctx.store.connection() as conn:
            return derived.read_aggregates(
                conn,
                scope=scope,
                period=period,
                start=t0,
                end=t1,
                subjects=[subject] if subject else None,
                parameters=[code] if code else None,
            )

    frame = await run_in_threadpool(read)
    items = [
        {
            "scope": scope,
            "subject": r.subject,
            "parameter": r.parameter,
            "period": period,
            "start": r.start.tz_convert(ctx.timezone).isoformat(),
            "value": None if r.value != r.value else r.value,
            "count": r.count,
            "valid": bool(r.valid),
            "unit": r.unit,
        }
        for r in frame.head(MAX_LIMIT).itertuples(index=False)
    ]
    return JSONResponse({"items": items})
