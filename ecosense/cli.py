"""The ``ecosense`` command: ``up``, ``stations import|list|show``,
``devices add|list|revoke|rotate``, ``admin rotate-token``, ``import`` (readings from files),
``simulate``, ``jobs list|run``, ``carbon run|import|emissions``, ``gis`` (layers, rasters,
zonal statistics, and reading them back: :mod:`ecosense.lists_cli`), ``keys add|list|revoke``
(open-data consumers' API keys: :mod:`ecosense.keys_cli`) and ``audit verify``.

What a command changes, and what it reads back, is audited (:mod:`store.audit`) with the actor
``cli:<login>``: the operating-system account that ran it on the server.

Every command that opens the store first says on stderr which data dir it uses and whether a
platform runs on it (:func:`where`); its result (a token, a password) stays the last line of
stdout. Exit codes: 0 everything done; 1 failed, or done in part (rows rejected, records
excluded) with the count in the one-line reason on stderr; 2 usage; 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from ecosense import __version__, devices_cli, lists_cli
from ecosense.config import Settings, load_settings
from ecosense.errors import EcosenseError

if TYPE_CHECKING:
    from sensors.observations import Observation
    from store.postgres import PostgresStore

logger = logging.getLogger("ecosense")


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("a port is 0-65535 (0 picks a free one)")
    return value


def _address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError("expected host:port")
    return host, int(port)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be greater than 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``ecosense`` command."""
    parser = argparse.ArgumentParser(
        prog="ecosense",
        description="EcoSense: eco-environment and carbon-emission sensing platform.",
    )
    parser.add_argument("--version", action="version", version=f"ecosense {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="start store, gateway and dashboard")
    up.add_argument("--demo", action="store_true", help="seed demo stations and run the simulator")
    up.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    up.add_argument("--http-port", type=_port, default=8080, help="HTTP gateway port (0: any)")
    up.add_argument(
        "--hj212-port",
        type=_port,
        default=9212,
        help="HJ 212-2017 TCP port for field units (0: any)",
    )

    up.add_argument("--dashboard-port", type=_port, default=8501, help="dashboard port (0: any)")
    up.add_argument("--no-dashboard", action="store_true", help="do not start the dashboard")
    up.add_argument(
        "--roles",
        default="gateway,jobs,dashboard",
        help="what this instance runs, comma-separated: gateway (device listeners, HTTP API),"
        " jobs (the scheduler; one instance leads), dashboard (default: all three)",
    )
    up.add_argument(
        "--tls-cert", type=Path, help="serve the HTTP API over HTTPS: PEM certificate (chain)"
    )
    up.add_argument("--tls-key", type=Path, help="the certificate's PEM private key")

    dbp = sub.add_parser("db", help="the database: least-privilege roles")
    db_sub = dbp.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_roles = db_sub.add_parser(
        "roles",
        help="the roles of the gateway, jobs and dashboard, and their privileges",
        description="--print: the SQL a DBA runs on an external server (create the roles, "
        "grants); --apply: migrate, create the roles that are missing (LOGIN, no password: "
        "set one) and grant, as ECOSENSE_DATABASE_URL's role (the owner, with CREATEROLE).",
    )
    db_how = db_roles.add_mutually_exclusive_group(required=True)
    db_how.add_argument("--print", action="store_true", dest="print_sql", help="print the SQL")
    db_how.add_argument("--apply", action="store_true", help="apply it to the database")

    stations = sub.add_parser("stations", help="manage stations")
    st_sub = stations.add_subparsers(dest="stations_command", required=True, metavar="ACTION")
    st_import = st_sub.add_parser("import", help="import stations from CSV or GeoJSON (idempotent)")
    st_import.add_argument("file", type=Path, help="CSV (id,name,kind,lon,lat,...) or GeoJSON")
    lists_cli.add_station_parsers(st_sub)

    devices = sub.add_parser("devices", help="manage devices")
    dev_sub = devices.add_subparsers(dest="devices_command", required=True, metavar="ACTION")
    dev_add = dev_sub.add_parser("add", help="register a device; prints its API token last")
    dev_add.add_argument("device_id")
    dev_add.add_argument("--station", required=True, help="the station the device reports for")
    dev_add.add_argument("--mn", help="HJ 212 device id (MN)")
    dev_add.add_argument("--password", help="HJ 212 password (PW)")
    dev_add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the HJ 212 password from one line of standard input",
    )
    devices_cli.add_device_parsers(dev_sub)
    devices_cli.add_admin_parser(sub)

    params = sub.add_parser("parameters", help="HJ 212 codes the dictionary does not know")
    par_sub = params.add_subparsers(dest="parameters_command", required=True, metavar="ACTION")
    par_q = par_sub.add_parser(
        "quarantine", help="the raw codes held per device (code, readings, first/last seen)"
    )
    par_q.add_argument("device", nargs="?", help="one device (default: all)")
    par_map = par_sub.add_parser(
        "map",
        help="map a device's raw code to a parameter and re-home its held readings",
        description="Later packets of DEVICE with RAWCODE go straight to PARAMETER; the readings "
        "held so far are written as PARAMETER through the same checks as live data.",
    )
    par_map.add_argument("device", help="the device id")
    par_map.add_argument("code", metavar="RAWCODE", help="the code as the device sends it")
    par_map.add_argument("parameter", help="a parameter of the dictionary (e.g. pm25, a34004)")
    par_map.add_argument(
        "--unit", help="the unit the device sends this code in (default: the parameter's own)"
    )
    par_map.add_argument(
        "--ahead",
        action="store_true",
        help="map a code the device has not sent yet (otherwise refused, to catch a typo)",
    )
    par_map.add_argument(
        "--replace",
        action="store_true",
        help="re-home held readings even where PARAMETER already has a reading at that time "
        "(the replaced values stay as versions); otherwise refused",
    )

    aud = sub.add_parser("audit", help="the tamper-evident audit")
    aud_sub = aud.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    aud_sub.add_parser(
        "verify",
        help="recompute the hash chain; exit 0 when intact, else name the first entry"
        " changed or deleted",
    )

    imp = sub.add_parser("import", help="bulk readings from CSV or Excel (same checks as live)")
    imp.add_argument(
        "file",
        type=Path,
        help=".csv or .xlsx: long (parameter, value) or wide "
        "(one column per parameter) layout; lon/lat columns make sampling points",
    )
    imp.add_argument("--station", help="the station of every row, when the file has none")
    imp.add_argument(
        "--user",
        help="who imports the file, recorded with every reading (default: the OS user)",
    )

    sim = sub.add_parser("simulate", help="simulated field devices pushing to a gateway")
    sim.add_argument(
        "--protocol",
        choices=["http", "lineprotocol", "hj212", "mqtt"],
        default="http",
        help="HTTP JSON, InfluxDB line protocol (HTTP), HJ 212-2017 (TCP) or MQTT (JSON, QoS 1)",
    )
    sim.add_argument("--devices", type=int, default=5, help="number of simulated devices")
    sim.add_argument("--rate", type=_positive, default=1.0, help="readings per second per device")
    sim.add_argument(
        "--duration", type=_positive, default=None, help="seconds to run (default: until Ctrl-C)"
    )
    sim.add_argument("--url", default="http://127.0.0.1:8080", help="gateway base URL")
    sim.add_argument(
        "--hj212",
        default="127.0.0.1:9212",
        type=_address,
        help="HJ 212 server host:port (for --protocol hj212)",
    )
    sim.add_argument("--mqtt", help="MQTT broker URL (default: ECOSENSE_MQTT_URL)")
    sim.add_argument("--prefix", default="SIM", help="id prefix of the simulated stations")

    jobs = sub.add_parser("jobs", help="pipeline jobs (aggregation, AQI, water classes, alerts)")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")
    jobs_list = jobs_sub.add_parser("list", help="the jobs, and where each incremental one got to")
    jobs_list.add_argument(
        "--format", choices=lists_cli.FORMATS, default="table", help="table (default), csv or json"
    )
    run = jobs_sub.add_parser(
        "run",
        help="run a job: incrementally (what arrived since its last run) or over a range",
        description="Without --start/--end a job recomputes only what new or late data "
        "touched since its last run; with them, every period of the range. Times are ISO "
        "8601; a time without an offset is in ECOSENSE_TIMEZONE. Runs on the Dask cluster "
        "at ECOSENSE_DASK_SCHEDULER, or on a local one.",
    )
    run.add_argument("name", help="job name (see `ecosense jobs list`)")
    run.add_argument("--start", help="first time of the range (inclusive)")
    run.add_argument("--end", help="end of the range (exclusive)")

    review = sub.add_parser(
        "review",
        help="manual review (数据审核): invalidate or restore readings, with a reason",
        description="Invalidate or restore the readings of one station and parameter timed in "
        "[--start, --end). Readings stay stored; jobs leave invalidated ones out and recompute "
        "the periods touched on their next run. Times are ISO 8601; a time without an offset "
        "is in ECOSENSE_TIMEZONE. Prints the review's id and the readings it covers last.",
    )
    review.add_argument("action", choices=["invalidate", "restore"])
    review.add_argument("--station", required=True, help="station id")
    review.add_argument("--parameter", required=True, help="parameter (canonical or HJ 212 code)")
    review.add_argument("--start", required=True, help="first reading time (inclusive)")
    review.add_argument("--end", required=True, help="end of the range (exclusive)")
    review.add_argument("--reason", required=True, help="why (kept with the review)")
    review.add_argument("--by", help="who decides (default: the login name)")

    carbon = sub.add_parser("carbon", help="carbon accounting jobs written by planners")
    carbon_sub = carbon.add_subparsers(dest="carbon_command", required=True, metavar="ACTION")
    c_run = carbon_sub.add_parser(
        "run", help="run a job file (TOML): facilities, activity files, factors, period, outputs"
    )
    c_run.add_argument("job", type=Path, help="the job file")
    c_run.add_argument(
        "--store", action="store_true", help="also keep the run (roll-up, exclusions) in the store"
    )
    c_imp = carbon_sub.add_parser(
        "import",
        help="store facilities, activity records and regional targets (CSV or Excel)",
        description="Facilities are upserted by id; activity records by id (an `id` column, else "
        "facility/activity/start), so a corrected file re-imported replaces its records and "
        "the carbon-inventory job recomputes the years they touch. Records overlapping a "
        "stored record of the same facility and activity are refused.",
    )
    c_imp.add_argument("--facilities", type=Path, help="id, name, region, sector[, lon, lat]")
    c_imp.add_argument(
        "--activity", type=Path, action="append", default=[], help="activity file (repeatable)"
    )
    c_imp.add_argument("--targets", type=Path, help="region, peak_year, neutral_year")
    lists_cli.add_carbon_parsers(carbon_sub)
    gis = sub.add_parser("gis", help="the one map: layers, rasters, zonal statistics")
    gis_sub = gis.add_subparsers(dest="gis_command", required=True, metavar="ACTION")
    g_layer = gis_sub.add_parser(
        "layer",
        help="import a vector layer (GeoJSON, Shapefile, GeoPackage) with its CRS",
        description="FILE `china-provinces` imports the shipped admin layer (key: code). "
        "A layer without a CRS or with an empty geometry is refused; invalid geometries are "
        "repaired (make_valid) and listed.",
    )
    g_layer.add_argument("file", help="the file, or china-provinces")
    g_layer.add_argument("--name", required=True, help="the layer's name in the store")
    g_layer.add_argument("--layer", help="a GeoPackage's layer")
    g_layer.add_argument("--key", help="the attribute naming each feature (default: row number)")
    g_raster = gis_sub.add_parser(
        "raster", help="register a raster (GeoTIFF/COG, NetCDF) or a STAC item's rasters"
    )
    g_raster.add_argument("file", type=Path, help="raster file or STAC item JSON")
    g_raster.add_argument("--id", help="catalogue id (default: the file name)")
    g_raster.add_argument("--variable", help="NetCDF variable")
    g_raster.add_argument("--band", type=int, help="band number of a multi-band raster")
    g_raster.add_argument("--time", help="the raster's time (ISO 8601)")
    g_raster.add_argument(
        "--stack", action="store_true", help="a time stack (NetCDF/Zarr): register every step"
    )
    g_raster.add_argument(
        "--quantity",
        choices=("ndvi", "ndwi", "landcover"),
        help="what it measures: the ecology job reduces NDVI (and FVC) and NDWI per region, and"
        " compares consecutive land-cover rasters (classes, projected CRS) per region",
    )
    g_zonal = gis_sub.add_parser(
        "zonal", help="zonal statistics of rasters over a layer, on the Dask runner, stored"
    )
    g_zonal.add_argument("--layer", required=True, help="the layer's name")
    g_zonal.add_argument("--raster", action="append", help="catalogue id (default: all)")
    g_zonal.add_argument(
        "--stats",
        default="mean,count",
        help="comma-separated: mean,sum,count,min,max,majority,frac",
    )
    lists_cli.add_gis_parsers(gis_sub)
    from ecosense import users_cli

    users_cli.add_parsers(sub)
    from ecosense import keys_cli

    keys_cli.add_parsers(sub)
    _add_report_parser(sub)
    return parser


