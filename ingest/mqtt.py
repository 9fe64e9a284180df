"""MQTT subscriber: devices publish readings to a broker, EcoSense takes them with QoS 1.

Topics (``ROOT`` = ``ecosense/v1``):

- ``ROOT/<station>/json`` — ``{"observations": [...]}`` as ``POST /api/v1/observations``
  (a bare list or a single reading object is accepted too);
- ``ROOT/<station>/lp`` — InfluxDB line protocol (nanosecond timestamps, or none).

Every reading must name the topic's station (in line protocol, the measurement). Device
authentication is the broker's: give each device its own broker user whose ACL lets it publish
only to ``ROOT/<its station>/#`` (Mosquitto: ``password_file`` and ``acl_file``). EcoSense
subscribes with a persistent session (``clean_session=False``) and acknowledges a message
(PUBACK) only after its readings are durable — in the store or the local spool — so the broker
keeps and re-delivers anything not yet taken, across EcoSense restarts.

Any number of gateway instances subscribe at once: each with its own client id, kept in its
data dir (:func:`client_id`, so a restarted instance resumes its own session), all in one
*shared subscription* (``$share/ecosense/...``, MQTT 5 and Mosquitto ≥ 1.6 for 3.1.1 clients),
so the broker hands each message to one of them. Mosquitto shares among persistent sessions
whether connected or not: while an instance is down, its share of the messages waits in its
session until it is back (as every QoS 1 message does for a lone subscriber).
``mqtts://`` connects over TLS, verifying the broker with the system's trust store
(``SSL_CERT_FILE`` names a private CA's bundle). The outcome of each
message (counts and reasons) is published, QoS 0, to ``ROOT/<station>/result``, and audited
once (actor ``mqtt:<station>``: the broker, not EcoSense, knows the device). A message the
store refuses for good (not "unavailable": e.g. its station was deleted meanwhile) is
acknowledged too, with the reason in its result — re-delivering it would loop forever.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import ssl
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest import lineprotocol
from ingest.accept import ingest_items
from ingest.batch import RawColumns
from sensors.observations import Source
from store.context import Principal, ServiceContext

logger = logging.getLogger(__name__)

ROOT = "ecosense/v1"
#: the shared-subscription group every gateway instance joins
GROUP = "ecosense"
#: the file, in an instance's data dir, holding its MQTT client id
CLIENT_ID_FILE = "mqtt-client-id"
#: Provenance of MQTT readings: the broker authenticates publishers, so no device id is known.
_MQTT = Source("mqtt")


@dataclass(frozen=True)
class BrokerUrl:
    """Where and how to reach the broker (``ECOSENSE_MQTT_URL``)."""

    host: str
    port: int
    user: str | None
    password: str | None
    tls: bool


def parse_url(url: str) -> BrokerUrl:
    """``mqtt://user:pass@host:port`` (port 1883 by default) or ``mqtts://…`` (TLS, 8883)."""
    u = urlparse(url)
    if u.scheme not in ("mqtt", "tcp", "mqtts", "ssl") or not u.hostname:
        raise ValueError(
            f"ECOSENSE_MQTT_URL {url!r}: expected mqtt://[user:pass@]host[:port] or mqtts://…"
        )
    try:
        port = u.port
    except ValueError:
        raise ValueError(f"ECOSENSE_MQTT_URL {url!r}: the port is not a number") from None
    tls = u.scheme in ("mqtts", "ssl")
    return BrokerUrl(
        u.hostname,
        port or (8883 if tls else 1883),
        unquote(u.username) if u.username else None,
        unquote(u.password) if u.password else None,
        tls,
    )


def client_id(data_dir: Path) -> str:
    """This instance's MQTT client id, ``ecosense-<12 hex>``: made once, kept in its data dir,
    so that a restarted instance resumes its own persistent session and no two instances
    (each has its own data dir) ever take each other's."""
    path = Path(data_dir) / CLIENT_ID_FILE
    try:
        known = path.read_text("ascii").strip()
    except (OSError, UnicodeDecodeError):
        known = ""
    if re.fullmatch(r"ecosense-[0-9a-f]{12}", known):
        return known
    made = "ecosense-" + secrets.token_hex(6)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(made + "\n", "ascii")
    os.replace(tmp, path)
    return made


def subscriptions() -> list[tuple[str, int]]:
    """The shared subscriptions every instance makes (QoS 1)."""
    return [(f"$share/{GROUP}/{ROOT}/+/{kind}", 1) for kind in ("json", "lp")]


