"""Read routes: ``GET /healthz``, ``/api/v1/stations``, ``/api/v1/observations`` (each
reading with its provenance), ``/api/v1/observations/versions``, ``/api/v1/aggregates`` (with
validity), ``/api/v1/alerts``, ``/api/v1/alerts/webhooks`` and
``POST /api/v1/alerts/{id}/acknowledge`` (operator), ``/api/v1/audit`` (admin).

Who may call each one is decided by :func:`access.authorize` through the one dependency
:func:`api.auth.caller`: station data by the station's grade (anonymous callers read public
stations), alerts from ``viewer`` up and by the grade of their station (as are webhook
events, from ``analyst`` up), acknowledgements from ``operator`` up (a restricted station's
alert: ``admin``), the audit ``admin`` only. Every read of non-public data (a grade above
``public``) is audited (:mod:`store.audit`), once per request, with the caller's
:attr:`access.Principal.actor`; a refusal to an authenticated caller is audited as ``denied``
(``ecosense.app``).

Times in answers are ISO 8601 in the bureau's timezone (with offset); a query time without
offset is read in the bureau's timezone. Every list route pages: ``limit`` and ``cursor`` in,
``{"items", "next_cursor"}`` out (:mod:`api.params`); a bad query parameter is a 400 or 422.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

import access
from access import Action, Dataset, Grade
from api import params
from api.auth import (
    Caller,
    allow,
    readable_stations,
    require,
    station_dataset,
    station_datasets,
)
from api.params import DEFAULT_LIMIT, MAX_LIMIT, check_order, query_time
from sensors.errors import SensorsError
from sensors.observations import BASES, INTERVALS, STATISTICS, Source, check_text, parse_time
from sensors.parameters import domain_of_kind, lookup
from sensors.stations import Station
from store import audit, derived
from store.context import ServiceContext
from store.errors import NotFound
from store.postgres import AmbiguousStream, StoredObservation

router = APIRouter(tags=["read"])
#: ``GET /healthz`` alone: what an instance without the ``gateway`` role serves
health_router = APIRouter(tags=["read"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _address(request: Request) -> str | None:
    """The client's address, for the audit."""
    return request.client.host if request.client else None


async def audit_read(
    request: Request,
    principal: access.Principal,
    object: str,
    details: dict[str, Any],
    outcome: str = "ok",
) -> None:
    """Audit a read of non-public data (one entry per request, off the event loop)."""
    await run_in_threadpool(
        _ctx(request).audit,
        principal.actor,
        "read",
        object,
        outcome,
        _address(request),
        details,
    )


def stations_object(stations: list[str], most: int = 20) -> str:
    """The audit's ``object`` naming stations: ``station:S1,S2`` (sorted, at most ``most``)."""
    from ingest.accept import stations_object as named

    return named(stations, most)


async def non_public_stations(
    request: Request, principal: access.Principal, known: Dataset | None, stations: set[str]
) -> list[str]:
    """Which of ``stations`` (read by ``principal``) are above ``public``: ``known`` when the
    route resolved the one station asked for, else their grades are looked up (not for
    anonymous callers, who read public stations only)."""
    if known is not None:  # audited even when nothing is there yet: it was asked for
        return [known.station] if known.grade > Grade.PUBLIC and known.station else []
    if not stations:
        return []
    if access.ceiling(principal) == Grade.PUBLIC:
        return []
    graded = await run_in_threadpool(station_datasets, _ctx(request), sorted(stations))
    return sorted(d.station for d in graded if d.station is not None and d.grade > Grade.PUBLIC)


@health_router.get(
    "/healthz",
    summary="200 when the store is reachable; this instance's roles and jobs leadership",
    dependencies=[Depends(allow(Action.READ, "health"))],
)
async def healthz(request: Request) -> JSONResponse:
    """``{"status": "ok", "roles": [...], "jobs_leader": true|false}`` when the store answers,
    else 503: ``roles`` are what this instance runs (``ecosense up --roles``), ``jobs_leader``
    whether its scheduler is the one that runs the jobs (of all instances on the database)."""
    ok = await run_in_threadpool(_ctx(request).store.ping)
    if ok:
        state = request.app.state
        return JSONResponse(
            {
                "status": "ok",
                "roles": list(state.roles),
                "jobs_leader": bool(state.jobs_leader()),
            }
        )
    return JSONResponse({"status": "unavailable", "detail": "store unreachable"}, status_code=503)