def cmd_gis(settings: Settings, args: argparse.Namespace) -> int:
    from store import db
    from store import gis as gis_store

    if args.gis_command == "layer":
        from gis.layers import china_provinces, read_layer

        if args.file == "china-provinces":
            layer, key = china_provinces().reset_index(), args.key or "code"
        else:
            layer, key = read_layer(args.file, args.layer), args.key
        with _open(settings) as opened, db.connect(opened.url) as conn:
            n = gis_store.save_layer(conn, args.name, layer, key, str(args.file))
            _audit(
                opened.store,
                "import.gis_layer",
                f"layer:{args.name}",
                details={"file": str(args.file), "features": n},
            )
        repaired = layer.attrs.get("repaired", [])
        print(
            f"layer {args.name}: {n} features" + (f", {len(repaired)} repaired" if repaired else "")
        )
        return 0
    if args.gis_command == "raster":
        from gis.catalogue import describe, from_stac, stack

        if args.file.suffix.lower() == ".json":
            items = from_stac(args.file)
        elif args.stack:
            items = stack(args.file, variable=args.variable, prefix=args.id)
        else:
            when = _time_arg(args.time, settings, "--time")
            items = [
                describe(args.file, id=args.id, variable=args.variable, band=args.band, time=when)
            ]
        if args.quantity:
            from gis.catalogue import with_quantity

            items = [with_quantity(i, args.quantity) for i in items]
        with _open(settings) as opened, db.connect(opened.url) as conn:
            for item in items:
                gis_store.save_raster(conn, item)
                print(
                    f"raster {item.id}: {item.width} x {item.height} cells of"
                    f" {item.res_x:g} x {item.res_y:g}"
                )
            _audit(
                opened.store,
                "import.gis_raster",
                "rasters:" + ",".join(i.id for i in items[:20]),
                details={"file": str(args.file), "rasters": len(items)},
            )
        return 0
    from gis.zonal import STATS
    from pipelines import zonal
    from pipelines.jobs import JobReport, _collect
    from pipelines.runner import Runner

    stats = [s.strip() for s in args.stats.split(",") if s.strip()]
    unknown = [s for s in stats if s not in STATS]
    if unknown:
        raise EcosenseError(f"unknown statistics {', '.join(unknown)}: one of {', '.join(STATS)}")
    logging.getLogger("distributed").setLevel(logging.WARNING)
    with _open(settings) as opened:
        with db.connect(opened.url) as conn:
            gis_store.load_layer(conn, args.layer)  # fails early for an unknown layer
            rasters = gis_store.load_rasters(conn, args.raster)
        report = JobReport("zonal", incremental=False)
        began = time.monotonic()
        with Runner(settings.dask_scheduler) as runner:
            print(f"zonal: running on {runner.description}", file=sys.stderr, flush=True)
            _collect(
                report,
                runner.map(
                    zonal.zonal_task,
                    zonal.plans(rasters, args.layer, stats),
                    opened.url,
                    progress=lambda done, total: print(
                        f"zonal: rasters {done}/{total}", file=sys.stderr, flush=True
                    ),
                ),
            )
    seconds = time.monotonic() - began
    print(
        f"zonal: {report.tasks} rasters over layer {args.layer}, {report.rows} rows written, "
        f"{len(report.errors)} errors, {seconds:.1f} s"
    )
    for error in report.errors:
        print(f"  error: {error}", file=sys.stderr)
    if report.errors:
        raise EcosenseError(
            f"{len(report.errors)} of {report.tasks} rasters failed (listed above); the others"
            " are stored"
        )
    return 0


