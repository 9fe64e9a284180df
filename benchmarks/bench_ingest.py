"""Ingest throughput through the gateway, and HJ 212 reply latency, against raw binary COPY.

One run starts ``ecosense up --no-dashboard`` (embedded PostgreSQL in a temporary data dir),
then measures, each as readings per second counted until every reading is readable in the
database:

- **COPY** (baseline): psycopg binary COPY of the same number of rows into a table of the same
  shape as ``observations`` in the same database, one transaction per ``--batch`` rows (the
  baseline of JSON and HJ 212) and per line-protocol request's readings (``--lines`` × 6: the
  baseline of line protocol), each the best of three runs;
- **HTTP JSON**: ``POST /api/v1/observations``, ``--clients`` concurrent devices sending
  batches of ``--batch`` readings;
- **line protocol**: ``POST /api/v2/write``, same clients, six fields a line and ``--lines``
  (5,000) lines a request;
- **HJ 212**: ``--devices`` concurrent TCP connections sending 2011 uploads of 10 pollutants,
  each waiting for its 9014 before the next (packets built, and each device logged in,
  before the clock starts: the password checks, once per device, are not counted);

For each path, the gateway's CPU time per reading (µs, user + system) is reported too.
And the **HJ 212 latency**: ``--devices`` (default 1,000) connections each sending one upload
a second (evenly spread), the time from sending a packet to receiving its 9014, p50 and p99 in
steady state; each device's first packet (authentication, new streams) is reported apart.

Run: ``python -m benchmarks.bench_ingest [--rows 100000] [--devices 1000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg

from ecosense.testing import running
from ingest import hj212
from sensors.stations import Station
from store import open_store

#: Each load writes its own past year (2021 …): let the devices write that far back
#: (ECOSENSE_MAX_PAST_DAYS, 30 by default); every simulated logger connects from loopback,
#: so the per-address connection cap (64 by default) is lifted.
BENCH_ENV = {"ECOSENSE_MAX_PAST_DAYS": "36000", "ECOSENSE_MAX_CONNECTIONS_PER_ADDRESS": "1000000"}

CODES = (
    "a34004",
    "a34002",
    "a21026",
    "a21004",
    "a21005",
    "a05024",
    "a01001",
    "a01002",
    "a01007",
    "a01006",
)
PARAMS = ("pm25", "pm10", "so2", "no2", "co", "o3", "air_temp", "rh", "wind_speed", "air_pressure")


def _cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU seconds of ``process`` so far."""
    times = process.cpu_times()
    return float(times.user + times.system)


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM observations").fetchone()
    return int(row[0]) if row else 0


