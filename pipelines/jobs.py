"""Pipeline jobs: what ``ecosense jobs list|run`` and the scheduler in ``ecosense up`` run.

Jobs are **incremental**: each keeps a mark (``job_marks``) and, run without a range, looks
only at what arrived since — raw readings by ``ingest_time`` for ``hourly``, hourly means by
``computed_at`` for ``daily`` — and recomputes just the periods those touch. A late or
corrected reading bumps its ``ingest_time`` (the store's upsert does), so it is picked up. The
mark is set :data:`OVERLAP` before the run's start, so a write still committing while the job
planned is seen by the next run. A review (:mod:`store.reviews`) made since the mark touches
the readings it covers, so ``hourly`` recomputes their hours; readings a review invalidated are
left out of every computation. Run with ``--start/--end``, a job recomputes every period of
the range and leaves its mark alone. Jobs are **idempotent**: results are upserts that change
a row only when its values change.

A run holds its job's advisory lock (:func:`store.jobs.exclusive`) from start to end: a run by
hand waits for the scheduler's run of the same job, never races it. One stream's bad data is a
warning (the stream is left out, the rest and the mark go on); only a failed task (the
database went away) is an error that holds the mark.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

import pandas as pd

import access
from access import Grade
from pipelines import alerts, carbon, ecology, work
from pipelines.runner import Progress, Runner
from store import activity, db, derived, users
from store import gis as gis_store
from store import jobs as job_store
from store.db import Connection

logger = logging.getLogger(__name__)

OVERLAP: Final = timedelta(minutes=2)
#: Hourly sources in order of preference per station and parameter: (interval, statistic).
SOURCES: Final = ((None, None), ("PT1M", "avg"), ("PT1H", "avg"))


class JobError(ValueError):
    """A job that cannot run (unknown name, bad range)."""


@dataclass
class JobReport:
    """What a run did: tasks run, rows written, errors (one per failed task; the mark stays
    put), warnings (data left out — a stream, sample or parameter that could not be computed,
    readings timed outside what the job computes with — with the reason; the mark moves on)."""

    job: str
    tasks: int = 0
    periods: int = 0
    rows: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    incremental: bool = True

    def summary(self) -> str:
        """One line for people."""
        mode = "incremental" if self.incremental else "range"
        return (
            f"{self.job}: {self.tasks} tasks, {self.periods} periods recomputed, "
            f"{self.rows} rows written, "
            f"{len(self.errors)} errors, {self.seconds:.1f} s ({mode})"
        )


@dataclass
class JobContext:
    """What every job needs: the database, the runner, the bureau's time zone, a progress
    callback ``(stage, done, total)``."""

    url: str
    runner: Runner
    tz: str = "Asia/Shanghai"
    progress: Callable[[str, int, int], None] | None = None
    overlap: timedelta = OVERLAP
    webhook: str | None = None
    webhook_backoff: float = 5.0
    #: called when the job waits for another run of it (the scheduler's, or one by hand)
    on_wait: Callable[[], None] | None = None

    @property
    def zone(self) -> ZoneInfo:
        """The bureau's time zone."""
        return ZoneInfo(self.tz)

    def stage(self, name: str) -> Progress | None:
        if self.progress is None:
            return None
        report = self.progress
        return lambda done, total: report(name, done, total)


@dataclass(frozen=True)
class Job:
    """A named job: ``run(context, start, end)``, the range ``None`` for incremental."""

    name: str
    description: str
    run: Callable[[JobContext, datetime | None, datetime | None], JobReport]
    #: whether it keeps a mark (``alerts`` does not: each run evaluates the latest data)
    incremental: bool = True


@contextmanager
def _running(ctx: JobContext, job: str) -> Iterator[Connection]:
    """The run's own connection, holding job ``job``'s lock (:func:`store.jobs.exclusive`):
    a run waits for a run of the same job under way (the scheduler's, or one by hand)."""

    def waiting() -> None:
        logger.info("%s: waiting for the run of %s under way", job, job)
        if ctx.on_wait is not None:
            ctx.on_wait()

    with db.connect(ctx.url) as conn, job_store.exclusive(conn, job, waiting):
        yield conn


def _collect(
    report: JobReport, results: Iterable[work.Touched | BaseException]
) -> list[work.Touched]:
    out = []
    for r in results:
        report.tasks += 1
        if isinstance(r, BaseException):
            report.errors.append(f"{type(r).__name__}: {r}")
        else:
            report.rows += r.rows
            report.periods += sum(len(p) for p in r.periods.values())
            report.errors.extend(r.errors)
            report.warnings.extend(r.warnings)
            out.append(r)
    return out


