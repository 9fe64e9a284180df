"""Leader election in PostgreSQL: which of the instances with the ``jobs`` role runs the
scheduler.

The leader holds a session-level advisory lock (:data:`LEADER_KEY`) on a connection of its
own, opened only for that. PostgreSQL lets go of the lock when that session ends: when the
leader stops, is killed (SIGKILL: the kernel closes its socket and the backend ends at once),
or its host vanishes (the server's TCP keepalives, asked for on this connection, end the
backend within :data:`KEEPALIVE_SECONDS`). A standby tries to take the lock every
:data:`RETRY_SECONDS`, so it leads within ``KEEPALIVE_SECONDS + RETRY_SECONDS`` (< 30 s) of
the leader's death. The leader checks that its session still holds the lock before each tick
and each job of the scheduler, and every ``RETRY_SECONDS`` from a thread of its own (during a
long job too; client-side keepalives and a TCP user timeout make a dead server a failed check
rather than a hang), and steps down at once when it does not.

A leader that hangs (stopped with SIGSTOP, frozen in a debugger, swapped out) keeps its
session, and so the lock, alive: its host still answers the keepalives. Its checks stop, so its
session's last statement (``pg_stat_activity.state_change``) ages; a standby that finds it
older than :data:`SILENT_SECONDS` ends the hung instance's sessions (``pg_terminate_backend``
of every ``ecosense jobs … <host>:<pid>`` session of that instance: its lock, and the job locks
its runs held) and leads at its next attempt — within ``SILENT_SECONDS + 2 × RETRY_SECONDS``
(< 30 s). Should the hung one wake up, its next check finds its session gone and it steps
down. The instances must connect as one database role (or one allowed to signal the others':
``pg_signal_backend``), as they do with one ``ECOSENSE_DATABASE_URL``.

Leadership keeps the scheduler from running twice; what keeps a job from running twice for
one period is the job's own lock and mark (:mod:`store.jobs`, :mod:`pipelines.jobs`), which a
run still takes, so a leader that lost its lock in the middle of a tick never races the new
one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from typing import Final

import psycopg
from psycopg.conninfo import make_conninfo

from store.db import Connection

logger = logging.getLogger(__name__)

#: The one-key advisory lock of the jobs leader ("ESJB" "LEAD"); one-key and two-key advisory
#: locks (the jobs' own, :data:`store.jobs.LOCK_CLASS`) never collide.
LEADER_KEY: Final = 0x45534A42_4C454144
#: Seconds between a standby's attempts to lead, and between the leader's checks.
RETRY_SECONDS: Final = 3.0
#: TCP keepalives of the leader's connection, both ends: idle seconds, probe interval, probes.
KEEPALIVE: Final = (5, 5, 3)
#: How long a vanished peer goes unnoticed at most: idle + interval × probes (seconds).
KEEPALIVE_SECONDS: Final = KEEPALIVE[0] + KEEPALIVE[1] * KEEPALIVE[2]
#: Seconds without a check by the leader after which a standby ends its sessions (it hangs).
SILENT_SECONDS: Final = 15.0


def instance_name() -> str:
    """This process as other instances see it in logs: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def named(url: str, what: str) -> str:
    """``url`` whose sessions say who they are (``application_name``, at most 63 bytes), as
    ``pg_stat_activity`` and ``job_mark_moves.moved_by`` show them: ``<what> <host>:<pid>``."""
    name = f"{what} {instance_name()}".encode()[:63].decode("utf-8", "ignore")
    return make_conninfo(url, application_name=name)


