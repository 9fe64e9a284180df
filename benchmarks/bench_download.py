"""Bulk downloads (issue 16): a few million readings as CSV and Parquet through
``GET /api/v1/datasets/readings-air/download``, in rows per second and the server's peak
memory, against ``COPY (the same SELECT) TO STDOUT`` of the same rows in the same run.

``python -m benchmarks.bench_download [--rows 5000000] [--stations 100]``

The gateway runs in a process of its own (uvicorn over the application, as ``ecosense up``
serves it), so its peak resident memory (``VmHWM``) is its own; it is read after a small
warm-up download of each format and again after the large ones: a download in constant
memory leaves it about where the warm-up put it, whatever the number of rows. The readings
are written straight into the store (``generate_series``) after one reading per stream has
made the streams through the store's own write path.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

#: the parameters of each station (ten air parameters, as an air station reports)
PARAMETERS = ("so2", "no2", "co", "o3", "pm10", "pm25", "air_temp", "rh", "wind_speed", "wind_dir")
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TZ = "Asia/Shanghai"


def load(url: str, rows: int, stations: int = 100) -> int:
    """Fill a migrated store with about ``rows`` readings of ``stations`` public air stations
    (one a minute per parameter); returns how many there are."""
    from sensors.observations import Observation, Source
    from sensors.stations import Station
    from store.postgres import PostgresStore

    store = PostgresStore(url)
    try:
        store.migrate()
        ids = [f"B{i:04d}" for i in range(stations)]
        store.upsert_stations(
            [
                Station(s, f"Bench {s}", "air", 116 + i / 100, 39 + i / 100)
                for i, s in enumerate(ids)
            ]
        )
        first = [Observation(s, p, T0, 1.0) for s in ids for p in PARAMETERS]
        store.write_observations(first, source=Source("http"))
        per_stream = max(1, rows // (stations * len(PARAMETERS)))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO observations (stream_id, time, value, flag)"
                " SELECT s.id, %s + make_interval(mins => g), (g %% 500)::float8 / 7, 'N'"
                " FROM streams s CROSS JOIN generate_series(1, %s) g"
                " ON CONFLICT DO NOTHING",
                (T0, per_stream - 1),
            )
            conn.execute("VACUUM (ANALYZE) observations")  # hint bits set: reads only read
            (n,) = conn.execute("SELECT count(*) FROM observations").fetchone() or (0,)
        return int(n)
    finally:
        store.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(url: str, port: int) -> None:
    """The gateway application on ``127.0.0.1:port`` (blocking; the server process)."""
    import uvicorn

    from ecosense.app import create_app
    from store.context import ServiceContext
    from store.postgres import PostgresStore, hash_secret

    ctx = ServiceContext(PostgresStore(url), hash_secret(uuid.uuid4().hex), ZoneInfo(TZ))
    uvicorn.run(create_app(ctx), host="127.0.0.1", port=port, log_level="warning")


class Server:
    """:func:`serve` in a child process; ``base`` its URL, :meth:`peak` its peak memory."""

    def __init__(self, url: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        code = "import sys; from benchmarks.bench_download import serve; serve(sys.argv[1], int(sys.argv[2]))"  # noqa: E501
        env = os.environ | {"ECOSENSE_PUBLIC_RATE": "100000/minute"}
        self.process = subprocess.Popen(
            [sys.executable, "-c", code, url, str(self.port)],
            env=env,
            cwd=Path(__file__).resolve().parents[1],
        )

    def __enter__(self) -> Server:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            time.sleep(0.2)

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(30)

    def peak(self) -> int:
        """The server's peak resident memory so far (bytes: ``VmHWM``)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM")


def download(base: str, fmt: str, **query: str) -> tuple[float, int, int]:
    """Download readings-air in ``fmt``: seconds, bytes, rows (counted in the file)."""
    params = {"format": fmt, **query}
    started = time.perf_counter()
    size = 0
    with tempfile.TemporaryFile() as sink:
        with httpx.stream(
            "GET", f"{base}/api/v1/datasets/readings-air/download", params=params, timeout=None
        ) as r:
            r.raise_for_status()
            for chunk in r.iter_bytes(1 << 20):
                sink.write(chunk)
                size += len(chunk)
        seconds = time.perf_counter() - started
        sink.seek(0)
        if fmt == "csv":
            rows = sum(chunk.count(b"\n") for chunk in iter(lambda: sink.read(1 << 20), b"")) - 1
        elif fmt == "netcdf":
            rows = -1  # not counted here (tests/integration/test_downloads.py checks NetCDF)
        else:
            import pyarrow.parquet as pq

            rows = pq.ParquetFile(sink).metadata.num_rows
    return seconds, size, rows


def copy_baseline(url: str) -> tuple[float, int, int]:
    """``COPY (the download's SELECT) TO STDOUT`` as CSV, read and dropped: seconds, bytes,
    rows."""
    from store import export, users

    with psycopg.connect(url) as conn:
        stations = [r.station for r in users.station_grades(conn)]
        query = export.readings("air", stations)
        started = time.perf_counter()
        size = 0
        rows = 0
        for chunk in export.copy_csv(conn, query, TZ):
            size += len(chunk)
            rows += chunk.count(b"\n")
        return time.perf_counter() - started, size, rows - 1


def run(url: str, rows: int, stations: int = 100) -> dict[str, Any]:
    """Load, serve, measure (see the module)."""
    held = load(url, rows, stations)
    out: dict[str, Any] = {"rows": held}
    copy_baseline(url)  # warm-up: the rows in the server's cache as far as they fit
    copy_s, copy_size, copy_rows = copy_baseline(url)
    warm_end = T0 + timedelta(minutes=max(2, held // (stations * len(PARAMETERS)) // 20))
    with Server(url) as server:
        for fmt in ("csv", "parquet"):  # warm up: imports, pools, a small file of each
            download(server.base, fmt, end=warm_end.isoformat())
        out["server_peak_mb_after_warm_up"] = round(server.peak() / 2**20, 1)
        for fmt in ("csv", "parquet"):
            seconds, size, counted = download(server.base, fmt)
            out[f"{fmt}_rows"] = counted
            out[f"{fmt}_rows_per_s"] = round(counted / seconds)
            out[f"{fmt}_mb"] = round(size / 2**20, 1)
            out[f"server_peak_mb_after_{fmt}"] = round(server.peak() / 2**20, 1)
        again, _, _ = copy_baseline(url)  # before and after the downloads: the faster one
    out |= {
        "copy_rows_per_s": round(copy_rows / min(copy_s, again)),
        "copy_mb": round(copy_size / 2**20, 1),
    }
    for fmt in ("csv", "parquet"):
        out[f"ratio_{fmt}_to_copy"] = round(out[f"{fmt}_rows_per_s"] / out["copy_rows_per_s"], 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--stations", type=int, default=100)
    args = parser.parse_args()
    url = os.environ.get("ECOSENSE_DATABASE_URL")
    if url:
        name = "bench_" + uuid.uuid4().hex[:8]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            result = run(make_conninfo(url, dbname=name), args.rows, args.stations)
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    else:
        from store.embedded import EmbeddedPostgres

        with tempfile.TemporaryDirectory() as tmp:
            server = EmbeddedPostgres(Path(tmp))
            try:
                result = run(server.start(), args.rows, args.stations)
            finally:
                server.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
