"""The read-back commands: ``stations list|show``, ``gis layers|rasters|results`` and
``carbon emissions``.

Each prints a table on stdout (``--format table``, the default: aligned columns under a
header), or ``--format csv`` (a header row, RFC 4180) or ``--format json`` (one array of
objects); times are in the bureau's time zone, ISO 8601. The CLI runs on the server as the
database owner, so it sees every station whatever its grade; each read is audited as
``read`` with the actor ``cli:<login>`` and the command and row count in its details, as
``devices list`` is.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TextIO

from ecosense.config import Settings
from ecosense.errors import EcosenseError
from gis.crs import crs_name

#: the ``gis`` and ``carbon`` actions this module answers
GIS_ACTIONS = ("layers", "rasters", "results")
CARBON_ACTIONS = ("emissions",)

FORMATS = ("table", "csv", "json")


def _format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="table (default), csv or json"
    )


def add_station_parsers(st_sub: Any) -> None:
    """``stations list`` and ``stations show ID``."""
    ls = st_sub.add_parser("list", help="the stations: id, name, kind, lon, lat, simulated")
    ls.add_argument("--kind", help="only stations of this kind (air, water, cems, …)")
    _format(ls)
    show = st_sub.add_parser("show", help="one station: its fields, attributes and devices")
    show.add_argument("station_id")
    _format(show)


def add_gis_parsers(gis_sub: Any) -> None:
    """``gis layers``, ``gis rasters`` and ``gis results --layer L``."""
    _format(gis_sub.add_parser("layers", help="the stored vector layers and their features"))
    _format(gis_sub.add_parser("rasters", help="the raster catalogue"))
    res = gis_sub.add_parser("results", help="stored zonal statistics of a layer")
    res.add_argument("--layer", required=True, help="the layer's name")
    res.add_argument("--stat", help="one statistic (mean, sum, count, …)")
    res.add_argument("--feature", help="one feature (its key)")
    _format(res)


def add_carbon_parsers(carbon_sub: Any) -> None:
    """``carbon emissions``."""
    em = carbon_sub.add_parser(
        "emissions",
        help="stored emissions (t): the carbon-inventory job's calculation, or CEMS measurement",
    )
    em.add_argument(
        "--source", choices=("calculation", "cems"), default="calculation", help="which series"
    )
    em.add_argument("--facility", help="one facility (or stack station)")
    em.add_argument("--start", help="first period start (inclusive, ISO 8601)")
    em.add_argument("--end", help="end (exclusive, ISO 8601)")
    _format(em)


def _cell(value: Any, settings: Settings) -> Any:
    """A value as shown: times in the bureau's zone, NaN as empty, mappings as JSON."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(settings.tz).isoformat(timespec="seconds")
    if hasattr(value, "to_pydatetime"):  # pandas Timestamp
        return value.to_pydatetime().astimezone(settings.tz).isoformat(timespec="seconds")
    if isinstance(value, float) and math.isnan(value):
        return ""
    if isinstance(value, Mapping):
        return json.dumps(dict(value), ensure_ascii=False, sort_keys=True, default=str)
    return value


def emit(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: str,
    settings: Settings,
    out: TextIO | None = None,
) -> None:
    """Print ``rows`` (of ``columns``) as a table, CSV or JSON."""
    out = out or sys.stdout
    shown = [{c: _cell(r.get(c), settings) for c in columns} for r in rows]
    if fmt == "json":
        json.dump(shown, out, ensure_ascii=False, indent=1, default=str)
        out.write("\n")
        return
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[r[c] for c in columns] for r in shown])
        return
    text = [[str(r[c]) for c in columns] for r in shown]
    widths = [max([len(c)] + [len(t[i]) for t in text]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(), file=out)
    for t in text:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths, strict=True)).rstrip(), file=out)


