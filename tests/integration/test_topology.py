"""The production topology of ``docker/compose.yaml``, as processes on loopback (issue 15, item 4).

No container engine here, so the same pieces run as processes: PostgreSQL 15 with TimescaleDB
(the TimescaleDB service, a fresh database), Mosquitto with the compose file's own configuration
(``docker/mosquitto/``: password and ACL files, devices over TLS, the gateways on the internal
listener), a real ``dask scheduler`` with two ``dask worker`` processes, two ``--roles gateway``
and two ``--roles jobs`` instances (``ECOSENSE_DASK_SCHEDULER`` naming that cluster), and devices
spread over both gateways: HTTP JSON, line protocol, HJ 212 and MQTT. It shows, in order:

1. every acknowledged reading is stored, once, after SIGKILL of one gateway mid-stream — the
   devices reconnect to the other gateway, as behind a load balancer, and re-send what was not
   acknowledged; the killed gateway is started again on its data dir, as compose restarts it,
   and takes the MQTT messages that waited in its session;
2. an HJ 212 command sent through one gateway reaches a unit connected to the other;
3. exactly one jobs leader; after SIGKILL of the leader the standby takes over within 30 s and
   no job runs twice for the same period (the job marks' moves form one chain);
4. a Dask worker killed mid-job: the job completes on the remaining worker, and its results are
   exactly those of the incremental runs before it (no half-written result).
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ingest import hj212
from sensors.observations import Observation, Source
from sensors.stations import Station
from store.postgres import PostgresStore
from tests.conftest import require_service
from tests.integration.test_gateway_instances import MN, PW, FieldUnit, holder
from tests.integration.test_roles import (
    ADMIN_TOKEN,
    TAKEOVER_SECONDS,
    Instance,
    check_mark_chains,
    moved_by,
    shared_db,  # noqa: F401 (a fixture)
    start,
    stop,
    wait_for,
)
from tests.integration.test_tls import self_signed

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
MOSQUITTO = os.environ.get("ECOSENSE_TEST_MOSQUITTO", "/usr/sbin/mosquitto")
DASK = Path(sys.executable).with_name("dask")
BROKER_PASSWORD = "internal-broker-password"
#: stations with a day of minute history, so that the jobs have work for both Dask workers
HISTORY_STATIONS = 24


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"nothing listens on {port}"
            time.sleep(0.1)


@dataclass
class Broker:
    """Mosquitto run with ``docker/mosquitto/mosquitto.conf`` and ``acl``: the secrets' paths,
    the ports and the data folder replaced by this test's."""

    proc: subprocess.Popen[bytes]
    internal: int  # the gateways' listener (1883 in compose)
    devices: int  # the devices' TLS listener (8883 in compose)
    ca: Path
    passwords: dict[str, str]


