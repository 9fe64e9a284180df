"""Signing a user in with a password: the one core of ``POST /api/v1/auth/token`` and of the
dashboard's "Sign in · 登录" form, so both check, throttle and audit alike.

A sign-in checks the Argon2id hash (:mod:`access.passwords`; a missing user is checked against
a dummy hash, so both cases take the same time), refuses a disabled user, and on success opens
a session: a 256-bit random bearer token whose SHA-256 is kept in ``sessions`` with its expiry
(revoked at once when the user is disabled). Failed sign-ins are throttled per user name and
per client address (:data:`USER_FAILURES`, :data:`ADDRESS_FAILURES` within :data:`WINDOW`):
beyond them the answer is "throttled" with a ``retry_after`` (seconds), even for the right
password. Every attempt is audited (action ``login``: ``ok``, ``failed`` or ``throttled``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol

from access.passwords import generate_token, hash_password, needs_rehash, verify_password
from store import users
from store.postgres import PostgresStore, hash_secret

#: failed sign-ins of one user name, and of one client address, tolerated within WINDOW
USER_FAILURES: Final = 5
ADDRESS_FAILURES: Final = 20
WINDOW: Final = timedelta(minutes=15)
#: verified against when the user does not exist, so both cases take the same time
_DUMMY_HASH: Final = hash_password("ecosense: no such user")


class Audit(Protocol):
    """Where audit events go (``ServiceContext.audit``, or :func:`store.audit.record` bound
    to a store)."""

    def __call__(
        self,
        actor: str,
        action: str,
        object: str,
        outcome: str = "ok",
        address: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> object: ...


@dataclass(frozen=True, slots=True)
class SignIn:
    """How a sign-in ended: ``ok`` (with the ``user`` and a bearer ``token`` valid for
    ``expires_in`` seconds), ``failed`` (wrong name or password, or a disabled user: the
    caller is told no more than that) or ``throttled`` (try again in ``retry_after``
    seconds)."""

    outcome: Literal["ok", "failed", "throttled"]
    user: users.User | None = None
    token: str | None = None
    expires_in: int = 0
    retry_after: int = 0

    def __bool__(self) -> bool:
        return self.outcome == "ok"


def usable(text: str, most: int) -> bool:
    """Whether ``text`` can be a user name or password: at most ``most`` characters, no NUL
    (PostgreSQL text cannot hold it) and no unpaired surrogate."""
    if not text or len(text) > most or "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _retry_after(oldest: datetime | None) -> int:
    if oldest is None:
        return 1
    left = (oldest + WINDOW - datetime.now(UTC)).total_seconds()
    return max(1, math.ceil(left))


def sign_in(
    store: PostgresStore,
    audit: Audit,
    name: str,
    password: str,
    address: str,
    ttl: timedelta,
    via: str | None = None,
) -> SignIn:
    """Check ``name``'s ``password`` from ``address`` and open a session of ``ttl``
    (blocking); ``via`` (e.g. ``"dashboard"``) is added to the audit's details."""
    extra = {} if via is None else {"via": via}
    if not usable(name, 200) or not usable(password, 1024):
        who = name if usable(name, 200) else "anonymous"
        audit(who, "login", f"user:{who}", "failed", address, {"reason": "unusable", **extra})
        return SignIn("failed")
    keys = (f"user:{name}", f"address:{address}")
    with store.connection() as conn:
        for key, most in zip(keys, (USER_FAILURES, ADDRESS_FAILURES), strict=True):
            count, oldest = users.failures(conn, key, WINDOW)
            if count >= most:
                audit(name, "login", f"user:{name}", "throttled", address, {"by": key, **extra})
                return SignIn("throttled", retry_after=_retry_after(oldest))
        found = users.credentials(conn, name)
        ok = verify_password(found[1] if found else _DUMMY_HASH, password)
        if found is None or not ok or found[0].disabled:
            users.record_failure(conn, keys, WINDOW)
            reason = "no such user" if found is None else "disabled" if ok else "wrong password"
            audit(name, "login", f"user:{name}", "failed", address, {"reason": reason, **extra})
            return SignIn("failed")
        user = found[0]
        if needs_rehash(found[1]):
            users.set_password(conn, user.name, hash_password(password))
        users.clear_failures(conn, keys[0])
        token = generate_token()
        users.open_session(conn, user.name, hash_secret(token), datetime.now(UTC) + ttl)
    audit(
        user.name, "login", f"user:{user.name}", "ok", address, {"role": user.role.label, **extra}
    )
    return SignIn("ok", user, token, int(ttl.total_seconds()))


def session_user(store: PostgresStore, token: str) -> users.User | None:
    """The enabled user holding the live session ``token`` (``None``: expired, revoked, its
    user disabled, or never issued)."""
    with store.connection() as conn:
        return users.user_for_session(conn, hash_secret(token))


def sign_out(store: PostgresStore, token: str) -> bool:
    """Revoke the session ``token``; whether it was live."""
    with store.connection() as conn:
        return users.revoke_session(conn, hash_secret(token))