def run(settings: Settings, args: argparse.Namespace) -> int:
    """Run one of this module's commands."""
    from ecosense.cli import _audit, _open, _time_arg
    from store import db

    if args.command == "stations":
        return _stations(settings, args)
    with _open(settings) as opened, db.connect(opened.url) as conn:
        if args.command == "gis":
            from store import gis as gis_store

            rows: list[dict[str, Any]]
            if args.gis_command == "layers":
                rows = [
                    {"layer": name, "features": len(gis_store.load_layer(conn, name))}
                    for name in gis_store.layers(conn)
                ]
                columns: list[str] = ["layer", "features"]
                what, command = "gis-layers", "gis layers"
            elif args.gis_command == "rasters":
                items = gis_store.load_rasters(conn)
                columns = ["id", "time", "crs", "width", "height", "res_x", "res_y", "path"]
                rows = [
                    {c: getattr(i, c) for c in columns} | {"crs": crs_name(i.crs)} for i in items
                ]
                what, command = "gis-rasters", "gis rasters"
            else:
                if args.layer not in gis_store.layers(conn):
                    raise EcosenseError(f"no layer {args.layer!r} (see `ecosense gis layers`)")
                frame = gis_store.read_zonal(
                    conn, layer=args.layer, stat=args.stat, feature=args.feature
                )
                columns = ["raster", "feature", "stat", "time", "value"]
                rows = [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
                what, command = f"zonal:{args.layer}", "gis results"
        else:
            from store import derived

            start = _time_arg(args.start, settings, "--start") or datetime(
                1900, 1, 1, tzinfo=settings.tz
            )
            end = _time_arg(args.end, settings, "--end") or datetime(2200, 1, 1, tzinfo=settings.tz)
            frame = derived.read_emissions(
                conn, source=args.source, start=start, end=end, subject=args.facility
            )
            if args.facility and frame.empty:
                from store import activity

                known = {f.id for f in activity.load_facilities(conn)}
                known |= {s.id for s in opened.store.list_stations()}  # CEMS: stack stations
                if args.facility not in known:
                    raise EcosenseError(
                        f"unknown facility {args.facility!r}: neither a facility nor a stack"
                        " station (see `ecosense carbon emissions` for those with emissions)"
                    )
            columns = ["subject", "gas", "period", "start", "tonnes", "substitution"]
            rows = [{str(k): v for k, v in r.items()} for r in frame.to_dict("records")]
            what, command = f"emissions:{args.source}", "carbon emissions"
        _audit(opened.store, "read", what, details={"command": command, "items": len(rows)})
    emit(rows, columns, args.format, settings)
    return 0


def _stations(settings: Settings, args: argparse.Namespace) -> int:
    from ecosense.cli import _audit, _open

    columns = ["id", "name", "kind", "lon", "lat", "simulated"]
    with _open(settings) as opened:
        store = opened.store
        stations = store.list_stations()
        if args.stations_command == "list":
            if args.kind:
                stations = [s for s in stations if s.kind == args.kind]
            rows = [{c: getattr(s, c) for c in columns} for s in stations]
            _audit(
                store, "read", "stations", details={"command": "stations list", "items": len(rows)}
            )
            emit(rows, columns, args.format, settings)
            return 0
        found = [s for s in stations if s.id == args.station_id]
        if not found:
            raise EcosenseError(f"unknown station {args.station_id!r}")
        station = found[0]
        devices = [d for d in store.list_devices() if d.station == station.id]
        _audit(
            store,
            "read",
            f"station:{station.id}",
            details={"command": "stations show", "items": 1},
        )
    row: dict[str, Any] = {c: getattr(station, c) for c in columns}
    row["attributes"] = dict(station.attributes)
    row["devices"] = ", ".join(f"{d.id} ({d.state})" for d in devices)
    if args.format == "table":
        for key, value in row.items():
            print(f"{key + ':':<12} {_cell(value, settings)}")
        return 0
    emit([row], [*columns, "attributes", "devices"], args.format, settings)
    return 0
