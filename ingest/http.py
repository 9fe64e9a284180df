"""Device-facing HTTP write routes: ``POST /api/v1/observations`` (JSON) and
``POST /api/v2/write`` (InfluxDB line protocol), both with device tokens.

A device is acknowledged (200) only after its accepted readings are committed to the store;
when the store is down the answer is 503 and nothing is acknowledged, so the device re-sends.
Authorisation (:func:`api.auth.caller`, decided by :func:`access.authorize`): a device token
writes to its own station only. A batch that names another existing station is refused whole
(403): that is a misconfigured or hostile device, not a bad reading. An unknown station only
rejects its items. Operators (and admins, the break-glass token included) write anywhere.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

import access
from access import Action, Dataset, Grade
from api.auth import Caller, allow, require
from ingest import lineprotocol
from ingest.accept import Forbidden, ingest_items, source_of
from ingest.hj212_server import CommandFailed
from ingest.jsonbatch import BodyError, decode_batch
from store.context import Principal, ServiceContext
from store.errors import StoreUnavailable

logger = logging.getLogger(__name__)

router = APIRouter(tags=["ingest"])

#: Largest request body accepted, bytes.
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Most items in one batch.
MAX_ITEMS = 50_000


async def read_body(request: Request, limit: int) -> bytes | None:
    """The request body, read as it streams in; ``None`` as soon as it exceeds ``limit``
    bytes (or its ``Content-Length`` says it will), without reading or buffering the rest."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _address(request: Request) -> str | None:
    """The client's address, for the audit."""
    return request.client.host if request.client else None


def _writer(principal: access.Principal) -> Principal:
    """The ingest identity of a caller allowed to write readings (401/403 otherwise): a
    device for its own station, an operator or admin anywhere; each station named is checked
    again by :func:`ingest.accept.ingest_items`."""
    require(principal, Action.WRITE, Dataset("readings", Grade.PUBLIC, principal.station))
    return Principal.of(principal)


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
async def post_observations(request: Request, caller: Caller) -> JSONResponse:
    """Store a batch ``{"observations": [{station, parameter, time, value, unit?, flag?}]}``."""
    ctx: ServiceContext = request.app.state.ctx
    principal = _writer(caller)
    body = await read_body(request, MAX_BODY_BYTES)
    if body is None:
        return _error(413, f"body larger than {MAX_BODY_BYTES} bytes", {"Connection": "close"})
    try:
        items = decode_batch(body)
    except BodyError as exc:
        return _error(400, str(exc))
    if len(items) > MAX_ITEMS:
        return _error(413, f"more than {MAX_ITEMS} observations in one batch")

    def work() -> JSONResponse:
        try:
            result = ingest_items(
                ctx,
                principal,
                items,
                source_of(principal, "http"),
                address=_address(request),
                actor=caller.actor,
            )
        except Forbidden as exc:
            return _error(403, str(exc))
        return JSONResponse(result.as_json())

    try:
        return await run_in_threadpool(work)
    except StoreUnavailable as exc:
        logger.warning("write refused, store unavailable: %s", exc)
        return _error(
            503, "store unavailable; nothing was stored, please re-send", {"Retry-After": "5"}
        )


def _influx_error(
    status: int,
    code: str,
    message: str,
    line: int | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if line is not None:
        body["line"] = line
    return JSONResponse(body, status_code=status, headers=headers)


@router.post(
    "/api/v2/write",
    summary="Push readings as InfluxDB line protocol (device token)",
    status_code=204,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/plain": {
                    "schema": {"type": "string"},
                    "example": "S1,unit=ug/m3 pm25=35.2,pm10=61 1795824000",
                }
            },
        }
    },
    responses={
        204: {"description": "every line written"},
        400: {"description": "InfluxDB error body; the valid lines are still written"},
        401: {"description": "missing or wrong token"},
        403: {"description": "a measurement (station) that is not the device's"},
        503: {"description": "store unavailable: nothing written, re-send"},
    },
)
async def write_line_protocol(
    request: Request,
    org: str | None = None,
    bucket: str | None = None,
    precision: str = "ns",
    *,
    caller: Caller,
) -> Response:
    """InfluxDB v2 write API: the measurement is the station id, each field key a parameter
    (canonical or HJ 212 code), the optional tags ``unit`` and ``flag`` apply to the line's
    fields; ``org`` and ``bucket`` are accepted and ignored. Partial writes as InfluxDB: a bad
    line is reported in a 400 body, the good lines are stored."""
    ctx: ServiceContext = request.app.state.ctx
    principal = _writer(caller)
    if precision not in lineprotocol.PRECISIONS:
        return _influx_error(400, "invalid", f"invalid precision {precision!r}: use ns, us, ms, s")
    body = await read_body(request, MAX_BODY_BYTES)  # compressed: at most as large
    if body is None:
        return _influx_error(
            413,
            "request too large",
            f"body larger than {MAX_BODY_BYTES} bytes",
            headers={"Connection": "close"},
        )
    if request.headers.get("content-encoding", "").lower() == "gzip":
        try:
            body = gzip_decompress(body, MAX_BODY_BYTES)
        except ValueError as exc:
            return _influx_error(400, "invalid", str(exc))
    if len(body) > MAX_BODY_BYTES:
        return _influx_error(413, "request too large", f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return _influx_error(400, "invalid", "body is not UTF-8 text")
    items, origins, errors = lineprotocol.parse_items(text, lineprotocol.PRECISIONS[precision])
    if len(items) > MAX_ITEMS:
        return _influx_error(413, "request too large", f"more than {MAX_ITEMS} fields")

    def work() -> Response:
        try:
            result = ingest_items(
                ctx,
                principal,
                items,
                source_of(principal, "lineprotocol"),
                address=_address(request),
                actor=caller.actor,
            )
        except Forbidden as exc:
            return _influx_error(403, "forbidden", str(exc))
        for index, reason in result.rejected:
            errors.append((origins[index], f"field {items.parameters[index]}: {reason}"))
        if not errors:
            return Response(status_code=204)
        errors.sort()
        detail = "; ".join(f"line {n}: {reason}" for n, reason in errors[:20])
        more = f" (and {len(errors) - 20} more)" if len(errors) > 20 else ""
        return _influx_error(
            400,
            "invalid",
            f"partial write error ({len(result.accepted)} written): {detail}{more}",
            line=errors[0][0],
        )

    try:
        return await run_in_threadpool(work)
    except StoreUnavailable as exc:
        logger.warning("write refused, store unavailable: %s", exc)
        return _influx_error(
            503,
            "unavailable",
            "store unavailable; nothing was written",
            headers={"Retry-After": "5"},
        )


def gzip_decompress(data: bytes, limit: int) -> bytes:
    """Gunzip ``data``, refusing more than ``limit`` bytes of output (``ValueError``)."""
    import zlib

    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"body is not valid gzip: {exc}") from exc
    if len(out) > limit:
        raise ValueError(f"decompressed body larger than {limit} bytes")
    return out