#: the start of the line every command that opens the store prints on stderr
WHERE_PREFIX = "ecosense: data dir "


def old_default_hint(settings: Settings, origin: str) -> str:
    """``; <cwd>/.ecosense here is …`` when the data dir is the default one and the current
    folder holds a data dir of the former default (``./.ecosense``), else empty."""
    old = Path(".ecosense").absolute()
    if origin != "default" or old == settings.data_dir:
        return ""
    if not (old / "pg" / "PG_VERSION").exists():
        return ""
    return (
        f"; {old} here is a data dir of the former default: set ECOSENSE_DATA_DIR={old} to use it"
    )


def where(settings: Settings) -> str:
    """One line naming the data dir a command uses, where that setting comes from, and
    whether a platform (``ecosense up``) is running on it (with its pid and addresses).

    Raises
    ------
    EcosenseError
        without a database URL, when the data dir holds no database yet: only ``ecosense up``
        creates one, so that a command run from another folder never fills a new, empty
        database the platform does not read.
    """
    from ecosense.config import data_dir_origin
    from ecosense.instance import running

    data_dir, origin = settings.data_dir, data_dir_origin()
    holder = running(data_dir)
    if holder is not None:
        state = f"platform running on it: {holder.describe(settings.tz)}"
    else:
        state = "no platform running on it"
    if settings.database_url is None and not (data_dir / "pg" / "PG_VERSION").exists():
        hint = old_default_hint(settings, origin)
        raise EcosenseError(
            f"no EcoSense data dir at {data_dir} ({origin}): `ecosense up` creates it; run this"
            " command where the platform's settings apply, or set ECOSENSE_DATA_DIR (or"
            f" data_dir in ecosense.toml) to the platform's data dir{hint}"
        )
    database = "" if settings.database_url is None else ", database ECOSENSE_DATABASE_URL"
    return f"{WHERE_PREFIX}{data_dir} ({origin}{database}); {state}"


