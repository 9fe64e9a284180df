"""The one FastAPI application: ingest's write routes and api's read routes, mounted together
(an instance without the ``gateway`` role serves ``GET /healthz`` alone)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from api import docs as api_docs
from api import formats as api_formats
from api.auth import Denied
from api.auth import router as auth_router
from api.datasets import router as datasets_router
from api.ogc import router as ogc_router
from api.params import RejectUnprintable
from api.ratelimit import RateLimits
from api.reviews import router as review_router
from api.routes import health_router
from api.routes import router as read_router
from ecosense import __version__
from ingest.http import router as ingest_router
from store.context import ServiceContext
from store.errors import Conflict, NotFound, StoreUnavailable
from store.keys import KeyUsage

logger = logging.getLogger(__name__)


def create_app(
    ctx: ServiceContext,
    rate_limits: RateLimits | None = None,
    *,
    roles: Sequence[str] = ("gateway",),
    jobs_leader: Callable[[], bool] = lambda: False,
    key_usage: KeyUsage | None = None,
) -> FastAPI:
    """The gateway application over ``ctx`` (store, credentials, time settings), with the
    request rate limits ``rate_limits`` (default: :class:`api.ratelimit.RateLimits`'s
    defaults, no address exempt). ``roles`` are the instance's (``ecosense up --roles``):
    without ``gateway`` it serves ``GET /healthz`` only, nothing that ingests or reads data;
    ``jobs_leader`` says whether the instance's scheduler leads (both in ``/healthz``).
    ``key_usage`` adds up the API keys' usage (default: one over ``ctx.store``); it is written
    to the store every few seconds while the application runs (its lifespan) and at its
    shutdown."""
    usage = key_usage
    if usage is None and ctx is not None:  # no ctx: the routes alone (tests walk the OpenAPI)
        usage = KeyUsage(ctx.store)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if usage is not None:
            usage.start()
        try:
            yield
        finally:
            if usage is not None:
                await run_in_threadpool(usage.stop)

    app = FastAPI(
        title="EcoSense gateway",
        version=__version__,
        description="Device-facing write routes and the HTTP read API of EcoSense.",
        docs_url=None,  # served from packaged assets (api/docs.py), not from a CDN
        redoc_url=None,
        openapi_url="/openapi.json" if "gateway" in roles else None,
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    api_formats.steady_memory()  # long downloads in flat memory (api/formats.py)
    app.state.rate_limits = RateLimits() if rate_limits is None else rate_limits
    app.state.key_usage = usage
    app.state.roles = tuple(roles)
    app.state.jobs_leader = jobs_leader
    app.add_middleware(RejectUnprintable)
    app.include_router(health_router)
    if "gateway" in roles:
        app.include_router(ingest_router)
        app.include_router(read_router)
        app.include_router(review_router)
        app.include_router(auth_router)
        app.include_router(datasets_router)
        app.include_router(ogc_router)
        api_docs.install(app)

    @app.exception_handler(Denied)
    async def denied(request: Request, exc: Denied) -> JSONResponse:
        """401/403 of the authorisation dependency; InfluxDB's error body on its write API.
        A refusal to an authenticated caller (403) is audited as ``denied``."""
        principal = getattr(request.state, "principal", None)
        if exc.status_code == 403 and exc.action is not None and principal is not None:
            await run_in_threadpool(
                ctx.audit,
                principal.actor,
                exc.action,
                exc.object or request.url.path,
                "denied",
                request.client.host if request.client else None,
                {"path": request.url.path, "reason": str(exc.detail)},
            )
        if request.url.path.startswith("/api/v2/"):
            unauthorised = exc.status_code == 401
            return JSONResponse(
                {
                    "code": "unauthorized" if unauthorised else "forbidden",
                    "message": "unauthorized access" if unauthorised else str(exc.detail),
                },
                status_code=exc.status_code,
                headers={"WWW-Authenticate": "Token"} if unauthorised else None,
            )
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(StoreUnavailable)
    async def store_unavailable(_request: Request, exc: StoreUnavailable) -> JSONResponse:
        logger.warning("store unavailable: %s", exc)
        return JSONResponse(
            {"detail": "store unavailable"}, status_code=503, headers={"Retry-After": "5"}
        )

    @app.exception_handler(NotFound)
    async def not_found(_request: Request, exc: NotFound) -> JSONResponse:
        # e.g. a station deleted between a route's check and its write: never a 500
        return JSONResponse({"detail": str(exc)}, status_code=404)

    @app.exception_handler(Conflict)
    async def conflict(_request: Request, exc: Conflict) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=409)

    return app
