"""The tamper-evident audit: an append-only, hash-chained table ``audit_log``.

Each entry says who (``actor``: a user's name as is, ``device:<id>`` for a device, ``admin``
for the operator/break-glass token, ``cli:<login>`` for a command run on the server), from
where (``address``), what (``action``) to which station or dataset (``object``), how it ended
(``outcome``: ``ok``, ``denied``, ``failed``, …) and optional ``details`` (JSON).

The chain: an entry's ``hash`` is the SHA-256 (hex) of :func:`canonical` — its id, time (UTC,
microseconds), actor, address, action, object, outcome, details and ``prev_hash``, the hash of
the entry before it (:data:`GENESIS` for the first). :func:`append` computes it under a
transaction-level advisory lock, so concurrent writers (threads, processes, gateway replicas)
take turns and the chain stays linear. The table refuses UPDATE, DELETE and TRUNCATE
(migration 0013); a superuser can still switch that off, so :func:`verify` recomputes the chain
and names the first entry changed, deleted or moved. (Removing the newest entries leaves a
shorter intact chain: keep the head hash that ``ecosense audit verify`` prints elsewhere to
detect that.)

:func:`record` is what a command calls: it never raises — a failed audit write is logged as
an error and must not lose the reading or fail the request. The long-running services hand
their events to an :class:`AuditWriter` instead, which appends them in the background, many per
transaction, so that a request pays for no audit round trip or commit of its own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from store.db import Connection
from store.errors import StoreUnavailable

logger = logging.getLogger(__name__)

#: ``prev_hash`` of the first entry.
GENESIS = "0" * 64
#: key of the transaction-level advisory lock that serialises appends ("EcAu")
_LOCK_KEY = 0x45634175
#: longest text kept in a field (characters); longer values are cut with "…"
MAX_TEXT = 1000
_COLUMNS = "id, time, actor, address, action, object, outcome, details, prev_hash, hash"


@dataclass(frozen=True, slots=True)
class Event:
    """An event to append (the fields an entry gets besides id, time and hashes)."""

    actor: str
    action: str
    object: str
    outcome: str = "ok"
    address: str | None = None
    details: Mapping[str, Any] | None = None
    #: when it happened (default: when it is appended)
    time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One stored entry of the audit."""

    id: int
    time: datetime
    actor: str
    address: str | None
    action: str
    object: str
    outcome: str
    details: dict[str, Any] | None
    prev_hash: str
    hash: str

    def as_json(self, tz: Any = UTC) -> dict[str, Any]:
        """The entry as the API answers it (``time`` ISO 8601 in ``tz``)."""
        return {
            "id": self.id,
            "time": self.time.astimezone(tz).isoformat(),
            "actor": self.actor,
            "address": self.address,
            "action": self.action,
            "object": self.object,
            "outcome": self.outcome,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True)
class Broken:
    """The first entry where the chain does not hold: its id and what is wrong."""

    id: int
    reason: str
    missing: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Verification:
    """What :func:`check` found: entries read, the first break (``None``: intact), head hash."""

    entries: int
    broken: Broken | None
    head: str = GENESIS
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- canonical form
def clean_text(text: object, limit: int = MAX_TEXT) -> str:
    """``text`` as PostgreSQL can store it: NUL as U+FFFD, unpaired surrogates escaped, cut
    to ``limit`` characters."""
    s = str(text).replace("\x00", "\ufffd")
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        s = s.encode("utf-8", "backslashreplace").decode("utf-8")
    return s if len(s) <= limit else s[: limit - 1] + "…"


def clean_details(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON that survives jsonb unchanged: texts cleaned, non-finite and huge
    numbers as text, anything else (times, sets, …) as its text."""
    if depth > 20:
        return clean_text(value)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {clean_text(k, 200): clean_details(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_details(v, depth + 1) for v in value]
    return clean_text(value)


def _numbers_as_floats(value: Any) -> Any:
    """Every number as a float (jsonb may give ``1e16`` back as the integer 10**16)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, dict):
        return {k: _numbers_as_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers_as_floats(v) for v in value]
    return value


