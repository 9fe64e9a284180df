"""OGC API – Features at ``/ogc`` (issue 16, item 4), read by a real client: OWSLib's
``Features`` against the gateway on a uvicorn socket. Done when "OWSLib lists the collections
and reads every station back, with paging"; plus the Core requirements checked over HTTP —
``bbox`` (CRS84), ``datetime`` (instant and intervals), ``limit``/``offset`` with ``next`` and
``prev`` links, 400 for a bad or unknown query parameter (``/req/core/query-param-invalid``,
``…-unknown``), 404 for an unknown collection or feature, ``application/geo+json`` items."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pandas as pd
import pytest
import uvicorn

from access import Grade, Role
from access.passwords import hash_password
from api.ratelimit import RateLimits
from ecosense.app import create_app
from sensors.stations import Station
from store import derived, users
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
ADMIN = "break-glass-secret"
CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"
GEOJSON = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson"
#: 23 public air stations along a line of longitude 100.0 … 122.0 (one degree apart)
PUBLIC = [f"P{i:02d}" for i in range(23)]
#: the running hour's start, set when the world is made (not at import: a suite collected
#: before an hour turns runs this module after it)
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
#: the latest complete hour of P00 … P09 (P00–P04 two hours earlier)
RECENT, EARLIER = NOW - timedelta(hours=1), NOW - timedelta(hours=3)


def _set_the_hours() -> None:
    """The hours as of now; close to an hour's end, first wait for the next hour, so that the
    running hour stays the running one while the module's tests run."""
    global NOW, RECENT, EARLIER
    now = datetime.now(UTC)
    left = 3600 - (now.minute * 60 + now.second + now.microsecond / 1e6)
    if left < 120:
        time.sleep(left + 1)
    NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    RECENT, EARLIER = NOW - timedelta(hours=1), NOW - timedelta(hours=3)


@dataclass(frozen=True)
class World:
    url: str
    store: PostgresStore
    headers: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def server_admin_url(embedded_admin_url: str) -> str:
    return embedded_admin_url