def _open(settings: Settings):  # type: ignore[no-untyped-def]
    """Open the store of the data dir (or database) in force, after saying so on stderr."""
    from store import open_store

    print(where(settings), file=sys.stderr, flush=True)
    return open_store(database_url=settings.database_url, data_dir=settings.data_dir, max_size=2)


def cmd_db_roles(settings: Settings, apply: bool) -> int:
    """``ecosense db roles --print | --apply`` (README "Least privilege in the database")."""
    from store import roles

    if not apply:
        print(roles.script(settings.database_url), end="")
        return 0
    if settings.database_url is None:
        print("the embedded server creates and grants its roles itself at every start")
        with _open(settings):
            return 0
    with _open(settings) as opened, opened.store.connection() as conn:
        done = roles.create_and_grant(conn)
    print("roles granted: " + ", ".join(done))
    return 0


def _add_report_parser(sub: Any) -> None:
    """``ecosense report daily|monthly --date D --format xlsx|pdf|csv --out FILE``."""
    rep = sub.add_parser(
        "report",
        help="the daily air-quality or monthly surface-water report (xlsx, PDF, CSV)",
        description="Write the bureau's daily air-quality report (HJ 633-2026) of day D, or "
        "the surface-water quality report (GB 3838-2002) of the month of D, from the computed "
        "aggregates and assessments. Gaps and invalid hours or days are stated in the report "
        "(exit 0); a report that cannot be written exits non-zero. Runs as the owner (every "
        "station) and is audited.",
    )
    rep.add_argument("kind", choices=["daily", "monthly"])
    rep.add_argument("--date", required=True, help="the day (YYYY-MM-DD, the bureau's zone)")
    rep.add_argument(
        "--format", choices=["xlsx", "pdf", "csv"], help="default: from --out's suffix"
    )
    rep.add_argument("--out", required=True, type=Path, help="the file to write")


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    """``report``: build, render, write; the path and what it holds on stdout."""
    from datetime import date

    import access
    from reports import data, render

    try:
        day = date.fromisoformat(args.date)
    except ValueError as exc:
        raise EcosenseError(f"--date {args.date!r} is not a date (YYYY-MM-DD)") from exc
    fmt = args.format or args.out.suffix.lstrip(".").lower()
    if fmt not in render.FORMATS:
        raise EcosenseError(f"give --format xlsx, pdf or csv (not {fmt!r})")
    with _open(settings) as opened:
        report = data.build(opened.store, args.kind, day, settings.timezone, access.BREAK_GLASS)
        content = render.render(report, fmt)
        try:
            args.out.write_bytes(content)
        except OSError as exc:
            raise EcosenseError(f"cannot write {args.out}: {exc.strerror}") from exc
        _audit(
            opened.store,
            "export",
            data.audit_object(report),
            details={
                "via": "cli",
                "format": fmt,
                "file": str(args.out),
                "stations": len(report.stations),
                "grade": report.grade.label,
            },
        )
    print(f"{len(report.notes) - 1} statements on gaps or validity", file=sys.stderr)
    print(f"wrote the {args.kind} report of {report.period} ({fmt}) to {args.out}")
    return 0


