"""Device-facing HTTP write routes: ``POST /api/v1/observations`` (JSON, device tokens).

A device is acknowledged (200) only after its accepted readings are committed to the store;
when the store is down the answer is 503 and nothing is acknowledged, so the device re-sends.
Authorisation: a device token writes to its own station only. A batch that names another
existing station is refused whole (403): that is a misconfigured or hostile device, not a
bad reading. An unknown station only rejects its items. The operator token writes anywhere.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ingest.batch import stations_named, validate_items
from store.context import ServiceContext
from store.errors import StoreUnavailable

logger = logging.getLogger(__name__)

router = APIRouter(tags=["ingest"])

#: Largest request body accepted, bytes.
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Most items in one batch.
MAX_ITEMS = 50_000


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


_READING_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["station", "parameter", "time", "value"],
    "additionalProperties": False,
    "properties": {
        "station": {"type": "string", "example": "S1"},
        "parameter": {
            "type": "string",
            "description": "canonical or HJ 212 code",
            "example": "pm25",
        },
        "time": {
            "type": "string",
            "format": "date-time",
            "example": "2026-11-28T08:00:00+08:00",
            "description": "ISO 8601; without offset: the bureau's timezone",
        },
        "value": {"type": "number", "example": 35.2},
        "unit": {
            "type": "string",
            "description": "default: the parameter's canonical unit",
            "example": "ug/m3",
        },
        "flag": {
            "type": "string",
            "enum": ["N", "F", "M", "S", "D", "C", "T", "B"],
            "description": "HJ 212-2017 data flag, default N",
        },
    },
}
_BODY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["observations"],
    "properties": {
        "observations": {"type": "array", "items": _READING_SCHEMA, "maxItems": MAX_ITEMS}
    },
}


@router.post(
    "/api/v1/observations",
    summary="Push readings (device token)",
    openapi_extra={
        "requestBody": {"required": True, "content": {"application/json": {"schema": _BODY_SCHEMA}}}
    },
    responses={
        200: {"description": "counts accepted/rejected, a reason per rejected item"},
        400: {"description": "malformed body"},
        401: {"description": "missing or wrong token"},
        403: {"description": "a station that is not the device's"},
        503: {"description": "store unavailable: nothing acknowledged, re-send"},
    },
)
async def post_observations(
    request: Request, authorization: str | None = Header(default=None)
) -> JSONResponse:
    """Store a batch ``{"observations": [{station, parameter, time, value, unit?, flag?}]}``."""
    ctx: ServiceContext = request.app.state.ctx
    principal = await run_in_threadpool(ctx.authenticate, authorization, "Bearer")
    if principal is None:
        return _error(401, "missing or wrong device token", {"WWW-Authenticate": "Bearer"})
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        doc: Any = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return _error(400, f"body is not valid JSON: {exc}")
    except RecursionError:
        return _error(400, "body is nested too deeply")
    items = doc.get("observations") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        return _error(400, 'body must be an object {"observations": [...]}')
    if len(items) > MAX_ITEMS:
        return _error(413, f"more than {MAX_ITEMS} observations in one batch")

    def work() -> JSONResponse:
        named = stations_named(items)
        known = ctx.store.existing_station_ids(named)
        foreign = sorted(s for s in known if not principal.may_access(s))
        if foreign:
            assert principal.device is not None
            return _error(
                403,
                f"device {principal.device.id} may only write to station "
                f"{principal.device.station}, not {', '.join(foreign)}",
            )
        result = validate_items(
            items,
            known_station=known.__contains__,
            default_tz=ctx.timezone,
            max_future=ctx.max_future,
        )
        ctx.store.write_observations(result.accepted)
        return JSONResponse(result.as_json())

    try:
        return await run_in_threadpool(work)
    except StoreUnavailable as exc:
        logger.warning("write refused, store unavailable: %s", exc)
        return _error(
            503, "store unavailable; nothing was stored, please re-send", {"Retry-After": "5"}
        )