def message_items(payload: bytes | bytearray, kind: str) -> tuple[Sequence[Any], list[str]]:
    """Raw reading items of a message, and problems that reject the whole message or lines."""
    if kind == "json":
        try:
            doc = json.loads(bytes(payload))
        except (ValueError, RecursionError) as exc:
            return [], [f"payload is not valid JSON: {exc}"]
        if isinstance(doc, dict) and "observations" in doc:
            doc = doc["observations"]
        if isinstance(doc, dict):
            doc = [doc]
        if not isinstance(doc, list):
            return [], ['payload must be {"observations": [...]}, a list, or one reading']
        return doc, []
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return [], ["payload is not UTF-8 text"]
    items, _, errors = lineprotocol.parse_items(text, 1)
    errors.sort()
    return items, [f"line {n}: {reason}" for n, reason in errors]


class MqttIngest:
    """The subscriber, running paho's network loop in a background thread."""

    def __init__(self, url: str, ctx: ServiceContext, client_id: str) -> None:
        broker = parse_url(url)
        self.host, self.port = broker.host, broker.port
        self.client_id = client_id
        self.ctx = ctx
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            manual_ack=True,
        )
        if broker.user is not None:
            self.client.username_pw_set(broker.user, broker.password)
        if broker.tls:
            # the system's trust store (SSL_CERT_FILE for a private CA), the host name checked
            self.client.tls_set_context(ssl.create_default_context())
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.reconnect_delay_set(1, 30)
        self.subscribed = threading.Event()
        self.messages = 0

    def start(self) -> None:
        """Connect (and keep reconnecting) in the background."""
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            logger.warning("mqtt: connection to %s:%s refused: %s", self.host, self.port, reason)
            return
        client.subscribe(subscriptions())

    def _on_subscribe(
        self, _client: mqtt.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any
    ) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:  # e.g. the broker's ACL does not let this user read the shared topics
            logger.error(
                "mqtt: the broker at %s:%s refused the subscription %s: %s",
                self.host,
                self.port,
                [t for t, _ in subscriptions()],
                ", ".join(refused),
            )
            return
        logger.info("mqtt: subscribed at %s:%s as %s", self.host, self.port, self.client_id)
        self.subscribed.set()

    def _on_message(self, client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        if len(parts) != 4 or parts[3] not in ("json", "lp"):
            client.ack(msg.mid, msg.qos)
            return
        station, kind = parts[2], parts[3]
        items, problems = message_items(msg.payload, kind)
        mine: Sequence[Any]
        if isinstance(items, RawColumns):  # line protocol: columns, kept as columns
            ours = [n for n, s in enumerate(items.stations) if s == station]
            mine = items if len(ours) == len(items) else items.select(ours)
            theirs: Iterable[int] = sorted(set(range(len(items))).difference(ours))
        else:
            mine = [i for i in items if isinstance(i, dict) and i.get("station") == station]
            theirs = (
                n
                for n, i in enumerate(items)
                if not (isinstance(i, dict) and i.get("station") == station)
            )
        problems += [f"item {n}: not for station {station}" for n in theirs]
        try:
            result = ingest_items(
                self.ctx, Principal(None), mine, _MQTT, device=True, actor=f"mqtt:{station}"
            )
        except OSError as exc:  # the store is unavailable and the spool failed: not durable
            logger.error("mqtt: %s not stored, the broker will re-deliver it: %s", msg.topic, exc)
            # Un-acknowledged messages are re-delivered when the session resumes: reconnect.
            threading.Timer(5.0, client.reconnect).start()
            return
        except Exception as exc:  # refused for good: re-delivery would loop forever
            logger.warning("mqtt: %s refused by the store, acknowledged: %s", msg.topic, exc)
            client.ack(msg.mid, msg.qos)
            self.messages += 1
            problems.insert(0, f"batch refused, nothing stored: {type(exc).__name__}: {exc}")
            self._publish_result(client, station, 0, len(mine) + len(problems) - 1, problems)
            return
        client.ack(msg.mid, msg.qos)
        self.messages += 1
        problems += [f"item {i}: {reason}" for i, reason in result.rejected]
        if problems:
            logger.warning("mqtt %s: %s", msg.topic, "; ".join(problems[:10]))
        self._publish_result(client, station, len(result.accepted), len(problems), problems)

    @staticmethod
    def _publish_result(
        client: mqtt.Client, station: str, accepted: int, rejected: int, errors: list[str]
    ) -> None:
        """The outcome of one message, QoS 0, on ``ROOT/<station>/result``."""
        doc = {"accepted": accepted, "rejected": rejected, "errors": errors[:100]}
        # a lone surrogate quoted from a payload is written as its JSON escape
        payload = json.dumps(doc, ensure_ascii=False).encode("utf-8", "backslashreplace")
        client.publish(f"{ROOT}/{station}/result", payload, qos=0)