#: Platform → field-unit commands the operator may send (HJ 212-2017 Table 9).
HJ212_COMMANDS = frozenset({"1011", "1012", "1061", "1062", "1063", "1064", "1072"})


@router.post(
    "/api/v1/hj212/{mn}/commands",
    summary="Send an HJ 212 command to a connected field unit (operator)",
    responses={
        200: {"description": "the field unit's QnRtn (9011) and ExeRtn (9012)"},
        400: {"description": "not a command this platform sends, or too long for HJ 212"},
        404: {"description": "no field unit with that MN is connected to any gateway instance"},
        502: {"description": "the gateway instance holding the unit could not send it"},
        503: {"description": "the database cannot say which gateway instance holds the unit"},
        504: {"description": "the field unit did not answer in time"},
    },
)
async def hj212_command(
    mn: str,
    request: Request,
    principal: Annotated[access.Principal, Depends(allow(Action.OPERATE, "field-units"))],
) -> JSONResponse:
    """Body ``{"cn": "1062", "cp": "RtdInterval=30"}``: set the real-time interval to 30 s;
    ``1012`` with ``SystemTime=YYYYMMDDhhmmss`` sets the clock; ``1064`` ``MinInterval=10``.
    The unit may be connected to any gateway instance on the database: the command goes
    through the one that holds its connection (``ingest.hj212_server.Hj212Server.command``);
    it is audited here, once."""
    try:
        doc = json.loads(await request.body())
    except (ValueError, RecursionError):
        return _error(400, 'body must be {"cn": "...", "cp": "..."}')
    cn, cp = (doc.get("cn"), doc.get("cp", "")) if isinstance(doc, dict) else (None, None)
    if cn not in HJ212_COMMANDS or not isinstance(cp, str) or "&&" in cp:
        return _error(400, f"cn must be one of {', '.join(sorted(HJ212_COMMANDS))}; cp a string")
    commander = getattr(request.app.state, "hj212_command", None)
    if commander is None:
        return _error(503, "the HJ 212 server is not running")
    ctx: ServiceContext = request.app.state.ctx

    async def audited(outcome: str, extra: dict[str, Any]) -> None:
        await run_in_threadpool(
            ctx.audit,
            principal.actor,
            "hj212.command",
            f"mn:{mn}",
            outcome,
            _address(request),
            {"cn": cn, "cp": "(new password withheld)" if cn == "1072" else cp, **extra},
        )

    try:
        result = await run_in_threadpool(commander, mn, cn, cp)
    except StoreUnavailable as exc:
        await audited("failed", {"reason": "database unavailable"})
        return _error(503, f"cannot tell which gateway instance holds {mn}: {exc}")
    except LookupError as exc:
        await audited("failed", {"reason": "not connected"})
        return _error(404, str(exc))
    except TimeoutError:
        await audited("failed", {"reason": "no answer in time"})
        return _error(504, f"field unit {mn} did not answer in time")
    except CommandFailed as exc:
        await audited("failed", {"reason": "not sent", "detail": str(exc)})
        return _error(502, f"the gateway instance holding {mn} could not send it: {exc}")
    except ValueError as exc:
        await audited("failed", {"reason": "invalid"})
        return _error(400, f"cannot send this command: {exc}")
    await audited("ok" if result.get("QnRtn") == "1" else "refused", dict(result))
    return JSONResponse(result)
