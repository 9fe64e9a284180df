"""The local spool: readings acknowledged while the store is down, kept durably until replayed.

``DurableWriter.write`` is how every ingest path stores a batch. It writes to the store; when
the store is unavailable it appends the batch to the spool — a file per batch in
``DATA_DIR/spool``, written to a temporary name, fsynced, renamed, and the directory fsynced —
and only then returns, so the caller may acknowledge. A background thread replays the spool in
order once the store answers again, deleting each file after its batch is committed. While
the spool is not empty, new batches are spooled too, so that a later correction is never
overwritten by an older spooled value. Replaying twice is harmless: the store upserts.

Only an unavailable store (:class:`~store.errors.StoreUnavailable`) keeps a batch in the
spool. A batch the store refuses for any other reason (its station was deleted, a file that
cannot be read back) would be refused again on every retry and, because new batches queue
behind it, would stop ingest for everyone: it is moved to the dead letters,
``DATA_DIR/spool/dead/NAME.json`` with the reason in ``NAME.reason.txt`` beside it, logged,
and the replay goes on (of a batch naming several stations, only the readings of a deleted
station are dead-lettered). An operator inspects a dead letter there and, once its cause is
fixed, moves its ``.json`` back into ``DATA_DIR/spool`` to replay it (see the README).

A file keeps each batch's provenance (:class:`~sensors.observations.Source`), so a replayed
reading is stored with its real protocol and device: ``{"v": 2, "batches": [{"source":
{"protocol", "device", "user", "file"}, "readings": [[station, parameter, time, value, flag,
interval, statistic, basis], …]}, …]}``. A file of the first format (a bare list of readings,
written before provenance existed) is still replayed, with no provenance (``source`` null).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sensors.observations import Observation, Source
from store.errors import StoreUnavailable
from store.postgres import PostgresStore, SourcedBatch

logger = logging.getLogger(__name__)


def _record(o: Observation) -> list[Any]:
    return [
        o.station,
        o.parameter,
        o.time.isoformat(),
        o.value,
        o.flag,
        o.interval,
        o.statistic,
        o.basis,
    ]


def _observation(r: list[Any]) -> Observation:
    return Observation(
        r[0], r[1], datetime.fromisoformat(r[2]), float(r[3]), r[4], r[5], r[6], r[7]
    )


def _source_record(src: Source | None) -> dict[str, str | None] | None:
    if src is None:
        return None
    return {"protocol": src.protocol, "device": src.device, "user": src.user, "file": src.file}


def _source(r: dict[str, Any] | None) -> Source | None:
    if r is None:
        return None
    return Source(r["protocol"], r.get("device"), r.get("user"), r.get("file"))


def _encode(batches: Sequence[SourcedBatch]) -> bytes:
    doc = {
        "v": 2,
        "batches": [
            {"source": _source_record(src), "readings": [_record(o) for o in obs]}
            for src, obs in batches
        ],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _decode(data: bytes) -> list[SourcedBatch]:
    doc = json.loads(data)
    if isinstance(doc, list):  # first format: readings without provenance
        return [(None, [_observation(r) for r in doc])]
    if not isinstance(doc, dict) or doc.get("v") != 2:
        raise ValueError("not a spool file of a known format")
    return [
        (_source(b["source"]), [_observation(r) for r in b["readings"]]) for b in doc["batches"]
    ]


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_durably(path: Path, batches: Sequence[SourcedBatch]) -> None:
    """Write batches to ``path`` through a temporary file, fsynced, renamed, the folder
    fsynced."""
    data = _encode(batches)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    _fsync_dir(path.parent)


class Spool:
    """Batches on disk, one file each, replayed in the order they were written."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        # numbers go on after the dead letters' too, so a new batch never takes their name
        names = [*directory.glob("*.json"), *(directory / "dead").glob("*.json")]
        existing = [int(p.stem) for p in names if p.stem.isdigit()]
        self._counter = itertools.count(max(existing, default=0) + 1)
        self._lock = threading.Lock()
        for tmp in directory.glob("*.tmp"):  # a write that never completed was never acked
            tmp.unlink(missing_ok=True)
        self._pending = len(self.files())

    def append(self, batches: Sequence[SourcedBatch]) -> Path:
        """Write batches, each with its provenance, durably (fsynced file and directory), as
        one file; return it."""
        with self._lock:
            path = self.directory / f"{next(self._counter):020d}.json"
        _write_durably(path, batches)
        with self._lock:
            self._pending += 1
        return path

    @property
    def dead(self) -> Path:
        """The dead-letter folder: batches the store refused for good, each with its reason."""
        return self.directory / "dead"

    def dead_letter(
        self, path: Path, reason: str, readings: Sequence[SourcedBatch] | None = None
    ) -> Path:
        """Move a spooled file the store refused for good to :attr:`dead`, with ``reason``
        written beside it (``NAME.reason.txt``); return its new path. With ``readings`` (batches
        with their provenance), the dead letter holds only those (the rest was stored)."""
        self.dead.mkdir(exist_ok=True)
        stem = path.stem
        while (self.dead / f"{stem}.json").exists():  # a batch put back and refused again
            stem += "-again"
        target = self.dead / f"{stem}.json"
        note = self.dead / f"{stem}.reason.txt"
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        note.write_text(f"{stamp} {reason}\n", encoding="utf-8", errors="backslashreplace")
        if readings is None:
            os.replace(path, target)
        else:
            _write_durably(target, readings)
            path.unlink()
        _fsync_dir(self.dead)
        _fsync_dir(self.directory)
        with self._lock:
            self._pending -= 1
        logger.warning("spool: batch %s refused, moved to %s: %s", path.name, target, reason)
        return target

    def remove(self, path: Path) -> None:
        """Forget a replayed batch."""
        path.unlink()
        with self._lock:
            self._pending -= 1

    def files(self) -> list[Path]:
        """Spooled batches, oldest first."""
        return sorted(self.directory.glob("*.json"))

    def recount(self) -> int:
        """Count the batches on disk again (picks up a dead letter an operator put back, or a
        file removed by hand); only the replay thread calls it. Returns the count."""
        n = len(self.files())
        with self._lock:
            self._pending = n
        return n

    def pending(self) -> int:
        """How many batches wait (kept in memory: no disk access)."""
        return self._pending

    def batches(self) -> Iterator[tuple[Path, list[SourcedBatch]]]:
        """The batches of each spooled file (with their provenance), oldest first; a file that
        cannot be read back (corrupt, truncated, edited by hand) goes to the dead letters."""
        for path in self.files():
            try:
                batches = _decode(path.read_bytes())
            except FileNotFoundError:  # removed meanwhile (by an operator)
                continue
            except (OSError, ValueError, TypeError, IndexError, KeyError, RecursionError) as exc:
                self.dead_letter(path, f"unreadable spool file: {type(exc).__name__}: {exc}")
                continue
            yield path, batches


