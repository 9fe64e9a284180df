"""The derived products in the API (issue 16, item 3): ``/api/v1/aqi``, ``/api/v1/water-classes``
and ``/api/v1/soil-risk`` — paged with a cursor like ``/api/v1/observations``, each product
carrying its station's grade (a city's: ``city-aggregates``, made of public stations)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from access import Role
from access.passwords import hash_password
from ecosense.app import create_app
from sensors.stations import Station
from store import derived, users
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
ADMIN = "break-glass-secret"
T0 = datetime(2026, 11, 27, 16, tzinfo=UTC)  # 2026-11-28 00:00 in China Standard Time
WINDOW = {"start": "2026-11-28T00:00", "end": "2026-11-29T00:00"}


@pytest.fixture
def server_admin_url(embedded_admin_url: str) -> str:
    return embedded_admin_url


def _assessment(scope: str, subject: str, kind: str, start: datetime, **row: Any) -> dict[str, Any]:
    return {"scope": scope, "subject": subject, "kind": kind, "start": start} | row


@pytest.fixture
def client(store: PostgresStore) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A public air station (A1), a plant's stack (C1, sensitive), a river section (W1), a
    soil point (S1), Beijing's city AQI; 24 hourly AQIs of A1 and C1."""
    store.upsert_stations(
        [
            Station("A1", "Air", "air", 116.4, 39.9, {"city": "Beijing"}),
            Station("C1", "Stack", "cems", 116.5, 39.8, {"city": "Beijing"}),
            Station("W1", "River", "water", 116.2, 39.7),
            Station("S1", "Paddy", "soil", 113.0, 28.2),
        ]
    )
    details = {"pm25": 120, "pm10": 80, "c_pm25": 90.0, "c_pm10": 110.0}
    rows = [
        _assessment(
            "station",
            s,
            "aqi-hourly",
            T0 + timedelta(hours=h),
            value=120 + h,
            level=3,
            label="pm25",
            details=details,
        )
        for s in ("A1", "C1")
        for h in range(24)
    ]
    rows += [
        _assessment(
            "station", "A1", "aqi-daily", T0, value=95, level=2, label="pm25,pm10", details=details
        ),
        _assessment(
            "city", "Beijing", "aqi-daily", T0, value=95, level=2, label="pm25", details=details
        ),
        _assessment(
            "station",
            "W1",
            "water-daily",
            T0,
            value=4,
            level=4,
            label="cod,nh3n",
            details={
                "water_body": "river",
                "target_class": 3,
                "classes": {"cod": 4, "nh3n": 4, "do": 2},
            },
        ),
        _assessment(
            "station",
            "S1",
            "soil",
            T0 + timedelta(hours=2),
            value=2,
            level=2,
            label="安全利用类",
            details={"ph": 6.1, "land_use": "paddy", "ratios": {"cd": 1.4}},
        ),
    ]
    with store.connection() as conn:
        derived.upsert(conn, "assessments", pd.DataFrame(rows))
        users.add_user(conn, "analyst", Role.ANALYST, hash_password("pw-analyst"))
    ctx = ServiceContext(store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"))
    with TestClient(create_app(ctx)) as c:
        r = c.post("/api/v1/auth/token", data={"username": "analyst", "password": "pw-analyst"})
        assert r.status_code == 200, r.text
        yield c, {"Authorization": f"Bearer {r.json()['access_token']}"}


def _all(
    c: TestClient, path: str, headers: dict[str, str] | None = None, **query: str
) -> list[Any]:
    """Every item of every page, two items a page."""
    items: list[Any] = []
    params: dict[str, str] = {**WINDOW, **query, "limit": "2"}
    while True:
        r = c.get(path, params=params, headers=headers or {})
        assert r.status_code == 200, r.text
        items += r.json()["items"]
        if r.json()["next_cursor"] is None:
            return items
        params["cursor"] = r.json()["next_cursor"]


def test_hourly_aqi_paged_and_graded(client: tuple[TestClient, dict[str, str]]) -> None:
    c, analyst = client
    public = _all(c, "/api/v1/aqi")  # anonymous: the public station only
    assert {i["subject"] for i in public} == {"A1"} and len(public) == 24
    first = public[0]
    assert first == {
        "scope": "station",
        "subject": "A1",
        "start": "2026-11-28T00:00:00+08:00",
        "aqi": 120,
        "level": 3,
        "category": {"zh": "轻度污染", "en": "Lightly polluted"},
        "primary_pollutants": ["pm25"],
        "iaqi": {"pm25": 120, "pm10": 80},
        "concentrations": {"pm25": 90.0, "pm10": 110.0},
    }
    assert [i["aqi"] for i in public] == list(range(120, 144))  # in order, none twice
    both = _all(c, "/api/v1/aqi", analyst)
    assert len(both) == 48 and {i["subject"] for i in both} == {"A1", "C1"}
    # naming a station beyond the caller's grade: 401 anonymous, allowed to the analyst
    assert c.get("/api/v1/aqi", params={**WINDOW, "subject": "C1"}).status_code == 401
    assert len(_all(c, "/api/v1/aqi", analyst, subject="C1")) == 24


def test_daily_and_city_aqi(client: tuple[TestClient, dict[str, str]]) -> None:
    c, _ = client
    (city,) = _all(c, "/api/v1/aqi", scope="city", report="daily")
    assert city["subject"] == "Beijing" and city["aqi"] == 95
    assert city["category"] == {"zh": "良", "en": "Good"}
    (day,) = _all(c, "/api/v1/aqi", report="daily", subject="A1")
    assert day["primary_pollutants"] == ["pm25", "pm10"]


def test_water_classes_and_soil_risk(client: tuple[TestClient, dict[str, str]]) -> None:
    c, analyst = client
    (w,) = _all(c, "/api/v1/water-classes")
    assert w["subject"] == "W1" and w["class"] == 4 and w["exceeding"] == ["cod", "nh3n"]
    assert w["target_class"] == 3 and w["classes"]["do"] == 2 and w["water_body"] == "river"
    assert _all(c, "/api/v1/water-classes", period="monthly") == []
    # point-level soil data are sensitive (access/grades.py): not for anonymous callers
    assert _all(c, "/api/v1/soil-risk") == []
    assert c.get("/api/v1/soil-risk", params={**WINDOW, "subject": "S1"}).status_code == 401
    (s,) = _all(c, "/api/v1/soil-risk", analyst)
    assert (s["subject"], s["risk_class"], s["level"], s["ph"]) == ("S1", "安全利用类", 2, 6.1)
    assert s["ratios"] == {"cd": 1.4} and s["start"] == "2026-11-28T02:00:00+08:00"


@pytest.mark.parametrize(
    ("path", "query", "message"),
    [
        ("/api/v1/aqi", {"report": "weekly"}, "report must be one of hourly, daily"),
        ("/api/v1/aqi", {"scope": "province"}, "scope must be one of station, city"),
        ("/api/v1/water-classes", {"period": "yearly"}, "period must be one of daily, monthly"),
        ("/api/v1/soil-risk", {"cursor": "not-a-cursor"}, "cursor"),
        ("/api/v1/aqi", {"start": "soon"}, "soon"),
        # the new user's trial of issue 16: a window the wrong way round was an empty page
        ("/api/v1/aqi", {"start": "2026-12-05", "end": "2026-12-01"}, "is after end"),
        ("/api/v1/water-classes", {"start": "2026-12-05", "end": "2026-12-01"}, "is after end"),
        (
            "/api/v1/aggregates",
            {"period": "PT1H", "start": "2026-12-05", "end": "2026-12-01"},
            "is after end",
        ),
        ("/api/v1/observations", {"start": "2026-12-05", "end": "2026-12-01"}, "is after end"),
        ("/api/v1/aqi", {"station": "A1", "scope": "city"}, "station= names a station"),
    ],
)
def test_bad_queries_are_400(
    client: tuple[TestClient, dict[str, str]], path: str, query: dict[str, str], message: str
) -> None:
    c, _ = client
    r = c.get(path, params={**WINDOW, **query})
    assert r.status_code == 400 and message in r.json()["detail"], r.text


@pytest.mark.parametrize("path", ["/api/v1/aqi", "/api/v1/water-classes", "/api/v1/aggregates"])
def test_an_unknown_station_is_404_and_station_names_one(
    client: tuple[TestClient, dict[str, str]], path: str
) -> None:
    """The new user's trial of issue 16: an unknown station was an empty page, and
    ``station=`` was ignored by /aqi and /water-classes (which listed every station)."""
    c, analyst = client
    query = {**WINDOW, **({"period": "PT1H"} if path.endswith("aggregates") else {})}
    r = c.get(path, params={**query, "station": "NOPE"})
    assert r.status_code == 404 and "no station 'NOPE'" in r.json()["detail"], r.text
    r = c.get(path, params={**query, "subject": "NOPE"})
    assert r.status_code == 404, r.text
    every = {i["subject"] for i in _all(c, path, analyst, **query)}
    if len(every) > 1:
        one = sorted(every)[0]
        mine = _all(c, path, analyst, **query, station=one)
        assert mine and {i["subject"] for i in mine} == {one}


def test_layers_as_geojson_in_wgs84_and_zonal_statistics_paged(
    client: tuple[TestClient, dict[str, str]], store: PostgresStore
) -> None:
    """A layer stored in Web Mercator comes out as RFC 7946 GeoJSON in longitude/latitude, each
    feature's id its name; its zonal statistics are paged by (raster, feature, stat)."""
    import geopandas as gpd
    import shapely

    from gis.catalogue import RasterItem
    from store import gis as gis_store

    c, _ = client
    boxes = gpd.GeoDataFrame(
        {"name": ["east", "west"], "area_km2": [12.5, 7.0]},
        geometry=[shapely.box(0, 0, 1, 1), shapely.box(116, 39, 117, 40)],
        crs="EPSG:4326",
    ).to_crs(3857)
    with store.connection() as conn:
        gis_store.save_layer(conn, "zones", boxes, "name", "zones.gpkg")
        for rid, when in (("ndvi", T0), ("dem", None)):  # in the catalogue (no file read)
            gis_store.save_raster(
                conn, RasterItem(rid, f"{rid}.tif", None, 1, when, "EPSG:4326", 0.01, 0.01, 9, 9)
            )
        ndvi = {"feature": ["east", "west", "west"], "stat": ["mean", "mean", "max"]}
        values = {"value": [0.41, 0.52, float("nan")], "time": T0}
        gis_store.save_zonal(
            conn, pd.DataFrame({"raster": "ndvi", "layer": "zones"} | ndvi | values)
        )
        dem = {"raster": ["dem"], "layer": "zones", "feature": ["east"], "stat": ["mean"]}
        gis_store.save_zonal(conn, pd.DataFrame(dem | {"time": [None], "value": [1510.0]}))
    (summary,) = c.get("/api/v1/layers").json()["items"]
    assert summary | {"updated": None} == {
        "name": "zones",
        "source": "zones.gpkg",
        "crs": "EPSG:3857",
        "key": "name",
        "features": 2,
        "updated": None,
    }
    r = c.get("/api/v1/layers/zones")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    geo = r.json()
    assert geo["type"] == "FeatureCollection"
    west = next(f for f in geo["features"] if f["id"] == "west")
    assert west["properties"]["area_km2"] == 7.0
    lon, lat = zip(*west["geometry"]["coordinates"][0], strict=True)
    assert min(lon) == pytest.approx(116) and max(lat) == pytest.approx(40)  # degrees again
    assert c.get("/api/v1/layers/nowhere").status_code == 404

    items = _all(c, "/api/v1/zonal", layer="zones")  # two a page
    assert [(i["raster"], i["feature"], i["stat"]) for i in items] == [
        ("dem", "east", "mean"),
        ("ndvi", "east", "mean"),
        ("ndvi", "west", "max"),
        ("ndvi", "west", "mean"),
    ]
    assert items[0]["time"] is None and items[0]["value"] == 1510.0
    assert items[1]["time"] == "2026-11-28T00:00:00+08:00"
    assert items[2]["value"] is None  # no valid cell
    assert [
        i["value"] for i in _all(c, "/api/v1/zonal", layer="zones", raster="ndvi", stat="mean")
    ] == [0.41, 0.52]
    assert _all(c, "/api/v1/zonal", layer="nowhere") == []


def _facility_year(
    subject: str, gas: str, year: int, tonnes: float, region: str, sector: str
) -> Any:
    start = datetime(year, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)
    return {
        "source": "calculation",
        "subject": subject,
        "gas": gas,
        "period": "P1Y",
        "start": start,
        "tonnes": tonnes,
        "substitution": "",
        "details": {"region": region, "sector": sector},
    }


def test_emissions_by_region_year_gas_and_sector(
    client: tuple[TestClient, dict[str, str]], store: PostgresStore
) -> None:
    """Facility years summed per region (any level, or each region at a level), filtered by
    year, gas and sector, paged; internal: 401 to anonymous callers, audited."""
    c, analyst = client
    rows = [
        _facility_year("F1", "CO2e", 2025, 100.0, "110105", "power"),  # Beijing, Chaoyang
        _facility_year("F2", "CO2e", 2025, 50.0, "110108", "power"),  # Beijing, Haidian
        _facility_year("F3", "CO2e", 2025, 30.0, "110108", "cement"),
        _facility_year("F4", "CO2e", 2025, 7.0, "CN-BJ", "power"),  # province-level plant
        _facility_year("F5", "CO2e", 2025, 200.0, "310115", "power"),  # Shanghai
        _facility_year("F1", "CO2e", 2026, 90.0, "110105", "power"),
        _facility_year("F1", "CO2", 2025, 99.0, "110105", "power"),
    ]
    rows.append(  # a monthly row is not an annual total
        _facility_year("F1", "CO2e", 2025, 9.0, "110105", "power") | {"period": "P1M"}
    )
    with store.connection() as conn:
        derived.upsert(conn, "emissions", pd.DataFrame(rows))
    assert c.get("/api/v1/emissions").status_code == 401  # internal
    provinces = _all(c, "/api/v1/emissions", analyst, gas="CO2e", year="2025")
    assert [(i["region"], i["sector"], i["tonnes"], i["facilities"]) for i in provinces] == [
        ("CN-BJ", "cement", 30.0, 1),
        ("CN-BJ", "power", 157.0, 3),
        ("CN-SH", "power", 200.0, 1),
    ]
    assert provinces[0]["unit"] == "t CO2e" and provinces[0]["year"] == 2025
    # one region at any level: the facilities inside it; a county-level view leaves out F4
    (chaoyang_co2,) = _all(c, "/api/v1/emissions", analyst, region="110105", gas="CO2")
    assert chaoyang_co2 == {
        "region": "110105",
        "year": 2025,
        "gas": "CO2",
        "sector": "power",
        "tonnes": 99.0,
        "unit": "t CO2",
        "facilities": 1,
    }
    beijing = _all(c, "/api/v1/emissions", analyst, region="CN-BJ", sector="power", gas="CO2e")
    assert [(i["year"], i["tonnes"]) for i in beijing] == [(2025, 157.0), (2026, 90.0)]
    counties = _all(c, "/api/v1/emissions", analyst, level="county", gas="CO2e", year="2025")
    assert {i["region"] for i in counties} == {"110105", "110108", "310115"}
    for query, message in (
        ({"region": "Atlantis"}, "unknown region"),
        ({"level": "street"}, "level must be one of"),
        ({"cursor": "nope"}, "cursor"),
    ):
        r = c.get("/api/v1/emissions", params=query, headers=analyst)
        assert r.status_code == 400 and message in r.json()["detail"], r.text
    with store.connection() as conn:
        (audited,) = conn.execute(
            "SELECT count(*) FROM audit_log WHERE object = 'region-emissions' AND actor = 'analyst'"
        ).fetchone()
    assert audited >= 4
