"""Listeners that survive abuse (issue 13, item 6): the real gateway (``ecosense up``) in a
child process under a 1,024-descriptor limit, attacked on loopback, bounded in time and count.

The attacker uses 127.0.0.2 (still loopback), the honest logger 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psutil
import pytest

from ingest import hj212
from sensors.stations import Station
from store.postgres import PostgresStore

MN, PW = "010000A8900016F000ABUSE01", "s3cret"
MN2 = "010000A8900016F000ABUSE02"
ATTACKER = "127.0.0.2"
_READY = re.compile(r"ready http=(\S+) hj212=(\S+):(\d+)")


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    http: str
    hj212: tuple[str, int]
    log: Path


@pytest.fixture(autouse=True)
def _many_descriptors() -> None:
    """This test process holds the attacker's 1,500 sockets."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 <= hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))


@pytest.fixture
def devices(store: PostgresStore) -> None:
    store.upsert_stations([Station("W1", "Outfall 1", "wastewater", 120.1, 30.2)])
    store.add_device("logger-1", "W1", mn=MN, password=PW)
    store.add_device("logger-2", "W1", mn=MN2, password=PW)


def start(
    tmp_path: Path, database_url: str, env: dict[str, str], nofile: tuple[int, int]
) -> Gateway:
    log = tmp_path / "gateway.log"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, nofile)

    with log.open("wb") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ecosense",
                "up",
                "--no-dashboard",
                "--http-port",
                "0",
                "--hj212-port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env={
                **os.environ,
                "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
                "ECOSENSE_DATABASE_URL": database_url,
                "ECOSENSE_DATA_DIR": str(tmp_path / "data"),
                "ECOSENSE_JOBS_INTERVAL_SECONDS": "0",
                **env,
            },
            preexec_fn=limit,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode()
    m = _READY.match(line)
    if m is None:
        proc.kill()
        raise AssertionError(f"ecosense up did not start: {line!r} {log.read_text()[-2000:]}")
    return Gateway(proc, m.group(1), (m.group(2), int(m.group(3))), log)


@pytest.fixture
def gateway_factory(tmp_path: Path, database_url: str, devices: None) -> Iterator[list[Gateway]]:
    started: list[Gateway] = []
    yield started
    for g in started:
        g.process.send_signal(signal.SIGTERM)
        try:
            g.process.wait(30)
        except subprocess.TimeoutExpired:
            g.process.kill()
            g.process.wait()
        if g.process.stdout is not None:
            g.process.stdout.close()


def _gateway(
    started: list[Gateway],
    tmp_path: Path,
    database_url: str,
    env: dict[str, str] | None = None,
    nofile: tuple[int, int] = (1024, 1024),
) -> Gateway:
    g = start(tmp_path, database_url, env or {}, nofile)
    started.append(g)
    return g


def upload(qn: str, mn: str = MN, value: float = 5.0) -> bytes:
    now = datetime.now(UTC).astimezone(hj212.CST).strftime("%Y%m%d%H%M%S")
    return hj212.encode(
        cn="2011", mn=mn, pw=PW, st="32", qn=qn, flag=5, cp=f"DataTime={now};w01018-Rtd={value}"
    )


def round_trip(s: socket.socket, decoder: hj212.FrameDecoder, qn: str, mn: str = MN) -> float:
    """Send one upload, wait for its 9014; seconds it took."""
    t0 = time.monotonic()
    s.sendall(upload(qn, mn))
    while True:
        chunk = s.recv(4096)
        assert chunk, "connection closed"
        for frame in decoder.feed(chunk):
            assert isinstance(frame, bytes)
            packet = hj212.parse(frame)
            if packet.cn == "9014" and packet.qn == qn:
                return time.monotonic() - t0


def attacker_socket(address: tuple[str, int]) -> socket.socket | None:
    s = socket.socket()
    s.setblocking(True)
    s.settimeout(2)
    try:
        s.bind((ATTACKER, 0))
        s.connect(address)
    except OSError:
        s.close()
        return None
    return s


