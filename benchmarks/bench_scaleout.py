"""Capacity for the sizing guide (issue 15, item 5): gateways, jobs and the database's size.

One run, on a fresh database of a PostgreSQL server with TimescaleDB (``--database-url``, an
administrator's URL; by default ``ECOSENSE_TEST_TIMESCALE_URL``, which ``scripts/services.sh``
starts), dropped afterwards:

- **Gateways**: ``--clients`` devices post batches of ``--batch`` readings (HTTP JSON, then line
  protocol), then ``--devices`` HJ 212 connections upload 2011 packets of 10 pollutants, to one
  ``ecosense up --roles gateway`` process, then spread over two; readings per
  second counted until every reading is readable, as a ratio to raw binary COPY of as many
  rows into a table of the same shape in the same database, in the same run; and the gateways'
  CPU time per reading (so readings per second per gateway core).
- **Jobs**: one simulated day of ``--stations`` air stations (six AQI pollutants every
  ``--step`` minutes) through ``hourly`` then ``daily`` (QC, hourly and daily means, O₃ 8-hour
  means, AQI, per station and city), on a local Dask cluster of 1, then 2 worker processes; the
  derived rows are deleted between the two, so both runs do the same work.
- **Database size**: bytes per stored reading in ``observations`` (its indexes included), as
  loaded and after TimescaleDB's native compression of its chunks (segmented by stream, ordered
  by time), and what that makes a station-year.

Run: ``python -m benchmarks.bench_scaleout [--rows 200000] [--stations 1000]``. The machine is
shared by the load generator, the gateways, the Dask workers and PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from benchmarks.bench_ingest import (
    BENCH_ENV,
    _baseline_copy,
    _count,
    _cpu_seconds,
    _hj212_login,
    _hj212_throughput,
    post_readings,
)
from pipelines.jobs import JobContext, run_daily, run_hourly
from pipelines.runner import Runner
from sensors.observations import Observation, Source
from sensors.stations import Station
from store import open_store

REPO = Path(__file__).resolve().parents[1]
#: the parameters of a simulated air station: the six of the AQI
POLLUTANTS = ("pm25", "pm10", "so2", "no2", "co", "o3")
#: typical levels (canonical units: µg/m³, CO mg/m³) around which the day varies
LEVELS = {"pm25": 45.0, "pm10": 80.0, "so2": 9.0, "no2": 35.0, "co": 0.8, "o3": 70.0}
MINUTES_PER_YEAR = 525_600


@contextmanager
def fresh_database(admin: str) -> Iterator[str]:
    name = "bench_scaleout_" + uuid.uuid4().hex[:8]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield make_conninfo(admin, dbname=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def start_gateway(url: str, data_dir: Path) -> tuple[subprocess.Popen[str], str, tuple[str, int]]:
    """``ecosense up --roles gateway`` on free ports until ``ready``: (process, HTTP URL, HJ 212
    address)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ECOSENSE_")}
    env.update(BENCH_ENV, PYTHONPATH=str(REPO), ECOSENSE_DATABASE_URL=url)
    env.update(ECOSENSE_DATA_DIR=str(data_dir), ECOSENSE_JOBS_INTERVAL_SECONDS="0")
    cmd = [sys.executable, "-m", "ecosense", "up", "--roles", "gateway", "--http-port", "0"]
    cmd += ["--hj212-port", "0"]
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("ready "):
            m = re.search(r"http=(\S+) hj212=(\S+):(\d+)", line)
            assert m is not None
            return proc, m.group(1), (m.group(2), int(m.group(3)))
    raise RuntimeError("the gateway did not start")


