"""Gateway instances on one database, which one holds each HJ 212 unit, and the commands routed
between them (migration 0016).

CONTRACT
--------
- Each gateway process is an *instance* (:func:`new_instance_id`: host, process id and a random
  part). :class:`Instances` records it in ``gateway_instances`` and beats its ``heartbeat_at``
  every ``heartbeat`` seconds (1 s) from a daemon thread; an instance silent for ``expiry``
  seconds (5 s) is dead: :meth:`Instances.holder` ignores its rows at once, and any live
  instance deletes them (with its links, by cascade) a minute later. A stopped instance deletes
  its own row.
- :meth:`Instances.hold` / :meth:`Instances.release` (non-blocking, from the HJ 212 event loop)
  say that this instance now holds, or no longer holds, the connection of the unit ``mn``; the
  thread writes ``hj212_links`` at once, the final state of each MN only (an upsert at login:
  a unit that reconnects to another instance moves its row; a delete, of this instance's row
  only, at disconnect). After a database outage, or should its row have been purged, the
  instance writes all the links it holds again.
- A command for a unit held elsewhere (:meth:`Instances.send_command`) is a row of
  ``hj212_commands`` and a notification ``request <holder> <id>`` on :data:`CHANNEL`, sent in one
  transaction. The holder claims the row (:meth:`Instances.claim`, state ``accepted``), sends
  the command on its link, and records the answer (:meth:`Instances.answer`, a terminal state
  with the unit's ``QnRtn``/``ExeRtn``), each followed by ``answer <sender> <id>``; the sender
  reads the row (:meth:`Instances.command_state`) and deletes it (:meth:`Instances.forget`).
  Notifications only wake the other side: the command (a 1072 carries a new password) and the
  answer stay in the table, which only the gateway role may read (any role may LISTEN). They are
  a few dozen bytes, checked against PostgreSQL's 8000-byte limit by :func:`store.notify.announce`.
- Every method but :meth:`hold`/:meth:`release` is blocking (one short query): call it from a
  worker thread. A database error is :class:`~store.errors.StoreUnavailable`.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Final, Literal

from psycopg.types.json import Jsonb

from store import notify
from store.errors import StoreUnavailable
from store.postgres import PostgresStore

logger = logging.getLogger(__name__)

#: the channel HJ 212 commands are routed on between gateway instances
CHANNEL: Final = "ecosense_hj212"
#: seconds between two heartbeats of an instance
HEARTBEAT_SECONDS: Final = 1.0
#: seconds without a heartbeat after which an instance (and the units it held) counts as gone
EXPIRY_SECONDS: Final = 5.0
#: seconds after which a dead instance's rows, and a command row nobody deleted, are purged
PURGE_SECONDS: Final = 60.0
#: the longest time-out a routed command may carry (seconds; the table's CHECK)
MAX_TIMEOUT: Final = 600.0

#: what a routed command ended as: answered by the unit, or why not
State = Literal["sent", "accepted", "answered", "not_connected", "timeout", "invalid", "failed"]
TERMINAL: Final = frozenset({"answered", "not_connected", "timeout", "invalid", "failed"})

_ID = re.compile(r"^[A-Za-z0-9._-]{1,100}$")


def new_command_id() -> str:
    """A new routed command's id (128 random bits, hex)."""
    return secrets.token_hex(16)


def new_instance_id(host: str | None = None, pid: int | None = None) -> str:
    """A new instance id, ``<host>-<pid>-<8 hex>`` (the host name cut to 40 characters of
    ``[A-Za-z0-9.-]``, for the logs)."""
    name = re.sub(r"[^A-Za-z0-9.-]", "", host if host is not None else socket.gethostname())
    return f"{name[:40] or 'host'}-{os.getpid() if pid is None else pid}-{secrets.token_hex(4)}"


@dataclass(frozen=True, slots=True)
class Wakeup:
    """A notification on :data:`CHANNEL`: ``kind`` (``request``: to the holder; ``answer``: to
    the sender) for instance ``to`` about the command row ``id``."""

    kind: Literal["request", "answer"]
    to: str
    id: str

    def payload(self) -> str:
        """As sent: ``"<kind> <to> <id>"`` (``ValueError`` for an id that is not a token)."""
        for value in (self.to, self.id):
            if not _ID.match(value):
                raise ValueError(f"not an instance or command id: {value[:40]!r}")
        return notify.check_payload(f"{self.kind} {self.to} {self.id}")

    @classmethod
    def parse(cls, payload: str) -> Wakeup | None:
        """The wake-up a payload holds, or ``None`` (``*``, garbage: ignored)."""
        parts = payload.split(" ")
        if len(parts) != 3 or not (_ID.match(parts[1]) and _ID.match(parts[2])):
            return None
        kind, to, id_ = parts
        if kind == "request":
            return cls("request", to, id_)
        if kind == "answer":
            return cls("answer", to, id_)
        return None