def _actor() -> str:
    """Who runs this command, in the audit: ``cli:<login>``."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:?"


def _audit(
    store: Any,
    action: str,
    object: str,
    outcome: str = "ok",
    details: dict[str, Any] | None = None,
) -> None:
    """Audit what this command did (a failure is logged, never raised)."""
    from store import audit

    audit.record(store, _actor(), action, object, outcome, None, details)


def cmd_audit(settings: Settings, args: argparse.Namespace) -> int:
    """``audit verify``: the last line says the chain is intact, or which entry broke it."""
    from store import audit, db

    with _open(settings) as opened, db.connect(opened.url) as conn:
        result = audit.check(conn)
    if result.broken is not None:
        raise EcosenseError(
            f"audit chain broken at entry {result.broken.id}: {result.broken.reason}"
            f" ({result.entries} entries read)"
        )
    print(f"head hash: {result.head}", file=sys.stderr)
    print(f"audit chain intact: {result.entries} entries")
    return 0


def cmd_stations_import(settings: Settings, file: Path) -> int:
    from sensors.stations import read_stations

    try:
        text = file.read_text("utf-8")
    except OSError as exc:
        raise EcosenseError(f"cannot read {file}: {exc.strerror}") from exc
    stations = read_stations(text, file.name)
    with _open(settings) as opened:
        opened.store.upsert_stations(stations)
        _audit(
            opened.store,
            "import.stations",
            "stations",
            details={"file": str(file), "stations": len(stations)},
        )
    print(f"imported {len(stations)} stations from {file}")
    return 0


def cmd_devices_add(settings: Settings, args: argparse.Namespace) -> int:
    password = args.password
    if args.password_stdin:
        from ecosense.users_cli import _read_password

        if password is not None:
            raise EcosenseError("give --password or --password-stdin, not both")
        password = _read_password()
    with _open(settings) as opened:
        token = opened.store.add_device(args.device_id, args.station, mn=args.mn, password=password)
        _audit(
            opened.store,
            "device.token_issue",
            f"station:{args.station}",
            details={"device": args.device_id, "hj212": args.mn is not None},
        )
    print(f"device {args.device_id} registered for station {args.station}; its API token:")
    print(token)
    return 0


def cmd_parameters(settings: Settings, args: argparse.Namespace) -> int:
    """``parameters quarantine [DEVICE]`` and ``parameters map DEVICE RAWCODE PARAMETER``."""
    from store import quarantine

    if args.parameters_command == "quarantine":
        with _open(settings) as opened, opened.store.connection() as conn:
            codes = quarantine.held_codes(conn, args.device)
            dropped = quarantine.dropped(conn, args.device)

        def shown(t: datetime) -> str:
            return t.astimezone(settings.tz).isoformat(timespec="seconds")

        for c in codes:
            print(
                f"{c.device}\t{c.code}\t{c.readings}\t{shown(c.first_seen)}\t{shown(c.last_seen)}"
            )
        for d in dropped:
            print(
                f"{d.device}\tdropped (quarantine full)\t{d.readings}\t{shown(d.first_dropped)}"
                f"\t{shown(d.last_dropped)}\tlast codes: {', '.join(d.last_codes)}"
            )
        print(
            f"{len(codes)} codes held ({sum(c.readings for c in codes)} readings),"
            f" {sum(d.readings for d in dropped)} readings dropped"
        )
        return 0
    return _map_code(
        settings,
        args.device,
        args.code,
        args.parameter,
        args.unit,
        ahead=args.ahead,
        replace=args.replace,
    )


def _map_code(
    settings: Settings,
    device: str,
    code: str,
    parameter: str,
    unit: str | None,
    *,
    ahead: bool = False,
    replace: bool = False,
) -> int:
    """Map ``device``'s raw ``code`` to ``parameter`` and re-home its held readings.

    Refused (nothing changed): a code the device never sent, unless ``ahead`` (a typo would
    otherwise go unnoticed); held readings falling on times where ``parameter`` already has a
    reading of the same stream, unless ``replace`` (re-homing would make them the current
    values). The re-homed readings keep their protocol and device, and name the operator who
    mapped them as their user."""
    from datetime import UTC

    from ingest.hj212_readings import RawReading, rehome
    from sensors.errors import SensorsError, UnknownParameterError
    from sensors.observations import Source
    from sensors.parameters import lookup
    from sensors.units import to_canonical
    from store import quarantine

    param = lookup(parameter)  # UnknownParameterError: one line, exit 1
    try:
        known = lookup(code)
    except UnknownParameterError:
        pass
    else:
        raise EcosenseError(f"{code} is in the dictionary ({known.code}): it is never held")
    try:
        to_canonical(1.0, unit, param)  # a unit that does not suit the parameter: refused now
    except SensorsError as exc:
        raise EcosenseError(f"--unit {unit} for {param.code}: {exc}") from exc
    with _open(settings) as opened:
        store = opened.store
        with store.connection() as conn:
            quarantine.require_device(conn, device)
            seen = {c.code for c in quarantine.held_codes(conn, device)}
            seen |= {c for d in quarantine.dropped(conn, device) for c in d.last_codes}
            held = quarantine.held_readings(conn, device, code)
        if code not in seen and not ahead:
            raise EcosenseError(
                f"{device} has sent no {code} that is held (see `ecosense parameters quarantine"
                f" {device}`); pass --ahead to map a code it will send"
            )
        observations, problems = [], []
        for station in sorted({h.station for h in held}):
            found, refused = rehome(
                station,
                (RawReading(*h[1:8]) for h in held if h.station == station),
                param.code,
                unit,
                now=datetime.now(UTC),
                max_future=settings.max_future,
            )
            observations += found
            problems += refused
        clashes = _clashes(store, observations)
        if clashes and not replace:
            raise EcosenseError(
                f"{len(clashes)} held readings fall where {param.code} already has a reading"
                f" (first: {clashes[0]}): re-homing would replace them; pass --replace to do so"
                " (the replaced values stay as versions)"
            )
        with store.connection() as conn:
            quarantine.map_code(conn, device, code, param.code, unit)
        store.write_observations(observations, source=Source("hj212", device, _os_user()))
        with store.connection() as conn:
            quarantine.release(conn, device, code)
        _audit(
            store,
            "parameters.map",
            ",".join(sorted({f"station:{h.station}" for h in held})) or f"device:{device}",
            "ok" if not problems else "partial",
            {
                "device": device,
                "code": code,
                "parameter": param.code,
                "unit": unit,
                "rehomed": len(observations),
                "refused": len(problems),
            },
        )
    for problem in problems[:50]:
        print(f"refused: {problem}", file=sys.stderr)
    print(
        f"{device} {code} mapped to {param.code}: {len(observations)} held readings re-homed,"
        f" {len(problems)} refused"
    )
    if problems:
        raise EcosenseError(f"{len(problems)} held readings refused, the rest re-homed")
    return 0


def _clashes(store: PostgresStore, observations: Sequence[Observation]) -> list[str]:
    """The readings of ``observations`` whose stream already has a reading at their time
    (``station parameter time``)."""
    from store.postgres import StreamKey

    wanted: dict[StreamKey, set[datetime]] = {}
    for o in observations:
        wanted.setdefault(StreamKey.of(o), set())
        wanted[StreamKey.of(o)].add(o.time)
    out: list[str] = []
    for key, times in wanted.items():
        stored = store.read_observations(
            station=key.station,
            parameter=key.parameter,
            start=min(times),
            end=max(times) + timedelta(microseconds=1),
            limit=100_000,
        )
        out += [
            f"{r.station} {r.parameter} {r.time.isoformat()}"
            for r in stored
            if StreamKey(r.station, r.parameter, r.interval, r.statistic, r.basis) == key
            and r.time in times
        ]
    return sorted(out)


def _os_user() -> str:
    """The name of the user running this command (``unknown`` when the OS does not say)."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def cmd_import(settings: Settings, file: Path, station: str | None, user: str | None = None) -> int:
    from ingest.batch import validate_items
    from ingest.files import read_table, table_readings
    from sensors.observations import Source

    source = Source("file", None, user or _os_user(), file.name)

    found = table_readings(read_table(file), station)
    with _open(settings) as opened:
        store = opened.store
        if found.stations:
            store.upsert_stations(found.stations)
        kinds = store.station_kinds({str(i["station"]) for i in found.items})
        result = validate_items(  # a file import has no past window (the 2000 floor holds)
            found.items,
            known_station=kinds.__contains__,
            station_kind=kinds.get,
            default_tz=settings.tz,
            max_future=settings.max_future,
        )
        store.write_observations(result.accepted, source=source)
        from ingest.accept import source_details, stations_object

        _audit(
            store,
            "import.readings",
            stations_object(kinds),
            "ok" if not (found.problems or result.rejected) else "partial",
            {
                **source_details(source),
                "path": str(file),
                "accepted": len(result.accepted),
                "rejected": len(found.problems) + len(result.rejected),
                "sampling_points": len(found.stations),
            },
        )
    problems = found.problems + [(found.rows[i], reason) for i, reason in result.rejected]
    for line, reason in sorted(problems)[:50]:
        print(f"{file.name}:{line}: {reason}")
    print(
        f"imported {len(result.accepted)} readings from {file}"
        + (f" ({len(found.stations)} sampling points)" if found.stations else "")
    )
    if problems:
        raise EcosenseError(
            f"{len(problems)} rejected (rows or readings, listed above),"
            f" {len(result.accepted)} imported"
        )
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from ecosense.demo import demo_stations
    from ecosense.simulator import register, run

    if args.devices < 1:
        raise EcosenseError("--devices must be at least 1")
    with _open(settings) as opened:
        devices = register(
            opened.store,
            demo_stations(args.devices, args.prefix),
            protocol=args.protocol,
            actor=_actor(),
        )
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if args.protocol == "mqtt" and not (args.mqtt or settings.mqtt_url):
        raise EcosenseError("--protocol mqtt needs --mqtt URL or ECOSENSE_MQTT_URL")
    stats = run(
        args.url,
        devices,
        args.rate,
        hj212_address=args.hj212,
        mqtt_url=(args.mqtt or settings.mqtt_url) if args.protocol == "mqtt" else None,
        duration=args.duration,
        stop=stop,
    )
    print(
        f"sent {stats.sent} readings, {stats.accepted} accepted, "
        f"{stats.failed_requests} failed requests"
    )
    return 0 if stats.sent or not stats.failed_requests else 1