async def _hj212_spread(
    addresses: list[tuple[str, int]], mns: list[str], rows: int, t0: datetime
) -> tuple[int, float]:
    """HJ 212 uploads from ``mns``, spread over the gateways at ``addresses`` (device ``k`` to
    gateway ``k mod n``, where it logged in: :func:`_hj212_logins`), all at once: ``(readings
    sent, perf_counter at the first send)``."""
    n = len(addresses)
    shares = [mns[k::n] for k in range(n)]
    done = await asyncio.gather(
        *(
            _hj212_throughput(host, port, share, rows * len(share) // len(mns), t0)
            for (host, port), share in zip(addresses, shares, strict=True)
        )
    )
    return sum(sent for sent, _ in done), min(start for _, start in done)


def _hj212_logins(addresses: list[tuple[str, int]], mns: list[str]) -> None:
    """Each device logs in at its gateway (``k mod n``) before the clock and the CPU count
    start: the Argon2id check of each password is the cost of connecting, not of uploading."""
    n = len(addresses)
    for k, (host, port) in enumerate(addresses):
        asyncio.run(_hj212_login(host, port, mns[k::n]))


def gateways(url: str, rows: int, batch: int, clients: int, devices: int = 200) -> dict[str, Any]:
    """Throughput of 1 and 2 gateway processes, ratio to COPY in the same run."""
    out: dict[str, Any] = {}
    with open_store(database_url=url, data_dir=Path(tempfile.mkdtemp())) as opened:
        store = opened.store
        store.upsert_stations(
            [Station(f"G{i}", f"g{i}", "air", 116.0, 40.0) for i in range(clients)]
        )
        tokens = [store.add_device(f"g{i}", f"G{i}") for i in range(clients)]
        mns = [f"MN{i:06d}" for i in range(devices)]
        store.upsert_stations(
            [Station(f"H{i}", f"h{i}", "air", 116.0, 40.0) for i in range(devices)]
        )
        for i, mn in enumerate(mns):
            store.add_device(f"hj{i}", f"H{i}", mn=mn, password="pw")
    copy_rate, _ = _baseline_copy(url, rows, batch)
    out["copy_rows_per_s"] = round(copy_rate)
    year = 2001
    for n in (1, 2):
        with tempfile.TemporaryDirectory(prefix="ecosense-gw-") as tmp:
            procs = [start_gateway(url, Path(tmp) / f"g{k}") for k in range(n)]
            try:
                targets = [(procs[i % n][1], f"G{i}", tokens[i]) for i in range(clients)]
                watched = [psutil.Process(p.pid) for p, _, _ in procs]
                for name in ("http_json", "line_protocol", "hj212"):
                    if name == "hj212":
                        _hj212_logins([a for _, _, a in procs], mns)
                    before, cpu = _count(url), sum(_cpu_seconds(p) for p in watched)
                    t0 = datetime(year, 1, 1, tzinfo=UTC)
                    load = (
                        _hj212_spread([a for _, _, a in procs], mns, rows, t0)
                        if name == "hj212"
                        else post_readings(
                            targets, rows, batch, t0, name == "line_protocol", POLLUTANTS
                        )
                    )
                    sent, start = asyncio.run(load)
                    year += 1
                    while _count(url) < before + sent:  # until readable
                        time.sleep(0.02)
                    rate = sent / (time.perf_counter() - start)
                    used = sum(_cpu_seconds(p) for p in watched) - cpu
                    key = f"{name}_{n}_gateway{'s' if n > 1 else ''}"
                    out[key] = {
                        "readings_per_s": round(rate),
                        "ratio_to_copy": round(rate / copy_rate, 3),
                        "gateway_cpu_us_per_reading": round(used / sent * 1e6, 1),
                        "readings_per_s_per_gateway_core": round(sent / used),
                    }
            finally:
                for p, _, _ in procs:
                    p.terminate()
                for p, _, _ in procs:
                    p.wait(60)
                    assert p.stdout is not None
                    p.stdout.close()
    return out


def load_day(url: str, stations: int, step: int, day: datetime) -> int:
    """One day of ``stations`` air stations (in 20 cities): six pollutants, a real-time reading
    every ``step`` minutes."""
    with open_store(database_url=url, data_dir=Path(tempfile.mkdtemp())) as opened:
        store = opened.store
        store.upsert_stations(
            [
                Station(
                    f"S{i:05d}", f"s{i}", "air", 100 + i % 30, 25 + i % 20, {"city": f"C{i % 20}"}
                )
                for i in range(stations)
            ]
        )
        n = 0
        per = 24 * 60 // step
        for first in range(0, stations, 50):
            batch = [
                Observation(
                    f"S{i:05d}",
                    p,
                    day + timedelta(minutes=step * m),
                    round(LEVELS[p] * (1 + 0.4 * ((m * 7 + i * 3 + j) % 24 - 12) / 12), 3),
                )
                for i in range(first, min(first + 50, stations))
                for j, p in enumerate(POLLUTANTS)
                for m in range(per)
            ]
            n += store.write_observations(
                batch, source=Source("file", user="bench", file="day.csv")
            )
    return n


def jobs(url: str, day: datetime) -> dict[str, Any]:
    """``hourly`` and ``daily`` over the day on 1, then 2 local Dask worker processes."""
    out: dict[str, Any] = {}
    for workers in (1, 2):
        with psycopg.connect(url, autocommit=True) as conn:
            for table in ("qc_flags", "aggregates", "assessments"):
                conn.execute(sql.SQL("DELETE FROM {}").format(sql.Identifier(table)))
        with Runner(None, local="processes", workers=workers) as runner:
            ctx = JobContext(url, runner, "Asia/Shanghai")
            start = time.perf_counter()
            hourly = run_hourly(ctx, day, day + timedelta(days=1))
            middle = time.perf_counter()
            daily = run_daily(ctx, day, day + timedelta(days=1))
            end = time.perf_counter()
        assert not hourly.errors and not daily.errors, (hourly.errors, daily.errors)
        out[f"{workers}_worker{'s' if workers > 1 else ''}"] = {
            "hourly_s": round(middle - start, 1),
            "daily_s": round(end - middle, 1),
            "total_s": round(end - start, 1),
            "rows_written": hourly.rows + daily.rows,
        }
    out["speedup_2_vs_1"] = round(out["1_worker"]["total_s"] / out["2_workers"]["total_s"], 2)
    return out


def sizes(url: str) -> dict[str, Any]:
    """Bytes per reading in ``observations`` as loaded and compressed (TimescaleDB)."""
    with psycopg.connect(url, autocommit=True) as conn:
        count = _count(url)
        hyper = conn.execute(
            "SELECT count(*) FROM timescaledb_information.hypertables"
            " WHERE hypertable_name = 'observations'"
        ).fetchone()
        assert hyper is not None and hyper[0] == 1, "observations is not a hypertable"
        before = conn.execute("SELECT hypertable_size('observations')").fetchone()
        assert before is not None
        try:
            conn.execute(
                "ALTER TABLE observations SET (timescaledb.compress,"
                " timescaledb.compress_segmentby = 'stream_id',"
                " timescaledb.compress_orderby = 'time')"
            )
            conn.execute("SELECT compress_chunk(c) FROM show_chunks('observations') c")
        except psycopg.errors.FeatureNotSupported as exc:  # the Apache-2 build: no compression
            after = None
            unavailable = str(exc).splitlines()[0]
        else:
            after = conn.execute("SELECT hypertable_size('observations')").fetchone()
            assert after is not None
    plain = before[0] / count
    year = 10 * MINUTES_PER_YEAR  # a station-year: ten parameters a minute
    out: dict[str, Any] = {
        "readings": count,
        "bytes_per_reading": round(plain, 1),
        "station_year_10_params_per_minute_gb": round(plain * year / 1e9, 2),
        "station_year_10_params_per_hour_mb": round(plain * year / 60 / 1e6, 1),
    }
    if after is None:
        out["compression"] = f"not available on this server: {unavailable}"
    else:
        packed = after[0] / count
        out["bytes_per_reading_compressed"] = round(packed, 1)
        out["compression_ratio"] = round(plain / packed, 1)
        out["station_year_10_params_per_minute_compressed_gb"] = round(packed * year / 1e9, 3)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=os.environ.get("ECOSENSE_TEST_TIMESCALE_URL"))
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--devices", type=int, default=200, help="HJ 212 connections")
    parser.add_argument("--stations", type=int, default=1_000)
    parser.add_argument("--step", type=int, default=5, help="minutes between readings")
    args = parser.parse_args(argv)
    logging.getLogger("distributed").setLevel(logging.WARNING)  # Dask's chatter
    if not args.database_url:
        parser.error("give --database-url (a PostgreSQL with TimescaleDB; scripts/services.sh)")
    result: dict[str, Any] = {"rows": args.rows, "clients": args.clients}
    with fresh_database(args.database_url) as url:
        result["gateways"] = gateways(url, args.rows, args.batch, args.clients, args.devices)
    with fresh_database(args.database_url) as url:
        day = datetime(2026, 6, 1, tzinfo=UTC) - timedelta(hours=8)  # a day of China Standard Time
        started = time.perf_counter()
        loaded = load_day(url, args.stations, args.step, day)
        result["day"] = {
            "stations": args.stations,
            "readings": loaded,
            "load_s": round(time.perf_counter() - started, 1),
        }
        result["jobs"] = jobs(url, day)
        result["database"] = sizes(url)
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