@router.get(
    "/api/v1/stations",
    summary="The stations whose data the caller may read (metadata), paginated",
)
async def stations(
    request: Request,
    principal: Annotated[access.Principal, Depends(allow(Action.READ, "stations"))],
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> JSONResponse:
    """Stations with id, name, kind, lon/lat (WGS 84, degrees), attributes, simulated, by id;
    follow ``next_cursor`` for the next page. Only the stations whose readings the caller may
    read are listed (anonymous callers: the public ones), as on the dashboard: a station
    above the caller's grade appears nowhere."""
    try:
        after = cast(str, params.decode_cursor(cursor, str)[0]) if cursor else None
    except ValueError as exc:
        return _error(400, str(exc))
    ctx = _ctx(request)

    def read() -> list[Station]:
        readable = readable_stations(ctx, principal)
        return ctx.store.list_stations(after=after, limit=limit + 1, ids=readable)

    rows = await run_in_threadpool(read)
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


def encode_cursor(row: StoredObservation) -> str:
    """An opaque cursor naming the position after ``row``."""
    return params.encode_cursor(row.stream_id, row.time)


def decode_cursor(cursor: str) -> tuple[int, datetime]:
    """The (stream id, time) of a cursor; ``ValueError`` when it is not one of ours."""
    sid, when = params.decode_cursor(cursor, int, datetime)
    return cast(int, sid), cast(datetime, when)


def parameter_code(ctx: ServiceContext, parameter: str, station: str | None) -> str:
    """The canonical code of ``parameter`` (canonical or HJ 212) as ``station`` measures it: a
    code shared by media (``cd``: soil mg/kg, water mg/L) resolves by the station's kind, as
    it did when the reading was written. Blocking (asks the store for the kind).

    Raises
    ------
    SensorsError
        for a code the dictionary does not know.
    """
    kind = ctx.store.station_kinds([station]).get(station) if station is not None else None
    return lookup(parameter, domain_of_kind(kind)).code


def _stream_kind_problem(
    interval: str | None, statistic: str | None, basis: str | None
) -> str | None:
    """Why a stream-kind filter is not one of ours, or ``None`` (each may be left out)."""
    for name, value, allowed in (
        ("interval", interval, INTERVALS),
        ("statistic", statistic, STATISTICS),
        ("basis", basis, BASES),
    ):
        if value is not None and value not in allowed:
            return f"{name} must be one of {', '.join(allowed)}"
    return None


@router.get("/api/v1/observations", summary="Readings with flags, paginated")
async def observations(
    request: Request,
    principal: Caller,
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
) -> JSONResponse:
    """Observations ordered by stream and time; follow ``next_cursor`` for the next page.
    Only the stations the caller may read by their grade (anonymous callers: ``public``
    ones); naming a station beyond the caller's grade is a 401 (anonymous) or 403."""
    ctx = _ctx(request)
    if station is None and principal.kind == "device":
        station = principal.station
    readable: list[str] | None = None
    asked: Dataset | None = None
    if station is not None:
        asked = await run_in_threadpool(station_dataset, ctx, station)
        require(principal, Action.READ, asked)
    else:
        readable = await run_in_threadpool(readable_stations, ctx, principal)
    try:
        code = (
            await run_in_threadpool(parameter_code, ctx, parameter, station) if parameter else None
        )
        t0 = query_time(start, ctx.timezone) if start else None
        t1 = query_time(end, ctx.timezone) if end else None
        check_order(t0, t1)
        after = decode_cursor(cursor) if cursor else None
    except (SensorsError, ValueError) as exc:
        return _error(400, str(exc))
    problem = _stream_kind_problem(interval, statistic, basis)
    if problem is not None:
        return _error(400, problem)

    rows = await run_in_threadpool(
        lambda: ctx.store.read_observations(
            station=station,
            stations=readable,
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
    graded = await non_public_stations(request, principal, asked, {r.station for r in rows})
    if graded:
        await audit_read(
            request,
            principal,
            stations_object(graded),
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
            "received_at": r.received_at.astimezone(tz).isoformat() if r.received_at else None,
            "source": source_json(r.source),
        }
        for r in rows
    ]
    from api.reviews import observation_reviews

    reviewed = await run_in_threadpool(observation_reviews, ctx, rows)
    for item, review in zip(items, reviewed, strict=True):
        if review is not None:  # invalidated by a reviewer (数据审核)
            item["review"] = review
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
    principal: Caller,
    station: Annotated[str, Query(description="station id (a device token: its own)")],
    parameter: Annotated[str, Query(description="canonical or HJ 212 code")],
    time: Annotated[str, Query(description="ISO 8601 time of the reading")],
    interval: Annotated[
        str | None, Query(description="PT1M, PT1H or P1D; empty: an instantaneous reading")
    ] = None,
    statistic: Annotated[
        str | None, Query(description="avg, min, max or cou; empty: an instantaneous reading")
    ] = None,
    basis: Annotated[str | None, Query(description="measured or converted")] = None,
) -> JSONResponse:
    """``{"items": [{"value", "flag", "unit", "received_at", "source", "superseded_at"}, …]}``:
    the values a reading had, oldest first; the current one has ``"superseded_at": null``.
    Raw data are never overwritten: a re-sent reading with another value becomes the current
    one and the previous value stays here. Same access rule as ``/api/v1/observations``."""
    ctx = _ctx(request)
    try:
        for name, text in (("station", station), ("parameter", parameter), ("time", time)):
            check_text(name, text)
    except SensorsError as exc:
        return _error(400, str(exc))
    asked = await run_in_threadpool(station_dataset, ctx, station)
    require(principal, Action.READ, asked)
    try:
        code = await run_in_threadpool(parameter_code, ctx, parameter, station)
        when = parse_time(time, ctx.timezone)
    except (SensorsError, ValueError, OverflowError) as exc:
        return _error(400, str(exc))
    with contextlib.suppress(OverflowError):  # messages name the time in the bureau's zone
        when = when.astimezone(ctx.timezone)
    # an empty interval or statistic (``interval=``) names the instantaneous stream
    problem = _stream_kind_problem(interval or None, statistic or None, basis)
    if problem is not None:
        return _error(400, problem)
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
    if asked.grade > Grade.PUBLIC:
        await audit_read(
            request,
            principal,
            f"station:{station}",
            {"dataset": "observation-versions", "parameter": code, "time": time},
        )
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
def _alert_json(row: dict[str, Any], tz: Any) -> dict[str, Any]:
    return {
        k: (v.astimezone(tz).isoformat() if isinstance(v, datetime) else v) for k, v in row.items()
    }


async def _page(
    request: Request,
    cursor: str | None,
    limit: int,
    kinds: tuple[type[params.CursorKey], ...],
    key: Callable[[dict[str, Any]], tuple[params.CursorKey, ...]],
    read: Callable[[Any, tuple[Any, ...] | None, int], list[dict[str, Any]]],
    audited: tuple[access.Principal, str, str, dict[str, Any]] | None = None,
) -> JSONResponse:
    """One page ``{"items": [...], "next_cursor"}`` of ``read(connection, after, limit)``
    (times in the bureau's timezone); ``after`` is the decoded cursor (its parts of
    ``kinds``), ``key(row)`` the cursor of a row; 400 for a bad cursor or when ``read`` refuses
    its arguments (``ValueError``). ``audited``: (caller, dataset, object, query) of a read
    to audit when the dataset is above ``public``."""
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
    if audited is not None:
        principal, name, object, query = audited
        if access.dataset(name).grade > Grade.PUBLIC:
            await audit_read(
                request, principal, object, {"dataset": name, **query, "items": len(rows)}
            )
    return JSONResponse(
        {
            "items": [_alert_json(r, ctx.timezone) for r in rows],
            "next_cursor": params.encode_cursor(*key(rows[-1])) if more and rows else None,
        }
    )


async def _readable_alerts(
    request: Request, principal: access.Principal, station: str | None
) -> list[str] | None:
    """The stations whose alerts ``principal`` may read (``None``: all): an alert carries its
    station's grade. ``station`` named: that one, or :class:`api.auth.Denied` beyond the
    caller's grade."""
    ctx = _ctx(request)
    if station is not None:
        require(principal, Action.READ, await run_in_threadpool(station_dataset, ctx, station))
        return None
    return await run_in_threadpool(readable_stations, ctx, principal)


@router.get(
    "/api/v1/alerts",
    summary="Alerts, newest first (viewer and up: internal)",
)
async def list_alerts_route(
    request: Request,
    principal: Annotated[access.Principal, Depends(allow(Action.READ, "alerts"))],
    state: Annotated[
        str | None, Query(description="open, acknowledged, closed, or live (open or acknowledged)")
    ] = None,
    station: Annotated[str | None, Query()] = None,
    limit: Limit = 500,
    cursor: Cursor = None,
) -> JSONResponse:
    """``{"items": [{"id", "rule", "station", "parameter", "state", "severity", "message",
    "message_zh", "value", "details", "opened_at", "last_seen", "acknowledged_at",
    "acknowledged_by", "closed_at"}, …], "next_cursor"}``; follow ``next_cursor`` for older
    alerts. ``message`` is in English, ``message_zh`` the same in Chinese. Only the
    alerts of stations the caller may read by their grade are listed (a viewer: public and
    internal stations, not a plant's CEMS); naming a station beyond the caller's grade is a
    403."""
    from store import alerts

    readable = await _readable_alerts(request, principal, station)
    return await _page(
        request,
        cursor,
        limit,
        (datetime, int),
        lambda row: (row["opened_at"], row["id"]),
        lambda conn, after, n: alerts.list_alerts(
            conn,
            state,
            station,
            n,
            after=None if after is None else (after[0], after[1]),
            stations=readable,
        ),
        (
            principal,
            "alerts",
            f"alerts:station={station}" if station else "alerts",
            {"state": state},
        ),
    )


@router.get(
    "/api/v1/alerts/webhooks",
    summary="Webhook events by delivery state (analyst and up: sensitive)",
)
async def list_webhook_events_route(
    request: Request,
    principal: Annotated[access.Principal, Depends(allow(Action.READ, "webhook-events"))],
    state: Annotated[
        str,
        Query(description="abandoned (given up after the maximum attempts), pending or delivered"),
    ] = "abandoned",
    limit: Limit = 500,
    cursor: Cursor = None,
) -> JSONResponse:
    """``{"items": [{"id", "alert_id", "event", "attempts", "next_attempt", "delivered_at",
    "abandoned_at", "last_error", "payload"}, …], "next_cursor"}``, newest first; only the
    events of alerts on stations the caller may read by their grade."""
    from store import alerts

    readable = await _readable_alerts(request, principal, None)
    return await _page(
        request,
        cursor,
        limit,
        (int,),
        lambda row: (row["id"],),
        lambda conn, after, n: alerts.list_notifications(
            conn, state, n, after=None if after is None else int(after[0]), stations=readable
        ),
        (principal, "webhook-events", "alerts:webhooks", {"state": state}),
    )


@router.post(
    "/api/v1/alerts/{alert_id}/acknowledge",
    summary="Acknowledge an alert (operator)",
)
async def acknowledge_route(
    request: Request,
    alert_id: int,
    principal: Annotated[access.Principal, Depends(allow(Action.OPERATE, "alerts"))],
    by: Annotated[
        str | None,
        Query(
            max_length=200,
            deprecated=True,
            description="ignored: the alert is acknowledged by the authenticated caller",
        ),
    ] = None,
) -> JSONResponse:
    """The alert, now ``acknowledged`` by the authenticated caller (``acknowledged_by``: the
    user's name, ``admin`` for the break-glass token), audited; 404 unknown, 409 closed, 403
    for an alert on a station beyond the caller's grade (a restricted one needs admin)."""
    from store import alerts

    ctx = _ctx(request)
    actor = principal.actor

    def station_of() -> str | None:
        with ctx.store.connection() as conn:
            try:
                return alerts.alert_station(conn, alert_id)
            except alerts.AlertNotFound:
                return None  # answered 404 below, audited

    station = await run_in_threadpool(station_of)
    if station is not None:
        require(principal, Action.READ, await run_in_threadpool(station_dataset, ctx, station))

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
        ctx.audit,
        actor,
        "alert.acknowledge",
        f"alert:{alert_id}",
        outcome,
        _address(request),
        details,
    )
    return answer


