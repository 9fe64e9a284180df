"""Ingest with the audit (one entry per request) against the same ingest without it.

Both run in one process against the same server: ``ingest.accept.ingest_items`` — what
``POST /api/v1/observations``, ``/api/v2/write`` and MQTT call per request — with a device
principal, ``threads`` concurrent writers (so the audit's advisory lock is contended), for
several request sizes. "without": :meth:`ServiceContext.audit` made a no-op; "appended": each
request appends its entry itself (:func:`store.audit.record`, a transaction of its own);
"writer": the entries go to the background :class:`store.audit.AuditWriter`, as in
``ecosense up`` (counted until they are written). Reported: readings/s of each and the ratios
to "without" (1.0 = the audit costs nothing); and the rate of :func:`store.audit.append`
alone (entries/s) under the same concurrency.

Run: ``python -m benchmarks.bench_audit [--readings 60000] [--threads 8]`` (embedded PostgreSQL
in a temporary directory unless ``ECOSENSE_DATABASE_URL`` is set).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from ingest.accept import ingest_items
from sensors.observations import Source
from sensors.stations import Station
from store import audit
from store.context import Principal, ServiceContext
from store.embedded import EmbeddedPostgres
from store.postgres import Device, PostgresStore, hash_secret


class _Unaudited(ServiceContext):
    def audit(self, *args: Any, **kwargs: Any) -> bool:
        return True


def _items(n: int, station: str, start: datetime) -> list[dict[str, Any]]:
    return [
        {
            "station": station,
            "parameter": "pm25",
            "time": (start + timedelta(seconds=i)).isoformat(),
            "value": 10 + i % 50,
        }
        for i in range(n)
    ]


def _parallel(threads: int, work: Callable[[int], None]) -> float:
    """Seconds for ``threads`` threads each running ``work(thread_index)``."""
    running = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    t0 = time.perf_counter()
    for t in running:
        t.start()
    for t in running:
        t.join()
    return time.perf_counter() - t0


def run(url: str, readings: int, threads: int, sizes: list[int]) -> dict[str, Any]:
    store = PostgresStore(url, max_size=threads + 2)
    store.migrate()
    stations = [Station(f"B{t}", f"Bench {t}", "air", 116.0, 40.0) for t in range(threads)]
    store.upsert_stations(stations)
    for t in range(threads):
        store.add_device(f"bench-{t}", f"B{t}")
    principals = [Principal(Device(f"bench-{t}", f"B{t}")) for t in range(threads)]
    sources = [Source("http", f"bench-{t}") for t in range(threads)]
    tz = ZoneInfo("Asia/Shanghai")
    with_audit = ServiceContext(store, hash_secret("x"), tz)
    writer = audit.AuditWriter(store).start()
    with_writer = ServiceContext(store, hash_secret("x"), tz, auditor=writer)
    without = _Unaudited(store, hash_secret("x"), tz)
    out: dict[str, Any] = {"threads": threads, "readings": readings, "sizes": {}}
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
    for n, size in enumerate(sizes):
        requests = max(1, readings // size // threads)
        figures: dict[str, float] = {}
        variants = (("without", without), ("appended", with_audit), ("writer", with_writer))
        for k, (name, ctx) in enumerate(variants):
            start = base + timedelta(days=3 * n + k)
            batches = [
                [
                    _items(size, f"B{t}", start + timedelta(seconds=r * size))
                    for r in range(requests)
                ]
                for t in range(threads)
            ]

            t0 = time.perf_counter()

            def work(t: int, ctx: ServiceContext = ctx, batches: Any = batches) -> None:
                for items in batches[t]:
                    ingest_items(ctx, principals[t], items, sources[t])

            seconds = _parallel(threads, work)
            if ctx is with_writer:
                writer.flush()  # counted until the entries are written
                seconds = time.perf_counter() - t0
            figures[name] = round(requests * size * threads / seconds)
        figures["requests_per_thread"] = requests
        figures["ratio_appended"] = round(figures["appended"] / figures["without"], 3)
        figures["ratio_writer"] = round(figures["writer"] / figures["without"], 3)
        out["sizes"][str(size)] = figures

    per_thread = 200

    writer.stop()

    def appends(t: int) -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            for i in range(per_thread):
                audit.append(
                    conn, f"device:bench-{t}", "write", f"station:B{t}", "ok", None, {"i": i}
                )

    seconds = _parallel(threads, appends)
    out["audit_appends_per_s"] = round(per_thread * threads / seconds)
    with psycopg.connect(url, autocommit=True) as conn:
        check = audit.check(conn)
    out["chain_entries"] = check.entries
    out["chain_intact"] = check.broken is None
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=60_000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--sizes", default="1,10,100,1000", help="readings per request")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    url = os.environ.get("ECOSENSE_DATABASE_URL")
    if url:
        name = "bench_" + uuid.uuid4().hex[:8]
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            result = run(make_conninfo(url, dbname=name), args.readings, args.threads, sizes)
        finally:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            server = EmbeddedPostgres(Path(tmp))
            try:
                result = run(server.start(), args.readings, args.threads, sizes)
            finally:
                server.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
