"""The store's batch write path against raw binary COPY into a table of the same shape.

Both run in one process against the same server, on the same rows, in the same batch size:
- baseline: ``COPY raw_copy (stream_id, time, value, flag, source_id) FROM STDIN (FORMAT
  BINARY)`` with psycopg, one transaction per batch, into ``CREATE TABLE raw_copy (LIKE
  observations INCLUDING ALL)`` (same columns, defaults and primary key; a hypertable too when
  TimescaleDB is used);
- EcoSense: ``PostgresStore.write_observations(batch, source=...)`` with canonical
  observations and their provenance (stream and source resolution, in-batch de-duplication,
  COPY with merge fallback, commit);
- re-send: the same batches written again, so every row conflicts and goes through the
  staging-table merge, which finds nothing changed (no version);
- correct: the batches again with other values, so every row is merged, replaced, and its
  previous value kept in ``observation_versions`` (the trigger path).

Reported: rows/s of each and the ratio to COPY (1.0 = as fast as raw COPY).

Run: ``python -m benchmarks.bench_store_write [--rows 500000] [--batch 5000]`` (embedded
PostgreSQL in a temporary directory unless ``ECOSENSE_DATABASE_URL`` is set).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from sensors.observations import Observation, Source
from sensors.stations import Station
from store.embedded import EmbeddedPostgres
from store.postgres import PostgresStore, StreamKey

PARAMS = ("pm25", "pm10", "so2", "no2", "co", "o3")
SOURCE = Source("http", "bench-device")


def make_rows(rows: int, stations: int) -> list[Observation]:
    """``rows`` observations spread over ``stations`` × 6 parameters, one per minute each."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    n_streams = stations * len(PARAMS)
    out = []
    for i in range(rows):
        s = i % n_streams
        out.append(
            Observation(
                f"B{s // len(PARAMS):04d}",
                PARAMS[s % len(PARAMS)],
                t0 + timedelta(minutes=i // n_streams),
                float(i % 977) / 7,
                "N",
            )
        )
    return out


def _raw_copy(
    conn: psycopg.Connection[Any], rows: list[tuple[int, datetime, float, str, int]]
) -> None:
    with (
        conn.transaction(),
        conn.cursor() as cur,
        cur.copy(
            "COPY raw_copy (stream_id, time, value, flag, source_id) FROM STDIN (FORMAT BINARY)"
        ) as cp,
    ):
        cp.set_types(["int4", "timestamptz", "float8", "text", "int4"])
        for r in rows:
            cp.write_row(r)


def run(
    url: str, rows: int = 200_000, batch: int = 5_000, stations: int = 50, rounds: int = 3
) -> dict[str, Any]:
    """Measure both paths on the database at ``url``; return the figures."""
    store = PostgresStore(url)
    try:
        store.migrate()
        store.upsert_stations(
            [Station(f"B{i:04d}", f"bench {i}", "air", 116.0, 40.0) for i in range(stations)]
        )
        data = make_rows(rows, stations)
        ids = store.stream_ids(StreamKey.of(o) for o in data)
        source_id = store.source_ids([SOURCE])[SOURCE]
        assert source_id is not None
        raw = [(ids[StreamKey.of(o)], o.time, o.value, o.flag, source_id) for o in data]
        batches = [data[i : i + batch] for i in range(0, rows, batch)]
        corrections = [[o._replace(value=o.value + 1.0) for o in b] for b in batches]
        raw_batches = [raw[i : i + batch] for i in range(0, rows, batch)]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP TABLE IF EXISTS raw_copy")
            conn.execute("CREATE TABLE raw_copy (LIKE observations INCLUDING ALL)")
            if store.timescale:
                conn.execute(
                    "SELECT create_hypertable('raw_copy', 'time', "
                    "chunk_time_interval => INTERVAL '7 days')"
                )
            timings: dict[str, list[float]] = {
                "copy": [],
                "ecosense": [],
                "resend": [],
                "correct": [],
            }
            for _ in range(rounds):
                conn.execute("TRUNCATE raw_copy")
                conn.execute("TRUNCATE observations")
                conn.execute("TRUNCATE observation_versions")
                conn.execute("CHECKPOINT")
                t = time.perf_counter()
                for b in raw_batches:
                    _raw_copy(conn, b)
                timings["copy"].append(time.perf_counter() - t)
                conn.execute("CHECKPOINT")
                t = time.perf_counter()
                for ob in batches:
                    store.write_observations(ob, source=SOURCE)
                timings["ecosense"].append(time.perf_counter() - t)
                t = time.perf_counter()
                for ob in batches:
                    store.write_observations(ob, source=SOURCE)
                timings["resend"].append(time.perf_counter() - t)
                t = time.perf_counter()
                for ob in corrections:
                    store.write_observations(ob, source=SOURCE)
                timings["correct"].append(time.perf_counter() - t)
            stored = conn.execute("SELECT count(*) FROM observations").fetchone()
            versions = conn.execute("SELECT count(*) FROM observation_versions").fetchone()
        assert stored is not None and stored[0] == rows, "every row stored exactly once"
        assert versions is not None and versions[0] == rows, "each correction kept a version"
        med = {k: statistics.median(v) for k, v in timings.items()}
        return {
            "rows": rows,
            "batch": batch,
            "streams": stations * len(PARAMS),
            "rounds": rounds,
            "server": store.server_info(),
            "copy_rows_per_s": rows / med["copy"],
            "ecosense_rows_per_s": rows / med["ecosense"],
            "resend_rows_per_s": rows / med["resend"],
            "correct_rows_per_s": rows / med["correct"],
            "ratio_ecosense_to_copy": med["copy"] / med["ecosense"],
            "ratio_resend_to_copy": med["copy"] / med["resend"],
            "ratio_correct_to_copy": med["copy"] / med["correct"],
        }
    finally:
        store.close()


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--stations", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    url = os.environ.get("ECOSENSE_DATABASE_URL")
    with tempfile.TemporaryDirectory(prefix="ecosense-bench-") as tmp:
        embedded = None
        if url is None:
            embedded = EmbeddedPostgres(Path(tmp))
            embedded.start()
            assert embedded.admin_url is not None
            url = embedded.admin_url
        name = "bench_" + uuid.uuid4().hex[:8]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            result = run(
                make_conninfo(url, dbname=name), args.rows, args.batch, args.stations, args.rounds
            )
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            if embedded is not None:
                embedded.stop()
    print(json.dumps(result, indent=2))
    print(
        f"store write path: {result['ratio_ecosense_to_copy']:.2f} x raw binary COPY "
        f"({result['ecosense_rows_per_s']:,.0f} vs {result['copy_rows_per_s']:,.0f} rows/s); "
        f"re-send (nothing changed): {result['ratio_resend_to_copy']:.2f} x; "
        f"correction (versions kept): {result['ratio_correct_to_copy']:.2f} x"
    )
    return result


if __name__ == "__main__":
    main()