@pytest.fixture(scope="module")
def store_module(server_admin_url: str) -> Iterator[PostgresStore]:
    import uuid

    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    store = PostgresStore(make_conninfo(server_admin_url, dbname=name))
    store.migrate()
    yield store
    store.close()
    with psycopg.connect(server_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def world(store_module: PostgresStore) -> Iterator[World]:
    """The public stations P00–P22 (P00–P09 with latest values), an internal air station A2,
    a CEMS stack C1 (sensitive), a layer ``zones`` stored in Web Mercator; the gateway on a
    free loopback port."""
    import geopandas as gpd
    import shapely

    from store import gis as gis_store

    _set_the_hours()
    store = store_module
    stations = [
        Station(s, f"Station {s}", "air", 100.0 + i, 30.0, {"city": "Chengdu"})
        for i, s in enumerate(PUBLIC)
    ]
    stations += [
        Station("A2", "Internal", "air", 116.4, 39.9, {"city": "Beijing"}),
        Station("C1", "Stack", "cems", 116.5, 39.8),
    ]
    store.upsert_stations(stations)
    hours = [(s, RECENT if i >= 5 else EARLIER) for i, s in enumerate(PUBLIC[:10])]
    hours += [("A2", RECENT), ("C1", RECENT)]
    frame = pd.DataFrame(
        [
            {"subject": s, "parameter": p, "start": start, "value": v, "unit": u}
            for s, start in hours
            for p, v, u in (("pm25", 35.0, "ug/m3"), ("co", 0.8, "mg/m3"))
        ]
        + [  # an older hour and the running one (incomplete): neither is the latest
            {
                "subject": "P05",
                "parameter": "pm25",
                "start": EARLIER,
                "value": 99.0,
                "unit": "ug/m3",
            },
            {"subject": "P05", "parameter": "pm25", "start": NOW, "value": 77.0, "unit": "ug/m3"},
        ]
    ).assign(scope="station", period="PT1H", count=60, valid=True)
    boxes = gpd.GeoDataFrame(
        {"name": ["east", "west"], "area_km2": [12.5, 7.0]},
        geometry=[shapely.box(0, 0, 1, 1), shapely.box(116, 39, 117, 40)],
        crs="EPSG:4326",
    ).to_crs(3857)
    with store.connection() as conn:
        users.set_station_grade(conn, "A2", Grade.INTERNAL)
        derived.upsert(conn, "aggregates", frame)
        gis_store.save_layer(conn, "zones", boxes, "name", "zones.gpkg")
        for role in (Role.VIEWER, Role.ANALYST):
            users.add_user(conn, role.label, role, hash_password(f"pw-{role.label}"))
    ctx = ServiceContext(store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"))
    app = create_app(ctx, RateLimits(public="1000000/minute", auth="1000000/minute"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    headers: dict[str, dict[str, str]] = {"anonymous": {}}
    for role in (Role.VIEWER, Role.ANALYST):
        r = httpx.post(
            f"{url}/api/v1/auth/token",
            data={"username": role.label, "password": f"pw-{role.label}"},
        )
        assert r.status_code == 200, r.text
        headers[role.label] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    try:
        yield World(url, store, headers)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def owslib(world: World, headers: dict[str, str] | None = None) -> Any:
    """OWSLib's ``Features`` on ``/ogc``, anonymous unless ``headers`` say otherwise (OWSLib
    keeps its request headers in a module-global dict, updated by each client: copied here)."""
    from owslib.ogcapi import features as owslib_features

    client = owslib_features.Features(f"{world.url}/ogc")
    client.headers = {**client.headers, **(headers or {})}
    return client


def test_owslib_lists_the_collections_and_reads_every_station_back_with_paging(
    world: World,
) -> None:
    """Done-when: "OWSLib lists the collections and reads every station back, with paging"."""
    ogc = owslib(world)
    assert {CORE, GEOJSON} <= set(ogc.conformance()["conformsTo"])
    listed = {c["id"]: c for c in ogc.collections()["collections"]}
    assert set(listed) == {"stations", "zones"}
    assert ogc.feature_collections() == ["stations", "zones"]
    assert listed["stations"]["extent"]["spatial"]["bbox"] == [[100.0, 30.0, 122.0, 30.0]]
    west, south, east, north = listed["zones"]["extent"]["spatial"]["bbox"][0]
    assert (west, south, east, north) == pytest.approx((0, 0, 117, 40))  # CRS84 again

    read: list[dict[str, Any]] = []
    offset, pages = 0, 0
    while True:
        page = ogc.collection_items("stations", limit=4, offset=offset)
        assert page["numberMatched"] == 23 and page["numberReturned"] == len(page["features"])
        read += page["features"]
        pages += 1
        if not any(link["rel"] == "next" for link in page["links"]):
            break
        offset += 4
    assert pages == 6
    stored = {s.id: s for s in world.store.list_stations(ids=PUBLIC)}
    assert [f["id"] for f in read] == sorted(stored)  # each once, in order; A2 and C1 not
    for f in read:
        s = stored[f["id"]]
        assert f["geometry"] == {"type": "Point", "coordinates": [s.lon, s.lat]}
        assert f["properties"]["name"] == s.name and f["properties"]["kind"] == "air"
        assert f["properties"]["city"] == "Chengdu"

    p05 = ogc.collection_item("stations", "P05")
    assert p05["id"] == "P05"
    props = p05["properties"]
    assert (props["pm25"], props["co"]) == (35.0, 0.8)  # the latest complete valid hour
    assert props["units"] == {"pm25": "ug/m3", "co": "mg/m3"}
    assert datetime.fromisoformat(props["time"]) == RECENT
    assert ogc.collection_item("stations", "P15")["properties"]["time"] is None  # no values

    zones = ogc.collection_items("zones")
    assert [f["id"] for f in zones["features"]] == ["east", "west"]
    west_zone = ogc.collection_item("zones", "west")
    lon, lat = zip(*west_zone["geometry"]["coordinates"][0], strict=True)
    assert min(lon) == pytest.approx(116) and max(lat) == pytest.approx(40)
    assert west_zone["properties"]["area_km2"] == 7.0


def test_owslib_reads_what_the_callers_grade_allows(world: World) -> None:
    """Anonymous callers see the public stations; a viewer the internal one too; an analyst
    the CEMS stack as well (CONTRACT.md, "Grades")."""
    expected = {
        "anonymous": set(PUBLIC),
        "viewer": set(PUBLIC) | {"A2"},
        "analyst": set(PUBLIC) | {"A2", "C1"},
    }
    for who, ids in expected.items():
        ogc = owslib(world, world.headers[who])
        got = ogc.collection_items("stations", limit=100)
        assert {f["id"] for f in got["features"]} == ids, who
        assert got["numberMatched"] == len(ids), who
    with pytest.raises(RuntimeError):  # 401: OWSLib raises on any error answer
        owslib(world).collection_item("stations", "C1")
    assert owslib(world, world.headers["analyst"]).collection_item("stations", "C1")["id"] == "C1"


def get(world: World, path: str, who: str = "anonymous", **params: Any) -> httpx.Response:
    return httpx.get(f"{world.url}{path}", params=params, headers=world.headers[who])


def test_landing_page_links_and_content_types(world: World) -> None:
    r = get(world, "/ogc")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    rels = {link["rel"]: link["href"] for link in r.json()["links"]}
    assert rels["service-desc"] == f"{world.url}/openapi.json"
    assert rels["conformance"] == f"{world.url}/ogc/conformance"
    assert rels["data"] == f"{world.url}/ogc/collections"
    assert get(world, "/ogc", f="json").status_code == 200
    assert get(world, "/ogc", f="html").status_code == 400
    items = get(world, "/ogc/collections/stations/items")
    assert items.headers["content-type"] == "application/geo+json"
    assert items.json()["numberReturned"] == 10  # the default limit
    one = get(world, "/ogc/collections/stations/items/P01")
    assert one.headers["content-type"] == "application/geo+json"
    paths = httpx.get(f"{world.url}/openapi.json").json()["paths"]
    assert {"/ogc", "/ogc/collections/{collection_id}/items/{feature_id}"} <= set(paths)


def test_next_and_prev_links_page_through_the_matches(world: World) -> None:
    """``next`` until the last page, ``prev`` from the second; the links keep the filters."""
    url: str | None = f"{world.url}/ogc/collections/stations/items?limit=10&bbox=104.5,29,180,31"
    seen: list[str] = []
    while url is not None:
        page = httpx.get(url).json()
        assert page["numberMatched"] == 18  # P05 … P22
        seen += [f["id"] for f in page["features"]]
        links = {link["rel"]: link["href"] for link in page["links"]}
        if seen[:10] != seen:
            assert "prev" in links
        assert "bbox=104.5" in links["self"]
        url = links.get("next")
    assert seen == PUBLIC[5:]
    over = get(world, "/ogc/collections/stations/items", limit="50000")
    assert over.status_code == 200 and over.json()["numberReturned"] == 23  # served as the most


def test_bbox_is_crs84_longitude_latitude(world: World) -> None:
    """``/req/core/fc-bbox-response``: features whose geometry intersects the box."""

    def ids(collection: str, bbox: str) -> list[str]:
        r = get(world, f"/ogc/collections/{collection}/items", bbox=bbox)
        assert r.status_code == 200, r.text
        return [f["id"] for f in r.json()["features"]]

    assert ids("stations", "101.5,29,103,31") == ["P02", "P03"]
    assert ids("stations", "101.5,29,0,103,31,10") == ["P02", "P03"]  # with heights
    lat_first = get(world, "/ogc/collections/stations/items", bbox="29,101.5,31,103")
    assert lat_first.status_code == 400  # latitude first is not CRS84: 101.5 is no latitude
    assert ids("stations", "121.5,29,-170,31") == ["P22"]  # across the antimeridian
    assert ids("zones", "116.5,39.5,118,41") == ["west"]
    assert ids("zones", "-10,-10,10,10") == ["east"]


def test_datetime_filters_on_the_time_of_the_latest_values(world: World) -> None:
    def ids(value: str) -> set[str]:
        r = get(world, "/ogc/collections/stations/items", datetime=value, limit=100)
        assert r.status_code == 200, r.text
        assert r.json()["numberMatched"] == len(r.json()["features"])
        return {f["id"] for f in r.json()["features"]}

    recent, earlier = RECENT.isoformat(), EARLIER.isoformat()
    assert ids(recent) == set(PUBLIC[5:10])  # an instant
    assert ids(earlier) == set(PUBLIC[:5])
    assert ids(f"{earlier}/{recent}") == set(PUBLIC[:10])
    assert ids(f"../{(EARLIER + timedelta(minutes=1)).isoformat()}") == set(PUBLIC[:5])
    assert ids(f"{(EARLIER + timedelta(minutes=1)).isoformat()}/..") == set(PUBLIC[5:10])
    bureau = RECENT.astimezone(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None).isoformat()
    assert ids(bureau) == set(PUBLIC[5:10])  # no offset: the bureau's time zone
    zones = get(world, "/ogc/collections/zones/items", datetime=recent).json()
    assert zones["numberMatched"] == 2  # layers have no time


@pytest.mark.parametrize(
    "params",
    [
        {"bbox": "1,2,3"},
        {"bbox": "a,b,c,d"},
        {"bbox": "0,50,10,40"},
        {"bbox": "0,0,200,10"},
        {"bbox": "nan,0,1,1"},
        {"datetime": "yesterday"},
        {"datetime": "../.."},
        {"datetime": "2026-12-01/2026-11-01"},
        {"limit": "0"},
        {"limit": "ten"},
        {"offset": "-1"},
        {"sortby": "name"},
        {"f": "html"},
    ],
    ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items()),
)
def test_a_bad_or_unknown_query_parameter_is_400(world: World, params: dict[str, str]) -> None:
    r = get(world, "/ogc/collections/stations/items", **params)
    assert r.status_code == 400, r.text
    assert next(iter(params)) in r.json()["description"]


def test_unknown_collection_or_feature_is_404(world: World) -> None:
    for path in (
        "/ogc/collections/nowhere",
        "/ogc/collections/nowhere/items",
        "/ogc/collections/nowhere/items/x",
        "/ogc/collections/stations/items/NOPE",
        "/ogc/collections/zones/items/north",
    ):
        r = get(world, path)
        assert r.status_code == 404, path
        assert r.json()["code"] == "NotFound"


def test_a_page_of_stations_above_public_is_audited(world: World) -> None:
    """Reads of non-public stations are audited, as the other read routes do; a page of
    public stations is not."""

    def entries() -> list[tuple[str, str]]:
        with world.store.connection() as conn:
            rows = conn.execute(
                "SELECT actor, object FROM audit_log WHERE action = 'read' ORDER BY id"
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    before = entries()
    assert get(world, "/ogc/collections/stations/items", "analyst", limit=100).status_code == 200
    assert get(world, "/ogc/collections/stations/items/C1", "analyst").status_code == 200
    assert get(world, "/ogc/collections/stations/items", "viewer", offset=1).status_code == 200
    assert entries()[len(before) :] == [
        ("analyst", "station:A2,C1"),
        ("analyst", "station:C1"),
    ]
