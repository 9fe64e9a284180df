"""MQTT ingest against a real Mosquitto broker started on a loopback port."""

from __future__ import annotations

import getpass
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ecosense.testing import environment, running
from ingest.mqtt import MqttIngest, client_id
from sensors.observations import Source
from sensors.stations import Station
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret
from tests.conftest import require_service

pytestmark = pytest.mark.integration
#: devices may write this far back here, so that the fixed times of these tests stay writable
#: (the default, ECOSENSE_MAX_PAST_DAYS, is 30 days: tests/integration/test_validation.py)
FIXED_TIMES_WINDOW = timedelta(days=3650)
MOSQUITTO = os.environ.get("ECOSENSE_TEST_MOSQUITTO", "/usr/sbin/mosquitto")


def start_broker(tmp_path: Path, listener: str = "") -> tuple[subprocess.Popen[bytes], int]:
    """Mosquitto on a free loopback port, anonymous; ``listener`` adds lines to the listener."""
    require_service("Mosquitto", Path(MOSQUITTO).exists())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "mosquitto.conf"
    # run as root, Mosquitto would become user mosquitto, who cannot read this test's files
    conf.write_text(
        f"user {getpass.getuser()}\n"
        f"listener {port} 127.0.0.1\n{listener}allow_anonymous true\npersistence false\n"
        "max_queued_messages 100000\n"
    )
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return proc, port


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    proc, port = start_broker(tmp_path)
    yield f"mqtt://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def publisher(url: str) -> mqtt.Client:
    port = int(url.rsplit(":", 1)[1])
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dev-" + uuid.uuid4().hex[:6])
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def wait_for(check: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_json_and_line_protocol_messages_with_results(broker: str, store: PostgresStore) -> None:
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    ctx = ServiceContext(
        store, hash_secret("op"), ZoneInfo("Asia/Shanghai"), max_past=FIXED_TIMES_WINDOW
    )
    ingest = MqttIngest(broker, ctx, client_id="ecosense-" + uuid.uuid4().hex[:6])
    ingest.start()
    results: list[dict[str, object]] = []
    pub = publisher(broker)
    try:
        assert ingest.subscribed.wait(10)
        pub.subscribe("ecosense/v1/S1/result", qos=1)
        pub.on_message = lambda _c, _u, m: results.append(json.loads(m.payload))
        time.sleep(0.3)
        t = datetime(2026, 11, 28, tzinfo=UTC)
        body = {
            "observations": [
                {"station": "S1", "parameter": "pm25", "time": t.isoformat(), "value": 35.2},
                {"station": "S1", "parameter": "pm25", "time": t.isoformat(), "value": "x"},
                {"station": "S2", "parameter": "pm25", "time": t.isoformat(), "value": 1},
            ]
        }
        pub.publish("ecosense/v1/S1/json", json.dumps(body), qos=1).wait_for_publish(5)
        ns = int((t + timedelta(minutes=1)).timestamp()) * 10**9
        pub.publish("ecosense/v1/S1/lp", f"S1 pm10=61,so2=9 {ns}", qos=1).wait_for_publish(5)
        pub.publish("ecosense/v1/S1/json", b"{broken", qos=1).wait_for_publish(5)
        wait_for(lambda: len(results) == 3)
    finally:
        pub.loop_stop()
        ingest.stop()
    assert store.count_observations() == 3
    # issue 12: provenance per reading (the broker authenticates publishers: no device id)
    assert {r.source for r in store.read_observations(station="S1")} == {Source("mqtt")}
    assert results[0]["accepted"] == 1 and results[0]["rejected"] == 2
    assert any("not for station S1" in str(e) for e in results[0]["errors"])  # type: ignore[attr-defined]
    assert results[1] == {"accepted": 2, "rejected": 0, "errors": []}
    assert results[2]["accepted"] == 0 and "not valid JSON" in str(results[2]["errors"])


def test_messages_published_while_ecosense_is_away_are_delivered_later(
    broker: str, store: PostgresStore
) -> None:
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    ctx = ServiceContext(
        store, hash_secret("op"), ZoneInfo("Asia/Shanghai"), max_past=FIXED_TIMES_WINDOW
    )
    client_id = "ecosense-" + uuid.uuid4().hex[:6]
    first = MqttIngest(broker, ctx, client_id=client_id)
    first.start()
    assert first.subscribed.wait(10)
    first.stop()  # the persistent session stays on the broker
    pub = publisher(broker)
    t0 = datetime(2026, 11, 28, tzinfo=UTC)
    for i in range(50):
        t = (t0 + timedelta(minutes=i)).isoformat()
        pub.publish(
            "ecosense/v1/S1/json",
            json.dumps({"station": "S1", "parameter": "pm25", "time": t, "value": i}),
            qos=1,
        ).wait_for_publish(5)
    pub.loop_stop()
    assert store.count_observations() == 0
    second = MqttIngest(broker, ctx, client_id=client_id)
    second.start()
    try:
        wait_for(lambda: store.count_observations() == 50)
    finally:
        second.stop()


def test_two_instances_share_the_messages_each_stored_once(
    broker: str, store: PostgresStore, tmp_path: Path
) -> None:
    """Issue 15: every gateway instance subscribes, each with its own client id (kept in its
    data dir), in one shared subscription: the broker gives each message to one of them."""
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    ctx = ServiceContext(
        store, hash_secret("op"), ZoneInfo("Asia/Shanghai"), max_past=FIXED_TIMES_WINDOW
    )
    ids = [client_id(tmp_path / "a"), client_id(tmp_path / "b")]
    assert ids[0] != ids[1] and client_id(tmp_path / "a") == ids[0]
    instances = [MqttIngest(broker, ctx, client_id=i) for i in ids]
    for ingest in instances:
        ingest.start()
    pub = publisher(broker)
    try:
        assert all(ingest.subscribed.wait(10) for ingest in instances)
        t0 = datetime(2026, 11, 28, tzinfo=UTC)
        for i in range(60):
            t = (t0 + timedelta(minutes=i)).isoformat()
            reading = {"station": "S1", "parameter": "pm25", "time": t, "value": i}
            pub.publish("ecosense/v1/S1/json", json.dumps(reading), qos=1).wait_for_publish(5)
        wait_for(lambda: sum(ingest.messages for ingest in instances) == 60)
    finally:
        pub.loop_stop()
        for ingest in instances:
            ingest.stop()
    assert all(ingest.messages > 0 for ingest in instances)  # both took a share
    assert store.count_observations() == 60  # each message stored once


# paho leaves the socket of a failed TLS handshake to the garbage collector (a ResourceWarning)
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_mqtts_verifies_the_broker_and_takes_readings(
    store: PostgresStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``mqtts://`` connects over TLS and checks the broker's certificate against the trust
    store (``SSL_CERT_FILE`` for a private CA); an untrusted broker is never subscribed to."""
    from tests.integration.test_tls import self_signed

    cert, key = self_signed(tmp_path)
    proc, port = start_broker(tmp_path, f"certfile {cert}\nkeyfile {key}\n")
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    ctx = ServiceContext(
        store, hash_secret("op"), ZoneInfo("Asia/Shanghai"), max_past=FIXED_TIMES_WINDOW
    )
    url = f"mqtts://localhost:{port}"
    try:
        untrusted = MqttIngest(url, ctx, client_id="ecosense-" + uuid.uuid4().hex[:6])
        untrusted.start()
        assert not untrusted.subscribed.wait(3)  # the certificate is not trusted
        untrusted.stop()
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        ingest = MqttIngest(url, ctx, client_id="ecosense-" + uuid.uuid4().hex[:6])
        ingest.start()
        assert ingest.subscribed.wait(10)
        pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="dev-" + uuid.uuid4().hex[:6])
        pub.tls_set(ca_certs=str(cert))
        pub.connect("localhost", port)
        pub.loop_start()
        t = datetime(2026, 11, 28, tzinfo=UTC).isoformat()
        reading = {"station": "S1", "parameter": "pm25", "time": t, "value": 12}
        pub.publish("ecosense/v1/S1/json", json.dumps(reading), qos=1).wait_for_publish(5)
        wait_for(lambda: store.count_observations() == 1)
        pub.disconnect()
        pub.loop_stop()
        ingest.stop()
    finally:
        proc.terminate()
        proc.wait(10)


def test_up_subscribes_and_the_simulator_publishes(broker: str, tmp_path: Path) -> None:
    import httpx

    env = {"ECOSENSE_MQTT_URL": broker}
    with running(tmp_path, env=env) as platform:
        sim = subprocess.run(
            [
                sys.executable,
                "-m",
                "ecosense",
                "simulate",
                "--protocol",
                "mqtt",
                "--devices",
                "2",
                "--rate",
                "4",
                "--duration",
                "3",
                "--url",
                platform.http,
                "--prefix",
                "MQ",
            ],
            capture_output=True,
            text=True,
            env=environment(tmp_path, env),
            timeout=120,
        )
        assert sim.returncode == 0, sim.stderr
        sent = int(re.search(r"sent (\d+) readings", sim.stdout).group(1))  # type: ignore[union-attr]
        assert sent >= 16
        headers = {"Authorization": "Bearer " + platform.admin_token}

        def stored() -> int:
            return sum(
                len(
                    httpx.get(
                        platform.http + "/api/v1/observations",
                        headers=headers,
                        params={"station": s, "limit": 10_000},
                    ).json()["items"]
                )
                for s in ("MQ-BEIJING", "MQ-SHANGHAI")
            )

        wait_for(lambda: stored() == sent)
        assert platform.process.poll() is None
    assert platform.process.returncode == 0
