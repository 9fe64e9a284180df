"""MQTT: a message the store refuses for good is answered with its reason and acknowledged.

Issue 12: "MQTT has the same loop" (a refused batch re-delivered forever) — now "MQTT likewise
publishes the reason to …/result and acknowledges".
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from ingest.mqtt import MqttIngest
from sensors.stations import Station
from store.context import ServiceContext
from store.postgres import PostgresStore, SourcedBatch, hash_secret
from tests.integration.test_mqtt import broker, publisher, wait_for

pytestmark = pytest.mark.integration
__all__ = ["broker"]  # the fixture, used by name


def test_a_batch_refused_for_a_deleted_station_is_answered_and_acknowledged(
    broker: str, store: PostgresStore
) -> None:
    """The station is deleted between the check of a message and its write (an operator
    removes it while its device publishes): the store refuses the batch (NotFound). The reason
    goes to ``…/S1/result``, the message is acknowledged — a new session with the same client
    id gets nothing re-delivered — and later messages are stored."""
    store.upsert_stations(
        [Station("S1", "One", "air", 116.4, 39.9), Station("S2", "Two", "air", 121.5, 31.2)]
    )
    writes: list[str] = []

    def delete_then_write(batches: Sequence[SourcedBatch]) -> int:
        station = batches[0][1][0].station
        writes.append(station)
        if station == "S1":
            with store.connection() as conn:
                conn.execute("DELETE FROM stations WHERE id = 'S1'")
        return store.write_batches(batches)

    ctx = ServiceContext(
        store, hash_secret("op"), ZoneInfo("Asia/Shanghai"), writer=delete_then_write
    )
    client_id = "ecosense-" + uuid.uuid4().hex[:6]
    ingest = MqttIngest(broker, ctx, client_id=client_id)
    ingest.start()
    results: dict[str, list[dict[str, object]]] = {"S1": [], "S2": []}
    pub = publisher(broker)
    t = datetime(2026, 11, 28, tzinfo=UTC).isoformat()
    try:
        assert ingest.subscribed.wait(10)
        pub.subscribe("ecosense/v1/+/result", qos=1)
        pub.on_message = lambda _c, _u, m: results[m.topic.split("/")[2]].append(
            json.loads(m.payload)
        )
        time.sleep(0.3)
        one = {"station": "S1", "parameter": "pm25", "time": t, "value": 35.2}
        pub.publish("ecosense/v1/S1/json", json.dumps(one), qos=1).wait_for_publish(5)
        wait_for(lambda: len(results["S1"]) == 1)
        two = {"station": "S2", "parameter": "pm25", "time": t, "value": 12.0}
        pub.publish("ecosense/v1/S2/json", json.dumps(two), qos=1).wait_for_publish(5)
        pub.publish("ecosense/v1/S2/json", b"\x00\xff\xfe", qos=1).wait_for_publish(5)
        wait_for(lambda: len(results["S2"]) == 2)
    finally:
        ingest.stop()
    refused = results["S1"][0]
    assert refused["accepted"] == 0 and refused["rejected"] == 1
    assert "NotFound" in str(refused["errors"]) and "S1" in str(refused["errors"])
    assert results["S2"][0] == {"accepted": 1, "rejected": 0, "errors": []}
    assert results["S2"][1]["accepted"] == 0 and "not valid JSON" in str(results["S2"][1])
    assert store.count_observations() == 1
    assert writes == ["S1", "S2"]

    # Nothing is re-delivered to the resumed session: every message was acknowledged.
    again = MqttIngest(broker, ctx, client_id=client_id)
    again.start()
    try:
        assert again.subscribed.wait(10)
        time.sleep(2.0)
        assert again.messages == 0 and writes == ["S1", "S2"]
    finally:
        again.stop()
        pub.loop_stop()