@dataclass(frozen=True, slots=True)
class RoutedCommand:
    """A command row as the holder claims it (the sender waits for its answer)."""

    id: str
    sender: str
    mn: str
    cn: str
    cp: str
    timeout: float


@dataclass(frozen=True, slots=True)
class CommandState:
    """A command row as the sender reads it: its state, the unit's answers, why it failed."""

    state: State
    result: dict[str, str | None] | None = None
    message: str | None = None


class Instances:
    """This gateway instance's row, its HJ 212 links, and the commands routed through it.

    Usage: ``instances = Instances(store).start()`` … ``instances.stop()``.
    """

    def __init__(
        self,
        store: PostgresStore,
        instance: str | None = None,
        *,
        heartbeat: float = HEARTBEAT_SECONDS,
        expiry: float = EXPIRY_SECONDS,
    ) -> None:
        self.store = store
        self.id = instance or new_instance_id()
        self.heartbeat = heartbeat
        self.expiry = expiry
        self._held: set[str] = set()
        self._dirty: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ life
    def start(self) -> Instances:
        """Record this instance (blocking; :class:`StoreUnavailable` when the database is
        down: the thread records it once it is back) and start beating; return self."""
        try:
            self._beat()
        except StoreUnavailable as exc:
            logger.warning("gateway instance %s: not recorded yet: %s", self.id, exc)
        self._thread = threading.Thread(target=self._run, name="instances", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop beating and delete this instance's row and links (the units it held are then
        no one's at once, rather than after ``expiry``)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            with self.store.connection(timeout=2.0) as conn:
                conn.execute("DELETE FROM gateway_instances WHERE id = %s", (self.id,))
        except StoreUnavailable as exc:
            logger.warning("gateway instance %s: row not deleted (%s): it expires", self.id, exc)

    # ------------------------------------------------------------------ links
    def hold(self, mn: str) -> None:
        """This instance holds ``mn``'s connection now (written at once by the thread)."""
        with self._lock:
            self._held.add(mn)
            self._dirty.add(mn)
        self._wake.set()

    def release(self, mn: str) -> None:
        """This instance no longer holds ``mn``'s connection (its row, if still this
        instance's, is deleted at once by the thread)."""
        with self._lock:
            self._held.discard(mn)
            self._dirty.add(mn)
        self._wake.set()

    @property
    def held(self) -> frozenset[str]:
        """The MNs this instance holds."""
        with self._lock:
            return frozenset(self._held)

    def holder(self, mn: str) -> str | None:
        """The live instance holding ``mn``'s connection (this one included), or ``None``."""
        with self.store.connection() as conn:
            row = conn.execute(
                "SELECT l.instance FROM hj212_links l JOIN gateway_instances i"
                " ON i.id = l.instance WHERE l.mn = %s"
                " AND i.heartbeat_at > now() - make_interval(secs => %s)",
                (mn, self.expiry),
            ).fetchone()
        return None if row is None else str(row[0])

    def _run(self) -> None:
        failing = False
        next_beat = time.monotonic() + self.heartbeat
        while not self._stop.is_set():
            self._wake.wait(max(0.0, next_beat - time.monotonic()))
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                if time.monotonic() >= next_beat or failing:
                    next_beat = time.monotonic() + self.heartbeat
                    self._beat()
                self._flush()
                if failing:
                    logger.warning("gateway instance %s: database reachable again", self.id)
                failing = False
            except StoreUnavailable as exc:
                if not failing:
                    logger.warning(
                        "gateway instance %s: heartbeat failed (%s); retrying", self.id, exc
                    )
                failing = True
                with self._lock:  # written again once the database is back
                    self._dirty |= self._held
            except Exception:  # a bug: logged, the thread goes on
                logger.exception("gateway instance %s: heartbeat failed", self.id)

    def _beat(self) -> None:
        """Beat the heartbeat (re-recording the instance and its links if its row is gone),
        and purge what dead instances and abandoned commands left."""
        with self.store.connection() as conn, conn.transaction():
            found = conn.execute(
                "UPDATE gateway_instances SET heartbeat_at = now() WHERE id = %s", (self.id,)
            ).rowcount
            if not found:
                conn.execute("INSERT INTO gateway_instances (id) VALUES (%s)", (self.id,))
            conn.execute(
                "DELETE FROM gateway_instances"
                " WHERE heartbeat_at < now() - make_interval(secs => %s)",
                (PURGE_SECONDS,),
            )
            conn.execute(
                "DELETE FROM hj212_commands WHERE created_at < now() - make_interval(secs => %s)",
                (PURGE_SECONDS + MAX_TIMEOUT,),
            )
        if not found:
            with self._lock:
                self._dirty |= self._held

    def _flush(self) -> None:
        """Write the links whose state changed since the last flush (their final state)."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
            held = {mn for mn in dirty if mn in self._held}
        if not dirty:
            return
        try:
            with self.store.connection() as conn, conn.transaction(), conn.cursor() as cur:
                if held:
                    cur.executemany(
                        "INSERT INTO hj212_links (mn, instance) VALUES (%s, %s)"
                        " ON CONFLICT (mn) DO UPDATE SET instance = EXCLUDED.instance,"
                        " since = now()",
                        [(mn, self.id) for mn in sorted(held)],
                    )
                released = sorted(dirty - held)
                if released:
                    cur.execute(
                        "DELETE FROM hj212_links WHERE mn = ANY(%s) AND instance = %s",
                        (released, self.id),
                    )
        except BaseException:
            with self._lock:
                self._dirty |= dirty
            raise

    # ------------------------------------------------------------------ commands
    def send_command(
        self, command: str, holder: str, mn: str, cn: str, cp: str, timeout: float
    ) -> None:
        """Ask ``holder`` to send a command to ``mn`` on its link, as command ``command`` (an
        id of :func:`new_command_id`; ``ValueError`` for a time-out outside (0, 600] s)."""
        if not 0 < timeout <= MAX_TIMEOUT:
            raise ValueError(f"a routed command's time-out must be in (0, {MAX_TIMEOUT:.0f}] s")
        wakeup = Wakeup("request", holder, command).payload()
        with self.store.connection() as conn, conn.transaction():
            conn.execute(
                "INSERT INTO hj212_commands (id, sender, holder, mn, cn, cp, timeout_seconds)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (command, self.id, holder, mn, cn, cp, timeout),
            )
            notify.announce(conn, wakeup, CHANNEL)

    def withdraw(self, command: str) -> bool:
        """Give up a command this instance sent that its holder has not taken yet (deleted);
        ``False`` when the holder took it meanwhile (its answer is then to be awaited)."""
        with self.store.connection() as conn:
            return bool(
                conn.execute(
                    "DELETE FROM hj212_commands WHERE id = %s AND sender = %s AND state = 'sent'",
                    (command, self.id),
                ).rowcount
            )

    def claim(self, command: str) -> RoutedCommand | None:
        """Take a command routed to this instance (state ``sent`` → ``accepted``, the sender
        woken); ``None`` when there is no such command for it (or it was taken already)."""
        with self.store.connection() as conn, conn.transaction():
            row = conn.execute(
                "UPDATE hj212_commands SET state = 'accepted'"
                " WHERE id = %s AND holder = %s AND state = 'sent'"
                " RETURNING sender, mn, cn, cp, timeout_seconds",
                (command, self.id),
            ).fetchone()
            if row is None:
                return None
            notify.announce(conn, Wakeup("answer", str(row[0]), command).payload(), CHANNEL)
        return RoutedCommand(command, str(row[0]), row[1], row[2], row[3], float(row[4]))

    def answer(
        self,
        command: RoutedCommand,
        state: State,
        result: dict[str, str | None] | None = None,
        message: str | None = None,
    ) -> None:
        """Record how a claimed command ended, and wake its sender."""
        if state not in TERMINAL:
            raise ValueError(f"not a final state: {state!r}")
        with self.store.connection() as conn, conn.transaction():
            conn.execute(
                "UPDATE hj212_commands SET state = %s, result = %s, message = %s"
                " WHERE id = %s AND holder = %s",
                (
                    state,
                    None if result is None else Jsonb(result),
                    None if message is None else message[:1000],
                    command.id,
                    self.id,
                ),
            )
            notify.announce(conn, Wakeup("answer", command.sender, command.id).payload(), CHANNEL)

    def command_state(self, command: str) -> CommandState | None:
        """A command this instance sent, as its holder left it (``None``: no such row)."""
        with self.store.connection() as conn:
            row = conn.execute(
                "SELECT state, result, message FROM hj212_commands WHERE id = %s AND sender = %s",
                (command, self.id),
            ).fetchone()
        if row is None:
            return None
        return CommandState(row[0], _result(row[1]), row[2])

    def forget(self, command: str) -> None:
        """Delete a command this instance sent (answered or given up)."""
        with self.store.connection() as conn:
            conn.execute(
                "DELETE FROM hj212_commands WHERE id = %s AND sender = %s", (command, self.id)
            )


def _result(value: Any) -> dict[str, str | None] | None:
    """A stored answer as the HTTP route returns it: string (or ``null``) values only."""
    if not isinstance(value, dict):
        return None
    return {str(k): None if v is None else str(v) for k, v in value.items()}