def _wait_readable(url: str, target: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while _count(url) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {_count(url)} of {target} readings readable")
        time.sleep(0.05)


def _baseline_copy(url: str, rows: int, batch: int) -> tuple[float, float]:
    """``(rows/s, client CPU µs per row)`` of binary COPY into a table shaped as observations."""
    t0 = datetime(2020, 1, 1, tzinfo=UTC)
    data = [(i % 300, t0 + timedelta(seconds=i // 300), float(i), "N") for i in range(rows)]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS raw_copy")
        conn.execute("CREATE TABLE raw_copy (LIKE observations INCLUDING ALL)")
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(0, rows, batch):
            with (
                conn.transaction(),
                conn.cursor() as cur,
                cur.copy(
                    "COPY raw_copy (stream_id, time, value, flag) FROM STDIN (FORMAT BINARY)"
                ) as cp,
            ):
                cp.set_types(["int4", "timestamptz", "float8", "text"])
                for r in data[i : i + batch]:
                    cp.write_row(r)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        conn.execute("DROP TABLE raw_copy")
    return rows / elapsed, cpu / rows * 1e6


def _bodies(
    station: str,
    per_client: int,
    batch: int,
    t0: datetime,
    lineprotocol: bool,
    parameters: Sequence[str],
    per_line: int,
    step: int,
) -> list[bytes]:
    """The request bodies of one client (built before the clock starts, as the COPY
    baseline's rows and the HJ 212 packets are: the load generator shares the two cores)."""
    if lineprotocol:
        n_lines = per_client // per_line
        return [
            "\n".join(
                f"{station} "
                + ",".join(
                    f"{parameters[f]}={(k * per_line + f) % 97 + 0.5}" for f in range(per_line)
                )
                + f" {int((t0 + timedelta(seconds=k)).timestamp())}"
                for k in range(first, min(first + step, n_lines))
            ).encode()
            for first in range(0, n_lines, step)
        ]
    return [
        json.dumps(
            {
                "observations": [
                    {
                        "station": station,
                        "parameter": parameters[k % len(parameters)],
                        "time": (t0 + timedelta(seconds=k // len(parameters))).isoformat(),
                        "value": k % 97 + 0.5,
                    }
                    for k in range(first, min(first + batch, per_client))
                ]
            }
        ).encode()
        for first in range(0, per_client, batch)
    ]


async def post_readings(
    targets: Sequence[tuple[str, str, str]],
    rows: int,
    batch: int,
    t0: datetime,
    lineprotocol: bool,
    parameters: Sequence[str] = PARAMS,
    lines: int | None = None,
    fields: int = 6,
) -> tuple[int, float]:
    """Each ``(gateway URL, station, token)`` posts its share of ``rows`` readings, all at
    once: ``(readings sent, perf_counter at the start)``.

    JSON: batches of ``batch`` readings cycling through ``parameters``, one time a second per
    cycle from ``t0``. Line protocol: ``fields`` fields a line (the first of ``parameters``),
    one line a second from ``t0``, ``lines`` lines a request (default: ``batch`` readings'
    worth). The bodies are built before the clock starts."""
    per_client = rows // len(targets)
    per_line = min(fields, len(parameters))
    step = lines or max(1, batch // per_line)
    bodies = [
        _bodies(station, per_client, batch, t0, lineprotocol, parameters, per_line, step)
        for _, station, _ in targets
    ]

    async def client(base: str, token: str, requests: list[bytes]) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as c:
            for body in requests:
                if lineprotocol:
                    r = await c.post(
                        "/api/v2/write",
                        params={"precision": "s"},
                        content=body,
                        headers={"Authorization": f"Token {token}"},
                    )
                    assert r.status_code == 204, r.text
                else:
                    r = await c.post(
                        "/api/v1/observations",
                        content=body,
                        headers={
                            "Authorization": f"Bearer {token}",
                            "Content-Type": "application/json",
                        },
                    )
                    assert r.status_code == 200 and r.json()["rejected"] == 0, r.text

    start = time.perf_counter()
    await asyncio.gather(
        *(client(base, token, b) for (base, _, token), b in zip(targets, bodies, strict=True))
    )
    sent = (per_client // per_line) * per_line if lineprotocol else per_client
    return sent * len(targets), start


async def _http(
    base: str,
    tokens: list[str],
    rows: int,
    batch: int,
    t0: datetime,
    lineprotocol: bool,
    lines: int | None = None,
) -> tuple[int, float]:
    """``len(tokens)`` devices (stations ``B0``…) posting to one gateway."""
    targets = [(base, f"B{i}", token) for i, token in enumerate(tokens)]
    return await post_readings(targets, rows, batch, t0, lineprotocol, lines=lines)


def _packet(mn: str, qn: int, t: datetime, flag: int = 5) -> bytes:
    cp = f"DataTime={t.astimezone(hj212.CST):%Y%m%d%H%M%S};" + ";".join(
        f"{c}-Rtd={qn % 97 + 0.5},{c}-Flag=N" for c in CODES
    )
    return hj212.encode(cn="2011", st="22", mn=mn, pw="pw", qn=f"{qn:017d}", flag=flag, cp=cp)


async def _hj212_login(host: str, port: int, mns: list[str]) -> None:
    """Each device logs in once (a 1013 notice, answered with 9013) and disconnects: the
    gateway verifies each password once (Argon2id) and remembers the pair."""

    async def login(mn: str) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(hj212.encode(cn="1013", st="22", mn=mn, pw="pw", qn=f"{0:017d}", flag=5))
        await reader.readuntil(b"\r\n")
        writer.close()

    await asyncio.gather(*(login(mn) for mn in mns))


async def _hj212_throughput(
    host: str, port: int, mns: list[str], rows: int, t0: datetime
) -> tuple[int, float]:
    """Every device sends its uploads back to back, each after the 9014 of the one before;
    ``(readings sent, perf_counter at the first send)``.

    Packets are built beforehand and the client is a bare protocol counting replies by their
    CR LF: the load generator shares the two cores with the server, so it must cost little.
    Each device logs in before the clock starts (a 1013 notice answered with 9013): the
    password check, an Argon2id verification once per connection, is the first packet's cost
    (reported by the latency run), not the group commit's.
    """
    per_device = rows // len(mns) // len(CODES)
    loop = asyncio.get_running_loop()

    class Device(asyncio.Protocol):
        def __init__(self, packets: list[bytes]) -> None:
            self.packets = packets
            self.sent = 0
            self.done: asyncio.Future[None] = loop.create_future()
            self.logged_in: asyncio.Future[None] = loop.create_future()
            self.transport: asyncio.Transport | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            assert isinstance(transport, asyncio.Transport)
            self.transport = transport

        def send_next(self) -> None:
            assert self.transport is not None
            if self.sent == len(self.packets):
                self.transport.close()
                if not self.done.done():
                    self.done.set_result(None)
                return
            self.transport.write(self.packets[self.sent])
            self.sent += 1

        def data_received(self, data: bytes) -> None:
            replies = data.count(b"\r\n")
            if replies and not self.logged_in.done():  # the 9013 of the login notice
                self.logged_in.set_result(None)
                replies -= 1
            for _ in range(replies):  # one 9014 per upload
                self.send_next()

        def connection_lost(self, exc: Exception | None) -> None:
            if not self.done.done():
                self.done.set_exception(ConnectionError(f"server closed the connection: {exc}"))

    devices = []
    for mn in mns:
        packets = [_packet(mn, n, t0 + timedelta(seconds=n)) for n in range(per_device)]
        _, device = await loop.create_connection(functools.partial(Device, packets), host, port)
        assert device.transport is not None
        device.transport.write(
            hj212.encode(cn="1013", st="22", mn=mn, pw="pw", qn=f"{0:017d}", flag=5, cp="")
        )
        devices.append(device)
    await asyncio.gather(*(d.logged_in for d in devices))
    start = time.perf_counter()
    for device in devices:
        device.send_next()
    await asyncio.gather(*(d.done for d in devices))
    return per_device * len(CODES) * len(mns), start


async def _hj212_latency(
    host: str, port: int, mns: list[str], seconds: float, t0: datetime
) -> tuple[list[float], list[float]]:
    latencies: list[float] = []  # steady state: every packet after a device's first
    first: list[float] = []  # first packets: authentication and stream creation

    warm = asyncio.Barrier(len(mns))

    async def device(k: int, mn: str) -> None:
        packets = [_packet(mn, n, t0 + timedelta(seconds=n)) for n in range(int(seconds) + 1)]
        reader, writer = await asyncio.open_connection(host, port)
        dec = hj212.FrameDecoder()

        async def exchange(packet: bytes) -> float:
            sent = time.perf_counter()
            writer.write(packet)
            await writer.drain()
            while not [f for f in dec.feed(await reader.read(4096)) if isinstance(f, bytes)]:
                pass
            return time.perf_counter() - sent

        await asyncio.sleep(k / len(mns))  # spread the devices over each second
        first.append(await exchange(packets[0]))  # a new device: authentication, new streams
        await warm.wait()  # steady state: every device known, every stream created
        await asyncio.sleep(k / len(mns))
        for packet in packets[1:]:  # built beforehand: client CPU not measured
            took = await exchange(packet)
            latencies.append(took)
            await asyncio.sleep(max(0.0, 1.0 - took))
        writer.close()

    await asyncio.gather(*(device(k, mn) for k, mn in enumerate(mns)))
    return latencies, first


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000, help="readings a JSON request")
    parser.add_argument(
        "--lines", type=int, default=5_000, help="lines a line-protocol request (6 fields a line)"
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--devices", type=int, default=1_000)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args(argv)
    result: dict[str, Any] = {
        "rows": args.rows,
        "batch": args.batch,
        "lines": args.lines,
        "clients": args.clients,
    }
    with tempfile.TemporaryDirectory(prefix="ecosense-bench-") as tmp:
        data_dir = Path(tmp)
        n_devices = max(args.clients, args.devices)
        with open_store(database_url=None, data_dir=data_dir) as opened:
            store = opened.store
            store.upsert_stations(
                [Station(f"B{i}", f"b{i}", "air", 116.0, 40.0) for i in range(n_devices)]
            )
            tokens = [store.add_device(f"b{i}", f"B{i}") for i in range(args.clients)]
            mns = [f"MN{i:06d}" for i in range(n_devices)]
            for i, mn in enumerate(mns):
                store.add_device(f"hj{i}", f"B{i}", mn=mn, password="pw")
            url = opened.url
            with running(data_dir, env=BENCH_ENV) as platform:
                http, (host, port) = platform.http, platform.hj212
                # The baseline at each path's request size (the best of three: a conservative
                # ratio): 1,000-row transactions for JSON and HJ 212, the line-protocol
                # request's readings (5,000 lines of six) for line protocol.
                lp_batch = args.lines * 6
                for key, size in (("copy", args.batch), ("copy_lp", lp_batch)):
                    runs = [_baseline_copy(url, args.rows, size) for _ in range(3)]
                    rate, cpu = max(runs)
                    result[f"{key}_rows_per_s"] = rate
                    result[f"{key}_client_cpu_us_per_row"] = cpu
                result["copy_lp_batch"] = lp_batch
                loads: dict[str, Callable[[datetime], Coroutine[Any, Any, tuple[int, float]]]] = {
                    "http_json": lambda t0: _http(http, tokens, args.rows, args.batch, t0, False),
                    "line_protocol": lambda t0: _http(
                        http, tokens, args.rows, args.batch, t0, True, args.lines
                    ),
                    "hj212": lambda t0: _hj212_throughput(
                        host, port, mns[: args.devices], args.rows, t0
                    ),
                }
                gateway = psutil.Process(platform.process.pid)
                asyncio.run(_hj212_login(host, port, mns[: args.devices]))
                for year, (name, load) in enumerate(loads.items(), start=2021):
                    before = _count(url)
                    cpu_before = _cpu_seconds(gateway)
                    sent, start = asyncio.run(load(datetime(year, 1, 1, tzinfo=UTC)))
                    _wait_readable(url, before + sent)
                    rate = sent / (time.perf_counter() - start)
                    cpu = _cpu_seconds(gateway) - cpu_before
                    result[f"{name}_gateway_cpu_us_per_reading"] = cpu / sent * 1e6
                    result[f"{name}_rows_per_s"] = rate
                    baseline = result[
                        "copy_lp_rows_per_s" if name == "line_protocol" else "copy_rows_per_s"
                    ]
                    result[f"{name}_ratio_to_copy"] = rate / baseline
                lat, first = asyncio.run(
                    _hj212_latency(
                        host,
                        port,
                        mns[: args.devices],
                        args.seconds,
                        datetime(2025, 6, 1, tzinfo=UTC),
                    )
                )
                q = statistics.quantiles(lat, n=100)
                q_first = statistics.quantiles(first, n=100)
                result.update(
                    {
                        "hj212_devices": args.devices,
                        "hj212_packets": len(lat) + len(first),
                        "hj212_p50_ms": q[49] * 1000,
                        "hj212_p99_ms": q[98] * 1000,
                        "hj212_first_packet_p50_ms": q_first[49] * 1000,
                        "hj212_first_packet_p99_ms": q_first[98] * 1000,
                    }
                )
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