def _http_address(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def test_garbage_and_idle_connections_do_not_stall_an_honest_logger(
    gateway_factory: list[Gateway], tmp_path: Path, database_url: str
) -> None:
    """Issue 13: "1 MB of garbage on the HJ 212 port wrote 524,000 log lines (+58 MB) and
    stalled another logger's round trip from 7 ms to 8.3 s; 1,000 silent sockets under a
    1,024-descriptor limit made the HTTP API answer with empty replies". The yardstick:
    under a 1,024 soft descriptor limit, while one address sends 1 MB of garbage and holds
    1,500 idle connections, a registered logger on another address keeps its 9014 round
    trips under 1 s, a new logger connecting is answered within 2 s, /healthz answers, and
    the logs grow by less than a few MB."""
    g = _gateway(gateway_factory, tmp_path, database_url)
    honest = socket.create_connection(g.hj212, timeout=5)
    decoder = hj212.FrameDecoder()
    assert round_trip(honest, decoder, "20260101000000001") < 1.0
    log_before = g.log.stat().st_size

    noisy = attacker_socket(g.hj212)  # admitted before the flood fills its address's cap
    assert noisy is not None
    idle: list[socket.socket] = []
    http_address = _http_address(g.http)
    for i in range(1500):  # half on each listener
        s = attacker_socket(g.hj212 if i % 2 else http_address)
        if s is not None:
            idle.append(s)
    garbage_sent = 0

    def spew() -> None:
        nonlocal garbage_sent
        junk = (b"##" * 1000 + b"##0001x\r\n" * 100 + os.urandom(1000)) * 8
        with noisy:
            while garbage_sent < 1_000_000:
                noisy.sendall(junk)
                garbage_sent += len(junk)

    sender = threading.Thread(target=spew)
    sender.start()
    worst = 0.0
    try:
        for n in range(30):
            worst = max(worst, round_trip(honest, decoder, f"2026010100000{n:04d}"))
        sender.join(30)
        assert garbage_sent >= 1_000_000
        t0 = time.monotonic()
        with socket.create_connection(g.hj212, timeout=5) as newcomer:
            round_trip(newcomer, hj212.FrameDecoder(), "20260101000001000", mn=MN2)
        assert time.monotonic() - t0 < 2.0, "a new logger is answered within 2 s"
        with httpx.Client(timeout=5) as client:
            assert client.get(g.http + "/healthz").status_code == 200
        for n in range(30, 40):
            worst = max(worst, round_trip(honest, decoder, f"2026010100000{n:04d}"))
    finally:
        for s in idle:
            s.close()
        honest.close()
    assert worst < 1.0, f"the honest logger's worst round trip took {worst:.2f} s"
    time.sleep(0.5)  # the noisy connection's closing summary
    log = g.log.read_text()
    assert re.search(r"127\.0\.0\.2', \d+\): \d+ framing errors, \d{6,} bytes discarded", log), log
    assert "refused" in log
    grown = g.log.stat().st_size - log_before
    assert grown < 2_000_000, f"the log grew {grown} bytes"
    assert g.process.poll() is None


def test_hj212_connection_that_never_authenticates_is_closed(
    gateway_factory: list[Gateway], tmp_path: Path, database_url: str
) -> None:
    """Item 6: "a short time-out before a connection authenticates" (here 1 s)."""
    g = _gateway(gateway_factory, tmp_path, database_url, {"ECOSENSE_AUTH_TIMEOUT_SECONDS": "1"})
    with socket.create_connection(g.hj212, timeout=10) as silent:
        t0 = time.monotonic()
        assert silent.recv(1) == b""  # closed by the gateway
        assert time.monotonic() - t0 < 5
    with socket.create_connection(g.hj212, timeout=10) as honest:  # authenticated: stays
        decoder = hj212.FrameDecoder()
        round_trip(honest, decoder, "20260101000000001")
        time.sleep(2.5)
        round_trip(honest, decoder, "20260101000000002")


def test_per_address_cap_refuses_the_excess_connections(
    gateway_factory: list[Gateway], tmp_path: Path, database_url: str
) -> None:
    """Item 6: "per-address connection caps on HJ 212 and HTTP"; another address is still
    served."""
    g = _gateway(
        gateway_factory, tmp_path, database_url, {"ECOSENSE_MAX_CONNECTIONS_PER_ADDRESS": "5"}
    )
    held = [attacker_socket(g.hj212) for _ in range(5)]
    try:
        extra = attacker_socket(g.hj212)
        assert extra is not None
        with extra, contextlib.suppress(ConnectionResetError):
            assert extra.recv(1) == b""
        http_held = [attacker_socket(_http_address(g.http)) for _ in range(5)]
        over = attacker_socket(_http_address(g.http))
        assert over is not None
        with over:
            over.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert over.recv(4096).startswith(b"HTTP/1.1 503")
        assert httpx.get(g.http + "/healthz", timeout=5).status_code == 200  # 127.0.0.1
        for s in http_held:
            assert s is not None
            s.close()
    finally:
        for s in held:
            if s is not None:
                s.close()


def test_slow_headers_are_closed_after_the_time_out(
    gateway_factory: list[Gateway], tmp_path: Path, database_url: str
) -> None:
    """Issue 13: "slow-header HTTP connections are never closed" (time-out here 1 s)."""
    g = _gateway(gateway_factory, tmp_path, database_url, {"ECOSENSE_HEADER_TIMEOUT_SECONDS": "1"})
    with socket.create_connection(_http_address(g.http), timeout=10) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 6:
            try:
                slow.sendall(b"X-a: b\r\n")  # one header line now and then, never the end
            except OSError:
                closed = True
                break
            slow.settimeout(0.3)
            try:
                if slow.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                pass
        assert closed, "the slow-header connection was not closed"
        assert time.monotonic() - t0 < 4


def test_oversized_chunked_body_gets_413_without_buffering(
    gateway_factory: list[Gateway], tmp_path: Path, database_url: str, store: PostgresStore
) -> None:
    """Issue 13: "a 400 MB chunked body is buffered whole (1 GB RSS) before the 413"."""
    g = _gateway(gateway_factory, tmp_path, database_url)
    token = store.add_device("http-1", "W1")
    rss_before = psutil.Process(g.process.pid).memory_info().rss
    answer: list[bytes] = []
    with socket.create_connection(_http_address(g.http), timeout=30) as s:

        def read() -> None:
            try:
                answer.append(s.recv(4096))
            except OSError as exc:
                answer.append(repr(exc).encode())

        reader = threading.Thread(target=read)
        reader.start()
        s.sendall(
            b"POST /api/v1/observations HTTP/1.1\r\nHost: x\r\n"
            + f"Authorization: Bearer {token}\r\n".encode()
            + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        chunk = b"%x\r\n" % (1 << 20) + b" " * (1 << 20) + b"\r\n"
        sent = 0
        try:
            for _ in range(400):  # 400 MB, unless refused first
                s.sendall(chunk)
                sent += 1
                if answer:
                    break
        except OSError:
            pass
        reader.join(30)
    assert answer and answer[0].startswith(b"HTTP/1.1 413"), answer
    assert sent < 100, f"{sent} MB sent before the 413"
    grown = psutil.Process(g.process.pid).memory_info().rss - rss_before
    assert grown < 100 * 2**20, f"RSS grew {grown / 2**20:.0f} MB"


def test_descriptor_limit_is_raised_to_the_hard_limit() -> None:
    """Item 6: "RLIMIT_NOFILE raised to its hard limit at start"."""
    code = "from ecosense.runner import raise_nofile; print(raise_nofile())"

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 2048))

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, preexec_fn=limit, check=True
    )
    assert out.stdout.strip() == "2048"