def _time_arg(text: str | None, settings: Settings, what: str) -> datetime | None:
    """An ISO 8601 time; without an offset, in the bureau's time zone."""
    if text is None:
        return None
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise EcosenseError(f"{what} {text!r} is not an ISO 8601 time") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=settings.tz)


def cmd_jobs(settings: Settings, args: argparse.Namespace) -> int:
    from pipelines.jobs import JOBS, JobContext, get
    from store import db, derived

    if args.jobs_command == "list":
        with _open(settings) as opened, db.connect(opened.url) as conn:
            marks = derived.marks(conn)
        if args.format != "table":
            rows = [
                {"job": j.name, "description": j.description, "up_to": marks.get(j.name)}
                for j in JOBS.values()
            ]
            lists_cli.emit(rows, ["job", "description", "up_to"], args.format, settings)
            return 0
        width = max(len(name) for name in JOBS)
        for job in JOBS.values():
            mark = marks.get(job.name)
            if not job.incremental:
                shown = "no mark: each run evaluates the latest data"
            elif mark is None:
                shown = "up to: never"
            else:
                shown = f"up to: {mark.astimezone(settings.tz).isoformat(timespec='seconds')}"
            print(f"{job.name:<{width}}  {job.description} ({shown})")
        return 0
    job = get(args.name)
    start = _time_arg(args.start, settings, "--start")
    end = _time_arg(args.end, settings, "--end")
    if start is not None and end is not None and start >= end:
        raise EcosenseError("--start must be before --end")
    from pipelines.runner import Runner
    from store.leader import named

    if not args.verbose:  # distributed logs its start-up at INFO through its own handler
        logging.getLogger("distributed").setLevel(logging.WARNING)

    def progress(stage: str, done: int, total: int) -> None:
        print(f"{job.name}: {stage} {done}/{total}", file=sys.stderr, flush=True)

    with _open(settings) as opened:
        print(f"{job.name}: starting the Dask runner", file=sys.stderr, flush=True)
        with Runner(settings.dask_scheduler) as runner:
            print(f"{job.name}: running on {runner.description}", file=sys.stderr, flush=True)
            report = job.run(
                JobContext(
                    named(opened.url, "ecosense jobs run"),  # job_mark_moves.moved_by
                    runner,
                    settings.timezone,
                    progress,
                    on_wait=lambda: print(
                        f"{job.name}: waiting for the run of {job.name} under way",
                        file=sys.stderr,
                        flush=True,
                    ),
                ),
                start,
                end,
            )
    print(report.summary())
    for error in report.errors:
        print(f"  error: {error}", file=sys.stderr)
    for warning in report.warnings:
        print(f"  warning: {warning}", file=sys.stderr)
    return 1 if report.errors else 0


