"""One platform per data directory: the lock ``ecosense up`` holds for its whole life.

``ecosense up`` takes an exclusive ``flock`` on ``DATA_DIR/ecosense-up.lock`` before it starts
anything and keeps the descriptor open until it exits; the kernel lets go of the lock when
the process ends, however it ends (Ctrl-C, SIGTERM, SIGKILL, a crash), so no stale pid file
is ever guessed at. The file's content says who holds it (pid, start time, then the
addresses once ``ready``); it is read only while the lock is held, and never trusted for
*whether* a platform runs: that is the lock alone.

A second ``ecosense up`` on the same data directory is refused, naming the running one;
every other command reads :func:`running` to say on stderr whether a platform runs on the
data directory it uses.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path

from ecosense.errors import EcosenseError

#: the lock file's name in the data directory
LOCK_NAME = "ecosense-up.lock"


@dataclass(frozen=True)
class Running:
    """The ``ecosense up`` holding a data directory's lock, as its lock file describes it."""

    pid: int | None
    started: str | None = None
    addresses: str | None = None

    def describe(self, tz: tzinfo | None = None) -> str:
        """``pid 123, started …, http=… hj212=…`` (what is known; the start in ``tz``, the
        bureau's time zone, when given)."""
        parts = [f"pid {self.pid if self.pid is not None else '?'}"]
        if self.started:
            started = self.started
            if tz is not None:
                with contextlib.suppress(ValueError):  # else shown as written
                    started = datetime.fromisoformat(started).astimezone(tz).isoformat()
            parts.append(f"started {started}")
        parts.append(self.addresses or "still starting")
        return ", ".join(parts)


def _read(fd: int) -> Running:
    """The holder's description (a half-written file is read again, then shown as unknown)."""
    for _ in range(5):
        raw = os.pread(fd, 65536, 0)
        try:
            info = json.loads(raw.decode("utf-8"))
            return Running(info.get("pid"), info.get("started"), info.get("addresses"))
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            time.sleep(0.02)
    return Running(None)


def running(data_dir: Path) -> Running | None:
    """The ``ecosense up`` running on ``data_dir``, or None when none holds its lock."""
    path = Path(data_dir) / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class InstanceLock:
    """The exclusive lock of one data directory, held by ``ecosense up`` until it exits."""

    def __init__(self, data_dir: Path, tz: tzinfo | None = None) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self.tz = tz
        self._fd: int | None = None
        self._started = datetime.now(UTC).astimezone(tz).isoformat(timespec="seconds")

    def acquire(self) -> InstanceLock:
        """Take the lock, or raise naming the ``ecosense up`` that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise EcosenseError(
                f"a platform is already running on data dir {self.path.parent}: "
                f"{holder.describe(self.tz)}; stop it first (Ctrl-C or SIGTERM to its pid), or "
                "give this one another ECOSENSE_DATA_DIR"
            ) from None
        self._fd = fd
        self.describe()
        return self

    def describe(self, addresses: str | None = None) -> None:
        """Write who holds the lock (and, once ready, the addresses) into the lock file."""
        if self._fd is None:
            return
        data = {"pid": os.getpid(), "started": self._started, "addresses": addresses}
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, json.dumps(data).encode("utf-8"), 0)

    def release(self) -> None:
        """Let go of the lock (the kernel does too when the process ends)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
            finally:
                os.close(fd)