def _finish(
    ctx: JobContext,
    conn: Connection,
    report: JobReport,
    began: datetime,
    started: float,
) -> JobReport:
    """Move the mark (incremental runs without errors only) and time the run."""
    if report.incremental and not report.errors:
        derived.set_mark(conn, report.job, began - ctx.overlap)
    report.seconds = time.monotonic() - started
    logger.debug("%s", report.summary())
    return report


#: the station kind whose readings make a city's means: ambient air (HJ 663-2013 assesses a
#: city's air quality from its ambient-air assessment stations, docs/standards/air.md)
CITY_KIND: Final = "air"


def public_stations(conn: Connection) -> frozenset[str]:
    """The stations whose grade is ``public`` now (their kind's default or an administrator's
    override, :func:`access.station_grade`)."""
    return frozenset(
        g.station
        for g in users.station_grades(conn)
        if access.station_grade(g.kind, g.override) == Grade.PUBLIC
    )


def city_members(
    stations: Mapping[str, tuple[str, dict[str, Any]]], public: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """City name → the stations its means are taken over: those with a ``city`` attribute that
    are ambient-air stations (kind :data:`CITY_KIND`) and ``public`` (graded public). A
    plant's CEMS stack, a wastewater outlet, or an air station reclassified above public is
    never in the public city means (``city-aggregates``, city AQI)."""
    allowed = set(public)
    out: dict[str, list[str]] = {}
    for sid, (kind, attrs) in stations.items():
        city = attrs.get("city")
        if city and kind == CITY_KIND and sid in allowed:
            out.setdefault(str(city), []).append(sid)
    return {c: tuple(sorted(s)) for c, s in out.items()}


def _city_plans(
    stations: Mapping[str, tuple[str, dict[str, Any]]],
    public: Iterable[str],
    touched: Iterable[tuple[str, work.Touched]],
    period: str,
) -> list[work.CityPlan]:
    cities = city_members(stations, public)
    city_of = {s: c for c, members in cities.items() for s in members}
    starts: dict[str, dict[str, set[datetime]]] = {}
    for station, t in touched:
        city = city_of.get(station)
        if city is None:
            continue
        for parameter, periods in t.periods.items():
            starts.setdefault(city, {}).setdefault(parameter, set()).update(periods)
    return [
        work.CityPlan(city, cities[city], period, {p: tuple(sorted(s)) for p, s in by.items()})
        for city, by in sorted(starts.items())
    ]


# --------------------------------------------------------------------------- hourly
def run_hourly(ctx: JobContext, start: datetime | None, end: datetime | None) -> JobReport:
    """QC, hourly means, O₃ 8-hour means and hourly AQI, per station then per city."""
    started = time.monotonic()
    report = JobReport("hourly", incremental=start is None and end is None)
    with _running(ctx, "hourly") as conn:
        began = derived.now(conn)
        if report.incremental:
            touched = derived.touched_streams(conn, since=derived.get_mark(conn, "hourly"))
        else:
            touched = derived.touched_streams(conn, start=start, end=end)
        stations = job_store.stations(conn)
        plans = _hourly_plans(conn, touched, stations, report)
        results = ctx.runner.map(
            work.station_hourly, plans, ctx.url, progress=ctx.stage("stations")
        )
        _collect(report, results)
        city_plans = _city_plans(
            stations,
            public_stations(conn),
            (
                (p.station, t)
                for p, t in zip(plans, results, strict=True)
                if isinstance(t, work.Touched)
            ),
            "PT1H",
        )
        _collect(
            report,
            ctx.runner.map(work.city_means, city_plans, ctx.url, progress=ctx.stage("cities")),
        )
        return _finish(ctx, conn, report, began, started)


def _hourly_plans(
    conn: Connection,
    touched: pd.DataFrame,
    stations: Mapping[str, tuple[str, dict[str, Any]]],
    report: JobReport,
) -> list[work.StationPlan]:
    """One plan per station: the touched streams that are its source of hourly means (per
    parameter the first of :data:`SOURCES` the station has, basis ``measured``). Readings
    timed where the job cannot compute (before 1678 or from 2262 on) are left out and
    reported as warnings."""
    if touched.empty:
        return []
    ids = sorted(set(touched["station"]))
    rows = job_store.measured_streams(conn, ids)
    chosen: dict[tuple[str, str], int] = {}
    rank: dict[tuple[str, str], int] = {}
    for sid, station, parameter, interval, statistic in rows:
        if (interval, statistic) not in SOURCES:
            continue
        r = SOURCES.index((interval, statistic))
        key = (station, parameter)
        if key not in rank or r < rank[key]:
            rank[key], chosen[key] = r, sid
    sources = set(chosen.values())
    by_station: dict[str, list[work.StreamPlan]] = {}
    records: list[dict[Any, Any]] = touched.to_dict("records")
    for row in records:
        if row["outside"]:
            report.warnings.append(
                f"{row['station']} {row['parameter']} (stream {row['stream_id']}):"
                f" {row['outside']} readings timed outside {job_store.TIME_MIN.year}"
                f"–{job_store.TIME_MAX.year - 1} left out"
            )
        if row["stream_id"] not in sources or pd.isna(row["first"]):
            continue
        by_station.setdefault(row["station"], []).append(
            work.StreamPlan(
                int(row["stream_id"]),
                row["parameter"],
                row["interval"],
                row["unit"],
                row["first"].to_pydatetime(),
                row["last"].to_pydatetime(),
            )
        )
    return [
        work.StationPlan(s, stations[s][0], stations[s][1], tuple(streams))
        for s, streams in sorted(by_station.items())
    ]


# --------------------------------------------------------------------------- daily
def run_daily(ctx: JobContext, start: datetime | None, end: datetime | None) -> JobReport:
    """Daily means, O₃ daily maximum 8-hour mean, monthly and annual means, daily AQI and
    water classes, for stations and cities."""
    started = time.monotonic()
    report = JobReport("daily", incremental=start is None and end is None)
    with _running(ctx, "daily") as conn:
        began = derived.now(conn)
        stations = job_store.stations(conn)
        plans: list[work.DailyPlan] = []
        for scope in ("station", "city"):
            if report.incremental:
                since = derived.get_mark(conn, "daily")
                hours = derived.touched_aggregates(
                    conn,
                    scope=scope,
                    period="PT1H",
                    since=since or datetime.min.replace(tzinfo=began.tzinfo),
                )
            else:
                lo = start or datetime.min.replace(tzinfo=began.tzinfo)
                hi = end or began + timedelta(days=1)
                hours = derived.read_aggregates(conn, scope=scope, period="PT1H", start=lo, end=hi)
            for subject, group in hours.groupby("subject"):
                kind, attrs = stations.get(str(subject), ("air", {}))
                days = {
                    str(p): work.days_of(g["start"], ctx.tz) for p, g in group.groupby("parameter")
                }
                plans.append(work.DailyPlan(scope, str(subject), kind, attrs, days, ctx.tz))
        _collect(
            report,
            ctx.runner.map(work.subject_daily, plans, ctx.url, progress=ctx.stage("subjects")),
        )
        return _finish(ctx, conn, report, began, started)


# --------------------------------------------------------------------------- alerts
def run_alerts(ctx: JobContext, start: datetime | None, end: datetime | None) -> JobReport:
    """Evaluate the alert rules as of now; open, update and close alerts; deliver the webhook
    notifications that are due."""
    if start is not None or end is not None:
        raise JobError("the alerts job evaluates the present: it takes no --start/--end")
    started = time.monotonic()
    report = JobReport("alerts", tasks=1, incremental=True)
    with _running(ctx, "alerts") as conn:
        now = derived.now(conn)
        rules = alerts.AlertRules(tz=ctx.tz)
        conditions = alerts.evaluate(alerts.load_state(conn, now, rules), rules)
        counts = alerts.sync(conn, conditions)
        sent = alerts.deliver(conn, ctx.webhook, backoff=ctx.webhook_backoff)
    report.rows = counts["opened"] + counts["closed"]
    report.periods = len(conditions)
    if sent["failed"]:
        report.errors.append(f"webhook: {sent['failed']} notifications not delivered (will retry)")
    report.seconds = time.monotonic() - started
    logger.debug("alerts: %s, webhook %s", counts, sent)
    return report


# --------------------------------------------------------------------------- carbon
def run_carbon(ctx: JobContext, start: datetime | None, end: datetime | None) -> JobReport:
    """Daily activity records from plant meters, then monthly and annual emissions per
    facility from the activity records in the store."""
    started = time.monotonic()
    report = JobReport("carbon-inventory", incremental=start is None and end is None)
    with _running(ctx, "carbon-inventory") as conn:
        began = derived.now(conn)
        facilities = {f.id: f for f in activity.load_facilities(conn)}
        since = derived.get_mark(conn, "carbon-inventory") if report.incremental else None
        derived_records, problems = carbon.meter_records(conn, since, start, end, ctx.tz)
        report.warnings += problems  # data to look at (a day without a valid hour), not failures
        report.rows += derived_records
        if report.incremental:
            years = activity.touched_facility_years(conn, since, ctx.tz)
        else:
            records = activity.load_activity(conn, start=start, end=end)
            lo = (start or min((r.start for r in records), default=began)).astimezone(ctx.zone)
            hi = (end or began).astimezone(ctx.zone)
            span = set(range(lo.year, hi.year + 1))
            years = {r.facility: span for r in records}
        plans = carbon.plans(facilities, years, ctx.tz)
        _collect(
            report,
            ctx.runner.map(
                carbon.facility_inventory, plans, ctx.url, progress=ctx.stage("facilities")
            ),
        )
        return _finish(ctx, conn, report, began, started)


# --------------------------------------------------------------------------- ecology
def run_ecology(ctx: JobContext, start: datetime | None, end: datetime | None) -> JobReport:
    """Regional means of the NDVI (with FVC) and NDWI rasters over every layer, one task per
    (raster, layer) not computed yet (or, with a range, every raster of its times), then the
    trends of the layers and quantities they touched (:mod:`pipelines.ecology`)."""
    started = time.monotonic()
    report = JobReport("ecology", incremental=start is None and end is None)
    with _running(ctx, "ecology") as conn:
        began = derived.now(conn)
        since = derived.get_mark(conn, "ecology") if report.incremental else None
        todo = gis_store.ecology_todo(conn, since, start, end)
        plans = [ecology.EcologyPlan(raster, layer) for raster, layer in todo]
        done = _collect(
            report,
            ctx.runner.map(ecology.ecology_task, plans, ctx.url, progress=ctx.stage("rasters")),
        )
        pairs = gis_store.landcover_todo(conn, since) if report.incremental else []
        if start is not None or end is not None:  # a range: the pairs of its rasters' times
            lo = start or datetime.min.replace(tzinfo=UTC)
            hi = end or datetime.max.replace(tzinfo=UTC)
            pairs = [
                (a, b, n)
                for a, b, n in gis_store.landcover_todo(conn, None)
                if b.time is not None and lo <= b.time < hi
            ]
        _collect(
            report,
            ctx.runner.map(
                ecology.landcover_task,
                [ecology.LandcoverPlan(a, b, n, ctx.tz) for a, b, n in pairs],
                ctx.url,
                progress=ctx.stage("land cover"),
            ),
        )
        touched = sorted({key for t in done for key in t.periods})
        for key in touched:
            layer, quantity = key.split("\t")
            try:
                rows, short = ecology.layer_trends(ctx.url, layer, quantity)
            except ValueError as exc:  # one layer's series: reported, the others go on
                report.errors.append(f"{quantity} trends over {layer}: {exc}")
                continue
            report.rows += rows
            if short:
                report.warnings.append(
                    f"{quantity} over {layer}: fewer than 4 values for a trend in"
                    f" {len(short)} features ({', '.join(short[:5])})"
                )
        return _finish(ctx, conn, report, began, started)


JOBS: Final[dict[str, Job]] = {
    "hourly": Job(
        "hourly",
        "QC flags, hourly means (GB 3095-2026 Table 4), O3 8-hour means and hourly AQI "
        "(HJ 633-2026) per station and city",
        run_hourly,
    ),
    "daily": Job(
        "daily",
        "daily, monthly and annual means, O3 daily maximum 8-hour mean, daily AQI and "
        "GB 3838-2002 water classes per station and city",
        run_daily,
    ),
    "carbon-inventory": Job(
        "carbon-inventory",
        "monthly and annual emissions per facility and gas from the activity records in the "
        "store (fuel, process, electricity), with factor ids and versions",
        run_carbon,
    ),
    "ecology": Job(
        "ecology",
        "regional NDVI, vegetation cover (FVC) and NDWI means of the rasters registered with a"
        " quantity, over every layer, each region's trend (Mann-Kendall, Sen's slope), and the"
        " land-cover change areas between consecutive land-cover rasters",
        run_ecology,
    ),
    "alerts": Job(
        "alerts",
        "alert rules (exceedance, AQI level, sustained exceedance, offline, flatline, gamma "
        "background): open, update and close alerts; webhook notifications",
        run_alerts,
        incremental=False,
    ),
}


def get(name: str) -> Job:
    """The job called ``name``."""
    try:
        return JOBS[name]
    except KeyError:
        raise JobError(f"unknown job {name!r}: one of {', '.join(JOBS)}") from None
