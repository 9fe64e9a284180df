"""Every route of the OpenAPI document × every caller × every grade (issue 13, "What to
build" 2): "One authorisation function in one place decides every read: every API route …
A test enumerates all routes from the OpenAPI document and checks each one against every
role and grade, so a new route cannot skip it."

Two checks: each route's dependency tree holds :func:`api.auth.caller` (a route that reads a
token by hand, or none, fails), and a sample call per route, caller and grade answers as the
policy written out here says (CONTRACT.md, "Grades") — 401 for anonymous callers and 403 for
known ones when denied, anything else when allowed. A route missing from :data:`SPEC` fails.
Issue 13's finding "``GET /api/v1/aggregates`` is public and returns a CEMS plant's hourly
means that ``/api/v1/observations`` refuses" is the ``aggregates`` row.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from httpx import Response

from access import Grade, Role
from access.passwords import hash_password
from api.auth import caller
from api.ratelimit import RateLimits
from ecosense.app import create_app
from sensors.stations import Station
from store import derived, users
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
ADMIN = "break-glass-secret"
PUBLIC, INTERNAL, SENSITIVE, RESTRICTED = Grade
#: one station of each grade: (id, kind, override)
STATIONS = {
    PUBLIC: ("A1", "air", None),
    INTERNAL: ("A2", "air", INTERNAL),
    SENSITIVE: ("C1", "cems", None),  # a CEMS plant: sensitive by default
    RESTRICTED: ("C2", "cems", RESTRICTED),
}
#: the callers: anonymous, a user of each role, the break-glass admin, a device of A1
CALLERS = ["anonymous", *(r.label for r in Role), "break-glass", "device"]
#: the highest grade each caller reads (CONTRACT.md); the device: its own station
CEILING = {
    "anonymous": PUBLIC,
    "viewer": INTERNAL,
    "analyst": SENSITIVE,
    "reviewer": SENSITIVE,
    "operator": SENSITIVE,
    "admin": RESTRICTED,
    "break-glass": RESTRICTED,
}
RANK = {r.label: int(r) for r in Role} | {"break-glass": int(Role.ADMIN), "anonymous": 0}
T0 = datetime(2026, 11, 28, tzinfo=UTC)


@dataclass(frozen=True)
class World:
    client: TestClient
    headers: dict[str, dict[str, str]]


def reads(grade: Grade | None) -> Callable[[str, Grade], bool]:
    """Allowed: a read of data of ``grade`` (``None``: the grade of the station asked for);
    a device reads public data and its own station."""

    def allowed(who: str, station_grade: Grade) -> bool:
        g = station_grade if grade is None else grade
        if who == "device":
            return g is PUBLIC and (grade is not None or station_grade is PUBLIC)
        return g <= CEILING[who]

    return allowed


def needs(role: Role, grade: Grade) -> Callable[[str, Grade], bool]:
    """Allowed: callers of ``role`` or above, within ``grade``."""
    return lambda who, _g: who != "device" and RANK[who] >= role and grade <= CEILING[who]


def writes(who: str, station_grade: Grade) -> bool:
    """A device writes its own station (A1, public); operators and admins write anywhere."""
    if who == "device":
        return station_grade is PUBLIC
    return RANK[who] >= Role.OPERATOR


def exports(who: str, station_grade: Grade) -> bool:
    """A download (``export``) of a station's readings: public ones by anyone but a device;
    anything else by an analyst and up, within their grade."""
    if who == "device":
        return False
    if station_grade is PUBLIC:
        return True
    return RANK[who] >= Role.ANALYST and station_grade <= CEILING[who]


def _readings_of(station: str) -> str:
    """The catalogue's readings dataset of a matrix station (A… air, C… a CEMS stack)."""
    return "readings-air" if station.startswith("A") else "readings-cems"


def reading(station: str) -> dict[str, Any]:
    return {"station": station, "parameter": "so2", "time": T0.isoformat(), "value": 12.0}


Call = Callable[[TestClient, dict[str, str], str], Response]

