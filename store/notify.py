"""Changes announced to every process on the database: PostgreSQL LISTEN/NOTIFY.

CONTRACT
--------
- :func:`announce` sends ``pg_notify(channel, payload)`` on the caller's connection (channel
  :data:`CHANNEL`, credentials, unless told). Called inside the transaction that makes the
  change, it is delivered exactly when that transaction commits (never for a change rolled
  back). A payload is at most :data:`MAX_PAYLOAD` bytes of UTF-8 (PostgreSQL refuses 8000 or
  more): a longer one is a ``ValueError`` before anything is sent.
- Credential payloads (channel ``ecosense_credentials``): ``device:<id>`` (a device's
  credentials changed: registered again, rotated, revoked), ``admin`` (the break-glass admin
  token was rotated), and ``*``, which :class:`Listener` delivers itself to every subscriber
  each time it (re)connects: notifications sent while it was not listening are lost, so
  everything cached must be dropped or re-checked.
- Other channels carry their own payloads (``ecosense_hj212``: HJ 212 commands routed between
  gateway instances, :mod:`store.links`); their subscribers get ``*`` on (re)connection too.
- :class:`Listener` keeps one connection of its own in a daemon thread, listens on the
  channels of its subscribers (a channel subscribed while it runs is listened within
  ``poll_seconds``) and calls each subscriber of a channel with the payload in that thread: a
  subscriber must be quick and must not raise (an exception is logged and the others are still
  called). It reconnects after a failure, waiting 0.5 s doubling up to 5 s, and logs one line
  per outage.
- What a missed notification can cost is bounded by each cache on its own: the store's token
  and password caches live at most ``store.postgres.CREDENTIAL_CACHE_SECONDS`` (5 s), the
  admin token's likewise, and the HJ 212 server re-checks the credential version of its
  connected devices every few seconds; a routed HJ 212 command whose message is lost times out.

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
#: the longest payload PostgreSQL takes (bytes of UTF-8; ``pg_notify`` refuses 8000 or more)
MAX_PAYLOAD: Final = 7999

Subscriber = Callable[[str], None]


def device_payload(device_id: str) -> str:
    """The payload announcing a change of ``device_id``'s credentials."""
    return f"device:{device_id}"


def changed_device(payload: str) -> str | None:
    """The device id a ``device:<id>`` payload names (``None`` for another payload)."""
    return payload[7:] if payload.startswith("device:") else None


def check_payload(payload: str) -> str:
    """``payload`` itself when PostgreSQL can send it (at most :data:`MAX_PAYLOAD` bytes of
    UTF-8, no NUL), else ``ValueError``."""
    size = len(payload.encode("utf-8", "surrogatepass"))
    if size > MAX_PAYLOAD:
        raise ValueError(f"a notification of {size} bytes exceeds {MAX_PAYLOAD}")
    if "\0" in payload:
        raise ValueError("a notification cannot hold a NUL character")
    try:
        payload.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"a notification must be valid text: {exc}") from exc
    return payload


def announce(conn: psycopg.Connection[Any], payload: str, channel: str = CHANNEL) -> None:
    """Notify every listener of ``channel`` of ``payload`` (when the caller's transaction
    commits; ``ValueError`` for a payload PostgreSQL would refuse, see :func:`check_payload`)."""
    conn.execute("SELECT pg_notify(%s, %s)", (channel, check_payload(payload)))


class Listener:
    """Listens on its subscribers' channels in a background thread and calls them.

    Usage: ``listener = Listener(url); listener.subscribe(cb); listener.start()`` …
    ``listener.stop()`` (``subscribe(cb, channel)`` for a channel other than the credentials').
    :meth:`wait_listening` tells when it is connected (tests).
    """

    def __init__(self, url: str, *, poll_seconds: float = 0.5) -> None:
        self.url = url
        self.poll_seconds = poll_seconds
        self.notifications = 0  #: payloads received from the database (not counting ``*``)
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def subscribe(self, subscriber: Subscriber, channel: str = CHANNEL) -> None:
        """Call ``subscriber(payload)`` for every notification on ``channel`` from now on (in
        the listener thread; listened within ``poll_seconds`` when the listener runs)."""
        with self._lock:
            if channel not in self._subscribers:
                self._listening.clear()  # set again once the new channel is listened
            self._subscribers.setdefault(channel, []).append(subscriber)

    def start(self) -> Listener:
        """Start listening in a daemon thread; return self."""
        self._thread = threading.Thread(target=self._run, name="notifications", daemon=True)
        self._thread.start()
        return self

    def wait_listening(self, timeout: float = 10.0) -> bool:
        """Whether the listener is connected and listening on every channel subscribed so far
        (waits up to ``timeout`` s)."""
        return self._listening.wait(timeout)

    @property
    def listening(self) -> bool:
        """Whether the listener is connected now (and listens on every channel subscribed)."""
        return self._listening.is_set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening (returns within about ``poll_seconds``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _deliver(self, channel: str | None, payload: str) -> None:
        """Call the subscribers of ``channel`` (all of them for ``None``) with ``payload``."""
        if channel is None:
            subscribers = [s for group in list(self._subscribers.values()) for s in group]
        else:
            subscribers = list(self._subscribers.get(channel, ()))
        for subscriber in subscribers:
            try:
                subscriber(payload)
            except Exception:
                logger.exception("notification %r on %s: a subscriber failed", payload, channel)

    def _listen_new(self, conn: psycopg.Connection[Any], listened: set[str]) -> None:
        """LISTEN on the channels subscribed while running, and deliver ``*`` to their
        subscribers (what was announced before is not known to them)."""
        with self._lock:
            new = [c for c in self._subscribers if c not in listened]
        for channel in new:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
            listened.add(channel)
            self._deliver(channel, EVERYTHING)
        with self._lock:
            if listened.issuperset(self._subscribers):
                self._listening.set()

    def _run(self) -> None:
        delay, failing = 0.5, False
        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                    with self._lock:
                        listened = set(self._subscribers) or {CHANNEL}
                    for channel in sorted(listened):
                        conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    if failing:
                        logger.warning("notifications: listening again")
                    delay, failing = 0.5, False
                    self._deliver(None, EVERYTHING)  # what was missed meanwhile: drop it all
                    self._listen_new(conn, listened)  # and sets `listening`
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=self.poll_seconds):
                            self.notifications += 1
                            self._deliver(notify.channel, notify.payload)
                        self._listen_new(conn, listened)
            except psycopg.Error as exc:
                if not failing:
                    logger.warning(
                        "notifications: not listening (%s); caches expire on their own"
                        " meanwhile, retrying",
                        " ".join(str(exc).split()) or type(exc).__name__,
                    )
                failing = True
            except Exception:  # a bug: logged, the thread goes on
                logger.exception("notifications: listener failed")
                failing = True
            self._listening.clear()
            self._stop.wait(delay)
            delay = min(delay * 2, 5.0)


#: the listener's name before it carried other channels than the credentials'
CredentialListener = Listener
