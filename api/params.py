"""Query parameters of the read API: paging cursors and times, each bad value a ``ValueError``
(answered 400), never a 500.

A cursor is opaque to clients: the key of the last row of a page (URL-safe base64 of a JSON
list), from which the next page starts (keyset paging). Times are ISO 8601; one without an
offset is read in the bureau's timezone; a time beyond what a datetime can hold once in UTC
(``0001-01-01`` east of UTC, ``9999-12-31T23:59:59-14:00``) is the edge of that range: a query
may name any time, reading a range is never an error.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime, tzinfo
from typing import Final
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from sensors.errors import SensorsError
from sensors.observations import is_clean_text, parse_time

#: Most rows a page may hold; the default page is :data:`DEFAULT_LIMIT` rows.
MAX_LIMIT: Final = 10_000
DEFAULT_LIMIT: Final = 1000

CursorKey = str | int | datetime


def encode_cursor(*key: CursorKey) -> str:
    """An opaque cursor naming the position after the row whose key is ``key``."""
    values = [k.isoformat() if isinstance(k, datetime) else k for k in key]
    raw = json.dumps(values, ensure_ascii=False).encode("utf-8", "backslashreplace")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *kinds: type[CursorKey]) -> tuple[CursorKey, ...]:
    """The key of a cursor made by :func:`encode_cursor`, one value per type in ``kinds``
    (``str``, ``int``, or ``datetime``: timezone-aware); ``ValueError`` when it is not one."""
    try:
        raw = base64.b64decode(
            cursor.encode("ascii") + b"=" * (-len(cursor) % 4), altchars=b"-_", validate=True
        )
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != len(kinds):
            raise ValueError
        key: list[CursorKey] = []
        for kind, value in zip(kinds, values, strict=True):
            if kind is datetime:
                if not isinstance(value, str):
                    raise ValueError
                when = datetime.fromisoformat(value)
                if when.tzinfo is None:
                    raise ValueError
                key.append(when)
            elif kind is int:
                if type(value) is not int or not -(2**63) <= value < 2**63:
                    raise ValueError
                key.append(value)
            else:
                if not isinstance(value, str) or not is_clean_text(value):
                    raise ValueError
                key.append(value)
        return tuple(key)
    except (binascii.Error, ValueError, TypeError, UnicodeError, RecursionError) as exc:
        raise ValueError("invalid cursor") from exc


def query_time(value: str, tz: tzinfo) -> datetime:
    """An ISO 8601 query time as UTC (no offset: ``tz``), clamped to datetime's range (year 1
    to 9999); ``ValueError`` when it is not ISO 8601."""
    try:
        return parse_time(value, tz)  # clamps what its zone shifts past year 1 or 9999
    except SensorsError as exc:
        raise ValueError(str(exc)) from exc


def check_order(start: datetime | None, end: datetime | None) -> None:
    """``ValueError`` when both ends of a time window are given and ``start`` is after ``end``
    (every route with ``start`` and ``end`` says so with a 400, rather than an empty page)."""
    if start is not None and end is not None and start > end:
        raise ValueError(f"start ({start.isoformat()}) is after end ({end.isoformat()}): swap them")


class RejectUnprintable:
    """ASGI middleware: a request whose path or any query parameter holds a NUL character or
    an unpaired surrogate is answered 400 before any route sees it (no id, time, cursor or
    name can hold one, and PostgreSQL text cannot store NUL) — the same rule for every route,
    those added later included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            texts = [scope.get("path", "")]
            query = scope.get("query_string", b"").decode("latin-1")
            for pair in parse_qsl(query, keep_blank_values=True):  # as Starlette decodes it
                texts.extend(pair)
            if not all(is_clean_text(t) for t in texts):
                answer = JSONResponse(
                    {
                        "detail": "the path or a query parameter holds a NUL character or an"
                        " unpaired surrogate"
                    },
                    status_code=400,
                )
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)