#: (method, path) → (sample call for a station, allowed(caller, station's grade))
SPEC: dict[tuple[str, str], tuple[Call, Callable[[str, Grade], bool]]] = {
    ("get", "/healthz"): (lambda c, h, s: c.get("/healthz", headers=h), reads(PUBLIC)),
    ("get", "/api/v1/stations"): (
        lambda c, h, s: c.get("/api/v1/stations", headers=h),
        reads(PUBLIC),
    ),
    ("get", "/api/v1/observations"): (
        lambda c, h, s: c.get("/api/v1/observations", params={"station": s}, headers=h),
        reads(None),
    ),
    ("get", "/api/v1/observations/versions"): (
        lambda c, h, s: c.get(
            "/api/v1/observations/versions",
            params={"station": s, "parameter": "so2", "time": T0.isoformat()},
            headers=h,
        ),
        reads(None),
    ),
    ("post", "/api/v1/observations"): (
        lambda c, h, s: c.post(
            "/api/v1/observations", json={"observations": [reading(s)]}, headers=h
        ),
        writes,
    ),
    ("post", "/api/v2/write"): (
        lambda c, h, s: c.post("/api/v2/write", content=f"{s} so2=12", headers=h),
        writes,
    ),
    ("get", "/api/v1/aggregates"): (
        lambda c, h, s: c.get(
            "/api/v1/aggregates",
            params={"period": "PT1H", "start": "2026-11-01", "end": "2026-12-01", "subject": s},
            headers=h,
        ),
        reads(None),
    ),
    ("get", "/api/v1/aqi"): (
        lambda c, h, s: c.get(
            "/api/v1/aqi",
            params={"start": "2026-11-01", "end": "2026-12-01", "subject": s},
            headers=h,
        ),
        reads(None),
    ),
    ("get", "/api/v1/water-classes"): (
        lambda c, h, s: c.get(
            "/api/v1/water-classes",
            params={"start": "2026-11-01", "end": "2026-12-01", "subject": s},
            headers=h,
        ),
        reads(None),
    ),
    ("get", "/api/v1/soil-risk"): (
        lambda c, h, s: c.get(
            "/api/v1/soil-risk",
            params={"start": "2026-11-01", "end": "2026-12-01", "subject": s},
            headers=h,
        ),
        reads(None),
    ),
    ("get", "/api/v1/layers"): (
        lambda c, h, s: c.get("/api/v1/layers", headers=h),
        reads(PUBLIC),
    ),
    ("get", "/api/v1/layers/{name}"): (
        lambda c, h, s: c.get("/api/v1/layers/nowhere", headers=h),
        reads(PUBLIC),
    ),
    ("get", "/api/v1/zonal"): (
        lambda c, h, s: c.get("/api/v1/zonal", params={"layer": "nowhere"}, headers=h),
        reads(PUBLIC),
    ),
    ("get", "/api/v1/emissions"): (
        lambda c, h, s: c.get("/api/v1/emissions", params={"region": "CN"}, headers=h),
        reads(INTERNAL),
    ),
    ("get", "/api/v1/datasets"): (
        lambda c, h, s: c.get("/api/v1/datasets", headers=h),
        reads(PUBLIC),
    ),
    ("get", "/api/v1/datasets.jsonld"): (
        lambda c, h, s: c.get("/api/v1/datasets.jsonld", headers=h),
        reads(PUBLIC),
    ),
    ("get", "/api/v1/datasets/{name}"): (
        lambda c, h, s: c.get("/api/v1/datasets/alerts", headers=h),
        needs(Role.VIEWER, INTERNAL),
    ),
    ("get", "/api/v1/datasets/{name}/download"): (
        lambda c, h, s: c.get(
            f"/api/v1/datasets/{_readings_of(s)}/download", params={"station": s}, headers=h
        ),
        exports,
    ),
    # OGC API – Features: the service documents and the stations list are public (the list
    # filtered by grade, below); one station above the caller's grade is 401/403, as
    # /api/v1/observations?station= answers (not a 404: the station exists)
    ("get", "/ogc"): (lambda c, h, s: c.get("/ogc", headers=h), reads(PUBLIC)),
    ("get", "/ogc/conformance"): (
        lambda c, h, s: c.get("/ogc/conformance", headers=h),
        reads(PUBLIC),
    ),
    ("get", "/ogc/collections"): (
        lambda c, h, s: c.get("/ogc/collections", headers=h),
        reads(PUBLIC),
    ),
    ("get", "/ogc/collections/{collection_id}"): (
        lambda c, h, s: c.get("/ogc/collections/stations", headers=h),
        reads(PUBLIC),
    ),
    ("get", "/ogc/collections/{collection_id}/items"): (
        lambda c, h, s: c.get("/ogc/collections/stations/items", headers=h),
        reads(PUBLIC),
    ),
    ("get", "/ogc/collections/{collection_id}/items/{feature_id}"): (
        lambda c, h, s: c.get(f"/ogc/collections/stations/items/{s}", headers=h),
        reads(None),
    ),
    ("get", "/api/v1/alerts"): (
        lambda c, h, s: c.get("/api/v1/alerts", headers=h),
        reads(INTERNAL),
    ),
    ("get", "/api/v1/alerts/webhooks"): (
        lambda c, h, s: c.get("/api/v1/alerts/webhooks", headers=h),
        reads(SENSITIVE),
    ),
    ("post", "/api/v1/alerts/{alert_id}/acknowledge"): (
        lambda c, h, s: c.post("/api/v1/alerts/987654/acknowledge", headers=h),
        needs(Role.OPERATOR, INTERNAL),
    ),
    ("post", "/api/v1/hj212/{mn}/commands"): (
        lambda c, h, s: c.post(
            "/api/v1/hj212/MN1/commands", json={"cn": "1062", "cp": "RtdInterval=30"}, headers=h
        ),
        needs(Role.OPERATOR, SENSITIVE),
    ),
    ("post", "/api/v1/reviews"): (
        lambda c, h, s: c.post(
            "/api/v1/reviews",
            json={
                "station": s,
                "parameter": "so2",
                "start": "2026-11-27T00:00:00+08:00",
                "end": "2026-11-27T01:00:00+08:00",
                "action": "invalidate",
                "reason": "access matrix",
            },
            headers=h,
        ),
        lambda who, g: who != "device" and RANK[who] >= Role.REVIEWER and g <= CEILING[who],
    ),
    ("get", "/api/v1/reviews"): (
        lambda c, h, s: c.get("/api/v1/reviews", headers=h),
        needs(Role.REVIEWER, SENSITIVE),
    ),
    ("get", "/api/v1/audit"): (
        lambda c, h, s: c.get("/api/v1/audit", params={"limit": 5}, headers=h),
        reads(RESTRICTED),
    ),
    ("post", "/api/v1/auth/token"): (
        lambda c, h, s: c.post(
            "/api/v1/auth/token", data={"username": "admin", "password": "pw-admin"}, headers=h
        ),
        lambda who, g: True,
    ),
}