def test_the_dask_cluster_of_the_job_scheduler_binds_the_host_only() -> None:
    """Issue 13: "the Dask worker's HTTP server binds 0.0.0.0"."""
    from pipelines.runner import Runner

    me = psutil.Process()

    def listening() -> set[tuple[str, int]]:
        return {
            (c.laddr.ip, c.laddr.port)
            for c in me.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        }

    before = listening()
    with Runner(None, local="threads", workers=1, host="127.0.0.1"):
        opened = listening() - before
    assert opened, "the local cluster listens somewhere"
    assert {ip for ip, _ in opened} == {"127.0.0.1"}, opened


def test_hj212_proxy_protocol_from_a_trusted_proxy_names_the_client(
    store: PostgresStore, devices: None
) -> None:
    """Item 6: "behind a proxy the client address comes from the PROXY protocol … of
    configured trusted proxies only": the per-address cap applies to the named client."""
    from ingest.hj212_server import Hj212Server, ThreadedHj212Server
    from ingest.limits import parse_networks

    threaded = ThreadedHj212Server(
        Hj212Server(store, max_per_address=1, trusted_proxies=parse_networks("127.0.0.1"))
    )
    address = threaded.start("127.0.0.1", 0)
    line = b"PROXY TCP4 %s 127.0.0.1 5555 9212\r\n"
    try:
        with socket.create_connection(address, timeout=5) as first:
            first.sendall(line % b"203.0.113.7")
            round_trip(first, hj212.FrameDecoder(), "20260101000000001")
            assert threaded.server.admission.open == {"203.0.113.7": 1}
            with socket.create_connection(address, timeout=5) as same_client:
                same_client.sendall(line % b"203.0.113.7" + upload("20260101000000002"))
                with contextlib.suppress(ConnectionResetError):
                    assert same_client.recv(4096) == b""  # over its cap: closed
            with socket.create_connection(address, timeout=5) as other:
                other.sendall(line % b"203.0.113.8")
                round_trip(other, hj212.FrameDecoder(), "20260101000000003", mn=MN2)
        # from an address that is not a trusted proxy, a PROXY line is garbage
        untrusted = attacker_socket(address)
        assert untrusted is not None
        with untrusted:
            untrusted.sendall(line % b"198.51.100.1")
            round_trip(untrusted, hj212.FrameDecoder(), "20260101000000004")
            assert ATTACKER in threaded.server.admission.open
    finally:
        threaded.stop()


