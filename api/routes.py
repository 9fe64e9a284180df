"""Read routes of the contract: ``/healthz``, ``/api/v1/stations``, ``/api/v1/observations``.

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
from sensors.observations import BASES, INTERVALS, STATISTICS, parse_time
from sensors.parameters import lookup
from store.context import ServiceContext
from store.postgres import StoredObservation

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
        }
        for r in rows
    ]
    return JSONResponse(
        {"items": items, "next_cursor": encode_cursor(rows[-1]) if more and rows else None}
    )
