"""The one authorisation dependency of the HTTP API, and ``POST /api/v1/auth/token``.

Every route declares :func:`caller` (directly, or through :func:`allow`): it resolves the
``Authorization`` header to an :class:`access.Principal` — anonymous without one, the
break-glass admin (``ECOSENSE_ADMIN_TOKEN``), a device (its API token) or a signed-in user
(a bearer token from ``/api/v1/auth/token``) — and answers 401 for wrong credentials. What the
caller may then do is decided by :func:`access.authorize` alone; routes never compare roles
themselves. tests/integration/test_access_matrix.py walks the OpenAPI document and fails for a
route without the dependency.

Without ``Authorization``, an ``X-API-Key`` header names an open-data consumer (``ecosense
keys add NAME``): still anonymous to the policy (grade ``public`` only, :func:`access.consumer`)
and ``key:<name>`` in the audit, but counted at the key's own rate per key
(:func:`api.throttle.key_rate`) instead of the public rate per address. A key unknown or
revoked is 401, and counted against the address's public rate as wrong credentials are. With
both headers, ``Authorization`` decides and the key is ignored (not checked, not counted): a
signed-in user or a device is never held to a consumer's rate.

Tokens: 256-bit random bearer tokens; the server keeps only their SHA-256 in ``sessions`` with
an expiry (``ECOSENSE_TOKEN_TTL_SECONDS``, default 8 h), so a token can be revoked, and a
disabled user's tokens stop working at once. Failed sign-ins are throttled per user name and
per client address (:data:`USER_FAILURES`, :data:`ADDRESS_FAILURES` within :data:`WINDOW`):
beyond them the answer is 429 with ``Retry-After`` (seconds), even for the right password.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm

import access
from access import Action, Dataset, Grade
from api.throttle import key_rate, rate_limit, sign_in_rate
from store import signin, users
from store.context import ServiceContext
from store.signin import ADDRESS_FAILURES as ADDRESS_FAILURES  # the throttle, re-exported
from store.signin import USER_FAILURES as USER_FAILURES
from store.signin import WINDOW as WINDOW

router = APIRouter(tags=["auth"])


class Denied(HTTPException):
    """401 or 403 from the authorisation dependency (the influx write route reshapes it);
    ``action`` and ``object`` name what was refused, for the audit (``None`` for a 401 of
    wrong credentials)."""

    action: str | None = None
    object: str | None = None


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


async def caller(
    request: Request,
    authorization: Annotated[
        str | None,
        Header(description="Bearer <user, device or admin token> (Token <…> for InfluxDB)"),
    ] = None,
    x_api_key: Annotated[
        str | None,
        Header(
            alias="X-API-Key",
            description="an open-data consumer's API key (`ecosense keys add NAME`): reads what"
            " anonymous callers read, at the key's own rate; ignored with Authorization",
        ),
    ] = None,
) -> access.Principal:
    """The one authorisation dependency: who calls (anonymous without credentials; 401 for
    wrong, expired or revoked ones, API keys included)."""
    if (authorization is None or not authorization.strip()) and x_api_key and x_api_key.strip():
        found = await run_in_threadpool(_ctx(request).consumer, x_api_key.strip())
        if found is None:
            rate_limit(request, "public")  # a wrong key counts as wrong credentials do
            raise Denied(401, "unknown or revoked API key", headers={"WWW-Authenticate": "Bearer"})
        key_rate(request, found)  # its own rate, not its address's (README "Rate limits")
        principal: access.Principal | None = access.consumer(found.name)
    else:
        principal = await run_in_threadpool(_ctx(request).resolve, authorization)
        if principal is None or principal.kind == "anonymous":
            rate_limit(request, "public")  # anonymous and wrong credentials (README "Rate limits")
    if principal is None:
        raise Denied(401, "missing or wrong token", headers={"WWW-Authenticate": "Bearer"})
    request.state.principal = principal
    return principal


Caller = Annotated[access.Principal, Depends(caller)]


def require(principal: access.Principal, action: Action, dataset: Dataset) -> None:
    """Raise :class:`Denied` (401 or 403, as :func:`access.authorize` decides) unless
    ``principal`` may do ``action`` to ``dataset``."""
    decision = access.authorize(principal, action, dataset)
    if not decision:
        headers = {"WWW-Authenticate": "Bearer"} if decision.status == 401 else None
        denied = Denied(decision.status, decision.reason, headers=headers)
        denied.action = str(action)
        denied.object = f"station:{dataset.station}" if dataset.station else dataset.name
        raise denied


def allow(action: Action, name: str) -> Callable[..., Awaitable[access.Principal]]:
    """A dependency: the caller, when it may do ``action`` to the dataset ``name`` of
    :data:`access.DATASET_GRADES` (``KeyError`` at import for an unknown name)."""
    target = access.dataset(name)

    async def dependency(principal: Caller) -> access.Principal:
        require(principal, action, target)
        return principal

    dependency.__name__ = f"allow_{action}_{name.replace('-', '_')}"
    return dependency


def station_datasets(ctx: ServiceContext, stations: Sequence[str] | None) -> list[Dataset]:
    """The graded datasets of ``stations`` (all stations for ``None``) that exist (blocking)."""
    with ctx.store.connection() as conn:
        return users.station_datasets(conn, stations)


def station_dataset(ctx: ServiceContext, station: str) -> Dataset:
    """One station's graded dataset; an unknown station is ``public`` (it holds nothing)."""
    found = station_datasets(ctx, [station])
    return found[0] if found else Dataset(f"station {station}", Grade.PUBLIC, station)


def readable_stations(ctx: ServiceContext, principal: access.Principal) -> list[str] | None:
    """The stations ``principal`` may read (``None``: every station, no filter needed)."""
    with ctx.store.connection() as conn:
        return users.readable_stations(conn, principal)


# ------------------------------------------------------------------------------ sign in
def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def sign_in(ctx: ServiceContext, name: str, password: str, address: str) -> JSONResponse:
    """Check a user's password and issue a bearer token (blocking): the shared core
    :func:`store.signin.sign_in` answered as HTTP — 401 for a wrong name or password or a
    disabled user, 429 with ``Retry-After`` when the name or the address failed too often."""
    done = signin.sign_in(ctx.store, ctx.audit, name, password, address, ctx.token_ttl)
    if done.outcome == "throttled":
        return JSONResponse(
            {"detail": "too many failed sign-ins; try again later"},
            status_code=429,
            headers={"Retry-After": str(done.retry_after)},
        )
    if not done:
        return JSONResponse(
            {"detail": "wrong user name or password"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return JSONResponse(
        {"access_token": done.token, "token_type": "bearer", "expires_in": done.expires_in},
        headers={"Cache-Control": "no-store"},
    )


@router.post(
    "/api/v1/auth/token",
    summary="Sign in: a bearer token for a user (OAuth2 password form)",
    dependencies=[Depends(sign_in_rate)],
    responses={
        401: {"description": "wrong user name or password, or the user is disabled"},
        429: {"description": "too many failed sign-ins (per user and per address)"},
    },
)
async def token_route(
    request: Request,
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    _caller: Caller,
) -> JSONResponse:
    """Form ``username``, ``password`` → ``{"access_token", "token_type": "bearer",
    "expires_in"}`` (seconds)."""
    return await run_in_threadpool(
        sign_in, _ctx(request), form.username, form.password, _address(request)
    )