@router.get("/api/v1/audit", summary="The audit, newest first (admin: restricted)")
async def audit_route(
    request: Request,
    principal: Annotated[access.Principal, Depends(allow(Action.READ, "audit"))],
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
) -> JSONResponse:
    """``{"items": [{"id", "time", "actor", "address", "action", "object", "outcome",
    "details", "prev_hash", "hash"}, …], "next_cursor"}``, newest first; follow
    ``next_cursor`` for older entries. ``ecosense audit verify`` checks the chain."""
    tz = _ctx(request).timezone
    try:
        t0 = query_time(start, tz) if start else None
        t1 = query_time(end, tz) if end else None
        check_order(t0, t1)
    except ValueError as exc:
        return _error(400, str(exc))
    return await _page(
        request,
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
        (
            principal,
            "audit",
            "audit",
            {"actor": actor, "action": action, "start": start, "end": end},
        ),
    )


StationAlias = Annotated[
    str | None, Query(description="a station id: the same as scope=station&subject=ID")
]


def _station_alias(scope: str, subject: str | None, station: str | None) -> tuple[str, str | None]:
    """``(scope, subject)`` with ``station=ID`` taken as ``scope=station&subject=ID``;
    ``ValueError`` when it contradicts them."""
    if station is None:
        return scope, subject
    if scope != "station" or (subject is not None and subject != station):
        raise ValueError("station= names a station: give it alone, or scope and subject")
    return "station", station


