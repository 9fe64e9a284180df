"""Field-device simulator: simulated stations push plausible readings to the gateway.

Values follow a daily cycle per parameter around a city-dependent level, with noise; each
device sends ``rate`` readings per second (cycling through its station's parameters) in one
batch per second, stamped with the current time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import httpx

from ingest import hj212
from sensors.parameters import lookup
from sensors.stations import Station
from store.postgres import PostgresStore

logger = logging.getLogger(__name__)

#: parameter → (level, daily amplitude as a fraction of level, hour of the daily peak,
#: noise sd as a fraction)
PROFILE: Final[dict[str, tuple[float, float, float, float]]] = {
    "so2": (12.0, 0.3, 9, 0.10),
    "no2": (35.0, 0.35, 8, 0.10),
    "co": (0.8, 0.3, 8, 0.08),
    "o3": (70.0, 0.6, 15, 0.08),
    "pm10": (75.0, 0.25, 8, 0.08),
    "pm25": (42.0, 0.25, 8, 0.08),
    "air_temp": (12.0, 0.4, 14, 0.03),
    "rh": (55.0, 0.25, 5, 0.03),
    "wind_speed": (2.5, 0.4, 14, 0.15),
    "ph": (7.6, 0.02, 15, 0.005),
    "do": (8.0, 0.15, 15, 0.03),
    "codmn": (3.6, 0.1, 10, 0.05),
    "nh3n": (0.45, 0.15, 10, 0.06),
    "tp": (0.12, 0.1, 10, 0.06),
    "water_temp": (16.0, 0.08, 16, 0.01),
    "conductivity": (450.0, 0.05, 12, 0.02),
    "flue_flow": (150.0, 0.1, 12, 0.03),
    "flue_so2": (25.0, 0.2, 12, 0.08),
    "flue_nox": (40.0, 0.2, 12, 0.08),
    "flue_dust": (5.0, 0.2, 12, 0.1),
    "flue_o2": (8.0, 0.05, 12, 0.03),
    "flue_co2": (180_000.0, 0.05, 12, 0.02),
    "flue_temp": (120.0, 0.05, 12, 0.02),
    "gamma": (85.0, 0.03, 4, 0.04),
    # greenhouse gases (ppm, ppb): highest at dawn, when the night's boundary layer holds them
    "co2": (425.0, 0.02, 6, 0.004),
    "ch4": (2050.0, 0.02, 6, 0.004),
    "n2o": (337.0, 0.002, 6, 0.001),
    # dB(A): a busy day, quieter nights (the trough at 02:00 is about 10 dB below the peak)
    "laeq": (55.0, 0.09, 14, 0.02),
    "lmax": (68.0, 0.08, 14, 0.03),
}

#: station kind → parameters its simulated device sends
KIND_PARAMETERS: Final[dict[str, tuple[str, ...]]] = {
    "air": ("pm25", "pm10", "so2", "no2", "co", "o3", "air_temp", "rh", "wind_speed"),
    "water": ("ph", "do", "codmn", "nh3n", "tp", "water_temp", "conductivity"),
    "cems": ("flue_flow", "flue_so2", "flue_nox", "flue_dust", "flue_o2", "flue_co2", "flue_temp"),
    "radiation": ("gamma",),
    "noise": ("laeq", "lmax"),
}


def station_parameters(station: Station) -> tuple[str, ...]:
    """The parameters a simulated station sends: its attribute ``measures`` (comma-separated
    codes, e.g. a greenhouse-gas station's ``co2,ch4,n2o``), else its kind's
    (:data:`KIND_PARAMETERS`)."""
    measures = station.attributes.get("measures")
    if isinstance(measures, str) and measures.strip():
        return tuple(m.strip() for m in measures.split(",") if m.strip())
    return KIND_PARAMETERS.get(station.kind, ())


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def stream_level(station: str, parameter: str) -> float:
    """The daily-mean level of a simulated stream (canonical unit): the parameter's typical
    level times a factor fixed per stream (0.6–1.8; 0.9–1.1 for physical quantities)."""
    level = PROFILE[parameter][0]
    factor = 0.6 + (_seed(station + parameter) % 1000) / 1000 * 1.2  # 0.6–1.8, fixed per stream
    if lookup(parameter).domain in ("met", "water", "radiation", "noise") or parameter in (
        "flue_o2", "co2", "ch4", "n2o",
    ):  # fmt: skip
        factor = 0.9 + (factor - 0.6) / 6  # 0.9–1.1: physical quantities vary less between sites
    return level * factor


def simulated_value(
    station: str,
    parameter: str,
    when: datetime,
    rng: random.Random,
    level: float | None = None,
) -> float:
    """A plausible reading of ``parameter`` (canonical unit) at ``station`` at ``when``, around
    ``level`` (default :func:`stream_level`)."""
    _, amplitude, peak_hour, noise = PROFILE[parameter]
    mean = stream_level(station, parameter) if level is None else level
    local_hour = (when.astimezone(UTC).hour + 8 + when.minute / 60) % 24
    cycle = math.cos(2 * math.pi * (local_hour - peak_hour) / 24)
    value = mean * (1 + amplitude * cycle) * (1 + rng.gauss(0, noise))
    p = lookup(parameter)
    return round(min(max(value, p.valid_min), p.valid_max), 3)


@dataclass
class SimulatedDevice:
    """A simulated device of one station, with its API token."""

    station: Station
    token: str
    parameters: tuple[str, ...]
    rng: random.Random = field(default_factory=random.Random)
    rate: float | None = None  # readings per second; None: the run's rate
    protocol: str = "http"
    mn: str | None = None
    pw: str | None = None
    levels: dict[str, float] = field(default_factory=dict)  # parameter → level override
    _next: int = 0
    _credit: float = 0.0

    def readings(self, count: int, now: datetime) -> list[dict[str, object]]:
        """``count`` readings spread over the second before ``now``."""
        out: list[dict[str, object]] = []
        for i in range(count):
            param = self.parameters[self._next % len(self.parameters)]
            self._next += 1
            t = now - timedelta(microseconds=int(1e6 * (count - i) / (count + 1)))
            out.append(
                {
                    "station": self.station.id,
                    "parameter": param,
                    "time": t.isoformat(),
                    "value": simulated_value(
                        self.station.id, param, t, self.rng, self.levels.get(param)
                    ),
                }
            )
        return out


PROTOCOLS: Final = ("http", "lineprotocol", "hj212", "mqtt")

#: station kind → HJ 212-2017 system code (Table 5)
_SYSTEM_CODES: Final = {
    "air": "22",
    "water": "21",
    "wastewater": "32",
    "cems": "31",
    "radiation": "38",
    "noise": "23",
}


def register(
    store: PostgresStore,
    stations: Sequence[Station],
    device_suffix: str = "sim",
    protocol: str | Callable[[Station], str] = "http",
    actor: str = "simulator",
) -> list[SimulatedDevice]:
    """Register ``stations`` and one simulated device each (``<station>-<device_suffix>``);
    return the devices with fresh credentials (API token; MN and password for HJ 212).
    Issuing them is audited (action ``device.token_issue``, by ``actor``); a device that was
    revoked stays revoked and is not simulated.

    Registering renews the credentials of a device of the same id, so the demo of
    ``ecosense up`` and ``ecosense simulate`` use different suffixes and do not lock each
    other out. ``protocol`` is one of :data:`PROTOCOLS`, or a function of the station.
    """
    from store import audit

    store.upsert_stations(stations)
    revoked = {d.id for d in store.list_devices() if d.state == "revoked"}
    devices = []
    issued: list[str] = []
    for s in stations:
        proto = protocol(s) if callable(protocol) else protocol
        if proto not in PROTOCOLS:
            raise ValueError(f"unknown protocol {proto!r}")
        device_id = f"{s.id}-{device_suffix}"
        if device_id in revoked:
            # a revocation is an operator's decision: a restart of the simulator must not undo it
            logger.warning(
                "device %s is revoked: not simulated (`ecosense devices rotate %s` brings it back)",
                device_id,
                device_id,
            )
            continue
        mn = pw = None
        if proto == "hj212":
            mn = hashlib.sha256(device_id.encode()).hexdigest()[:24].upper()
            pw = f"{random.randrange(10**6):06d}"
        token = store.add_device(device_id, s.id, mn=mn, password=pw, simulated=True)
        issued.append(device_id)
        devices.append(
            SimulatedDevice(
                s,
                token,
                station_parameters(s) or ("pm25",),
                random.Random(_seed(s.id)),
                protocol=proto,
                mn=mn,
                pw=pw,
            )
        )
    if issued:  # one entry for the batch, like any other issue of device credentials
        audit.record(
            store,
            actor,
            "device.token_issue",
            "devices:simulated",
            details={"devices": issued[:50], "count": len(issued)},
        )
    return devices


@dataclass
class SimulationStats:
    """Counts of a simulator run."""

    sent: int = 0
    accepted: int = 0
    failed_requests: int = 0


class _Senders:
    """How each protocol delivers a device's batch; returns how many readings were accepted,
    or ``None`` when the batch must be kept and re-sent."""

    def __init__(
        self, base_url: str, hj212_address: tuple[str, int] | None, mqtt_url: str | None
    ) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=10.0)
        self.hj212_address = hj212_address
        self.sockets: dict[str, tuple[socket.socket, hj212.FrameDecoder]] = {}
        self.mqtt: Any = None
        if mqtt_url is not None:
            import paho.mqtt.client as mqtt
            from paho.mqtt.enums import CallbackAPIVersion

            from ingest.mqtt import parse_url

            broker = parse_url(mqtt_url)
            self.mqtt = mqtt.Client(CallbackAPIVersion.VERSION2)
            if broker.user is not None:
                self.mqtt.username_pw_set(broker.user, broker.password)
            if broker.tls:
                self.mqtt.tls_set_context(ssl.create_default_context())
            self.mqtt.connect(broker.host, broker.port)
            self.mqtt.loop_start()

    def close(self) -> None:
        self.client.close()
        for sock, _ in self.sockets.values():
            sock.close()
        if self.mqtt is not None:
            self.mqtt.loop_stop()
            self.mqtt.disconnect()

    def send(self, d: SimulatedDevice, batch: list[dict[str, object]]) -> int | None:
        try:
            if d.protocol == "mqtt":
                if self.mqtt is None:
                    raise ValueError("no MQTT broker URL")
                info = self.mqtt.publish(
                    f"ecosense/v1/{d.station.id}/json", json.dumps({"observations": batch}), qos=1
                )
                info.wait_for_publish(10)  # PUBACK: the broker has it
                return len(batch) if info.is_published() else None
            if d.protocol == "http":
                r = self.client.post(
                    "/api/v1/observations",
                    json={"observations": batch},
                    headers={"Authorization": f"Bearer {d.token}"},
                )
                return int(r.json()["accepted"]) if r.status_code == 200 else None
            if d.protocol == "lineprotocol":
                body = "\n".join(
                    f"{b['station']} {b['parameter']}={b['value']} "
                    f"{_ns(datetime.fromisoformat(str(b['time'])))}"
                    for b in batch
                )
                r = self.client.post(
                    "/api/v2/write", content=body, headers={"Authorization": f"Token {d.token}"}
                )
                return len(batch) if r.status_code in (204, 400) else None
            return self._send_hj212(d, batch)
        except (httpx.HTTPError, OSError, ValueError) as exc:
            logger.warning("simulator %s: %s", d.station.id, exc)
            if d.token in self.sockets:
                self.sockets.pop(d.token)[0].close()
            return None

    def _send_hj212(self, d: SimulatedDevice, batch: list[dict[str, object]]) -> int | None:
        if self.hj212_address is None:
            raise ValueError("no HJ 212 address")
        if d.token not in self.sockets:
            sock = socket.create_connection(self.hj212_address, timeout=10)
            self.sockets[d.token] = (sock, hj212.FrameDecoder())
        sock, decoder = self.sockets[d.token]
        qns = []
        for b in batch:  # one 2011 packet per reading, Flag=5: HJ 212-2017, reply wanted
            t = datetime.fromisoformat(str(b["time"]))
            qn = hj212.qn_now(t)
            code = lookup(str(b["parameter"])).hj212[:1] or (str(b["parameter"]),)
            cp = (
                f"DataTime={t.astimezone(hj212.CST):%Y%m%d%H%M%S};"
                f"{code[0]}-Rtd={b['value']},{code[0]}-Flag=N"
            )
            sock.sendall(
                hj212.encode(
                    cn="2011",
                    st=_SYSTEM_CODES.get(d.station.kind, "22"),
                    mn=d.mn or "",
                    pw=d.pw or "",
                    qn=qn,
                    flag=5,
                    cp=cp,
                )
            )
            qns.append(qn)
        answered = 0
        while answered < len(qns):
            data = sock.recv(65536)
            if not data:
                raise OSError("connection closed by the platform")
            answered += sum(1 for f in decoder.feed(data) if isinstance(f, bytes))
        return len(batch)


def _ns(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def run(
    base_url: str,
    devices: Sequence[SimulatedDevice],
    rate: float,
    *,
    hj212_address: tuple[str, int] | None = None,
    mqtt_url: str | None = None,
    duration: float | None = None,
    stop: threading.Event | None = None,
) -> SimulationStats:
    """Push ``rate`` readings per second per device, each device over its own protocol
    (HTTP JSON and line protocol to ``base_url``, HJ 212 to ``hj212_address``, MQTT JSON
    with QoS 1 to the broker at ``mqtt_url``).

    A device with its own ``rate`` uses that instead. Runs for ``duration`` seconds, or until
    ``stop`` is set. A failed delivery is retried with the next batch (the device keeps its
    readings, as a real logger does).
    """
    stop = stop or threading.Event()
    stats = SimulationStats()
    deadline = None if duration is None else time.monotonic() + duration
    backlog: dict[str, list[dict[str, object]]] = {d.token: [] for d in devices}
    senders = _Senders(base_url, hj212_address, mqtt_url)
    try:
        while not stop.is_set():
            tick = time.monotonic()
            if deadline is not None and tick >= deadline:
                break
            now = datetime.now(UTC)
            for d in devices:
                d._credit += rate if d.rate is None else d.rate
                n = int(d._credit)
                d._credit -= n
                batch = backlog[d.token] + d.readings(n, now)
                if not batch:
                    continue
                accepted = senders.send(d, batch)
                if accepted is not None:
                    stats.sent += len(batch)
                    stats.accepted += accepted
                    backlog[d.token] = []
                else:
                    stats.failed_requests += 1
                    backlog[d.token] = batch[-10_000:]
            stop.wait(max(0.0, 1.0 - (time.monotonic() - tick)))
    finally:
        senders.close()
    return stats
