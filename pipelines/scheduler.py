"""The job scheduler inside ``ecosense up``.

Every ``interval`` (``ECOSENSE_JOBS_INTERVAL_SECONDS``, default 300 s; 0 turns the scheduler
off) it runs the ``hourly`` job (with CEMS emissions), ``carbon-inventory`` (activity records
stored since), ``ecology`` (rasters and layers registered since), then ``alerts``; every 12
intervals (hourly by default) and at the first tick after the bureau's midnight, ``daily``
too, before ``alerts`` (which read the daily AQI). All are incremental, so a tick with
nothing new costs a few queries; the interval only sets how fresh dashboards and alerts are.
A run that fails is logged and retried at the next tick (the job's mark has not moved).

With several instances of the ``jobs`` role on one database, only the leader
(:class:`store.leader.Leadership`) ticks: a standby tries to lead every few seconds and, once
it does, ticks at once; the leader confirms its lead before every tick and between ticks, and
stops ticking as soon as it lost it (it checks before each job, and every few seconds from a
thread of its own, so that a hung leader is told from a busy one). The local cluster of Dask
workers starts only once this instance leads, and is closed when it no longer does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from pipelines.jobs import JobContext, JobReport, get
from pipelines.runner import Runner
from store.leader import RETRY_SECONDS, Leadership

logger = logging.getLogger(__name__)

#: Ticks between runs of the daily job.
DAILY_EVERY = 12


class JobScheduler:
    """Runs jobs on time in a thread until :meth:`stop`.

    Parameters
    ----------
    url:
        the database URL the jobs (and Dask workers) connect to.
    interval:
        seconds between ticks.
    scheduler:
        a Dask scheduler address, or ``None`` for a local cluster of ``workers`` worker
        processes (so that the jobs neither share the gateway's interpreter lock nor take the
        gateway down with them, should a native library fail in a task).
    workers:
        the local cluster's worker processes (default: one per core, at most 4).
    tz:
        the bureau's time zone (daily boundaries).
    host:
        the address the local cluster's listeners bind (``ecosense up --host``).
    leader:
        the election among instances sharing the database (``None``: this one always leads),
        checked every ``retry`` seconds.
    """

    def __init__(
        self,
        url: str,
        interval: float,
        *,
        scheduler: str | None = None,
        tz: str = "Asia/Shanghai",
        jobs: Sequence[str] = ("hourly", "carbon-inventory", "ecology", "alerts"),
        webhook: str | None = None,
        on_report: Callable[[JobReport], None] | None = None,
        host: str = "127.0.0.1",
        workers: int | None = None,
        leader: Leadership | None = None,
        retry: float = RETRY_SECONDS,
    ) -> None:
        self.url = url
        self.workers = workers
        self.interval = interval
        self.scheduler = scheduler
        self.tz = tz
        self.webhook = webhook
        self.jobs = [get(name) for name in jobs]
        self.daily = get("daily")
        self.on_report = on_report
        self.host = host
        self.leader = leader
        self.retry = retry
        self.runs = 0
        self._after: threading.Event | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="jobs", daemon=True)
        # the leader confirms its lead every ``retry`` seconds, during a long job too: its
        # session's checks are how standbys tell a hung leader (store/leader.py)
        self._renewer = threading.Thread(target=self._renew, name="jobs-leader", daemon=True)

    def start(self, after: threading.Event | None = None) -> None:
        """Start ticking: the first tick at once, or once ``after`` is set — the workers start
        meanwhile (``ecosense up --demo`` starts them while it writes the history the first
        run reads, so that run is not also waiting for processes to start)."""
        self._after = after
        self._thread.start()
        if self.leader is not None:
            self._renewer.start()

    def _renew(self) -> None:
        assert self.leader is not None
        while not self._stop.wait(self.retry):
            if self.leader.leading:
                self.leader.check()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the job running now, if any (and let go of the lead)."""
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout)
        if self._renewer.ident is not None:
            self._renewer.join(timeout)
        if self.leader is not None:
            self.leader.release()

    @property
    def leading(self) -> bool:
        """Whether this scheduler is the one that ticks (``GET /healthz``'s ``jobs_leader``)."""
        return self.leader is None or self.leader.leading

    def _lead(self) -> bool:
        return self.leader is None or self.leader.check()

    def _loop(self) -> None:
        runner: Runner | None = None
        last_day: datetime | None = None
        tick = 0
        due = time.monotonic()  # the next tick: at once, and at once again on taking the lead
        try:
            while not self._stop.is_set():
                if not self._lead():
                    if runner is not None:  # a leader no more: its local workers go
                        runner.close()
                        runner = None
                    due = time.monotonic()
                    self._stop.wait(self.retry)
                    continue
                held = self._after is not None and not self._after.is_set()
                if held and runner is None:  # the workers start while the first tick waits
                    try:
                        runner = self._runner()
                    except Exception:
                        logger.exception("the job workers did not start; retrying")
                        self._stop.wait(self.retry)
                if held:
                    self._stop.wait(0.2)
                    continue
                if time.monotonic() < due:
                    self._stop.wait(min(self.retry, due - time.monotonic()))
                    continue
                due = time.monotonic() + self.interval
                try:
                    if runner is None:
                        runner = self._runner()
                    ctx = JobContext(self.url, runner, self.tz, webhook=self.webhook)
                    today = datetime.now(ZoneInfo(self.tz)).replace(
                        hour=0, minute=0, second=0, microsecond=0
                    )
                    daily_due = tick % DAILY_EVERY == 0 or today != last_day
                    for job in self.jobs:
                        if not self._lead():  # lost meanwhile (e.g. it hung, and woke up)
                            break
                        if job.name == "alerts" and daily_due:  # alerts read the daily AQI
                            self._report(self.daily.run(ctx, None, None))
                            last_day, daily_due = today, False
                        self._report(job.run(ctx, None, None))
                    if daily_due:
                        self._report(self.daily.run(ctx, None, None))
                        last_day = today
                except Exception:
                    logger.exception("scheduled jobs failed; retrying at the next tick")
                tick += 1
                self.runs += 1
        finally:
            if runner is not None:
                runner.close()

    def _runner(self) -> Runner:
        """The Dask client the jobs run on: the cluster named by ``scheduler``, else local
        worker processes."""
        return Runner(self.scheduler, local="processes", workers=self.workers, host=self.host)

    def _report(self, report: JobReport) -> None:
        level = logging.WARNING if report.errors else logging.INFO
        logger.log(level, "%s", report.summary())
        for error in report.errors[:10]:
            logger.warning("%s: %s", report.job, error)
        for warning in report.warnings[:10]:  # data left out; the mark moved on
            logger.warning("%s: %s", report.job, warning)
        if self.on_report is not None:
            self.on_report(report)