def cmd_review(settings: Settings, args: argparse.Namespace) -> int:
    import getpass

    from sensors.parameters import lookup
    from store import reviews

    start = _time_arg(args.start, settings, "--start")
    end = _time_arg(args.end, settings, "--end")
    assert start is not None and end is not None
    code = lookup(args.parameter).code
    by = args.by or f"{getpass.getuser()} (cli)"
    with _open(settings) as opened, opened.store.connection() as conn:
        review, affected = reviews.add(
            conn,
            station=args.station,
            parameter=code,
            start=start,
            end=end,
            action=args.action,
            reason=args.reason,
            by=by,
        )
        _audit(
            opened.store,
            f"review.{review.action}",
            f"station:{review.station}",
            "ok",
            {
                "review": review.id,
                "parameter": review.parameter,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "by": by,
                "reason": args.reason,
                "affected": affected,
            },
        )
    shown = [t.astimezone(settings.tz).isoformat() for t in (start, end)]
    print(
        f"review {review.id}: {review.action} {review.station} {review.parameter}"
        f" [{shown[0]}, {shown[1]}): {affected} readings affected"
    )
    if not affected:
        print(f"warning: {reviews.no_readings_warning(review, settings.tz)}", file=sys.stderr)
    return 0


def cmd_carbon_run(settings: Settings, job: Path, keep: bool = False) -> int:
    from carbon.jobfile import run_job
    from pipelines.runner import Runner

    logging.getLogger("distributed").setLevel(logging.WARNING)

    def progress(done: int, total: int) -> None:
        print(f"{job.name}: accounting {done}/{total}", file=sys.stderr, flush=True)

    run_id = 0
    with Runner(settings.dask_scheduler) as runner:
        print(f"{job.name}: running on {runner.description}", file=sys.stderr, flush=True)

        def mapper(fn: Any, plans: Any, *args: Any) -> list[Any]:
            out = runner.map(fn, plans, *args, progress=progress)
            failed = [r for r in out if isinstance(r, BaseException)]
            if failed:
                raise EcosenseError(f"accounting failed: {failed[0]}")
            return out

        result = run_job(job, settings.timezone, mapper=mapper)
    if keep:
        from store import activity, db

        with _open(settings) as opened, db.connect(opened.url) as conn:
            run_id = activity.save_run(conn, result, str(job.resolve()))
    print(
        f"{result.name}: {result.total_co2e_t:,.1f} t CO2e from {result.rows['record'].nunique()}"
        f" records; {len(result.excluded)} excluded"
    )
    for r in result.excluded:
        print(f"  excluded: {r.where}: {r.reason}", file=sys.stderr)
    for f in result.files:
        print(f"  wrote {f}")
    if keep:
        print(f"  stored as run {run_id}")
    if result.excluded:
        raise EcosenseError(
            f"{len(result.excluded)} excluded (records or facilities, listed above);"
            " the rest accounted"
        )
    return 0


