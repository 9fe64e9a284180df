"""The MQTT subscriber's settings: the broker URL and the instance's client id (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.mqtt import CLIENT_ID_FILE, client_id, parse_url, subscriptions


def test_broker_urls() -> None:
    plain = parse_url("mqtt://ecosense:p%40ss@mosquitto")
    assert (plain.host, plain.port, plain.user, plain.password, plain.tls) == (
        "mosquitto",
        1883,
        "ecosense",
        "p@ss",
        False,
    )
    tls = parse_url("mqtts://broker.example:9883")
    assert (tls.port, tls.tls, tls.user) == (9883, True, None)
    assert parse_url("mqtts://broker").port == 8883


@pytest.mark.parametrize("url", ["http://x", "mqtt://", "mqtt://h:port", "broker:1883"])
def test_bad_broker_urls_are_clear_errors(url: str) -> None:
    with pytest.raises(ValueError, match="ECOSENSE_MQTT_URL"):
        parse_url(url)


def test_the_client_id_is_made_once_per_data_dir(tmp_path: Path) -> None:
    first = client_id(tmp_path / "one")
    assert first.startswith("ecosense-") and client_id(tmp_path / "one") == first
    assert client_id(tmp_path / "two") != first
    (tmp_path / "one" / CLIENT_ID_FILE).write_text("garbage")  # a damaged file: a new id
    assert client_id(tmp_path / "one") not in (first, "garbage")


def test_every_instance_joins_one_shared_subscription() -> None:
    assert subscriptions() == [
        ("$share/ecosense/ecosense/v1/+/json", 1),
        ("$share/ecosense/ecosense/v1/+/lp", 1),
    ]
