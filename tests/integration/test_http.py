"""The gateway over a real store: token → push → stored once → read back; bad input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecosense.app import create_app
from sensors.stations import Station
from sensors.strategies import json_values, observations, reading_items
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
#: devices may write this far back here, so that the fixed times of these tests stay writable
#: (the default, ECOSENSE_MAX_PAST_DAYS, is 30 days: tests/integration/test_validation.py)
FIXED_TIMES_WINDOW = timedelta(days=3650)
ADMIN = "operator-secret"


@pytest.fixture
def client(store: PostgresStore) -> Iterator[TestClient]:
    store.upsert_stations(
        [Station("S1", "One", "air", 116.4, 39.9), Station("S2", "Two", "air", 121.5, 31.2)]
    )
    ctx = ServiceContext(
        store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"), max_past=FIXED_TIMES_WINDOW
    )
    with TestClient(create_app(ctx)) as c:
        yield c


@pytest.fixture
def token(store: PostgresStore) -> str:
    return store.add_device("d1", "S1")


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def reading(**kw: object) -> dict[str, object]:
    r: dict[str, object] = {
        "station": "S1",
        "parameter": "pm25",
        "time": "2026-11-28T08:00:00+08:00",
        "value": 35.2,
    }
    r.update(kw)
    return r


def test_push_is_stored_once_and_read_back(client: TestClient, token: str) -> None:
    body = {
        "observations": [
            reading(),
            reading(time="2026-11-28T08:01:00+08:00", unit="mg/m3", value=0.04, flag="M"),
        ]
    }
    for _ in range(2):  # the device re-sends: nothing is duplicated
        r = client.post("/api/v1/observations", json=body, headers=auth(token))
        assert r.status_code == 200, r.text
        assert r.json() == {"accepted": 2, "rejected": 0, "errors": []}
    r = client.get(
        "/api/v1/observations", params={"station": "S1", "parameter": "a34004"}, headers=auth(token)
    )
    assert r.status_code == 200
    items = r.json()["items"]
    assert [(i["time"], i["value"], i["flag"]) for i in items] == [
        ("2026-11-28T08:00:00+08:00", 35.2, "N"),
        ("2026-11-28T08:01:00+08:00", 40.0, "M"),
    ]
    assert items[0]["source"] == {"protocol": "http", "device": "d1"}  # issue 12: provenance
    assert items[0]["received_at"].endswith("+08:00")
    assert items[0] | {"time": None, "value": None, "flag": None, "received_at": None} == {
        "station": "S1",
        "parameter": "pm25",
        "time": None,
        "value": None,
        "unit": "ug/m3",
        "flag": None,
        "interval": None,
        "statistic": None,
        "basis": "measured",
        "received_at": None,
        "source": {"protocol": "http", "device": "d1"},
    }
    assert r.json()["next_cursor"] is None


def test_a_bad_item_does_not_drop_the_good_ones(client: TestClient, token: str) -> None:
    future = (datetime.now(UTC) + timedelta(hours=2)).isoformat()
    r = client.post(
        "/api/v1/observations",
        headers=auth(token),
        json={
            "observations": [
                reading(),
                reading(station="NOPE"),
                reading(parameter="unobtainium"),
                reading(unit="zorks"),
                reading(value=float("inf")) | {"value": "Infinity"},
                reading(time=future),
                "junk",
                reading(time="2026-11-28T08:05:00+08:00"),
            ]
        },
    )
    assert r.status_code == 200
    answer = r.json()
    assert answer["accepted"] == 2 and answer["rejected"] == 6
    reasons = {e["index"]: e["reason"] for e in answer["errors"]}
    assert "unknown station" in reasons[1] and "unknown parameter" in reasons[2]
    assert "unknown unit" in reasons[3] and "number" in reasons[4]
    assert "ahead of the server clock" in reasons[5] and "JSON object" in reasons[6]
    r = client.get("/api/v1/observations", params={"station": "S1"}, headers=auth(token))
    assert len(r.json()["items"]) == 2


def test_non_finite_json_numbers_are_rejected(client: TestClient, token: str) -> None:
    raw = (
        '{"observations":[{"station":"S1","parameter":"pm25",'
        '"time":"2026-11-28T08:00:00+08:00","value":NaN}]}'
    )
    r = client.post("/api/v1/observations", content=raw, headers=auth(token))
    assert r.status_code == 200 and r.json()["rejected"] == 1
    assert "not finite" in r.json()["errors"][0]["reason"]


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"[]", b'{"observations": {}}', b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000],
)
def test_malformed_bodies_get_400(client: TestClient, token: str, body: bytes) -> None:
    r = client.post("/api/v1/observations", content=body, headers=auth(token))
    assert r.status_code == 400 and r.json()["detail"]


def test_missing_or_wrong_token_gets_401(client: TestClient) -> None:
    body = {"observations": [reading()]}
    assert client.post("/api/v1/observations", json=body).status_code == 401
    r = client.post("/api/v1/observations", json=body, headers=auth("es_forged"))
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = client.post("/api/v1/observations", json=body, headers={"Authorization": "Token x"})
    assert r.status_code == 401
    r = client.get("/api/v1/observations", params={"station": "S1"}, headers=auth("es_forged"))
    assert r.status_code == 401
    # issue 13: anonymous callers read public stations (S1 is an ambient-air station)
    assert client.get("/api/v1/observations", params={"station": "S1"}).status_code == 200


def test_a_device_writing_for_another_station_gets_403(
    client: TestClient, token: str, store: PostgresStore
) -> None:
    r = client.post(
        "/api/v1/observations",
        headers=auth(token),
        json={"observations": [reading(), reading(station="S2")]},
    )
    assert r.status_code == 403 and "S2" in r.json()["detail"]
    assert store.count_observations() == 0
    r = client.get("/api/v1/observations", params={"station": "S2"}, headers=auth(token))
    assert r.status_code == 403


def test_the_operator_reads_and_writes_everything(client: TestClient) -> None:
    r = client.post(
        "/api/v1/observations",
        headers=auth(ADMIN),
        json={"observations": [reading(station="S2"), reading()]},
    )
    assert r.json()["accepted"] == 2
    r = client.get("/api/v1/observations", headers=auth(ADMIN))
    assert {i["station"] for i in r.json()["items"]} == {"S1", "S2"}


def test_pagination_with_cursor(client: TestClient, token: str) -> None:
    items = [reading(time=f"2026-11-28T08:{m:02d}:00+08:00", value=m) for m in range(25)]
    client.post("/api/v1/observations", json={"observations": items}, headers=auth(token))
    values: list[float] = []
    params: dict[str, object] = {"station": "S1", "limit": 10}
    pages = 0
    while True:
        page = client.get("/api/v1/observations", params=params, headers=auth(token)).json()
        pages += 1
        values += [i["value"] for i in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert values == list(range(25)) and pages == 3
    r = client.get("/api/v1/observations", params={"cursor": "garbage!"}, headers=auth(token))
    assert r.status_code == 400
    r = client.get("/api/v1/observations", params={"limit": 10_001}, headers=auth(token))
    assert r.status_code == 422


def test_time_window_and_filters(client: TestClient, token: str) -> None:
    items = [reading(time=f"2026-11-28T08:{m:02d}:00+08:00", value=m) for m in range(10)]
    client.post("/api/v1/observations", json={"observations": items}, headers=auth(token))
    r = client.get(
        "/api/v1/observations",
        headers=auth(token),
        params={"start": "2026-11-28T08:02:00+08:00", "end": "2026-11-28T00:05:00Z"},
    )
    assert [i["value"] for i in r.json()["items"]] == [2, 3, 4]
    r = client.get("/api/v1/observations", headers=auth(token), params={"interval": "PT1H"})
    assert r.json()["items"] == []
    r = client.get("/api/v1/observations", headers=auth(token), params={"statistic": "median"})
    assert r.status_code == 400


def test_stations_are_public_and_health(client: TestClient) -> None:
    r = client.get("/api/v1/stations")
    assert [s["id"] for s in r.json()["items"]] == ["S1", "S2"]
    assert client.get("/healthz").json() == {
        "status": "ok",
        "roles": ["gateway"],
        "jobs_leader": False,
    }
    assert client.get("/docs").status_code == 200


def test_store_down_means_503_and_nothing_acknowledged(
    client: TestClient, token: str, store: PostgresStore
) -> None:
    store.close()
    r = client.post("/api/v1/observations", json={"observations": [reading()]}, headers=auth(token))
    assert r.status_code == 503 and r.headers["retry-after"]
    assert client.get("/healthz").status_code == 503


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        st.fixed_dictionaries(
            {"observations": st.lists(reading_items() | json_values, max_size=8)}
        ),
        json_values,
    )
)
def test_no_body_crashes_the_gateway(client: TestClient, body: object) -> None:
    raw = json.dumps(body, allow_nan=True)  # devices may send NaN/Infinity literals
    r = client.post("/api/v1/observations", content=raw, headers=auth(ADMIN))
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        answer = r.json()
        assert answer["accepted"] + answer["rejected"] == len(body["observations"])  # type: ignore[index]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(obs=st.lists(observations("S1"), min_size=1, max_size=5))
def test_valid_observations_round_trip_through_the_api(client: TestClient, obs: list) -> None:  # type: ignore[type-arg]
    items = [
        {
            "station": o.station,
            "parameter": o.parameter,
            "time": o.time.isoformat(),
            "value": o.value,
            "flag": o.flag,
        }
        for o in obs
    ]
    r = client.post("/api/v1/observations", json={"observations": items}, headers=auth(ADMIN))
    assert r.json()["rejected"] == 0
    for o in obs:
        got = client.get(
            "/api/v1/observations",
            headers=auth(ADMIN),
            params={
                "station": "S1",
                "parameter": o.parameter,
                "start": o.time.isoformat(),
                "end": (o.time + timedelta(microseconds=1)).isoformat(),
            },
        ).json()["items"]
        assert len(got) == 1
