"""The HTTP listener's defences against abuse, around uvicorn (README "Listeners under abuse").

- :func:`guarded_protocol`: uvicorn's h11 connection protocol with connection caps per client
  address and in total (over a cap the connection is answered ``503`` with ``Connection:
  close`` and closed at once, without reaching the application) and a header read time-out:
  a connection that has not sent a request's complete headers within ``header_timeout``
  seconds of connecting (or of its previous response) is closed — uvicorn's own
  ``timeout_keep_alive`` stops counting at the first byte, so a slow-header client would
  otherwise hold its connection for ever.
- :class:`ClientConcurrency`: requests in flight per client address (behind a trusted
  proxy: the ``X-Forwarded-For`` client's), beyond which ``503``.
- :class:`BodyLimit`: an ASGI middleware refusing a request body larger than ``limit``
  bytes while it streams in — at once when ``Content-Length`` says so, else as soon as the
  received chunks exceed it — with ``413``, and one whose next chunk takes longer than
  ``body_timeout`` seconds with ``408``; nothing beyond the limit is buffered.

Behind a reverse proxy the per-address cap applies to the proxy's own connections only when
the proxy is not trusted: trusted proxies are capped by the total alone, and their clients'
addresses come from ``X-Forwarded-For`` (uvicorn's proxy headers, trusted from those
addresses only).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from ingest.limits import Admission

logger = logging.getLogger(__name__)

_REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"retry-after: 5\r\nconnection: close\r\ncontent-length: 35\r\n\r\n"
    b'{"detail": "too many connections"}\n'
)


def guarded_protocol(admission: Admission, header_timeout: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol class with ``admission``'s connection caps and a header read
    time-out of ``header_timeout`` seconds (pass it as ``uvicorn.Config(http=...)``)."""

    class GuardedH11Protocol(H11Protocol):
        _admitted = False
        _host = ""
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            peer = transport.get_extra_info("peername")
            self._host = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
            if not admission.admit(self._host):
                transport.write(_REFUSED)
                transport.close()
                return
            self._admitted = True
            super().connection_made(transport)
            self._arm_header_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            if not self._admitted:
                return
            self._admitted = False
            admission.release(self._host)
            self._disarm_header_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if not self._admitted:
                return
            super().data_received(data)
            if self._header_timer is not None and self._in_request():
                self._disarm_header_timer()  # its headers are complete

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and not self._in_request():
                self._arm_header_timer()  # the next request's headers

        def _in_request(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def _arm_header_timer(self) -> None:
            self._disarm_header_timer()
            self._header_timer = self.loop.call_later(header_timeout, self._header_timed_out)

        def _disarm_header_timer(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _header_timed_out(self) -> None:
            self._header_timer = None
            if self._in_request() or self.transport.is_closing():
                return
            admission.timed_out += 1
            self.transport.close()

    return GuardedH11Protocol


Scope = dict[str, Any]
Message = dict[str, Any]


class BodyLimit:
    """ASGI middleware: request bodies up to ``limit`` bytes, each chunk within
    ``body_timeout`` seconds; refused while streaming (413, 408), never buffered whole."""

    def __init__(self, app: Any, limit: int, body_timeout: float = 30.0) -> None:
        self.app = app
        self.limit = limit
        self.body_timeout = body_timeout

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await _refuse(send, 413, f"body larger than {self.limit} bytes")
            return
        received = 0
        refused: list[int] = []
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            if refused:
                return {"type": "http.disconnect"}
            try:
                async with asyncio.timeout(self.body_timeout):
                    message: Message = await receive()
            except TimeoutError:
                refused.append(408)
                return {"type": "http.disconnect"}
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    refused.append(413)
                    return {"type": "http.disconnect"}
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if refused and not started:
                return  # the application's answer to the disconnect: ours is sent below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except Exception:
            if not refused:
                raise
        if refused and not started:
            status = refused[0]
            detail = (
                f"body larger than {self.limit} bytes"
                if status == 413
                else f"body not received within {self.body_timeout:.0f} s"
            )
            await _refuse(send, status, detail)


class ClientConcurrency:
    """ASGI middleware: at most ``limit`` requests in flight per client address, beyond which
    ``503`` with ``Retry-After``. Behind a trusted proxy the client address is the one
    uvicorn took from ``X-Forwarded-For`` (its proxy-header middleware runs first), so this
    is the per-client cap there; on direct connections the connection cap already bounds it."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit
        self.in_flight: dict[str, int] = {}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        host = str(client[0]) if client else ""
        if self.in_flight.get(host, 0) >= self.limit:
            await _refuse(send, 503, "too many requests in flight from this address", 5)
            return
        self.in_flight[host] = self.in_flight.get(host, 0) + 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight[host] -= 1
            if not self.in_flight[host]:
                del self.in_flight[host]


async def _refuse(send: Any, status: int, detail: str, retry_after: int | None = None) -> None:
    body = ('{"detail": "' + detail + '"}').encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *([(b"retry-after", str(retry_after).encode())] if retry_after else []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