async def _subject_access(
    request: Request, principal: access.Principal, scope: str, subject: str | None
) -> tuple[list[str] | None, Dataset | None]:
    """Who may read a derived series of ``scope`` (``station`` or ``city``): the stations the
    caller may read (``None``: all, or a city scope) and the dataset of the one station named.
    A station series carries its station's grade (naming one beyond the caller's is a 401 or
    403); a city's is ``city-aggregates``, made of public stations (CONTRACT.md, "Grades")."""
    ctx = _ctx(request)
    if scope == "station" and subject is not None:
        found = await run_in_threadpool(station_datasets, ctx, [subject])
        if not found:
            raise HTTPException(404, f"no station {subject!r}: GET /api/v1/stations lists them")
        asked = found[0]
        require(principal, Action.READ, asked)
        return None, asked
    if scope == "station":
        return await run_in_threadpool(readable_stations, ctx, principal), None
    require(principal, Action.READ, access.dataset("city-aggregates"))
    return None, None


@router.get(
    "/api/v1/aggregates",
    summary="Aggregates with validity (by the grade of each station), paginated",
)
async def aggregates_route(
    request: Request,
    principal: Caller,
    period: Annotated[
        str,
        Query(
            description="PT1H, PT8H, P1D, P1D-MAX8H, P1D-LD, P1D-LN, P1D-LDN (noise), P1M or P1Y"
        ),
    ],
    start: Annotated[str, Query(description="ISO 8601, inclusive")],
    end: Annotated[str, Query(description="ISO 8601, exclusive")],
    scope: Annotated[str, Query(description="station or city")] = "station",
    subject: Annotated[str | None, Query(description="station id or city")] = None,
    parameter: Annotated[str | None, Query()] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    station: StationAlias = None,
) -> JSONResponse:
    """``{"items": [{"scope", "subject", "parameter", "period", "start", "value", "count",
    "valid", "unit"}, …], "next_cursor"}`` ordered by subject, parameter and start; ``start``
    is the period's start in the bureau's time zone. Follow ``next_cursor`` for the next
    page. Station aggregates carry their station's grade: only the stations the caller may
    read are listed, and naming one beyond the caller's grade is a 401 (anonymous) or 403."""
    ctx = _ctx(request)
    try:
        scope, subject = _station_alias(scope, subject, station)
    except ValueError as exc:
        return _error(400, str(exc))
    if period not in derived.AGGREGATE_PERIODS:
        return _error(400, f"period must be one of {', '.join(derived.AGGREGATE_PERIODS)}")
    if scope not in derived.AGGREGATE_SCOPES:
        return _error(400, f"scope must be one of {', '.join(derived.AGGREGATE_SCOPES)}")
    try:
        t0 = query_time(start, ctx.timezone)
        t1 = query_time(end, ctx.timezone)
        check_order(t0, t1)
        code = lookup(parameter).code if parameter else None
        after = params.decode_cursor(cursor, str, str, datetime) if cursor else None
    except (SensorsError, ValueError) as exc:
        return _error(400, str(exc))
    readable, asked = await _subject_access(request, principal, scope, subject)

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
                subjects=readable,
            )

    rows = await run_in_threadpool(read)
    more = len(rows) > limit
    rows = rows[:limit]
    if scope == "station":
        graded = await non_public_stations(request, principal, asked, {r.subject for r in rows})
        if graded:
            await audit_read(
                request,
                principal,
                stations_object(graded),
                {
                    "dataset": "aggregates",
                    "period": period,
                    "parameter": code,
                    "start": start,
                    "end": end,
                    "items": len(rows),
                },
            )
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


