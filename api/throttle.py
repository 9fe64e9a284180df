"""The request rate limits as FastAPI sees them: :func:`rate_limit` (called by
:func:`api.auth.caller` for anonymous callers) and :func:`sign_in_rate` (a dependency of
``POST /api/v1/auth/token``); the limiter itself is :class:`api.ratelimit.RateLimits`."""

from __future__ import annotations

from fastapi import HTTPException, Request

from api.ratelimit import RateLimits, Scope


class RateLimited(HTTPException):
    """429 with ``Retry-After``: a client beyond its request rate."""

    def __init__(self, scope: Scope, retry_after: int) -> None:
        what = "sign-in requests" if scope == "auth" else "anonymous requests (sign in, or wait)"
        super().__init__(
            429,
            f"too many {what} from this address; try again in {retry_after} s",
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


async def sign_in_rate(request: Request) -> None:
    """Dependency of ``POST /api/v1/auth/token``: the sign-in rate per address (429 beyond)."""
    rate_limit(request, "auth")