def start_broker(folder: Path, device_users: list[str]) -> Broker:
    passwd = shutil.which("mosquitto_passwd") or str(Path(MOSQUITTO).with_name("mosquitto_passwd"))
    require_service("Mosquitto", Path(MOSQUITTO).exists() and Path(passwd).exists())
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed(folder)
    passwords = {user: f"pw-{user}" for user in device_users}
    devices_file, internal_file = folder / "mqtt_passwd", folder / "mqtt_internal_passwd"
    for path, users in ((devices_file, passwords), (internal_file, {"ecosense": BROKER_PASSWORD})):
        path.touch()
        for user, password in users.items():
            subprocess.run([passwd, "-b", str(path), user, password], check=True)
    internal, devices = free_port(), free_port()
    conf = (REPO / "docker" / "mosquitto" / "mosquitto.conf").read_text()
    for old, new in {
        "/run/secrets/mqtt_passwd": str(devices_file),
        "/run/secrets/mqtt_internal_passwd": str(internal_file),
        "/run/secrets/tls_cert": str(cert),
        "/run/secrets/tls_key": str(key),
        "/mosquitto/config/acl": str(REPO / "docker" / "mosquitto" / "acl"),
        "/mosquitto/data/": str(folder) + "/",
        "listener 8883": f"listener {devices} 127.0.0.1",
        "listener 1883": f"listener {internal} 127.0.0.1",
        "log_dest stdout": f"log_dest file {folder / 'mosquitto.log'}",
    }.items():
        assert old in conf, old  # the compose file's configuration is what runs here
        conf = conf.replace(old, new)
    # as root, Mosquitto would become user mosquitto, who cannot read this test's files
    (folder / "mosquitto.conf").write_text(f"user {getpass.getuser()}\n" + conf)
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(folder / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(internal)
    wait_port(devices)
    return Broker(proc, internal, devices, cert, passwords)


@dataclass
class DaskCluster:
    """``dask scheduler`` and its ``dask worker`` processes, each in its own process group."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def kill_worker(self, n: int) -> None:
        """SIGKILL worker ``n`` and its nanny: the machine it ran on is gone."""
        os.killpg(self.workers[n].pid, signal.SIGKILL)
        self.workers[n].wait(10)

    def stop(self) -> None:
        for proc in [*self.workers, self.scheduler]:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in [*self.workers, self.scheduler]:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def start_dask(folder: Path, workers: int = 2) -> DaskCluster:
    """As compose's ``dask-scheduler`` and ``dask-worker-N`` (one process each, on loopback)."""
    assert DASK.exists(), DASK
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    port = free_port()

    def spawn(*args: str, log: str) -> subprocess.Popen[bytes]:
        with open(folder / log, "wb") as out:
            return subprocess.Popen(
                [str(DASK), *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=folder,
            )

    scheduler = spawn(
        "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", ":0",
        log="scheduler.log",
    )  # fmt: skip
    address = f"tcp://127.0.0.1:{port}"
    cluster = DaskCluster(address, scheduler)
    for n in range(workers):
        cluster.workers.append(
            spawn(
                "worker",
                address,
                "--name",
                f"dask-worker-{n + 1}",
                "--nworkers",
                "1",
                "--nthreads",
                "1",
                "--host",
                "127.0.0.1",
                "--dashboard-address",
                ":0",
                log=f"worker-{n + 1}.log",
            )
        )
    from distributed import Client

    with Client(address, timeout=60) as client:  # type: ignore[no-untyped-call]
        client.wait_for_workers(workers, timeout=120)  # type: ignore[no-untyped-call]
    return cluster


# --- the devices ---------------------------------------------------------------------------


@dataclass
class Device:
    """One simulated device: what it sent and what was acknowledged to it, reading by reading
    (``(station, parameter, time) → value``), and how often it had to change gateway."""

    station: str
    gateway: int  # the index of the gateway it is connected to now
    acked: dict[tuple[str, str, datetime], float] = field(default_factory=dict)
    switches: int = 0
    sent: int = 0
    errors: list[str] = field(default_factory=list)

    def acknowledged(self, batch: list[tuple[str, datetime, float]]) -> None:
        """Count ``batch`` (parameter, time, value) as acknowledged to this device."""
        self.sent += len(batch)
        for p, t, v in batch:
            self.acked[(self.station, p, t)] = v


BASE = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)


def readings(
    station: str, n: int, parameters: tuple[str, ...]
) -> list[tuple[str, datetime, float]]:
    """The ``n``-th batch of a device: one reading per parameter, a second apart per batch."""
    t = BASE + timedelta(seconds=n)
    return [(p, t, float(20 + (n * 7 + i * 3) % 40)) for i, p in enumerate(parameters)]


def run_http(
    dev: Device, gateways: list[Instance], token: str, lp: bool, stop: threading.Event
) -> None:
    """POST batches (JSON, or line protocol) to the current gateway; on a broken connection,
    the same batch again to the other one."""
    n = 0
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            batch = [
                (p, t, v)
                for k in range(5)
                for p, t, v in readings(dev.station, n * 5 + k, ("pm25", "pm10"))
            ]
            while True:
                url = gateways[dev.gateway].http
                try:
                    if lp:
                        body = "\n".join(
                            f"{dev.station} {p}={v} {int(t.timestamp())}" for p, t, v in batch
                        )
                        r = client.post(
                            url + "/api/v2/write",
                            params={"precision": "s", "org": "o", "bucket": "b"},
                            headers={"Authorization": f"Token {token}"},
                            content=body,
                        )
                        ok = r.status_code == 204
                    else:
                        items = [
                            {
                                "station": dev.station,
                                "parameter": p,
                                "time": t.isoformat(),
                                "value": v,
                            }
                            for p, t, v in batch
                        ]
                        r = client.post(
                            url + "/api/v1/observations",
                            json={"observations": items},
                            headers={"Authorization": f"Bearer {token}"},
                        )
                        ok = r.status_code == 200 and r.json()["accepted"] == len(batch)
                except httpx.TransportError:
                    dev.gateway, dev.switches = 1 - dev.gateway, dev.switches + 1
                    time.sleep(0.2)
                    continue
                if not ok:
                    dev.errors.append(f"{r.status_code} {r.text[:200]}")
                    return
                break
            dev.acknowledged(batch)
            n += 1
            time.sleep(0.05)


def run_hj212(dev: Device, gateways: list[Instance], mn: str, stop: threading.Event) -> None:
    """2011 uploads (Flag=5: answer wanted) on one TCP connection; a reading is acknowledged
    by the platform's 9014; on a broken connection, to the other gateway, the same packet."""
    n = 0
    sock: socket.socket | None = None
    decoder = hj212.FrameDecoder()
    while not stop.is_set():
        batch = [
            (p, t, v / 5 if p == "ph" else v) for p, t, v in readings(dev.station, n, ("cod", "ph"))
        ]
        t = batch[0][1].astimezone(hj212.CST).strftime("%Y%m%d%H%M%S")
        cp = f"DataTime={t};" + ";".join(
            f"{code}-Rtd={v},{code}-Flag=N"
            for code, (_, _, v) in zip(("w01018", "w01001"), batch, strict=True)
        )
        qn = hj212.qn_now(datetime.now(UTC) + timedelta(milliseconds=n))
        packet = hj212.encode(cn="2011", st="32", mn=mn, pw=PW, qn=qn, flag=5, cp=cp)
        while True:
            try:
                if sock is None:
                    sock = socket.create_connection(gateways[dev.gateway].hj212, timeout=10)
                    decoder = hj212.FrameDecoder()
                sock.sendall(packet)
                answer = None
                while answer is None:
                    chunk = sock.recv(4096)
                    if not chunk:
                        raise ConnectionError("closed")
                    for frame in decoder.feed(chunk):
                        if isinstance(frame, bytes):
                            got = hj212.parse(frame)
                            if got.cn == "9014" and got.qn == qn:
                                answer = got
                break
            except OSError:
                if sock is not None:
                    sock.close()
                sock = None
                dev.gateway, dev.switches = 1 - dev.gateway, dev.switches + 1
                time.sleep(0.2)
        dev.acknowledged(batch)
        n += 1
        time.sleep(0.05)
    if sock is not None:
        sock.close()


def run_mqtt(dev: Device, broker: Broker, stop: threading.Event) -> None:
    """QoS 1 over TLS to the devices' listener, as the station's broker user; acknowledged by
    the broker's PUBACK (the gateways take the messages from it)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{dev.station}")
    client.username_pw_set(dev.station, broker.passwords[dev.station])
    client.tls_set(ca_certs=str(broker.ca))
    client.connect("localhost", broker.devices)
    client.loop_start()
    n = 0
    try:
        while not stop.is_set():
            batch = [
                (p, t, v)
                for k in range(5)
                for p, t, v in readings(dev.station, n * 5 + k, ("pm25", "no2"))
            ]
            items = [
                {"station": dev.station, "parameter": p, "time": t.isoformat(), "value": v}
                for p, t, v in batch
            ]
            info = client.publish(
                f"ecosense/v1/{dev.station}/json", json.dumps({"observations": items}), qos=1
            )
            info.wait_for_publish(10)
            if not info.is_published():
                dev.errors.append("no PUBACK")
                return
            dev.acknowledged(batch)
            n += 1
            time.sleep(0.05)
    finally:
        client.disconnect()
        client.loop_stop()


def stored(db: str, stations: list[str]) -> dict[tuple[str, str, datetime], float]:
    with psycopg.connect(db) as conn:
        rows = conn.execute(
            "SELECT s.station_id, s.parameter, o.time, o.value FROM observations o"
            " JOIN streams s ON s.id = o.stream_id WHERE s.station_id = ANY(%s)",
            (stations,),
        ).fetchall()
    return {(r[0], r[1], r[2]): r[3] for r in rows}


def derived(db: str) -> dict[tuple[object, ...], tuple[object, ...]]:
    """The derived rows the hourly job writes: hourly and 8-hour means, hourly AQI."""
    with psycopg.connect(db) as conn:
        means = conn.execute(
            "SELECT scope, subject, parameter, period, start, value, count, valid FROM aggregates"
            " WHERE period IN ('PT1H', 'PT8H')"
        ).fetchall()
        aqi = conn.execute(
            "SELECT scope, subject, kind, start, value, label FROM assessments"
            " WHERE kind = 'aqi-hourly'"
        ).fetchall()
    out: dict[tuple[object, ...], tuple[object, ...]] = {r[:5]: r[5:] for r in means}
    out.update({r[:4]: r[4:] for r in aqi})
    return out


# --- the test ------------------------------------------------------------------------------


def test_the_compose_topology_as_processes(shared_db: str, tmp_path: Path) -> None:  # noqa: F811
    db = shared_db
    http_devices, lp_devices, hj_devices, mqtt_devices = (
        ["H1", "H2"],
        ["L1", "L2"],
        ["J1", "J2"],
        ["M1", "M2"],
    )
    broker = start_broker(tmp_path / "mosquitto", mqtt_devices)
    cluster = start_dask(tmp_path / "dask")
    mqtt_url = f"mqtt://ecosense:{BROKER_PASSWORD}@127.0.0.1:{broker.internal}"
    gateway_env = {"ECOSENSE_MQTT_URL": mqtt_url}
    jobs_env = {"ECOSENSE_DASK_SCHEDULER": cluster.address}
    instances: list[Instance] = []
    try:
        gateways = [
            start(db, tmp_path / f"gateway-{n}", "gateway", env=gateway_env, interval="0")
            for n in (1, 2)
        ]
        instances += gateways
        jobs = [start(db, tmp_path / f"jobs-{n}", "jobs", env=jobs_env) for n in (1, 2)]
        instances += jobs
        for g in gateways:
            assert g.health() == {"status": "ok", "roles": ["gateway"], "jobs_leader": False}
        wait_for("a jobs leader", lambda: any(j.health()["jobs_leader"] for j in jobs), 30)

        # stations and devices, registered once in the shared database
        store = PostgresStore(db)
        try:
            store.upsert_stations(
                [
                    Station(s, s, "air", 116.3 + i / 10, 39.9)
                    for i, s in enumerate(http_devices + lp_devices + mqtt_devices)
                ]
                + [
                    Station(s, s, "wastewater", 120.1 + i / 10, 30.2)
                    for i, s in enumerate([*hj_devices, "W9"])
                ]
            )
            tokens = {s: store.add_device(f"{s}-dev", s) for s in http_devices + lp_devices}
            mns = {s: f"0100TOPO{i:016d}" for i, s in enumerate(hj_devices)}
            for s, mn in mns.items():
                store.add_device(f"{s}-dev", s, mn=mn, password=PW)
            store.add_device("W9-logger", "W9", mn=MN, password=PW)
            # a day of minute history for more stations: work enough for the jobs' workers
            history = [
                Station(f"B{i:02d}", f"B{i:02d}", "air", 115 + i / 10, 39)
                for i in range(HISTORY_STATIONS)
            ]
            store.upsert_stations(history)
            store.write_observations(
                [
                    Observation(h.id, p, BASE - timedelta(minutes=m), 30 + (m * 13 + i) % 50)
                    for h in history
                    for i, p in enumerate(("pm25", "pm10", "no2"))
                    for m in range(1, 24 * 60)
                ],
                source=Source("file", user="topology-test", file="history.csv"),
            )
        finally:
            store.close()

        # 1. devices on both gateways; gateway 1 SIGKILLed mid-stream
        devices: list[Device] = []
        threads: list[threading.Thread] = []
        halt = threading.Event()

        def launch(target: Callable[..., None], dev: Device, *args: object) -> None:
            devices.append(dev)
            threads.append(threading.Thread(target=target, args=(dev, *args, halt), daemon=True))

        for i, s in enumerate(http_devices):
            launch(run_http, Device(s, i % 2), gateways, tokens[s], False)
        for i, s in enumerate(lp_devices):
            launch(run_http, Device(s, i % 2), gateways, tokens[s], True)
        for i, s in enumerate(hj_devices):
            launch(run_hj212, Device(s, i % 2), gateways, mns[s])
        for i, s in enumerate(mqtt_devices):
            launch(run_mqtt, Device(s, i % 2), broker)
        for t in threads:
            t.start()
        wait_for("readings acknowledged", lambda: all(len(d.acked) >= 20 for d in devices), 60)
        before = {d.station: len(d.acked) for d in devices}
        gateways[0].proc.kill()  # SIGKILL: no goodbye, mid-stream
        gateways[0].proc.wait()
        wait_for(
            "readings acknowledged after the kill",
            lambda: all(len(d.acked) >= before[d.station] + 40 for d in devices),
            90,
        )
        halt.set()
        for t in threads:
            t.join(30)
        assert [d.errors for d in devices] == [[]] * len(devices)
        # the devices that were on gateway 1 went on through gateway 2
        for d in devices:
            if not d.station.startswith("M"):
                assert d.gateway == 1, d
        assert all(
            d.switches >= 1
            for d in devices
            if d.station.endswith("1") and not d.station.startswith("M")
        )
        # compose restarts it: on its own data dir, it takes what waited in its MQTT session
        gateways[0] = start(db, tmp_path / "gateway-1", "gateway", env=gateway_env, interval="0")
        instances.append(gateways[0])
        stations = [d.station for d in devices]
        acked = {k: v for d in devices for k, v in d.acked.items()}

        def missing() -> dict[str, int]:
            have = stored(db, stations)
            out: dict[str, int] = {}
            for k in acked:
                if k not in have:
                    out[k[0]] = out.get(k[0], 0) + 1
            return out

        with contextlib.suppress(AssertionError):
            wait_for("every acknowledged reading stored", lambda: not missing(), 60)
        have = stored(db, stations)
        examples = sorted(k for k in acked if k not in have)[:6]
        assert missing() == {}, f"acknowledged, not stored (of {len(acked)}), e.g. {examples}"
        have = stored(db, stations)
        wrong = {k: (v, have[k]) for k, v in acked.items() if have[k] != v}
        assert wrong == {}
        with psycopg.connect(db) as conn:
            versions = conn.execute("SELECT count(*) FROM observation_versions").fetchone()
        assert versions == (0,)  # none stored twice with another value
        print(
            f"acknowledged {len(acked)} readings over HTTP, line protocol, HJ 212 and MQTT;"
            f" all stored once after SIGKILL of a gateway"
        )

        # 2. a command through gateway 1 reaches the unit connected to gateway 2
        unit = FieldUnit(gateways[1].hj212)
        try:
            wait_for("the unit's link", lambda: holder(db) is not None, 10)
            r = httpx.post(
                f"{gateways[0].http}/api/v1/hj212/{MN}/commands",
                json={"cn": "1062", "cp": "RtdInterval=30"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                timeout=60,
            )
            assert r.status_code == 200, r.text
            assert r.json()["QnRtn"] == "1" and r.json()["ExeRtn"] == "1"
            assert [(c.cn, c.cp) for c in unit.commands] == [("1062", "RtdInterval=30")]
        finally:
            unit.close()

        # 3. one leader; SIGKILL it: the standby takes over, no period twice
        answers = [j.health() for j in jobs]
        assert sorted(bool(h["jobs_leader"]) for h in answers) == [False, True], answers
        leader, standby = (jobs[0], jobs[1]) if answers[0]["jobs_leader"] else (jobs[1], jobs[0])
        wait_for("the leader's runs", lambda: moved_by(db, leader.proc.pid) >= 6, 180)
        assert moved_by(db, standby.proc.pid) == 0
        leader.proc.kill()
        leader.proc.wait()
        took = wait_for(
            "the takeover", lambda: standby.health()["jobs_leader"], TAKEOVER_SECONDS, 0.25
        )
        print(f"takeover after SIGKILL of the jobs leader: {took:.1f} s")
        # the new leader's runs catch up with everything stored (planned after the last write)
        last_write = datetime.now(UTC)

        def caught_up() -> bool:
            with psycopg.connect(db) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM job_mark_moves WHERE job = 'hourly' AND from_mark > %s",
                    (last_write,),
                ).fetchone()
            return row is not None and row[0] >= 1

        wait_for("the new leader's runs", caught_up, 180)
        check_mark_chains(db, leader.proc.pid, standby.proc.pid)
        stop(standby)  # the incremental runs' results, kept to compare with a recomputation
        incremental = derived(db)
        assert any(k[1] == "H1" for k in incremental)  # the streamed stations have hourly means

        # 4. a Dask worker killed mid-job: the recomputation completes on the other worker,
        # with exactly the incremental runs' results
        from distributed import Client

        env = {k: v for k, v in os.environ.items() if not k.startswith("ECOSENSE_")} | {
            "ECOSENSE_DATABASE_URL": db,
            "ECOSENSE_DATA_DIR": str(tmp_path / "cli"),
            "ECOSENSE_DASK_SCHEDULER": cluster.address,
            "PYTHONPATH": str(REPO),
        }
        recompute = subprocess.Popen(
            [sys.executable, "-m", "ecosense", "jobs", "run", "hourly",
             "--start", (BASE - timedelta(days=1, hours=1)).isoformat(),
             "--end", (datetime.now(UTC) + timedelta(hours=1)).isoformat()],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        with Client(cluster.address, timeout=30) as client:  # type: ignore[no-untyped-call]

            def busy() -> bool:
                processing = client.processing()  # type: ignore[no-untyped-call]
                return sum(len(v) for v in processing.values()) >= 2

            wait_for("the job's tasks on the workers", busy, 120, 0.02)
            cluster.kill_worker(0)
            assert recompute.poll() is None  # killed mid-job
            out, err = recompute.communicate(timeout=300)
            assert len(client.scheduler_info()["workers"]) == 1  # type: ignore[no-untyped-call]
        assert recompute.returncode == 0, out + err
        recomputed = derived(db)
        changed = {
            k: (v, recomputed.get(k)) for k, v in incremental.items() if recomputed.get(k) != v
        }
        assert changed == {}
        assert recomputed.keys() == incremental.keys()
    finally:
        stop(*instances)
        cluster.stop()
        broker.proc.terminate()
        broker.proc.wait(10)
