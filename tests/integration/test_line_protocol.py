"""``POST /api/v2/write`` with InfluxDB's own client library, against a real gateway and store."""

from __future__ import annotations

import gzip
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
import uvicorn
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.exceptions import InfluxDBError
from influxdb_client.client.write_api import SYNCHRONOUS

from ecosense.app import create_app
from sensors.stations import Station
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
#: devices may write this far back here, so that the fixed times of these tests stay writable
#: (the default, ECOSENSE_MAX_PAST_DAYS, is 30 days: tests/integration/test_validation.py)
FIXED_TIMES_WINDOW = timedelta(days=3650)


@pytest.fixture
def gateway(store: PostgresStore) -> Iterator[str]:
    """The real gateway application served by uvicorn on a free loopback port."""
    store.upsert_stations(
        [Station("S1", "One", "air", 116.4, 39.9), Station("S2", "Two", "air", 121.5, 31.2)]
    )
    ctx = ServiceContext(
        store, hash_secret("operator"), ZoneInfo("Asia/Shanghai"), max_past=FIXED_TIMES_WINDOW
    )
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield url
    server.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture
def token(store: PostgresStore) -> str:
    return store.add_device("d1", "S1")


def test_influxdb_client_writes_points_records_and_lines(
    gateway: str, token: str, store: PostgresStore
) -> None:
    t = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)
    with InfluxDBClient(url=gateway, token=token, org="bureau") as client:
        api = client.write_api(write_options=SYNCHRONOUS)
        api.write(
            bucket="air",
            record=Point("S1").tag("unit", "mg/m3").field("pm25", 0.035).time(t, WritePrecision.S),
            write_precision=WritePrecision.S,
        )
        api.write(
            bucket="air",
            record="S1 a34002=61i,so2=10 "
            + str(int((t + timedelta(minutes=1)).timestamp() * 1000)),
            write_precision=WritePrecision.MS,
        )
        api.write(
            bucket="air",
            record=[
                {
                    "measurement": "S1",
                    "tags": {"flag": "M"},
                    "fields": {"no2": 40.5},
                    "time": t + timedelta(minutes=2),
                }
            ],
        )
    frame = store.read_frame(station="S1").sort_values(["time", "parameter"])
    got = list(zip(frame["parameter"], frame["value"], frame["flag"], strict=True))
    assert got == [
        ("pm25", pytest.approx(35.0), "N"),
        ("pm10", 61.0, "N"),
        ("so2", 10.0, "N"),
        ("no2", 40.5, "M"),
    ]


def test_partial_write_stores_the_good_lines_and_answers_like_influxdb(
    gateway: str, token: str, store: PostgresStore
) -> None:
    now_s = int(datetime.now(UTC).timestamp())
    body = "\n".join(
        [
            f"S1 pm25=1 {now_s}",
            "S1 pm25=",  # malformed
            f"S1 pm10=2,nonsense=3 {now_s}",  # one unknown parameter
            f'S1 note="hello" {now_s}',  # a string is not a reading
            f"S1 pm25=4 {now_s + 1}",
        ]
    )
    r = httpx.post(
        gateway + "/api/v2/write",
        params={"precision": "s", "org": "o", "bucket": "b"},
        headers={"Authorization": f"Token {token}"},
        content=body,
    )
    assert r.status_code == 400
    err = r.json()
    assert err["code"] == "invalid" and err["line"] == 2
    assert "partial write error (3 written)" in err["message"]
    assert "line 3: field nonsense" in err["message"] and "line 4" in err["message"]
    assert store.count_observations() == 3
    with InfluxDBClient(url=gateway, token=token, org="o") as client, pytest.raises(InfluxDBError):
        client.write_api(write_options=SYNCHRONOUS).write(bucket="b", record="S1 pm25=")


def test_default_precision_is_nanoseconds_and_default_time_is_now(
    gateway: str, token: str, store: PostgresStore
) -> None:
    ns = 1_795_824_000_123_456_789
    r = httpx.post(
        gateway + "/api/v2/write",
        content=f"S1 pm25=1 {ns}\nS1 pm10=2",
        headers={"Authorization": f"Token {token}"},
    )
    assert r.status_code == 204
    frame = store.read_frame(station="S1")
    times = dict(zip(frame["parameter"], frame["time"], strict=True))
    assert times["pm25"] == datetime(2026, 11, 28, 0, 0, 0, 123456, tzinfo=UTC)
    assert abs(times["pm10"] - datetime.now(UTC)) < timedelta(minutes=1)


def test_auth_gzip_precision_and_foreign_stations(
    gateway: str, token: str, store: PostgresStore
) -> None:
    url = gateway + "/api/v2/write"
    r = httpx.post(url, content="S1 pm25=1")
    assert r.status_code == 401 and r.json() == {
        "code": "unauthorized",
        "message": "unauthorized access",
    }
    headers = {"Authorization": f"Token {token}"}
    assert (
        httpx.post(url, params={"precision": "h"}, content="S1 pm25=1", headers=headers).status_code
        == 400
    )
    r = httpx.post(url, content="S2 pm25=1", headers=headers)
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    r = httpx.post(
        url, content=gzip.compress(b"S1 pm25=7"), headers={**headers, "Content-Encoding": "gzip"}
    )
    assert r.status_code == 204 and store.count_observations() == 1
    r = httpx.post(url, content=b"not gzip", headers={**headers, "Content-Encoding": "gzip"})
    assert r.status_code == 400
