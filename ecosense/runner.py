"""``ecosense up``: store, spool, gateway (HTTP, HJ 212, MQTT), job scheduler, dashboard and
demo, together.

It prints ``ready http=<url> hj212=<host:port> dashboard=<url>`` once everything accepts
connections; SIGINT or SIGTERM stops everything it started, in reverse order, the embedded
PostgreSQL last.

Roles (``--roles``, :data:`ROLES`; default all three) split the platform over instances that
share one database: ``gateway`` runs the device listeners (HTTP API and ingest, HJ 212, line
protocol, MQTT) with the store writer and its spool, ``jobs`` the job scheduler (only the
elected leader among the instances ticks: :mod:`store.leader`), ``dashboard`` the Streamlit
child. Every instance serves ``GET /healthz`` on its HTTP port (without ``gateway``, nothing
else). Each keeps its own state (spool, logs, instance lock) in its own data dir.

Each component connects as its own database role (:mod:`store.roles`): the migrations and
the demo seeding as the owner (whose connections are closed once started), the HTTP API and
the listeners (HTTP, HJ 212, MQTT, spool replay, audit writer) as ``gateway``, the scheduler
and its Dask workers as ``jobs``, the dashboard as ``reader``. With ``tls_cert``/``tls_key``
the HTTP API answers over HTTPS only.
"""

from __future__ import annotations

import faulthandler
import gc
import logging
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo

import httpx
import uvicorn

from api.ratelimit import RateLimits
from ecosense import dashboard
from ecosense.app import create_app
from ecosense.config import Settings
from ecosense.credentials import admin_token_in_force
from ecosense.demo import (
    HISTORY_SOURCE,
    demo_carbon,
    demo_history,
    demo_soil_points,
    demo_stations,
    history_observations,
    stack_levels,
)
from ecosense.errors import EcosenseError
from ecosense.instance import InstanceLock
from ecosense.simulator import register, run
from ingest.hj212_server import Hj212Server, ThreadedHj212Server
from ingest.http import MAX_BODY_BYTES
from ingest.http_guard import BodyLimit, ClientConcurrency, guarded_protocol
from ingest.limits import Admission, parse_networks
from ingest.mqtt import MqttIngest
from ingest.mqtt import client_id as mqtt_client_id
from ingest.spool import DurableWriter, Spool
from pipelines.scheduler import JobScheduler
from sensors.stations import Station
from store import OpenedStore, open_store
from store.audit import AuditWriter
from store.context import ServiceContext
from store.influx import InfluxMirror
from store.instances import CHANNEL as HJ212_CHANNEL
from store.instances import Instances
from store.leader import Leadership, named
from store.notify import CredentialListener
from store.postgres import PostgresStore, SourcedBatch

logger = logging.getLogger(__name__)

DASHBOARD_APP = Path(__file__).resolve().parent.parent / "dashboards" / "app.py"

#: The roles of ``ecosense up --roles``, in the order they are named (default: all).
ROLES = ("gateway", "jobs", "dashboard")


def parse_roles(text: str) -> tuple[str, ...]:
    """``--roles`` (``gateway,jobs``): the roles named, in :data:`ROLES`' order.

    Raises
    ------
    EcosenseError
        for an unknown role, or none.
    """
    named = [r.strip() for r in text.split(",") if r.strip()]
    unknown = [r for r in named if r not in ROLES]
    if unknown:
        raise EcosenseError(f"--roles: unknown role {unknown[0]!r} (roles: {', '.join(ROLES)})")
    if not named:
        raise EcosenseError(f"--roles: name at least one role of {', '.join(ROLES)}")
    return tuple(r for r in ROLES if r in named)