# ------------------------------------------------------------------------- assessments
#: what the routes below call the ``label`` and ``value`` of each assessment kind
_AQI_REPORTS: dict[str, str] = {"hourly": "aqi-hourly", "daily": "aqi-daily"}
_WATER_PERIODS: dict[str, str] = {"daily": "water-daily", "monthly": "water-monthly"}


def _aqi_item(row: derived.AssessmentRow) -> dict[str, Any]:
    from sensors.standards.aqi import CATEGORIES

    category = CATEGORIES.get(row.level) if row.level is not None else None
    details = row.details or {}
    return {
        "aqi": row.value,
        "level": row.level,
        "category": {"zh": category[1], "en": category[2]} if category else None,
        "primary_pollutants": [p for p in row.label.split(",") if p],
        "iaqi": {k: v for k, v in details.items() if not k.startswith("c_")},
        "concentrations": {k[2:]: v for k, v in details.items() if k.startswith("c_")},
    }


def _water_item(row: derived.AssessmentRow) -> dict[str, Any]:
    details = row.details or {}
    return {
        "class": row.value,
        "exceeding": [p for p in row.label.split(",") if p],
        "water_body": details.get("water_body"),
        "target_class": details.get("target_class"),
        "classes": details.get("classes", {}),
    }


def _soil_item(row: derived.AssessmentRow) -> dict[str, Any]:
    details = row.details or {}
    return {
        "risk_class": row.label,
        "level": row.level,
        "ph": details.get("ph"),
        "land_use": details.get("land_use"),
        "ratios": details.get("ratios", {}),
    }


