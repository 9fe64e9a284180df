"""The request rate limits as FastAPI sees them: :func:`rate_limit` (called by
:func:`api.auth.caller` for anonymous callers), :func:`key_rate` (by the same for callers with
an API key) and :func:`sign_in_rate` (a dependency of ``POST /api/v1/auth/token``); the
limiter itself is :class:`api.ratelimit.RateLimits`, the usage counts of the keys
:class:`store.keys.KeyUsage` (``app.state.key_usage``)."""

from __future__ import annotations

import logging

from fastapi import HTTPException, Request

from api.ratelimit import RateLimits, Scope
from store.keys import Consumer, KeyUsage

logger = logging.getLogger(__name__)


class RateLimited(HTTPException):
    """429 with ``Retry-After``: a client beyond its request rate."""

    def __init__(self, scope: Scope, retry_after: int, key: str | None = None) -> None:
        if scope == "key":
            what = f"requests with the API key {key} (its own rate)"
        elif scope == "auth":
            what = "sign-in requests from this address"
        else:
            what = "anonymous requests (sign in, or wait) from this address"
        super().__init__(
            429,
            f"too many {what}; try again in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


def rate_limit(request: Request, scope: Scope) -> None:
    """Count ``request`` against ``scope``'s limit of its client address (the application's
    :class:`RateLimits`, ``app.state.rate_limits``); raise :class:`RateLimited` beyond it."""
    limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    if limits is None:
        return
    wait = limits.hit(scope, request.client.host if request.client else None)
    if wait is not None:
        raise RateLimited(scope, wait)


def key_rate(request: Request, consumer: Consumer) -> None:
    """Count ``request``, sent with ``consumer``'s API key, against the key's own rate (not
    its address's); raise :class:`RateLimited` beyond it. Either way the request is added to
    the key's usage (served or refused), written to the store later by ``KeyUsage``."""
    limits: RateLimits | None = getattr(request.app.state, "rate_limits", None)
    wait = None if limits is None else limits.hit_key(consumer.name, consumer.rate_per_minute)
    usage: KeyUsage | None = getattr(request.app.state, "key_usage", None)
    if usage is not None:
        usage.count(consumer.id, served=wait is None)
    if wait is not None:
        logger.info(
            "API key %s beyond its rate of %d a minute", consumer.name, consumer.rate_per_minute
        )
        raise RateLimited("key", wait, consumer.name)


async def sign_in_rate(request: Request) -> None:
    """Dependency of ``POST /api/v1/auth/token``: the sign-in rate per address (429 beyond)."""
    rate_limit(request, "auth")