@pytest.fixture(scope="module")
def world(store_module: PostgresStore) -> Iterator[World]:
    store = store_module
    store.upsert_stations([Station(s, s, k, 116.4, 39.9) for s, k, _ in STATIONS.values()])
    with store.connection() as conn:
        for station, _kind, override in STATIONS.values():
            if override is not None:
                users.set_station_grade(conn, station, override)
        for role in Role:
            users.add_user(conn, role.label, role, hash_password(f"pw-{role.label}"))
        frame = pd.DataFrame(
            {
                "scope": "station",
                "subject": [s for s, _, _ in STATIONS.values()],
                "parameter": "so2",
                "period": "PT1H",
                "start": T0,
                "value": 1.0,
                "count": 1,
                "valid": True,
                "unit": "ug/m3",
            }
        )
        derived.upsert(conn, "aggregates", frame)
    device_token = store.add_device("dev-a1", "A1")
    ctx = ServiceContext(store, hash_secret(ADMIN), ZoneInfo("Asia/Shanghai"))
    # thousands of anonymous requests from one client: the rate limits raised, explicitly
    # (their defaults are tested in test_rate_limits.py)
    unlimited = RateLimits(public="1000000/minute", auth="1000000/minute")
    with TestClient(create_app(ctx, unlimited)) as client:
        headers: dict[str, dict[str, str]] = {
            "anonymous": {},
            "break-glass": {"Authorization": f"Bearer {ADMIN}"},
            "device": {"Authorization": f"Bearer {device_token}"},
        }
        for role in Role:
            r = client.post(
                "/api/v1/auth/token", data={"username": role.label, "password": f"pw-{role.label}"}
            )
            assert r.status_code == 200, r.text
            headers[role.label] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        r = client.post(
            "/api/v1/observations",
            json={"observations": [reading(s) for s, _, _ in STATIONS.values()]},
            headers=headers["break-glass"],
        )
        assert r.status_code == 200 and r.json()["accepted"] == 4, r.text
        yield World(client, headers)


@pytest.fixture(scope="module")
def store_module(server_admin_url: str) -> Iterator[PostgresStore]:
    """One migrated store for the whole matrix, on each server under test."""
    import uuid

    import psycopg
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    admin_url = server_admin_url
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    store = PostgresStore(make_conninfo(admin_url, dbname=name))
    store.migrate()
    yield store
    store.close()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _depends_on(dependant: Dependant, target: Callable[..., Any]) -> bool:
    return any(d.call is target or _depends_on(d, target) for d in dependant.dependencies)


def openapi_routes() -> list[tuple[str, str]]:
    app = create_app(None)  # type: ignore[arg-type]
    return [
        (method, path)
        for path, ops in app.openapi()["paths"].items()
        for method in ops
        if method in ("get", "post", "put", "patch", "delete")
    ]


def app_routes(app: Any) -> Iterator[Any]:
    """Every route the application serves, with its ``path``, ``methods`` and ``dependant``
    (FastAPI ≥ 0.16x keeps included routers apart and resolves their routes' effective
    contexts; older versions flatten them into :class:`APIRoute`)."""
    for r in app.routes:
        if isinstance(r, APIRoute):
            yield r
        elif hasattr(r, "effective_route_contexts"):
            yield from r.effective_route_contexts()


