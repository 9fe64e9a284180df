"""The local spool: readings acknowledged while the store is down, kept durably until replayed.

``DurableWriter.write`` is how every ingest path stores a batch. It writes to the store; when
the store is unavailable it appends the batch to the spool — a file per batch in
``DATA_DIR/spool``, written to a temporary name, fsynced, renamed, and the directory fsynced —
and only then returns, so the caller may acknowledge. A background thread replays the spool in
order once the store answers again, deleting each file after its batch is committed. While
the spool is not empty, new batches are spooled too, so that a later correction is never
overwritten by an older spooled value. Replaying twice is harmless: the store upserts.

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
from datetime import datetime
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


class Spool:
    """Batches on disk, one file each, replayed in the order they were written."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        existing = [int(p.stem) for p in directory.glob("*.json") if p.stem.isdigit()]
        self._counter = itertools.count(max(existing, default=0) + 1)
        self._lock = threading.Lock()
        for tmp in directory.glob("*.tmp"):  # a write that never completed was never acked
            tmp.unlink(missing_ok=True)
        self._pending = len(self.files())

    def append(self, batches: Sequence[SourcedBatch]) -> Path:
        """Write batches, each with its provenance, durably (fsynced file and directory), as
        one file; return it."""
        data = _encode(batches)
        with self._lock:
            path = self.directory / f"{next(self._counter):020d}.json"
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        with self._lock:
            self._pending += 1
        return path

    def remove(self, path: Path) -> None:
        """Forget a replayed batch."""
        path.unlink()
        with self._lock:
            self._pending -= 1

    def files(self) -> list[Path]:
        """Spooled batches, oldest first."""
        return sorted(self.directory.glob("*.json"))

    def pending(self) -> int:
        """How many batches wait (kept in memory: no disk access)."""
        return self._pending

    def batches(self) -> Iterator[tuple[Path, list[SourcedBatch]]]:
        """The batches of each spooled file (with their provenance), oldest first."""
        for path in self.files():
            try:
                batches = _decode(path.read_bytes())
            except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
                logger.error("spool: unreadable %s moved aside: %s", path, exc)
                path.rename(path.with_suffix(".bad"))
                with self._lock:
                    self._pending -= 1
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
        """Replay spooled batches until the spool is empty or the store fails; return how many
        batches were replayed."""
        replayed = 0
        for path, batches in self.spool.batches():
            try:
                self.store.write_batches(batches)
            except StoreUnavailable:
                return replayed
            self.spool.remove(path)
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
            if self.spool.pending():
                try:
                    n = self.drain()
                except Exception:  # keep replaying later, whatever went wrong now
                    logger.exception("spool replay failed")
                    n = 0
                if n:
                    logger.info("spool: replayed %d batches, %d left", n, self.spool.pending())
                if self.spool.pending():
                    time.sleep(self.retry_seconds)