async def _assessments(
    request: Request,
    principal: access.Principal,
    *,
    kind: str,
    scope: str,
    subject: str | None,
    start: str,
    end: str,
    limit: int,
    cursor: str | None,
    item: Callable[[derived.AssessmentRow], dict[str, Any]],
    query: dict[str, Any],
) -> JSONResponse:
    """One page of the assessments of ``kind`` (``{"items", "next_cursor"}``), each item
    ``{"scope", "subject", "start", …item(row)}``, with the access rule and the audit of
    ``/api/v1/aggregates``."""
    ctx = _ctx(request)
    if scope not in derived.AGGREGATE_SCOPES:
        return _error(400, f"scope must be one of {', '.join(derived.AGGREGATE_SCOPES)}")
    try:
        t0 = query_time(start, ctx.timezone)
        t1 = query_time(end, ctx.timezone)
        check_order(t0, t1)
        after = params.decode_cursor(cursor, str, datetime) if cursor else None
    except (SensorsError, ValueError) as exc:
        return _error(400, str(exc))
    readable, asked = await _subject_access(request, principal, scope, subject)

    def read() -> list[derived.AssessmentRow]:
        key = None if after is None else (cast(str, after[0]), cast(datetime, after[1]))
        with ctx.store.connection() as conn:
            return derived.read_assessment_page(
                conn,
                kind=kind,
                scope=scope,
                start=t0,
                end=t1,
                subject=subject,
                after=key,
                limit=limit + 1,
                subjects=readable,
            )

    rows = await run_in_threadpool(read)
    more = len(rows) > limit
    rows = rows[:limit]
    if scope == "station":
        graded = await non_public_stations(request, principal, asked, {r.subject for r in rows})
        if graded:
            await audit_read(
                request,
                principal,
                stations_object(graded),
                {"dataset": kind, **query, "start": start, "end": end, "items": len(rows)},
            )
    tz = ctx.timezone
    items = [
        {"scope": scope, "subject": r.subject, "start": r.start.astimezone(tz).isoformat()}
        | item(r)
        for r in rows
    ]
    last = rows[-1] if more and rows else None
    return JSONResponse(
        {
            "items": items,
            "next_cursor": None if last is None else params.encode_cursor(last.subject, last.start),
        }
    )


