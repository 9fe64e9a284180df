"""Credential changes announced to every process on the database: PostgreSQL LISTEN/NOTIFY.

CONTRACT
--------
- :func:`announce` sends ``pg_notify('ecosense_credentials', payload)`` on the caller's
  connection. Called inside the transaction that makes the change, it is delivered exactly
  when that transaction commits (never for a change rolled back).
- Payloads: ``device:<id>`` (a device's credentials changed: registered again, rotated,
  revoked), ``admin`` (the break-glass admin token was rotated), and ``*``, which
  :class:`CredentialListener` delivers itself each time it (re)connects: notifications sent
  while it was not listening are lost, so everything cached must be dropped or re-checked.
- :class:`CredentialListener` keeps one connection of its own in a daemon thread and calls
  each subscriber with the payload in that thread: a subscriber must be quick and must not
  raise (an exception is logged and the others are still called). It reconnects after a
  failure, waiting 0.5 s doubling up to 5 s, and logs one line per outage.
- What a missed notification can cost is bounded by each cache on its own: the store's token
  and password caches live at most ``store.postgres.CREDENTIAL_CACHE_SECONDS`` (5 s), the
  admin token's likewise, and the HJ 212 server re-checks the credential version of its
  connected devices every few seconds.

Any number of gateway processes (or instances on several machines) on one database each run
one listener: a credential registered, rotated or revoked through any of them, or through the
CLI, reaches all of them within the notification's delivery (milliseconds).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Final

import psycopg
from psycopg import sql

logger = logging.getLogger(__name__)

#: the channel every credential change is announced on
CHANNEL: Final = "ecosense_credentials"
#: the payload the listener delivers itself after (re)connecting: drop every cache
EVERYTHING: Final = "*"
#: the payload of an admin token rotation
ADMIN: Final = "admin"

Subscriber = Callable[[str], None]


def device_payload(device_id: str) -> str:
    """The payload announcing a change of ``device_id``'s credentials."""
    return f"device:{device_id}"


def changed_device(payload: str) -> str | None:
    """The device id a ``device:<id>`` payload names (``None`` for another payload)."""
    return payload[7:] if payload.startswith("device:") else None


def announce(conn: psycopg.Connection[Any], payload: str) -> None:
    """Notify every listener of ``payload`` (when the caller's transaction commits)."""
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


class CredentialListener:
    """Listens on :data:`CHANNEL` in a background thread and calls its subscribers.

    Usage: ``listener = CredentialListener(url); listener.subscribe(cb); listener.start()``
    … ``listener.stop()``. :meth:`wait_listening` tells when it is connected (tests).
    """

    def __init__(self, url: str, *, poll_seconds: float = 0.5) -> None:
        self.url = url
        self.poll_seconds = poll_seconds
        self.notifications = 0  #: payloads received from the database (not counting ``*``)
        self._subscribers: list[Subscriber] = []
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call ``subscriber(payload)`` for every change from now on (in the listener thread)."""
        self._subscribers.append(subscriber)

    def start(self) -> CredentialListener:
        """Start listening in a daemon thread; return self."""
        self._thread = threading.Thread(target=self._run, name="credentials", daemon=True)
        self._thread.start()
        return self

    def wait_listening(self, timeout: float = 10.0) -> bool:
        """Whether the listener is connected and listening (waits up to ``timeout`` s)."""
        return self._listening.wait(timeout)

    @property
    def listening(self) -> bool:
        """Whether the listener is connected now."""
        return self._listening.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening (returns within about ``poll_seconds``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _deliver(self, payload: str) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber(payload)
            except Exception:
                logger.exception("credential change %r: a subscriber failed", payload)

    def _run(self) -> None:
        delay, failing = 0.5, False
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
                    if failing:
                        logger.warning("credential changes: listening again")
                    delay, failing = 0.5, False
                    self._deliver(EVERYTHING)  # what was missed meanwhile: drop it all
                    self._listening.set()
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=self.poll_seconds):
                            self.notifications += 1
                            self._deliver(notify.payload)
            except psycopg.Error as exc:
                if not failing:
                    logger.warning(
                        "credential changes: not listening (%s); caches expire on their own"
                        " meanwhile, retrying",
                        " ".join(str(exc).split()) or type(exc).__name__,
                    )
                failing = True
            except Exception:  # a bug: logged, the thread goes on
                logger.exception("credential changes: listener failed")
                failing = True
            self._listening.clear()
            self._stop.wait(delay)
            delay = min(delay * 2, 5.0)