def test_every_route_declares_the_authorisation_dependency() -> None:
    """A route without :func:`api.auth.caller` in its dependencies fails here."""
    app = create_app(None)  # type: ignore[arg-type]
    routes = {
        (method.lower(), r.path): r
        for r in app_routes(app)
        if getattr(r, "dependant", None) is not None
        for method in r.methods
    }
    documented = openapi_routes()
    assert len(documented) >= 10
    missing = [key for key in documented if not _depends_on(routes[key].dependant, caller)]
    assert missing == [], "routes without the authorisation dependency"
    unspecified = sorted(set(documented) - set(SPEC))
    assert unspecified == [], "a new route needs its row in SPEC"


@pytest.mark.parametrize("route", openapi_routes(), ids=lambda r: f"{r[0].upper()} {r[1]}")
def test_route_against_every_caller_and_grade(world: World, route: tuple[str, str]) -> None:
    call, allowed = SPEC[route]
    wrong: list[str] = []
    for who in CALLERS:
        for grade, (station, _kind, _override) in STATIONS.items():
            answer = call(world.client, world.headers[who], station)
            if allowed(who, grade):
                ok = answer.status_code not in (401, 403)
            else:
                ok = answer.status_code == (401 if who == "anonymous" else 403)
            if not ok:
                wrong.append(f"{who} × {grade.label}: {answer.status_code} {answer.text[:120]}")
    assert wrong == []


def test_wrong_credentials_are_401_everywhere(world: World) -> None:
    for route in openapi_routes():
        call, _ = SPEC[route]
        answer = call(world.client, {"Authorization": "Bearer forged"}, "A1")
        assert answer.status_code == 401, route


def test_lists_hold_only_what_the_caller_may_read(world: World) -> None:
    """Issue 13: "``GET /api/v1/aggregates`` is public and returns a CEMS plant's hourly means
    that ``/api/v1/observations`` refuses" — now both list by the station's grade, as does
    the OGC API's ``stations`` collection (issue 16, item 4)."""
    query = {"period": "PT1H", "start": "2026-11-01", "end": "2026-12-01"}
    for who in CALLERS:
        h = world.headers[who]
        seen_obs = {
            i["station"]
            for i in world.client.get("/api/v1/observations", headers=h).json()["items"]
        }
        seen_agg = {
            i["subject"]
            for i in world.client.get("/api/v1/aggregates", params=query, headers=h).json()["items"]
        }
        if who == "device":
            expected = {"A1"}
        else:
            expected = {s for g, (s, _, _) in STATIONS.items() if g <= CEILING[who]}
        seen_ogc = {
            f["id"]
            for f in world.client.get(
                "/ogc/collections/stations/items", params={"limit": 100}, headers=h
            ).json()["features"]
        }
        assert seen_obs == expected, who
        assert seen_agg == expected, who
        assert seen_ogc == expected, who
    anonymous = world.client.get("/api/v1/aggregates", params=query | {"subject": "C1"})
    assert anonymous.status_code == 401  # the CEMS plant's hourly means are not public


def test_the_check_sees_a_route_without_the_dependency() -> None:
    """The walk over the dependency tree is not vacuous: a route that reads its token by hand
    (or none) is found."""
    app = create_app(None)  # type: ignore[arg-type]

    @app.get("/api/v1/naked")
    async def naked(authorization: str | None = None) -> dict[str, str]:
        return {}

    found = [r for r in app_routes(app) if r.path == "/api/v1/naked"]
    assert len(found) == 1 and not _depends_on(found[0].dependant, caller)
    assert ("get", "/api/v1/naked") not in SPEC


#: what the gateway serves outside the OpenAPI document: the API's own documentation (public,
#: like FastAPI's default ``/docs``; issue 14 item 8 serves it from packaged assets)
DOCUMENTATION: frozenset[str] = frozenset(
    {
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/docs-assets",
        "/docs-assets/redoc.standalone.js",  # ReDoc's bundle, its outside logo replaced
    }
)


def test_routes_outside_the_document_are_the_public_documentation_only() -> None:
    """A route or mount left out of the OpenAPI document escapes the matrix above: only the
    documentation may be, and it answers anonymous callers (it holds no data)."""
    app = create_app(None)  # type: ignore[arg-type]
    documented = {path for _, path in openapi_routes()}
    served = {r.path for r in app_routes(app)} | {
        str(r.path) for r in app.routes if getattr(r, "path", None) is not None
    }
    assert served - documented == DOCUMENTATION
    client = TestClient(app)
    for path in ("/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 200, path
    assert client.get("/docs-assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/docs-assets/redoc.standalone.js").status_code == 200