@dataclass(frozen=True)
class UpOptions:
    """Options of ``ecosense up``; a port of 0 picks a free one. ``roles`` are what this
    instance runs (:data:`ROLES`); ``dashboard=False`` (``--no-dashboard``) leaves the
    dashboard out of them.

    Raises
    ------
    EcosenseError
        when nothing is left to run, or ``demo`` is asked for without the ``gateway`` role
        (the demo's devices send to this instance's listeners).
    """

    host: str = "127.0.0.1"
    http_port: int = 8080
    hj212_port: int = 9212
    dashboard_port: int = 8501
    dashboard: bool = True
    demo: bool = False
    roles: tuple[str, ...] = ROLES

    def __post_init__(self) -> None:
        if not self.running:
            raise EcosenseError("--no-dashboard leaves --roles dashboard nothing to run")
        if self.demo and "gateway" not in self.roles:
            raise EcosenseError(
                f"--demo needs the gateway role (--roles {','.join(self.roles)} has none)"
            )

    @property
    def running(self) -> tuple[str, ...]:
        """The roles this instance runs: :attr:`roles` without ``dashboard`` when
        ``--no-dashboard``."""
        return tuple(r for r in self.roles if r != "dashboard" or self.dashboard)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise EcosenseError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _shown_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "", "::") else host


def _url(host: str, port: int, scheme: str = "http") -> str:
    return f"{scheme}://{_shown_host(host)}:{port}"


def tls_files(settings: Settings) -> dict[str, str]:
    """uvicorn's ``ssl_certfile``/``ssl_keyfile`` from the settings (none: plain HTTP),
    checked first so that a wrong file is a clear error, not a gateway that never starts."""
    if settings.tls_cert is None or settings.tls_key is None:
        return {}
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            settings.tls_cert, settings.tls_key
        )
    except (OSError, ssl.SSLError) as exc:
        raise EcosenseError(
            f"TLS: cannot use certificate {settings.tls_cert} with key {settings.tls_key}: {exc}"
        ) from exc
    return {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}


def _wait_started(server: uvicorn.Server, thread: threading.Thread, deadline: float) -> None:
    """Wait until uvicorn listens (for HTTPS, whose certificate this process need not trust)."""
    while not server.started:
        if not thread.is_alive():
            raise EcosenseError("the HTTP gateway stopped while starting")
        if time.monotonic() > deadline:
            raise EcosenseError("the HTTP gateway did not start in time")
        time.sleep(0.05)