class Leadership:
    """This instance's claim on the jobs leadership (thread-safe).

    :meth:`check` takes the lock when free (standby → leader) or verifies it is still held
    (leader → standby when not); :attr:`leading` is the outcome of the last check (the
    ``jobs_leader`` of ``GET /healthz``). Each change of leadership is logged, one line: at
    INFO leading or standing by from the start and stepping down when stopping (a single
    instance stays quiet), as a WARNING taking over from a leader that is gone and losing the
    lead.
    """

    def __init__(self, url: str, *, name: str | None = None, key: int = LEADER_KEY) -> None:
        self.url = url
        self.key = key
        self.name = name or instance_name()
        self._conn: Connection | None = None
        self._leading = False
        self._standby = False
        self._failing = False
        self._lock = threading.Lock()

    @property
    def leading(self) -> bool:
        """Whether the last :meth:`check` found this instance the leader."""
        return self._leading

    def _connect(self) -> Connection:
        idle, interval, count = KEEPALIVE
        # server side: the backend (and so the lock) ends when this host vanishes
        server = (
            f"-c tcp_keepalives_idle={idle} -c tcp_keepalives_interval={interval}"
            f" -c tcp_keepalives_count={count} -c tcp_user_timeout={KEEPALIVE_SECONDS * 1000}"
            " -c statement_timeout=10000"
        )
        return psycopg.connect(
            self.url,
            autocommit=True,
            connect_timeout=10,
            application_name=f"ecosense jobs leader {self.name}"[:63],
            # client side: a vanished server is a failed check, not a hang
            keepalives=1,
            keepalives_idle=idle,
            keepalives_interval=interval,
            keepalives_count=count,
            tcp_user_timeout=KEEPALIVE_SECONDS * 1000,
            options=server,
        )

    def _holds(self, conn: Connection) -> bool:
        """Whether ``conn``'s session holds the lock (one-key: class = high 32 bits,
        object = low 32 bits, sub-id 1)."""
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND pid = pg_backend_pid() AND classid = %s AND objid = %s AND objsubid = 1",
            (self.key >> 32, self.key & 0xFFFFFFFF),
        ).fetchone()
        return row is not None and int(row[0]) > 0

    def check(self) -> bool:
        """Lead if possible, or confirm the lead; return whether this instance leads now."""
        with self._lock:
            leading = False
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = self._connect()
                if self._leading:
                    leading = self._holds(self._conn)
                else:
                    row = self._conn.execute(
                        "SELECT pg_try_advisory_lock(%s)", (self.key,)
                    ).fetchone()
                    leading = bool(row and row[0])
                    if not leading:
                        self._end_a_silent_leader(self._conn)
                self._failing = False
            except psycopg.Error as exc:
                if not self._failing:  # once, until it works again
                    logger.warning("jobs leader: %s cannot reach the database: %s", self.name, exc)
                self._failing = True
                self._drop()
            self._changed(leading, reached=not self._failing)
            return leading

    def _end_a_silent_leader(self, conn: Connection) -> None:
        """End the sessions of the leader when its session has run no check for
        :data:`SILENT_SECONDS` (it hangs): the lock is free for the next attempt."""
        row = conn.execute(
            "SELECT a.pid, a.application_name, extract(epoch FROM now() - a.state_change)"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s AND l.objid = %s"
            " AND l.objsubid = 1 AND a.state = 'idle'",
            (self.key >> 32, self.key & 0xFFFFFFFF),
        ).fetchone()
        if row is None or row[2] is None or float(row[2]) < SILENT_SECONDS:
            return  # checking in time (or busy in a check), or not visible to this role
        pid, app, silent = int(row[0]), str(row[1] or ""), float(row[2])
        prefix = "ecosense jobs leader "
        instance = app[len(prefix) :] if app.startswith(prefix) else ""
        ended = conn.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE pid = %s OR (%s <> '' AND application_name LIKE 'ecosense jobs %%'"
            " AND application_name LIKE '%%' || %s)",
            (pid, instance, " " + instance),
        ).fetchone()
        logger.warning(
            "jobs leader: %s has run no check for %.0f s (it hangs): %s ended its %s"
            " session(s), and leads next",
            instance or f"backend {pid}",
            silent,
            self.name,
            ended[0] if ended else 0,
        )

    def _changed(self, leading: bool, reached: bool) -> None:
        """Log a change of leadership (``reached``: the database answered this check)."""
        if leading and not self._leading:
            if self._standby:  # the leader before is gone
                logger.warning("jobs leader: %s took over the scheduler", self.name)
            else:
                logger.info("jobs leader: %s leads the scheduler now", self.name)
        elif self._leading and not leading:
            logger.warning("jobs leader: %s lost the lead and stepped down", self.name)
            self._drop()  # a session that lost the lock is not to be trusted with it again
        elif reached and not leading and not self._standby:
            logger.info("jobs leader: %s is a standby (another instance leads)", self.name)
        if leading or reached:
            self._standby = not leading
        self._leading = leading

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def release(self) -> None:
        """Let go of the lead (closing the session frees the lock at once)."""
        with self._lock:
            if self._leading:
                logger.info("jobs leader: %s steps down (stopping)", self.name)
                if self._conn is not None:  # unlocked before the session ends: no wait
                    with contextlib.suppress(psycopg.Error):
                        self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            self._leading = False
            self._drop()
