"""No input gives a 500 (issue 12): every route of the OpenAPI document, driven with arbitrary
strings in every query and path parameter (and as the body of POST routes), with and without
a token, on the real application over the real store.

Issue 12: "NUL characters or lone surrogates in a station id, a bad cursor,
``start=0001-01-01``, ``end=9999-12-31T23:59:59-14:00`` give 500s" — and "a hypothesis test
drives every route with arbitrary strings and asserts none does". The routes are read from
the OpenAPI document, so routes added later are driven too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.params import encode_cursor
from api.ratelimit import RateLimits
from ecosense.app import create_app
from ingest.hj212_server import Hj212Server, ThreadedHj212Server
from sensors.observations import Observation, Source
from sensors.stations import Station
from sensors.strategies import json_values
from store import derived
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
ADMIN = "operator-secret"
T0 = datetime(2026, 11, 28, tzinfo=UTC)


def _routes() -> list[tuple[str, str, list[dict[str, Any]], bool]]:
    """(method, path, parameters, has a body) of every operation in the OpenAPI document."""
    ctx = ServiceContext(None, hash_secret(ADMIN), UTC)  # type: ignore[arg-type]
    doc = create_app(ctx).openapi()
    routes = []
    for path, item in sorted(doc["paths"].items()):
        for method, op in sorted(item.items()):
            routes.append((method.upper(), path, op.get("parameters", []), "requestBody" in op))
    return routes


ROUTES = _routes()

#: Values that broke, or could break, a parser, the database driver or a time conversion.
ODD = [
    "",
    " ",
    "0",
    "-1",
    "1e308",
    "-1e400",
    "NaN",
    "inf",
    "9" * 40,
    "-" + "9" * 25,
    "0001-01-01",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31",
    "1677-09-21T00:12:43",
    "2262-04-11T23:47:17Z",
    "2026-11-28T08:00:00+08:00",
    "2026-11-28",
    "2026-13-45T25:61",
    "S1",
    "S1\x00",
    "\x00",
    "\ud800",
    "S\udfff1",
    "pm25",
    "a34004",
    "PT1H",
    "P1D-MAX8H",
    "station",
    "city",
    "live",
    "open",
    "ns",
    "s",
    "'; DROP TABLE stations; --",
    "%",
    "\u202e\ufeff",
    "监测站",
    "null",
    "[]",
]
_zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-14)), ZoneInfo("Asia/Shanghai")]
)
times = st.datetimes(min_value=datetime.min, max_value=datetime.max, timezones=_zones).map(
    datetime.isoformat
) | st.datetimes(min_value=datetime.min, max_value=datetime.max).map(datetime.isoformat)
key_values = st.integers() | st.text(max_size=8) | times | st.none() | st.floats()
cursors = st.lists(key_values, max_size=4).map(
    lambda values: base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")
) | st.lists(st.integers() | st.text(max_size=8) | st.datetimes(timezones=_zones), max_size=4).map(
    lambda values: encode_cursor(*values)
)
texts = (
    st.sampled_from(ODD)
    | st.text(alphabet=st.characters(blacklist_categories=()), max_size=30)
    | st.integers().map(str)
    | st.floats().map(str)
    | times
    | cursors
)


def _either(*good: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(good) | st.sampled_from(ODD) | texts | json_values


#: Readings that are valid but for one field (or two).
items = st.fixed_dictionaries(
    {
        "station": _either("S1", "S2"),
        "parameter": _either("pm25", "a34004"),
        "time": _either("2026-11-28T08:00:00+08:00") | times,
        "value": _either(35.2) | st.floats() | st.integers(),
    },
    optional={"unit": _either("ug/m3", "mg/m3"), "flag": _either("N", "M")},
)
_GOOD = {"station": "S1", "parameter": "pm25", "time": "2026-11-28T08:00:00+08:00", "value": 1}
#: The issue's reproductions as bodies: one bad field in an otherwise good reading.
CRAFTED = (
    [
        json.dumps({"observations": [_GOOD | {key: bad}, _GOOD]}).encode("utf-8", "surrogatepass")
        for key in ("station", "parameter", "time", "unit", "flag")
        for bad in ("S1\x00", "\ud800", "0001-01-01", "9999-12-31T23:59:59-14:00")
    ]
    + [
        json.dumps({"observations": [_GOOD | {"value": v}]}).encode()
        for v in (1e308, -1.0, 10**400)
    ]
    + [
        line.encode("utf-8", "surrogatepass")
        for line in (
            "S1\x00 pm25=1 1",
            "S1 pm\x0025=1 1",
            "S\ud8001 pm25=1 1",
            "S1 pm25=1 -62135596800000000000",
            "S1 pm25=1 99999999999999999999999",
            "S1 pm25=1e400 1795824000000000000",
            "S1,unit=\x00 pm25=1 1795824000000000000",
        )
    ]
)
bodies = (
    st.sampled_from(CRAFTED)
    | st.lists(items, min_size=1, max_size=3).map(
        lambda batch: json.dumps({"observations": batch}).encode("utf-8", "surrogatepass")
    )
    | st.binary(max_size=100)
    | texts.map(lambda t: t.encode("utf-8", "surrogatepass"))
    | json_values.map(lambda v: json.dumps(v).encode("utf-8", "surrogatepass"))
    | st.builds(
        lambda m, f, v, t: f"{m} {f}={v} {t}".encode("utf-8", "surrogatepass"),
        st.sampled_from(["S1", "S2", "S1\x00"]) | texts,
        st.sampled_from(["pm25", "a34004"]) | texts,
        st.integers().map(str) | texts,
        st.integers().map(str) | texts,
    )
    | st.fixed_dictionaries({"cn": st.sampled_from(["1011", "1062"]) | texts, "cp": texts}).map(
        lambda d: json.dumps(d).encode("utf-8", "surrogatepass")
    )
)


def _q(value: str) -> str:
    return quote(value, safe="", errors="surrogatepass")


@pytest.fixture
def server_admin_url(embedded_admin_url: str) -> str:
    """One server is enough here (the answers do not depend on TimescaleDB): keeps it short."""
    return embedded_admin_url


@pytest.fixture
def client(store: PostgresStore) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The gateway as ``ecosense up`` builds it (HJ 212 server included), over a store with
    stations, a device, readings and aggregates; yields it with the Authorization header of
    each kind of caller."""
    store.upsert_stations(
        [Station("S1", "One", "air", 116.4, 39.9), Station("S2", "Two", "air", 121.5, 31.2)]
    )
    device = store.add_device("d1", "S1", mn="MN1", password="pw")
    store.write_observations(
        [Observation("S1", "pm25", T0 + timedelta(minutes=i), float(i)) for i in range(5)],
        source=Source("http", "d1"),
    )
    with store.connection() as conn:
        derived.upsert(
            conn,
            "aggregates",
            pd.DataFrame(
                {
                    "scope": "station",
                    "subject": ["S1", "S1", "S2"],
                    "parameter": "pm25",
                    "period": "PT1H",
                    "start": [T0, T0 + timedelta(hours=1), T0],
                    "value": [1.0, None, 3.0],
                    "count": [45.0, 0.0, 60.0],
                    "valid": [True, False, True],
                    "unit": "ug/m3",
                }
            ),
        )
    hj212 = ThreadedHj212Server(Hj212Server(store, idle_timeout=3.0))
    hj212.start("127.0.0.1", 0)
    # many anonymous requests and sign-ins from one client: the rate limits raised, explicitly
    # (their defaults are tested in test_rate_limits.py)
    unlimited = RateLimits(public="1000000/minute", auth="1000000/minute")
    app = create_app(
        ServiceContext(store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai")), unlimited
    )
    app.state.hj212_command = hj212.command
    callers = {"anonymous": "", "operator": f"Bearer {ADMIN}", "device": f"Bearer {device}"}
    try:
        with TestClient(app, raise_server_exceptions=True) as c:
            yield c, callers
    finally:
        hj212.stop()


def test_the_routes_are_read_from_openapi() -> None:
    """Every route of the contract that exists is driven (new ones join by themselves)."""
    paths = {(m, p) for m, p, _, _ in ROUTES}
    assert {
        ("GET", "/api/v1/stations"),
        ("GET", "/api/v1/observations"),
        ("GET", "/api/v1/aggregates"),
        ("GET", "/api/v1/alerts"),
        ("POST", "/api/v1/observations"),
        ("POST", "/api/v2/write"),
    } <= paths


@pytest.mark.parametrize(
    ("method", "path", "parameters", "has_body"),
    ROUTES,
    ids=[f"{m} {p}" for m, p, _, _ in ROUTES],
)
def test_no_input_gives_a_500(
    client: tuple[TestClient, dict[str, str]],
    method: str,
    path: str,
    parameters: list[dict[str, Any]],
    has_body: bool,
) -> None:
    """Arbitrary text in every query and path parameter (and as the body of a POST), from an
    anonymous caller, the operator and a device: never a status ≥ 500."""
    http, callers = client
    fields = [p for p in parameters if p["in"] in ("query", "path")]
    needed = {p["name"]: texts for p in fields if p["in"] == "path" or p.get("required")}
    optional = {p["name"]: texts for p in fields if p["name"] not in needed}

    def driver(authorization: str) -> Any:
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        )
        @given(
            values=st.fixed_dictionaries(needed, optional=optional),
            body=bodies if has_body or method == "POST" else st.just(b""),
        )
        def drive(values: dict[str, str], body: bytes) -> None:
            url = path
            query = []
            for p in fields:
                if p["name"] not in values:
                    continue
                if p["in"] == "path":
                    url = url.replace("{" + p["name"] + "}", _q(values[p["name"]]) or "%20")
                else:
                    query.append(f"{_q(p['name'])}={_q(values[p['name']])}")
            if query:
                url += "?" + "&".join(query)
            given_auth = authorization
            if path == "/api/v2/write":  # InfluxDB's scheme
                given_auth = authorization.replace("Bearer", "Token")
            headers = {"Authorization": given_auth} if given_auth else {}
            answer = http.request(method, url, content=body or None, headers=headers)
            assert answer.status_code < 500, (method, url, body, answer.status_code, answer.text)

        return drive

    for authorization in callers.values():
        driver(authorization)()


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"station": "S1\x00"}, 400),
        ({"station": "S\ud8001"}, 200),  # a surrogate cannot cross HTTP: it arrives as U+FFFD
        ({"cursor": "not-a-cursor"}, 400),
        ({"cursor": encode_cursor("S1", 2**80)}, 400),
        ({"start": "0001-01-01"}, 200),
        ({"end": "9999-12-31T23:59:59-14:00"}, 200),
        ({"start": "0001-01-01", "end": "9999-12-31T23:59:59-14:00"}, 200),
        ({"limit": "0"}, 422),
        ({"limit": "10001"}, 422),
        ({"limit": "9" * 40}, 422),
    ],
)
def test_the_issue_s_inputs_on_observations(
    client: tuple[TestClient, dict[str, str]], params: dict[str, str], status: int
) -> None:
    """Issue 12's reproductions: each a 400/422 or an answer, never a 500; reading a range
    that names any time is never an error (it is clamped)."""
    http, callers = client
    query = "&".join(f"{k}={_q(v)}" for k, v in params.items())
    answer = http.get(
        f"/api/v1/observations?{query}", headers={"Authorization": callers["operator"]}
    )
    assert answer.status_code == status, answer.text
    if status == 200 and "station" not in params:
        assert len(answer.json()["items"]) == 5


def test_aggregates_time_range_at_the_edges(client: tuple[TestClient, dict[str, str]]) -> None:
    http, _ = client
    answer = http.get(
        "/api/v1/aggregates",
        params={"period": "PT1H", "start": "0001-01-01", "end": "9999-12-31T23:59:59-14:00"},
    )
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["items"]) == 3
