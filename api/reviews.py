"""Manual review (数据审核) routes: ``POST /api/v1/reviews``, ``GET /api/v1/reviews``.

An operator invalidates or restores the readings of one station and parameter timed in
``[start, end)``, with a reason (:mod:`store.reviews`). Readings stay stored and readable; the
jobs leave invalidated ones out and recompute the periods a review touches on their next run.
Times without an offset are read in the bureau's time zone; answers give times in it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

import access
from access import Action
from api.auth import Caller, allow, require, station_dataset
from api.params import MAX_LIMIT
from api.routes import _ctx, _error, parameter_code
from sensors.errors import SensorsError
from sensors.observations import is_clean_text, parse_time
from store import reviews
from store.context import ServiceContext
from store.errors import NotFound
from store.postgres import StoredObservation

router = APIRouter(tags=["review"])

#: The fields of a review's body; who decides (``by``) is the authenticated caller, never the body.
FIELDS = ("station", "parameter", "start", "end", "action", "reason")


def review_json(review: reviews.Review, tz: Any) -> dict[str, Any]:
    """A review as the API answers it (times in ``tz``)."""
    return {
        "id": review.id,
        "station": review.station,
        "parameter": review.parameter,
        "start": review.start.astimezone(tz).isoformat(),
        "end": review.end.astimezone(tz).isoformat(),
        "action": review.action,
        "reason": review.reason,
        "by": review.by,
        "at": review.at.astimezone(tz).isoformat(),
    }


def observation_reviews(ctx: ServiceContext, rows: Sequence[StoredObservation]) -> list[Any]:
    """Per observation, the ``"review"`` of its item (``{"action", "reason", "by", "at"}``)
    when a review invalidated it, else ``None``."""
    if not rows:
        return []
    with ctx.store.connection() as conn:
        found = reviews.invalidations(conn, [(r.station, r.parameter, r.time) for r in rows])
    return [
        None
        if r is None
        else {
            "action": r.action,
            "reason": r.reason,
            "by": r.by,
            "at": r.at.astimezone(ctx.timezone).isoformat(),
        }
        for r in found
    ]


@router.post(
    "/api/v1/reviews",
    summary="Invalidate or restore readings (reviewer)",
    dependencies=[Depends(allow(Action.REVIEW, "reviews"))],
)
async def add_review(request: Request, principal: Caller) -> JSONResponse:
    """Body ``{"station", "parameter", "start", "end", "action": "invalidate"|"restore",
    "reason"}`` (the range is ``[start, end)``) → 201 ``{"id", "affected"}``, ``affected``
    being the number of stored readings the range covers. The station's grade must be within
    the reviewer's (a restricted station: admin)."""
    ctx = _ctx(request)
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return _error(400, "the body must be a JSON object")
    if not isinstance(body, dict):
        return _error(400, "the body must be a JSON object")
    missing = [f for f in FIELDS if f not in body]
    if missing:
        return _error(400, f"missing {', '.join(missing)}")
    texts = {f: body[f] for f in FIELDS}
    wrong = [f for f, v in texts.items() if not isinstance(v, str)]
    if wrong:
        return _error(400, f"{', '.join(wrong)} must be strings")
    bad = [f for f, v in texts.items() if not is_clean_text(v)]
    if bad:
        return _error(400, f"{', '.join(bad)}: NUL or unpaired surrogate characters")
    try:
        code = await run_in_threadpool(parameter_code, ctx, body["parameter"], body["station"])
        start = parse_time(body["start"], ctx.timezone)
        end = parse_time(body["end"], ctx.timezone)
    except (SensorsError, ValueError, OverflowError) as exc:
        return _error(400, str(exc))
    dataset = await run_in_threadpool(station_dataset, ctx, body["station"])
    require(principal, Action.REVIEW, dataset)

    def write() -> tuple[reviews.Review, int]:
        with ctx.store.connection() as conn:
            return reviews.add(
                conn,
                station=body["station"],
                parameter=code,
                start=start,
                end=end,
                action=body["action"],
                reason=body["reason"],
                by=principal.actor,
            )

    address = request.client.host if request.client else None
    details: dict[str, Any] = {
        "parameter": code,
        "start": body["start"],
        "end": body["end"],
        "reason": body["reason"],
    }
    audit_action = f"review.{body['action']}"
    audit_object = f"station:{body['station']}"
    try:
        review, affected = await run_in_threadpool(write)
    except (NotFound, ValueError) as exc:
        await run_in_threadpool(
            ctx.audit,
            principal.actor,
            audit_action,
            audit_object,
            "failed",
            address,
            {**details, "error": str(exc)},
        )
        return _error(404 if isinstance(exc, NotFound) else 400, str(exc))
    await run_in_threadpool(
        ctx.audit,
        principal.actor,
        audit_action,
        audit_object,
        "ok",
        address,
        {**details, "review": review.id, "affected": affected},
    )
    answer: dict[str, Any] = {"id": review.id, "affected": affected}
    if not affected:  # recorded, but most likely not what the reviewer meant
        answer["warning"] = reviews.no_readings_warning(review, ctx.timezone)
    return JSONResponse(answer, status_code=201)


@router.get(
    "/api/v1/reviews",
    summary="Reviews, newest first (reviewer)",
)
async def list_reviews_route(
    request: Request,
    principal: Annotated[access.Principal, Depends(allow(Action.REVIEW, "reviews"))],
    station: Annotated[str | None, Query(description="station id")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 500,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page")] = None,
) -> JSONResponse:
    """``{"items": [{"id", "station", "parameter", "start", "end", "action", "reason", "by",
    "at"}, …], "next_cursor": "…" | null}``, newest first."""
    ctx = _ctx(request)
    if station is not None and not is_clean_text(station):
        return _error(400, "station: NUL or unpaired surrogate characters")
    before: int | None = None
    if cursor is not None:
        if not (cursor.isascii() and cursor.isdigit() and 0 < len(cursor) <= 18):
            return _error(400, "invalid cursor")
        before = int(cursor)

    def read() -> list[reviews.Review]:
        with ctx.store.connection() as conn:
            return reviews.list_reviews(conn, station=station, before=before, limit=limit + 1)

    rows = await run_in_threadpool(read)
    more = len(rows) > limit
    rows = rows[:limit]
    await run_in_threadpool(  # reviews are sensitive: the read is audited
        ctx.audit,
        principal.actor,
        "read",
        f"station:{station}" if station is not None else "reviews",
        "ok",
        request.client.host if request.client else None,
        {"dataset": "reviews", "items": len(rows)},
    )
    return JSONResponse(
        {
            "items": [review_json(r, ctx.timezone) for r in rows],
            "next_cursor": str(rows[-1].id) if more and rows else None,
        }
    )