def cmd_carbon_import(settings: Settings, args: argparse.Namespace) -> int:
    from carbon.activity import Rejected, read_activity, read_facilities
    from carbon.targets import read_targets
    from store import activity, db

    if not (args.facilities or args.activity or args.targets):
        raise EcosenseError("give --facilities, --activity or --targets")
    problems: list[Rejected] = []
    with _open(settings) as opened, db.connect(opened.url) as conn:
        if args.facilities:
            found, bad = read_facilities(args.facilities)
            problems += bad
            n = activity.save_facilities(conn, found)
            print(f"facilities: {n} stored or changed")
            _audit(
                opened.store,
                "import.carbon_facilities",
                "facilities",
                "ok" if not bad else "partial",
                {"file": str(args.facilities), "changed": n, "rejected": len(bad)},
            )
        known = activity.load_facilities(conn)
        for path in args.activity:
            records, bad = read_activity(path, known, settings.timezone, natural_ids=True)
            changed, refused = activity.save_activity(conn, records)
            problems += bad + refused
            print(f"{path.name}: {changed} activity records stored or changed")
            _audit(
                opened.store,
                "import.carbon_activity",
                "facility activity",
                "ok" if not (bad or refused) else "partial",
                {"file": str(path), "changed": changed, "rejected": len(bad) + len(refused)},
            )
        if args.targets:
            n = activity.save_targets(conn, read_targets(args.targets))
            print(f"targets: {n} stored")
            _audit(
                opened.store,
                "import.carbon_targets",
                "carbon targets",
                details={"file": str(args.targets), "stored": n},
            )
    for p in problems[:50]:
        print(f"  rejected: {p.where}: {p.reason}", file=sys.stderr)
    if problems:
        raise EcosenseError(f"{len(problems)} rejected (rows, listed above), the rest imported")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ecosense`` command; a Ctrl-C at any moment exits 130 quietly, and
    output piped into a reader that stops early (``| head``) ends the command quietly too."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        print("ecosense: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader is gone: no traceback, and no second error when Python flushes stdout at
        # exit (the recipe of Python's documentation, "Note on SIGPIPE")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141  # as a shell reports a command ended by SIGPIPE (128 + 13)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if not args.verbose:  # Dask's INFO chatter (cluster start-up, workers) off, workers too
        os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from sensors.errors import SensorsError
    from store.errors import StoreError

    try:
        settings = load_settings()
        if args.command == "up":
            from dataclasses import replace

            from ecosense.config import data_dir_origin
            from ecosense.runner import UpOptions, parse_roles, up

            options = UpOptions(  # checked before anything starts: a one-line error
                host=args.host,
                http_port=args.http_port,
                hj212_port=args.hj212_port,
                dashboard_port=args.dashboard_port,
                dashboard=not args.no_dashboard,
                demo=args.demo,
                roles=parse_roles(args.roles),
            )
            if bool(args.tls_cert) != bool(args.tls_key):
                raise EcosenseError("--tls-cert and --tls-key go together")
            origin = data_dir_origin()
            print(
                f"{WHERE_PREFIX}{settings.data_dir} ({origin}): starting the platform"
                + old_default_hint(settings, origin),
                file=sys.stderr,
                flush=True,
            )
            if args.tls_cert:
                settings = replace(settings, tls_cert=args.tls_cert, tls_key=args.tls_key)
            return up(settings, options)
        if args.command == "stations" and args.stations_command == "import":
            return cmd_stations_import(settings, args.file)
        if (
            args.command == "stations"
            or (args.command == "gis" and args.gis_command in lists_cli.GIS_ACTIONS)
            or (args.command == "carbon" and args.carbon_command in lists_cli.CARBON_ACTIONS)
        ):
            return lists_cli.run(settings, args)
        if args.command == "db":
            return cmd_db_roles(settings, args.apply)
        if args.command == "devices" and args.devices_command == "add":
            return cmd_devices_add(settings, args)
        if args.command in ("devices", "admin"):
            return devices_cli.run(settings, args)
        if args.command == "import":
            return cmd_import(settings, args.file, args.station, args.user)
        if args.command == "audit":
            return cmd_audit(settings, args)
        if args.command == "parameters":
            return cmd_parameters(settings, args)
        if args.command == "simulate":
            return cmd_simulate(settings, args)
        if args.command == "jobs":
            return cmd_jobs(settings, args)
        if args.command == "review":
            return cmd_review(settings, args)
        if args.command == "gis":
            return cmd_gis(settings, args)
        if args.command == "carbon" and args.carbon_command == "import":
            return cmd_carbon_import(settings, args)
        if args.command == "carbon":
            return cmd_carbon_run(settings, args.job, args.store)
        if args.command == "report":
            return cmd_report(settings, args)
        if args.command in ("users", "classify"):
            from ecosense import users_cli

            return users_cli.run(settings, args)
        if args.command == "keys":
            from ecosense import keys_cli

            return keys_cli.run(settings, args)
    except (EcosenseError, SensorsError, StoreError, ValueError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"ecosense: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