class DurableWriter:
    """Store batches, falling back to the spool; replay the spool in the background."""

    def __init__(self, store: PostgresStore, spool: Spool, retry_seconds: float = 2.0) -> None:
        self.store = store
        self.spool = spool
        self.retry_seconds = retry_seconds
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def write(self, observations: Sequence[Observation], source: Source) -> int:
        """Make a batch of one provenance durable; see :meth:`write_batches`."""
        return self.write_batches([(source, observations)])

    def write_batches(self, batches: Sequence[SourcedBatch]) -> int:
        """Make batches, each with its provenance, durable (store or spool); return how many
        readings they hold. Raises only if the disk fails too (then nothing may be
        acknowledged)."""
        batches = [(src, obs) for src, obs in batches if obs]
        if not batches:
            return 0
        size = sum(len(obs) for _, obs in batches)
        if self.spool.pending() == 0:
            try:
                return self.store.write_batches(batches)
            except StoreUnavailable as exc:
                logger.warning("store unavailable, spooling %d readings: %s", size, exc)
        self.spool.append(batches)
        self._wake.set()
        return size

    def drain(self) -> int:
        """Replay spooled batches until the spool is empty or the store is unavailable; return
        how many batches were replayed. A batch refused for another reason goes to the dead
        letters (with the reason) and the replay continues. Readings of stations that no
        longer exist are dead-lettered on their own; the rest of their batch is stored."""
        replayed = 0
        for path, batches in self.spool.batches():
            try:
                known = self.store.existing_station_ids(
                    {o.station for _, obs in batches for o in obs}
                )
                kept = [(src, [o for o in obs if o.station in known]) for src, obs in batches]
                gone = [(src, [o for o in obs if o.station not in known]) for src, obs in batches]
                gone = [(src, obs) for src, obs in gone if obs]
                self.store.write_batches([(src, obs) for src, obs in kept if obs])
            except StoreUnavailable:
                return replayed
            except Exception as exc:  # refused for good: retrying would stall every writer
                self.spool.dead_letter(path, f"{type(exc).__name__}: {exc}")
                continue
            if not gone:
                self.spool.remove(path)
                replayed += 1
                continue
            missing = ", ".join(sorted({o.station for _, obs in gone for o in obs}))
            stored = sum(len(obs) for _, obs in kept)
            reason = f"unknown station {missing} (deleted?); {stored} other readings stored"
            self.spool.dead_letter(path, reason, gone)
            if stored:
                replayed += 1
        return replayed

    def start(self) -> None:
        """Start the background replay."""
        self._thread = threading.Thread(target=self._run, name="spool-replay", daemon=True)
        self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        """Stop the background replay (what is left stays spooled for the next start)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.retry_seconds)
            self._wake.clear()
            if self._stop.is_set():
                break
            if self.spool.recount():
                try:
                    n = self.drain()
                except Exception:  # keep replaying later, whatever went wrong now
                    logger.exception("spool replay failed")
                    n = 0
                if n:
                    logger.info("spool: replayed %d batches, %d left", n, self.spool.pending())
                if self.spool.pending():
                    time.sleep(self.retry_seconds)