def canonical(
    id: int,
    time: datetime,
    actor: str,
    address: str | None,
    action: str,
    object: str,
    outcome: str,
    details: Mapping[str, Any] | None,
    prev_hash: str,
) -> bytes:
    """The bytes an entry's hash is computed over: a compact JSON array (UTF-8, keys sorted,
    numbers as floats) of id, time (UTC ISO 8601 with microseconds), actor, address, action,
    object, outcome, details and prev_hash."""
    doc = [
        id,
        time.astimezone(UTC).isoformat(timespec="microseconds"),
        actor,
        address,
        action,
        object,
        outcome,
        _numbers_as_floats(details),
        prev_hash,
    ]
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.encode("utf-8")


def entry_hash(*fields: Any) -> str:
    """SHA-256 (hex) of :func:`canonical` of the entry's fields."""
    return hashlib.sha256(canonical(*fields)).hexdigest()


# --------------------------------------------------------------------------- writing
def append_many(conn: Connection, events: Sequence[Event]) -> list[Entry]:
    """Append ``events`` in order, chained, in one transaction (under the advisory lock)."""
    out: list[Entry] = []
    if not events:
        return out
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        row = conn.execute(
            "SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1",
        ).fetchone()
        prev = str(row[0]) if row else GENESIS
        ids = conn.execute(
            "SELECT nextval(pg_get_serial_sequence('audit_log', 'id')) FROM generate_series(1, %s)",
            (len(events),),
        ).fetchall()
        now = datetime.now(UTC)
        rows = []
        for (new_id,), e in zip(ids, events, strict=True):
            details = None if e.details is None else clean_details(dict(e.details))
            fields = (
                int(new_id),
                now if e.time is None else e.time,
                clean_text(e.actor),
                None if e.address is None else clean_text(e.address, 200),
                clean_text(e.action, 200),
                clean_text(e.object),
                clean_text(e.outcome, 200),
                details,
                prev,
            )
            digest = entry_hash(*fields)
            out.append(Entry(*fields, hash=digest))
            rows.append((*fields[:7], None if details is None else Jsonb(details), prev, digest))
            prev = digest
        # One COPY for the entries (a round of 1,000 devices' group commit is 1,000 entries:
        # COPY costs a fraction of executemany's per-row round of the protocol).
        with conn.cursor() as cur, cur.copy(f"COPY audit_log ({_COLUMNS}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row(r)
    return out


def append(
    conn: Connection,
    actor: str,
    action: str,
    object: str,
    outcome: str = "ok",
    address: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> Entry:
    """Append one entry and return it (with its id and hash)."""
    return append_many(conn, [Event(actor, action, object, outcome, address, details)])[0]


class _Pooled(Protocol):
    """What :func:`record` needs of the store: a pooled connection (a context manager)."""

    def connection(self, timeout: float | None = None) -> Any: ...


#: entries of a failed write logged one by one; the rest are counted in one line
_LOGGED_PER_FAILURE = 5


def _log_lost(events: Sequence[Event], exc: BaseException) -> None:
    """Log the entries of a failed write as errors (the first few in full, then a count)."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    for e in events[:_LOGGED_PER_FAILURE]:
        logger.error(
            "audit entry not written (%s): actor=%s action=%s object=%s outcome=%s"
            " address=%s details=%s",
            reason,
            e.actor,
            e.action,
            e.object,
            e.outcome,
            e.address,
            e.details,
        )
    if len(events) > _LOGGED_PER_FAILURE:
        logger.error(
            "audit: %d more entries not written (%s)", len(events) - _LOGGED_PER_FAILURE, reason
        )


def record_many(store: _Pooled, events: Sequence[Event]) -> bool:
    """Append ``events`` through ``store``'s pool; never raises: a failure is logged as an
    error (with the events, so that nothing audited is silently lost) and ``False`` returned."""
    if not events:
        return True
    try:
        with store.connection(timeout=5.0) as conn:
            append_many(conn, events)
        return True
    except Exception as exc:
        _log_lost(events, exc)
        return False


def record(
    store: _Pooled,
    actor: str,
    action: str,
    object: str,
    outcome: str = "ok",
    address: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> bool:
    """Append one entry through ``store``'s pool; never raises (see :func:`record_many`)."""
    return record_many(store, [Event(actor, action, object, outcome, address, details)])


class AuditWriter:
    """Appends submitted events in a background thread, in batches of up to ``max_batch``
    (one transaction each, chained as :func:`append_many`); while entries keep coming (the
    previous batch was written less than ``linger`` seconds ago) a batch gathers them for up
    to ``linger`` seconds after its first (a gateway under load submits an entry per request
    or group commit: one transaction per entry would cost the database more than the readings
    do); an entry of a quiet moment is written at once.
    :meth:`submit` never blocks: beyond
    ``max_queue`` waiting events, an event is logged as an error and dropped (the database is
    down or far behind). While the database is unreachable a batch is retried (every second,
    for up to ``retry_seconds``, not once stopping) before it is logged and dropped.
    :meth:`flush` waits until what was submitted is written; :meth:`stop` flushes and ends
    the thread."""

    def __init__(
        self,
        store: _Pooled,
        *,
        max_batch: int = 1000,
        max_queue: int = 100_000,
        retry_seconds: float = 300.0,
        linger: float = 0.05,
    ) -> None:
        self.store = store
        self.max_batch = max_batch
        self.linger = linger
        self._last_write = -math.inf
        self.retry_seconds = retry_seconds
        self._stopping = threading.Event()
        self._queue: queue.Queue[Event | None] = queue.Queue(max_queue)
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failed = 0

    def start(self) -> AuditWriter:
        self._thread = threading.Thread(target=self._run, name="audit", daemon=True)
        self._thread.start()
        return self

    def submit(
        self,
        actor: str,
        action: str,
        object: str,
        outcome: str = "ok",
        address: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        """Queue an event (stamped now); ``False`` when the queue is full and it was dropped."""
        event = Event(actor, action, object, outcome, address, details, datetime.now(UTC))
        return self.submit_events([event])

    def submit_events(self, events: Sequence[Event]) -> bool:
        """Queue events; ``False`` when the queue is full and some were dropped (logged)."""
        for n, e in enumerate(events):
            try:
                self._queue.put_nowait(e if e.time is not None else _stamped(e))
            except queue.Full:
                self.failed += len(events) - n
                logger.error(
                    "audit queue full (%d waiting): %d entries not written, first: actor=%s"
                    " action=%s object=%s",
                    self._queue.qsize(),
                    len(events) - n,
                    e.actor,
                    e.action,
                    e.object,
                )
                return False
        return True

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until every event submitted so far is written (or failed); ``False`` on
        time-out."""
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        return done.wait(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Write what is queued, then end the thread."""
        if self._thread is None:
            return
        self._stopping.set()
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            logger.error("audit writer: queue full at stop, entries not written")
            return
        self._thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch: list[Event] = []
            end = first is None
            if first is not None:
                batch.append(first)
            # Linger only while entries keep coming (the last write ended within ``linger``):
            # an entry of a quiet moment is written at once, as before.
            busy = time.monotonic() - self._last_write < self.linger
            deadline = time.monotonic() + (self.linger if busy else 0.0)
            while not end and len(batch) < self.max_batch:
                wait = deadline - time.monotonic()
                try:
                    more = self._queue.get(timeout=wait) if wait > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    end = True
                else:
                    batch.append(more)
            try:
                if self._write(batch):
                    self.written += len(batch)
                else:
                    self.failed += len(batch)
                self._last_write = time.monotonic()
            finally:
                for _ in range(len(batch) + (1 if end else 0)):
                    self._queue.task_done()
            if end:
                return

    def _write(self, batch: list[Event]) -> bool:
        """Append ``batch``, retrying while the database is unreachable; never raises."""
        if not batch:
            return True
        give_up = time.monotonic() + self.retry_seconds
        while True:
            try:
                with self.store.connection(timeout=5.0) as conn:
                    append_many(conn, batch)
                return True
            except (StoreUnavailable, psycopg.OperationalError) as exc:
                if self._stopping.is_set() or time.monotonic() >= give_up:
                    _log_lost(batch, exc)
                    return False
                if self._stopping.wait(1.0):
                    continue  # one last try at stop
            except Exception as exc:
                _log_lost(batch, exc)
                return False


def _stamped(e: Event) -> Event:
    return Event(e.actor, e.action, e.object, e.outcome, e.address, e.details, datetime.now(UTC))


# --------------------------------------------------------------------------- reading
def _entry(row: Sequence[Any]) -> Entry:
    return Entry(
        int(row[0]),
        row[1],
        row[2],
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        row[8],
        row[9],
    )


def read(
    conn: Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    after: int | None = None,
    limit: int = 100,
) -> list[Entry]:
    """Entries newest first, filtered (``[start, end)`` on time); keyset paged: ``after`` is
    the id of the last entry of the previous page."""
    where: list[sql.Composable] = []
    values: list[Any] = []
    for column, op, value in (
        ("actor", "=", actor),
        ("action", "=", action),
        ("time", ">=", start),
        ("time", "<", end),
        ("id", "<", after),
    ):
        if value is not None:
            where.append(sql.SQL("{} " + op + " %s").format(sql.Identifier(column)))
            values.append(value)
    query = sql.SQL("SELECT " + _COLUMNS + " FROM audit_log {} ORDER BY id DESC LIMIT %s").format(
        sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL("")
    )
    values.append(limit)
    return [_entry(r) for r in conn.execute(query, values).fetchall()]


# --------------------------------------------------------------------------- verifying
def check(conn: Connection, batch: int = 5000) -> Verification:
    """Stream the table in id order and recompute the chain; stop at the first break.

    An entry whose fields were changed no longer matches its hash; an entry deleted (or moved
    to another id) leaves the next one's ``prev_hash`` pointing at a hash that is not its
    predecessor's.
    """
    count = 0
    prev, prev_id = GENESIS, 0
    with conn.transaction(), conn.cursor(name="audit_verify") as cur:
        cur.itersize = batch
        cur.execute(f"SELECT {_COLUMNS} FROM audit_log ORDER BY id")
        for row in cur:
            e = _entry(row)
            count += 1
            recomputed = entry_hash(
                e.id,
                e.time,
                e.actor,
                e.address,
                e.action,
                e.object,
                e.outcome,
                e.details,
                e.prev_hash,
            )
            if recomputed != e.hash:
                return Verification(
                    count, Broken(e.id, f"entry {e.id} was changed (its hash does not match)"), prev
                )
            if e.prev_hash != prev:
                missing = tuple(range(prev_id + 1, e.id))
                where = f"does not follow entry {prev_id}" if prev_id else "is not the first"
                if missing and len(missing) <= 10:
                    what = "entry " if len(missing) == 1 else "entries "
                    gone = what + ", ".join(map(str, missing)) + " deleted"
                elif missing:
                    gone = f"entries {missing[0]}–{missing[-1]} deleted"
                else:
                    gone = "entries deleted or reordered"
                first = missing[0] if missing else e.id
                return Verification(
                    count,
                    Broken(
                        first,
                        f"{gone}: entry {e.id} {where}",
                        missing,
                    ),
                    prev,
                )
            prev, prev_id = e.hash, e.id
    return Verification(count, None, prev)


def verify(conn: Connection) -> Broken | None:
    """The first entry changed or deleted, or ``None`` when the chain is intact."""
    return check(conn).broken