@router.get("/api/v1/aqi", summary="Hourly and daily AQI (HJ 633-2026) of stations and cities")
async def aqi_route(
    request: Request,
    principal: Caller,
    start: Annotated[str, Query(description="ISO 8601, inclusive (the hour's or day's start)")],
    end: Annotated[str, Query(description="ISO 8601, exclusive")],
    scope: Annotated[str, Query(description="station or city")] = "station",
    report: Annotated[str, Query(description="hourly or daily")] = "hourly",
    subject: Annotated[str | None, Query(description="a station id or a city")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    station: StationAlias = None,
) -> JSONResponse:
    """``{"items": [{"scope", "subject", "start", "aqi", "level", "category": {"zh", "en"},
    "primary_pollutants", "iaqi", "concentrations"}, …], "next_cursor"}`` ordered by subject
    and start (the hour's or the bureau's day's start, in the bureau's time zone); ``iaqi``
    per pollutant of the report, ``concentrations`` the means it was computed from (µg/m³,
    CO mg/m³). A station's AQI carries its station's grade, as its aggregates do."""
    if report not in _AQI_REPORTS:
        return _error(400, f"report must be one of {', '.join(_AQI_REPORTS)}")
    try:
        scope, subject = _station_alias(scope, subject, station)
    except ValueError as exc:
        return _error(400, str(exc))
    return await _assessments(
        request,
        principal,
        kind=_AQI_REPORTS[report],
        scope=scope,
        subject=subject,
        start=start,
        end=end,
        limit=limit,
        cursor=cursor,
        item=_aqi_item,
        query={"report": report},
    )


@router.get("/api/v1/water-classes", summary="Surface-water classes (GB 3838-2002) by day or month")
async def water_classes_route(
    request: Request,
    principal: Caller,
    start: Annotated[str, Query(description="ISO 8601, inclusive")],
    end: Annotated[str, Query(description="ISO 8601, exclusive")],
    scope: Annotated[str, Query(description="station or city")] = "station",
    period: Annotated[str, Query(description="daily or monthly")] = "daily",
    subject: Annotated[str | None, Query(description="a station id or a city")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    station: StationAlias = None,
) -> JSONResponse:
    """``{"items": [{"scope", "subject", "start", "class", "exceeding", "water_body",
    "target_class", "classes"}, …], "next_cursor"}``: ``class`` 1–6 (I–V, 6 = worse than V),
    ``exceeding`` the parameters worse than the target class, ``classes`` per parameter."""
    if period not in _WATER_PERIODS:
        return _error(400, f"period must be one of {', '.join(_WATER_PERIODS)}")
    try:
        scope, subject = _station_alias(scope, subject, station)
    except ValueError as exc:
        return _error(400, str(exc))
    return await _assessments(
        request,
        principal,
        kind=_WATER_PERIODS[period],
        scope=scope,
        subject=subject,
        start=start,
        end=end,
        limit=limit,
        cursor=cursor,
        item=_water_item,
        query={"period": period},
    )


@router.get("/api/v1/soil-risk", summary="Farmland soil risk classes (GB 15618-2018) by sample")
async def soil_risk_route(
    request: Request,
    principal: Caller,
    start: Annotated[str, Query(description="ISO 8601, inclusive (sampling time)")],
    end: Annotated[str, Query(description="ISO 8601, exclusive")],
    subject: Annotated[str | None, Query(description="a soil station (sampling point) id")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> JSONResponse:
    """``{"items": [{"scope", "subject", "start", "risk_class", "level", "ph", "land_use",
    "ratios"}, …], "next_cursor"}``: one item per sample, ``ratios`` of each metal to its
    risk screening value."""
    return await _assessments(
        request,
        principal,
        kind="soil",
        scope="station",
        subject=subject,
        start=start,
        end=end,
        limit=limit,
        cursor=cursor,
        item=_soil_item,
        query={},
    )


# ------------------------------------------------------------------------------- emissions
#: unit of a regional total per gas
def _tonnes_unit(gas: str) -> str:
    return "t CO2e" if gas == "CO2e" else f"t {gas}"


@router.get(
    "/api/v1/emissions",
    summary="Annual carbon emissions by region, year, gas and sector (internal), paginated",
)
async def emissions_route(
    request: Request,
    principal: Annotated[access.Principal, Depends(allow(Action.READ, "region-emissions"))],
    region: Annotated[
        str | None,
        Query(description="CN, a province (CN-BJ) or a GB/T 2260 city or county code"),
    ] = None,
    year: Annotated[int | None, Query(ge=1900, le=2200, description="a calendar year")] = None,
    gas: Annotated[str | None, Query(description="CO2, CH4, N2O or CO2e")] = None,
    sector: Annotated[str | None, Query(description="a sector code (power, cement, …)")] = None,
    level: Annotated[
        str, Query(description="without region: county, city, province or nation")
    ] = "province",
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> JSONResponse:
    """``{"items": [{"region", "year", "gas", "sector", "tonnes", "unit", "facilities"}, …],
    "next_cursor"}`` ordered by region, year, gas and sector: the accounted facilities' annual
    emissions (the ``carbon-inventory`` job's ``P1Y`` rows; the bureau's calendar year, the
    current one to date) summed per region — the one ``region`` asked for, or each region at
    ``level``. ``tonnes`` in t of the gas (``CO2e``: t CO₂e by the job's GWP set);
    ``facilities``: how many the total holds. Regional totals are ``internal`` (a region with
    few facilities reveals them): from ``viewer`` up, audited."""
    from carbon.errors import CarbonError
    from carbon.inventory import region_totals

    ctx = _ctx(request)
    try:
        for what, text in (("region", region), ("gas", gas), ("sector", sector)):
            if text is not None:
                check_text(what, text)
        after = params.decode_cursor(cursor, str, int, str, str) if cursor else None
    except (SensorsError, ValueError) as exc:
        return _error(400, str(exc))

    def read() -> Any:
        with ctx.store.connection() as conn:
            rows = derived.read_facility_years(conn, str(ctx.timezone))
        if year is not None:
            rows = rows[rows["year"] == year]
        if gas is not None:
            rows = rows[rows["gas"] == gas]
        if sector is not None:
            rows = rows[rows["sector"] == sector]
        return region_totals(rows, region=region, level=level)

    try:
        totals = await run_in_threadpool(read)
    except CarbonError as exc:
        return _error(400, str(exc))
    keys = list(totals[["region", "year", "gas", "sector"]].itertuples(index=False, name=None))
    begin = 0
    if after is not None:
        begin = bisect.bisect_right(keys, tuple(after))
    page = totals.iloc[begin : begin + limit]
    more = begin + limit < len(totals)
    await audit_read(
        request,
        principal,
        "region-emissions",
        {"region": region, "level": level, "year": year, "gas": gas, "items": len(page)},
    )
    items = [
        {
            "region": r,
            "year": int(y),
            "gas": g,
            "sector": s,
            "tonnes": float(t),
            "unit": _tonnes_unit(g),
            "facilities": int(n),
        }
        for r, y, g, s, t, n in page.itertuples(index=False, name=None)
    ]
    last = keys[begin + limit - 1] if more else None
    return JSONResponse(
        {
            "items": items,
            "next_cursor": None
            if last is None
            else params.encode_cursor(last[0], int(last[1]), last[2], last[3]),
        }
    )


# ------------------------------------------------------------------------------- the one map
def _layers(ctx: ServiceContext) -> list[dict[str, Any]]:
    from gis.crs import crs_name
    from store import gis as gis_store

    with ctx.store.connection() as conn:
        rows = gis_store.layer_summaries(conn)
    tz = ctx.timezone
    return [
        r | {"crs": crs_name(r["crs"]), "updated": r["updated"].astimezone(tz).isoformat()}
        for r in rows
    ]


@router.get("/api/v1/layers", summary="The one map's vector layers (boundaries, basins, zones)")
async def layers_route(
    request: Request,
    principal: Annotated[access.Principal, Depends(allow(Action.READ, "layers"))],
) -> JSONResponse:
    """``{"items": [{"name", "source", "crs", "key", "features", "updated"}, …]}`` by name:
    ``crs`` as its authority code (the layer is stored in it), ``key`` the attribute naming a
    feature, ``features`` their number. ``GET /api/v1/layers/{name}`` gives one as GeoJSON."""
    return JSONResponse({"items": await run_in_threadpool(_layers, _ctx(request))})


@router.get(
    "/api/v1/layers/{name}",
    summary="One layer as a GeoJSON FeatureCollection (WGS 84)",
    responses={404: {"description": "no such layer"}},
)
async def layer_route(
    request: Request,
    name: str,
    principal: Annotated[access.Principal, Depends(allow(Action.READ, "layers"))],
) -> Response:
    """The layer's features as RFC 7946 GeoJSON: coordinates in WGS 84 longitude/latitude
    (degrees; reprojected from the layer's CRS), each feature's ``id`` its name, its attributes
    as ``properties``. Served as ``application/geo+json``."""
    import json

    from gis.errors import GisError
    from gis.layers import feature_collection
    from store import gis as gis_store

    ctx = _ctx(request)

    def read() -> str:
        with ctx.store.connection() as conn:
            layer = gis_store.load_layer(conn, name)
        return json.dumps(feature_collection(layer))

    try:
        body = await run_in_threadpool(read)
    except GisError as exc:
        return _error(404, str(exc))
    return Response(body, media_type="application/geo+json")


@router.get("/api/v1/zonal", summary="Zonal statistics of rasters over a layer, paginated")
async def zonal_route(
    request: Request,
    principal: Annotated[access.Principal, Depends(allow(Action.READ, "zonal-statistics"))],
    layer: Annotated[str, Query(description="the layer's name (GET /api/v1/layers)")],
    raster: Annotated[str | None, Query(description="a raster's catalogue id")] = None,
    stat: Annotated[str | None, Query(description="mean, min, max, sum, count, …")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> JSONResponse:
    """``{"items": [{"layer", "raster", "feature", "stat", "time", "value"}, …],
    "next_cursor"}`` ordered by raster, feature and statistic: ``value`` in the raster's unit
    (``null`` where a polygon covers no valid cell), ``time`` the raster's (bureau time zone,
    ``null`` for a raster without one). An unknown layer gives no item."""
    from store import gis as gis_store

    ctx = _ctx(request)
    try:
        for what, text in (("layer", layer), ("raster", raster), ("stat", stat)):
            if text is not None:
                check_text(what, text)
        after = params.decode_cursor(cursor, str, str, str) if cursor else None
    except (SensorsError, ValueError) as exc:
        return _error(400, str(exc))

    def read() -> list[tuple[str, str, str, datetime | None, float | None]]:
        key = None if after is None else (str(after[0]), str(after[1]), str(after[2]))
        with ctx.store.connection() as conn:
            return gis_store.read_zonal_page(
                conn, layer=layer, raster=raster, stat=stat, after=key, limit=limit + 1
            )

    rows = await run_in_threadpool(read)
    more = len(rows) > limit
    rows = rows[:limit]
    tz = ctx.timezone
    items = [
        {
            "layer": layer,
            "raster": r,
            "feature": f,
            "stat": s,
            "time": t.astimezone(tz).isoformat() if t is not None else None,
            "value": None if v is None or v != v else v,  # NaN: no valid cell
        }
        for r, f, s, t, v in rows
    ]
    last = rows[-1] if more and rows else None
    return JSONResponse(
        {
            "items": items,
            "next_cursor": None if last is None else params.encode_cursor(*last[:3]),
        }
    )