def _wait_http(url: str, deadline: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise EcosenseError(f"{url}: the process exited with code {proc.returncode}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise EcosenseError(f"{url} did not answer in time")


def start_dashboard(
    settings: Settings, database_url: str, host: str, port: int, api_url: str | None = None
) -> subprocess.Popen[bytes]:
    """Start the Streamlit dashboard as a child process reading the store at ``database_url``;
    ``api_url``, the gateway this instance runs, is its ``ECOSENSE_API_URL`` (the open-data
    page's download links) unless the settings already name one (``ECOSENSE_API_URL``: a
    public address, or ``/`` behind a proxy)."""
    env = dict(os.environ)
    chosen = settings.api_url or env.get("ECOSENSE_API_URL") or api_url
    if chosen:
        env["ECOSENSE_API_URL"] = chosen
    env.update(
        {
            "ECOSENSE_DATABASE_URL": database_url,
            "ECOSENSE_TIMEZONE": settings.timezone,
            "ECOSENSE_DATA_DIR": str(settings.data_dir),
            "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        }
    )
    if settings.tile_url:
        env["ECOSENSE_TILE_URL"] = settings.tile_url
    # the dashboard believes X-Forwarded-For from the same proxies as the API
    env["ECOSENSE_TRUSTED_PROXIES"] = ",".join(settings.trusted_proxies)
    # no tracebacks in the browser; single sign-on's secrets in a 0600 file, not argv
    extra_flags, extra_env = dashboard.streamlit_options(settings, _url(host, port))
    env.update(extra_env)
    for name in dashboard.SECRET_ENV:
        env.pop(name, None)
    for name in [n for n in env if n.startswith("ECOSENSE_") and n.endswith("_FILE")]:
        env.pop(name)  # resolved above (ecosense.config.from_environment); never both
    cmd = [
        sys.executable,
        "-m",
        "ecosense.child",
        "streamlit",
        "run",
        str(DASHBOARD_APP),
        "--server.headless",
        "true",
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--global.developmentMode",
        "false",
        "--theme.base",
        "light",
        "--client.toolbarMode",
        "viewer",
        *extra_flags,
    ]
    with open(settings.data_dir / "dashboard.log", "ab") as log:  # the child keeps its copy
        return subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def _mirrored(
    writer: DurableWriter, mirror: InfluxMirror | None
) -> Callable[[Sequence[SourcedBatch]], int]:
    """Make batches durable, then (if configured) queue their readings for the InfluxDB
    mirror."""
    if mirror is None:
        return writer.write_batches

    def write(batches: Sequence[SourcedBatch]) -> int:
        n = writer.write_batches(batches)
        mirror.write([o for _, observations in batches for o in observations])
        return n

    return write


def _tune_for_latency() -> None:
    """Keep garbage collection and thread switches from stalling replies.

    - ``gc.freeze()``: the objects alive after start-up (modules, caches — hundreds of
      thousands) move to a permanent generation that full collections no longer traverse;
      a full collection otherwise stalled every connection for ~100 ms.
    - switch interval 1 ms (Python's default 5 ms): the store writer thread, waking from a
      PostgreSQL round trip, waits at most this long for the interpreter while the HJ 212
      loop parses packets; with 5 ms, a COPY's several wake-ups added up to tens of ms per
      group commit.
    """
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(0.001)


#: ``up --demo`` waits for the first run of the jobs at most until this many seconds after it
#: started (``ready`` within 60 s on a 2-core machine).
DEMO_READY_SECONDS = 45.0

#: Descriptors kept free of the listeners' caps: database pool, spool, logs, Dask, dashboard.
RESERVED_DESCRIPTORS = 256


def raise_nofile() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            logger.warning("cannot raise the descriptor limit from %d: %s", soft, exc)
    return soft


def connection_caps(settings: Settings, nofile: int) -> int:
    """Each listener's total connection cap (HTTP and HJ 212 alike): the configured
    ``max_connections``, lowered so that both listeners full still leave
    ``RESERVED_DESCRIPTORS`` descriptors under the limit ``nofile``."""
    fits = max(16, (nofile - RESERVED_DESCRIPTORS) // 2)
    if settings.max_connections > fits:
        logger.warning(
            "descriptor limit %d: each listener takes at most %d connections (not %d)",
            nofile,
            fits,
            settings.max_connections,
        )
        return fits
    return settings.max_connections


def _seed_demo_carbon(url: str, tz: str) -> None:
    """Demo plants, activity records and targets, once (when the store has no facility)."""
    from store import activity, db

    with db.connect(url) as conn:
        if activity.load_facilities(conn):
            return
        facilities, records, targets = demo_carbon(datetime.now(UTC), tz=tz)
        activity.save_facilities(conn, facilities)
        activity.save_activity(conn, records)
        activity.save_targets(conn, targets)


def _seed_demo_ecology(url: str, data_dir: Path, tz: str) -> int:
    """The demo's ecology, once: the shipped provinces layer (as ``provinces``), six summers of
    synthetic NDVI over China and two land-cover rasters on Beijing's edge, written under
    ``data_dir/demo`` and registered with their quantity (the ecology job reduces them).
    Returns the rasters registered (0 when they already were)."""
    import rasterio
    from rasterio.transform import from_origin

    from ecosense import demo as d
    from gis.catalogue import describe
    from gis.layers import china_provinces
    from store import db
    from store import gis as gis_store

    zone = ZoneInfo(tz)
    this_year = datetime.now(zone).year
    years = list(range(this_year - d.NDVI_YEARS, this_year))
    folder = data_dir / "demo"
    folder.mkdir(parents=True, exist_ok=True)
    with db.connect(url) as conn:
        if "provinces" not in gis_store.layers(conn):
            gis_store.save_layer(
                conn, "provinces", china_provinces().reset_index(), "code", "china-provinces"
            )
        known = {r.id for r in gis_store.load_rasters(conn)}
        items = []
        for year in years:
            rid = f"demo-ndvi-{year}"
            if rid in known:
                continue
            path = folder / f"{rid}.tif"
            rows, cols = d.NDVI_SHAPE
            grid = from_origin(d.NDVI_WEST, d.NDVI_NORTH, d.NDVI_CELL, d.NDVI_CELL)
            with rasterio.open(
                path, "w", driver="GTiff", height=rows, width=cols, count=1, dtype="float32",
                crs="EPSG:4326", transform=grid, nodata=float("nan"),
            ) as dst:  # fmt: skip
                dst.write(d.demo_ndvi(year, years[0]), 1)
            when = datetime(year, 7, 1, tzinfo=zone)
            items.append(describe(path, id=rid, time=when, quantity="ndvi"))
        for year, changed in ((years[0], False), (years[-1], True)):
            rid = f"demo-landcover-{year}"
            if rid in known:
                continue
            path = folder / f"{rid}.tif"
            rows, cols = d.LANDCOVER_SHAPE
            west, north = d.LANDCOVER_ORIGIN
            with rasterio.open(
                path, "w", driver="GTiff", height=rows, width=cols, count=1, dtype="uint8",
                crs="EPSG:32650",
                transform=from_origin(west, north, d.LANDCOVER_CELL, d.LANDCOVER_CELL), nodata=0,
            ) as dst:  # fmt: skip
                dst.write(d.demo_landcover(changed), 1)
            when = datetime(year, 7, 1, tzinfo=zone)
            items.append(describe(path, id=rid, time=when, quantity="landcover"))
        for item in items:
            gis_store.save_raster(conn, item)
    return len(items)


def _backfill_demo(store: PostgresStore, stations: Sequence[Station], tz: str) -> int:
    """48 hours of demo history (:func:`ecosense.demo.demo_history`) for the ``stations`` that
    have no reading yet (a restart adds none: raw readings are never rewritten); returns the
    readings written, through the store's batch path with the provenance
    :data:`ecosense.demo.HISTORY_SOURCE`, and audited as an import of readings."""
    empty = [s for s in stations if store.latest(s.id).empty]
    if not empty:
        return 0
    started = time.monotonic()
    observations = history_observations(demo_history(empty, datetime.now(UTC), tz=tz))
    # one transaction: a start cut short leaves no station with half a history
    written = store.write_observations(observations, source=HISTORY_SOURCE)
    from store import audit

    audit.record(  # like any import of readings
        store,
        "demo",
        "import.readings",
        "stations:simulated",
        details={
            "protocol": HISTORY_SOURCE.protocol,
            "file": HISTORY_SOURCE.file,
            "accepted": written,
            "stations": len(empty),
        },
    )
    logger.info(
        "demo: %d readings of history for %d stations in %.1f s",
        written,
        len(empty),
        time.monotonic() - started,
    )
    return written


def _wait_first_run(jobs: JobScheduler, deadline: float, stop: threading.Event) -> None:
    """Wait (until ``deadline``, monotonic) for the scheduler's first run of the jobs, so that
    the demo's pages have aggregates, AQI and alerts when ``ready`` is printed."""
    while jobs.runs < 1 and time.monotonic() < deadline and not stop.is_set():
        stop.wait(0.2)
    if jobs.runs < 1:
        logger.warning("demo: the first run of the jobs is still going; the pages fill in soon")


class Interruptible:
    """Ctrl-C (SIGINT) and SIGTERM honoured at any moment of ``ecosense up``.

    Once ``ready``, a signal sets :attr:`stop` and the main loop returns. While starting, the
    signal raises :class:`KeyboardInterrupt` in the main thread at once (interrupting a wait
    for the gateway or the dashboard), except inside :meth:`shielded` steps, which create
    something that must be known to be stopped again (the embedded database, a child
    process): those finish, or fail because the terminal's Ctrl-C reached their own child
    processes, and the interruption is raised right after. ``up``'s ``finally`` then stops
    whatever was started.
    """

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.starting = True
        self.signum: int | None = None
        self._shield = 0

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        """The SIGINT/SIGTERM handler."""
        logger.info("signal %s: stopping", signum)
        self.signum = self.signum or signum
        self.stop.set()
        if self.starting and self._shield == 0:
            raise KeyboardInterrupt

    def checkpoint(self) -> None:
        """Raise the interruption a signal asked for during a shielded step."""
        if self.starting and self.stop.is_set():
            raise KeyboardInterrupt

    @contextmanager
    def shielded(self) -> Iterator[None]:
        """A start-up step not to be cut in the middle (see the class)."""
        self._shield += 1
        try:
            yield
        except Exception as exc:
            if self.stop.is_set():  # e.g. initdb killed by the terminal's Ctrl-C
                raise KeyboardInterrupt from exc
            raise
        finally:
            self._shield -= 1
        self.checkpoint()


def up(settings: Settings, options: UpOptions) -> int:
    """Run the platform until SIGINT/SIGTERM; return the exit code (``128 + signal`` when
    stopped while starting)."""
    faulthandler.enable()  # a native crash leaves its traceback on stderr
    guard = Interruptible()
    signal.signal(signal.SIGINT, guard.on_signal)
    signal.signal(signal.SIGTERM, guard.on_signal)
    lock: InstanceLock | None = None
    try:
        with guard.shielded():
            # refused when one runs already
            lock = InstanceLock(settings.data_dir, settings.tz).acquire()
        return _up(settings, options, guard, lock)
    except KeyboardInterrupt:
        signum = guard.signum or signal.SIGINT
        print(
            f"ecosense: stopped while starting ({signal.Signals(signum).name});"
            " everything started was stopped again",
            file=sys.stderr,
            flush=True,
        )
        return 128 + signum
    finally:
        guard.starting = False
        if lock is not None:
            lock.release()


def _up(settings: Settings, options: UpOptions, guard: Interruptible, lock: InstanceLock) -> int:
    """``up`` with its lock held and its signal handlers set."""
    stop = guard.stop
    started = time.monotonic()
    roles = options.running
    serving = "gateway" in roles
    total = connection_caps(settings, raise_nofile())
    trusted = parse_networks(settings.trusted_proxies)

    opened: OpenedStore | None = None
    gateway: PostgresStore | None = None
    server: uvicorn.Server | None = None
    server_thread: threading.Thread | None = None
    dashboard: subprocess.Popen[bytes] | None = None
    sim_thread: threading.Thread | None = None
    hj212_server: ThreadedHj212Server | None = None
    writer: DurableWriter | None = None
    mirror: InfluxMirror | None = None
    mqtt_ingest: MqttIngest | None = None
    jobs: JobScheduler | None = None
    auditor: AuditWriter | None = None
    listener: CredentialListener | None = None
    try:
        tls = tls_files(settings)
        # the owner migrates and grants; every component then connects as its own role
        with guard.shielded():
            opened = open_store(
                database_url=settings.database_url, data_dir=settings.data_dir, max_size=2
            )
        # without the gateway role, a small pool answers /healthz (and its credentials)
        with guard.shielded():
            gateway = opened.open_as(
                "gateway", settings.gateway_database_url, max_size=16 if serving else 2
            )
        durable: Callable[[Sequence[SourcedBatch]], int] | None = None
        if serving:
            with guard.shielded():
                writer = DurableWriter(gateway, Spool(settings.data_dir / "spool"))
                writer.start()  # replays what a previous run spooled
            if settings.influx_url:
                mirror = InfluxMirror(
                    settings.influx_url,
                    settings.influx_token,
                    settings.influx_org,
                    settings.influx_bucket,
                )
            durable = _mirrored(writer, mirror)
            with guard.shielded():
                auditor = AuditWriter(gateway).start()
        # credential changes (CLI, other instances) reach this process's caches at once
        listener = CredentialListener(opened.role_url("gateway", settings.gateway_database_url))
        listener.subscribe(gateway.credentials_changed)
        # the owner seeds the admin token; the gateway's connections check it from then on
        admin = admin_token_in_force(settings, opened.store, gateway)
        listener.subscribe(admin.changed)
        with guard.shielded():
            listener.start()
        ctx = ServiceContext(
            gateway,
            admin.current(),
            settings.tz,
            settings.max_future,
            settings.max_past,
            writer=durable,
            token_ttl=timedelta(seconds=settings.token_ttl_seconds),
            auditor=auditor,
            admin_token=admin,
        )
        if "jobs" in roles and settings.jobs_interval_seconds > 0:
            jobs_url = named(opened.role_url("jobs", settings.jobs_database_url), "ecosense jobs")
            jobs = JobScheduler(
                jobs_url,
                settings.jobs_interval_seconds,
                scheduler=settings.dask_scheduler,
                tz=settings.timezone,
                webhook=settings.alert_webhook,
                host=options.host,
                leader=Leadership(jobs_url),  # one scheduler ticks among the instances
            )

        def jobs_leader() -> bool:
            return jobs is not None and jobs.leading

        sock = _bind(options.host, options.http_port)
        http_url = _url(options.host, sock.getsockname()[1], "https" if tls else "http")
        app = create_app(
            ctx,
            RateLimits(settings.public_rate, settings.auth_rate, settings.rate_exempt),
            roles=roles,
            jobs_leader=jobs_leader,
        )
        config = uvicorn.Config(
            ClientConcurrency(
                BodyLimit(app, MAX_BODY_BYTES, settings.body_timeout_seconds),
                settings.max_connections_per_address,
            ),
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=5,
            http=guarded_protocol(
                Admission("http", settings.max_connections_per_address, total, trusted),
                settings.header_timeout_seconds,
            ),
            timeout_keep_alive=5,
            # X-Forwarded-For from the trusted proxies only (uvicorn trusts loopback otherwise)
            proxy_headers=bool(trusted),
            forwarded_allow_ips=list(settings.trusted_proxies),
            ssl_certfile=tls.get("ssl_certfile"),
            ssl_keyfile=tls.get("ssl_keyfile"),
        )
        server = uvicorn.Server(config)
        server_thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="gateway", daemon=True
        )
        with guard.shielded():
            server_thread.start()
        deadline = time.monotonic() + 60
        if tls:
            _wait_started(server, server_thread, deadline)
        else:
            _wait_http(http_url + "/healthz", deadline)

        parts = [f"http={http_url}"]
        if serving:
            assert durable is not None
            hj212_server = ThreadedHj212Server(
                Hj212Server(
                    gateway,
                    max_future=settings.max_future,
                    write=durable,
                    quarantine_codes=settings.quarantine_codes,
                    max_past=settings.max_past,
                    auth_timeout=settings.auth_timeout_seconds,
                    max_per_address=settings.max_connections_per_address,
                    max_connections=total,
                    trusted_proxies=trusted,
                    auditor=auditor,
                    instances=Instances(gateway),  # commands to units held by other instances
                )
            )
            listener.subscribe(hj212_server.server.credentials_changed)
            listener.subscribe(hj212_server.server.routed, HJ212_CHANNEL)
            try:
                with guard.shielded():
                    hj_host, hj_port = hj212_server.start(options.host, options.hj212_port)
            except OSError as exc:
                raise EcosenseError(
                    f"cannot listen on {options.host}:{options.hj212_port}: {exc.strerror}"
                ) from exc
            app.state.hj212_command = hj212_server.command
            parts.append(f"hj212={_shown_host(hj_host)}:{hj_port}")
            if settings.mqtt_url:
                try:
                    mqtt_ingest = MqttIngest(
                        settings.mqtt_url, ctx, mqtt_client_id(settings.data_dir)
                    )
                except ValueError as exc:
                    raise EcosenseError(str(exc)) from exc
                with guard.shielded():
                    mqtt_ingest.start()
        if "dashboard" in roles:
            port = options.dashboard_port or _free_port(options.host)
            reader_url = opened.role_url("reader", settings.reader_database_url)
            with guard.shielded():
                dashboard = start_dashboard(
                    settings, reader_url, options.host, port, http_url if serving else None
                )
            dash_url = _url(options.host, port)
        if options.demo:  # with the gateway role (UpOptions)
            # Stack CEMS and water stations speak HJ 212-2017, as such loggers do in China.
            online = demo_stations()
            devices = register(
                opened.store,
                online,
                device_suffix="demo",
                protocol=lambda s: "hj212" if s.kind in ("cems", "water") else "http",
                actor="demo",
            )
            soil = demo_soil_points()  # sampled, never online: no device
            opened.store.upsert_stations(soil)
            _seed_demo_carbon(opened.url, settings.timezone)
            _seed_demo_ecology(opened.url, settings.data_dir, settings.timezone)
            history_written = threading.Event()
            if jobs is not None:  # its workers start while the history is written
                with guard.shielded():
                    jobs.start(after=history_written)
            with guard.shielded():
                _backfill_demo(opened.store, [*online, *soil], settings.timezone)
            history_written.set()
            stacks = stack_levels(online, datetime.now(UTC), settings.timezone)
            for d in devices:  # every parameter of every demo station about every 5 s
                d.rate = len(d.parameters) / 5.0
                d.levels = stacks.get(d.station.id, {})  # stacks sized to their plants
            sim_thread = threading.Thread(
                target=run,
                args=(http_url, devices, 1.0),
                kwargs={"stop": stop, "hj212_address": (_shown_host(hj_host), hj_port)},
                name="simulator",
                daemon=True,
            )
            with guard.shielded():
                sim_thread.start()
        if jobs is not None and not options.demo:  # the demo's started above
            with guard.shielded():
                jobs.start()
        if dashboard is not None:  # started above: it came up while the demo was seeded
            _wait_http(dash_url + "/_stcore/health", deadline, dashboard)
            parts.append(f"dashboard={dash_url}")
        if options.demo and jobs is not None:  # alive at once: the jobs ran over the history
            _wait_first_run(jobs, started + DEMO_READY_SECONDS, stop)
        opened.store.close()  # the owner's connections: not needed once started
        _tune_for_latency()
        guard.checkpoint()
        guard.starting = False  # from here a signal only sets `stop`
        if options.roles != ROLES:  # named when not the default (all three)
            parts.append(f"roles={','.join(roles)}")
        lock.describe(" ".join(parts))
        print("ready " + " ".join(parts), flush=True)
        while not stop.is_set():
            if dashboard is not None and dashboard.poll() is not None:
                raise EcosenseError(f"the dashboard exited with code {dashboard.returncode}")
            if server_thread is not None and not server_thread.is_alive():
                raise EcosenseError("the HTTP gateway stopped")
            stop.wait(0.5)
        return 0
    finally:
        guard.starting = False  # a second Ctrl-C does not cut the stopping short
        stop.set()
        if jobs is not None:
            jobs.stop()
        if sim_thread is not None:
            sim_thread.join(timeout=10)
        if dashboard is not None and dashboard.poll() is None:
            dashboard.terminate()
            try:
                dashboard.wait(timeout=10)
            except subprocess.TimeoutExpired:
                dashboard.kill()
        if mqtt_ingest is not None:
            mqtt_ingest.stop()
        if hj212_server is not None:
            hj212_server.stop()
        if server is not None:
            server.should_exit = True
            if server_thread is not None:
                server_thread.join(timeout=10)
        if listener is not None:
            listener.stop()
        if writer is not None:
            writer.stop()
        if auditor is not None:
            auditor.stop()
        if mirror is not None:
            mirror.close()
        if gateway is not None:
            gateway.close()
        if opened is not None:
            opened.close()