def test_a_reconnect_storm_is_logged_in_whatever_the_verification_queue(
    gateway_factory: list[Gateway], tmp_path: Path, database_url: str, store: PostgresStore
) -> None:
    """Issue 17: 1,000 units logging in at once were closed by the auth time-out while their
    passwords waited in the verification queue (``bench_ingest --devices 1000``), and would
    reconnect and queue again. Here 80 units at once, each password an Argon2id hash,
    verified two at a time, behind a 1-second auth time-out: every one gets its 9013."""
    units = [f"010000A8900016F000STORM{i:03d}" for i in range(80)]
    for i, mn in enumerate(units):
        store.add_device(f"storm-{i}", "W1", mn=mn, password=PW)
    g = _gateway(
        gateway_factory,
        tmp_path,
        database_url,
        {"ECOSENSE_AUTH_TIMEOUT_SECONDS": "1", "ECOSENSE_MAX_CONNECTIONS_PER_ADDRESS": "1000"},
    )
    sockets = [socket.create_connection(g.hj212, timeout=120) for _ in units]
    try:
        t0 = time.monotonic()
        for s, mn in zip(sockets, units, strict=True):
            s.sendall(
                hj212.encode(cn="1013", st="32", mn=mn, pw=PW, qn="20260101000000000", flag=5)
            )
        for s in sockets:
            decoder = hj212.FrameDecoder()
            frames: list[bytes] = []
            while not frames:
                chunk = s.recv(4096)
                assert chunk, "closed before its 9013"
                frames = [f for f in decoder.feed(chunk) if isinstance(f, bytes)]
            assert hj212.parse(frames[0]).cn == "9013"
        assert time.monotonic() - t0 > 1  # the queue did outlast the auth time-out
    finally:
        for s in sockets:
            s.close()
