"""OGC API – Features (Part 1: Core, GeoJSON) at ``/ogc``: the stations and every stored layer
of the one map, for QGIS, ArcGIS and the national platforms (issue 16, item 4).

Routes: ``/ogc`` (landing page), ``/ogc/conformance``, ``/ogc/collections``,
``/ogc/collections/{collectionId}``, ``…/items`` (``bbox``, ``datetime``, ``limit``,
``offset``; ``next``/``prev`` links, ``numberMatched``/``numberReturned``) and
``…/items/{featureId}``. Items are ``application/geo+json``, everything else JSON (``f=json``
is accepted; there is no HTML). A query parameter the route does not define, or a bad value,
is a 400 naming it (Core, ``/req/core/query-param-unknown`` and ``…-invalid``); an unknown
collection or feature a 404. ``limit`` defaults to :data:`DEFAULT_LIMIT` and a larger one than
:data:`api.params.MAX_LIMIT` is served as that maximum (``/req/core/fc-limit-response-1``).

Collections:

- ``stations`` — every station whose readings the caller may read (anonymous callers: the
  public ones; the same list as ``/api/v1/stations``), each feature's ``id`` the station id,
  its geometry the station's point (WGS 84 longitude/latitude), its ``properties`` the name,
  kind, ``simulated``, the station's attributes (``city``, ``region``, …), and its **latest
  values**: per parameter, the value of its latest valid complete hour
  (:func:`store.derived.latest_complete_hours`, ``what="mean"``: the ``PT1H`` aggregate marked
  valid, within the last 48 hours — the rule of every "current" view) under the parameter's
  code, with ``units`` (code → unit) and ``time``, the start of the latest of those hours
  (bureau time zone; ``null`` when there is none). ``datetime`` filters on that ``time``: a
  station without a recent valid hour matches no ``datetime``. One station beyond the caller's
  grade is a 401 (anonymous) or 403, as ``/api/v1/observations?station=`` answers — the route ×
  grade matrix says so; it is never listed. A page holding stations above ``public`` is
  audited (``read``, ``station:…``), as the other read routes do.
- one collection per stored layer (dataset ``layers``, public), its id the layer's name
  (``layer-stations`` for a layer named ``stations``), features as ``/api/v1/layers/{name}``
  gives them (:func:`gis.layers.feature_collection`); its extent the layer's bounds in CRS84.
  Layers have no time: ``datetime`` is checked, and every feature matches it.

Decision: written here as FastAPI routes, not pygeoapi mounted. pygeoapi 0.21.0 installs
without changing any of our pins (its dry run adds SQLAlchemy, tinydb, pygeofilter, …), but
its ``starlette_app`` builds one module-global ``Starlette(debug=True)`` from a YAML file named
by ``PYGEOAPI_CONFIG``/``PYGEOAPI_OPENAPI`` at import time — one static configuration per
process, so layers imported later, and a second application in one process (the tests), need
a regenerated config and a re-import; ``debug=True`` would show tracebacks to callers. Its
providers (``BaseProvider.query``/``get``) never see the caller, so per-request authorisation
would hang on a context variable set by a wrapper, and its mounted routes would be outside our
OpenAPI document, so outside the route × grade matrix. Core and GeoJSON are six read-only
routes; as ordinary routes each declares :func:`api.auth.caller`, lists in ``/openapi.json``
and is walked by tests/integration/test_access_matrix.py; OWSLib's ``Features`` client reads
them (tests/integration/test_ogc.py).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

import access
from access import Action, Dataset, Grade
from api.auth import Caller, require, station_dataset, station_datasets
from api.params import MAX_LIMIT, query_time
from api.routes import audit_read, stations_object
from sensors.stations import Station
from store import derived
from store.context import ServiceContext

router = APIRouter(tags=["ogc"])

#: features per page without ``limit``
DEFAULT_LIMIT: Final = 10
#: the collection of the stations
STATIONS: Final = "stations"
CONFORMANCE: Final = (
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
)
CRS84: Final = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
GEOJSON: Final = "application/geo+json"
JSON: Final = "application/json"

Format = Annotated[str | None, Query(description="json (the only encoding; geojson for items)")]


class BadQuery(ValueError):
    """A query parameter the route does not define or cannot read (answered 400)."""


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _json(body: dict[str, Any], media_type: str = JSON, status: int = 200) -> JSONResponse:
    return JSONResponse(body, status_code=status, media_type=media_type)


def _error(status: int, detail: str) -> JSONResponse:
    """An OGC exception (``code``, ``description``) with the API's ``detail``."""
    code = {400: "InvalidParameterValue", 404: "NotFound"}.get(status, "Error")
    return _json({"code": code, "description": detail, "detail": detail}, status=status)


def _base(request: Request) -> str:
    """``…/ogc`` as the client reached it (behind a proxy: as uvicorn's proxy headers say)."""
    return str(request.base_url).rstrip("/") + "/ogc"


def _check_query(request: Request, allowed: Iterable[str], formats: Iterable[str]) -> None:
    """``BadQuery`` for a parameter outside ``allowed`` (and ``f``), or an ``f`` outside
    ``formats``."""
    known = set(allowed) | {"f"}
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise BadQuery(
            f"unknown query parameter {', '.join(unknown)}: this route takes "
            f"{', '.join(sorted(known))}"
        )
    f = request.query_params.get("f")
    if f is not None and f not in formats:
        raise BadQuery(f"f={f} is not served: use f={' or f='.join(formats)}")


# ---------------------------------------------------------------------------- query parameters
@dataclass(frozen=True)
class Bbox:
    """A CRS84 box (longitude, latitude; degrees); ``west > east`` crosses the antimeridian."""

    west: float
    south: float
    east: float
    north: float

    def holds(self, lon: float, lat: float) -> bool:
        """Whether the point lies in the box (its edges included)."""
        if not self.south <= lat <= self.north:
            return False
        if self.west <= self.east:
            return self.west <= lon <= self.east
        return lon >= self.west or lon <= self.east

    def boxes(self) -> list[tuple[float, float, float, float]]:
        """The box as one or two (west, south, east, north) boxes not crossing ±180°."""
        if self.west <= self.east:
            return [(self.west, self.south, self.east, self.north)]
        return [
            (self.west, self.south, 180.0, self.north),
            (-180.0, self.south, self.east, self.north),
        ]


def parse_bbox(text: str | None) -> Bbox | None:
    """``bbox=west,south,east,north`` (or with heights: ``west,south,low,east,north,high``) in
    CRS84; ``BadQuery`` otherwise."""
    if text is None:
        return None
    try:
        numbers = [float(t) for t in text.split(",")]
    except ValueError:
        raise BadQuery(f"bbox={text}: give 4 (or 6) numbers separated by commas") from None
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if len(numbers) != 4 or not all(math.isfinite(n) for n in numbers):
        raise BadQuery(f"bbox={text}: give 4 (or 6) numbers separated by commas")
    west, south, east, north = numbers
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise BadQuery(f"bbox={text}: longitudes lie in [-180, 180] (CRS84)")
    if not (-90 <= south <= north <= 90):
        raise BadQuery(f"bbox={text}: latitudes lie in [-90, 90], south before north (CRS84)")
    return Bbox(west, south, east, north)


@dataclass(frozen=True)
class Interval:
    """A closed time interval (UTC); ``None`` at an open end."""

    start: datetime | None
    end: datetime | None

    def holds(self, when: datetime | None) -> bool:
        """Whether ``when`` lies in the interval (a missing time lies in none)."""
        if when is None:
            return False
        return (self.start is None or self.start <= when) and (self.end is None or when <= self.end)


def parse_datetime(text: str | None, request: Request) -> Interval | None:
    """``datetime=`` an instant, or an interval ``a/b``, ``../b``, ``a/..`` (RFC 3339 / ISO 8601;
    no offset: the bureau's time zone); ``BadQuery`` otherwise."""
    if text is None:
        return None
    tz = _ctx(request).timezone
    try:
        if "/" not in text:
            instant = query_time(text, tz)
            return Interval(instant, instant)
        first, _, second = text.partition("/")
        start = None if first in ("", "..") else query_time(first, tz)
        end = None if second in ("", "..") else query_time(second, tz)
    except ValueError as exc:
        raise BadQuery(f"datetime={text}: {exc}") from None
    if start is None and end is None:
        raise BadQuery(f"datetime={text}: an interval needs at least one end")
    if start is not None and end is not None and start > end:
        raise BadQuery(f"datetime={text}: the interval ends before it starts")
    return Interval(start, end)


def parse_count(name: str, text: str | None, default: int, least: int) -> int:
    """A whole-number query parameter, at least ``least``; ``BadQuery`` otherwise."""
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise BadQuery(f"{name}={text}: give a whole number") from None
    if value < least:
        raise BadQuery(f"{name}={text}: at least {least}")
    return value


@dataclass(frozen=True)
class Page:
    """What ``…/items`` asks for, checked."""

    bbox: Bbox | None
    interval: Interval | None
    limit: int
    offset: int


def parse_page(
    request: Request,
    bbox: str | None,
    datetime_: str | None,
    limit: str | None,
    offset: str | None,
) -> Page:
    _check_query(request, ("bbox", "datetime", "limit", "offset"), ("json", "geojson"))
    return Page(
        parse_bbox(bbox),
        parse_datetime(datetime_, request),
        min(parse_count("limit", limit, DEFAULT_LIMIT, 1), MAX_LIMIT),
        parse_count("offset", offset, 0, 0),
    )


# ---------------------------------------------------------------------------------- documents
def _collection_links(base: str, collection: str) -> list[dict[str, str]]:
    url = f"{base}/collections/{collection}"
    return [
        {"href": url, "rel": "self", "type": JSON, "title": "this collection"},
        {"href": f"{url}/items", "rel": "items", "type": GEOJSON, "title": "its features"},
    ]


def _collection(
    base: str, id: str, title: str, description: str, bounds: tuple[float, ...] | None
) -> dict[str, Any]:
    extent: dict[str, Any] = {"spatial": {"bbox": [list(bounds)], "crs": CRS84}} if bounds else {}
    return {
        "id": id,
        "title": title,
        "description": description,
        "itemType": "feature",
        "crs": [CRS84],
        "extent": extent,
        "links": _collection_links(base, id),
    }


def _points_bounds(stations: Iterable[Station]) -> tuple[float, float, float, float] | None:
    lons, lats = [], []
    for s in stations:
        lons.append(s.lon)
        lats.append(s.lat)
    if not lons:
        return None
    return (min(lons), min(lats), max(lons), max(lats))


def _page_links(
    request: Request, page: Page, matched: int, returned: int, base: str, collection: str
) -> list[dict[str, str]]:
    url = f"{base}/collections/{collection}/items"
    kept = {k: v for k, v in request.query_params.items() if k not in ("offset", "limit")}

    def at(offset: int) -> str:
        return f"{url}?{urlencode(kept | {'limit': page.limit, 'offset': offset})}"

    links = [
        {"href": at(page.offset), "rel": "self", "type": GEOJSON, "title": "this page"},
        {
            "href": f"{base}/collections/{collection}",
            "rel": "collection",
            "type": JSON,
            "title": "the collection",
        },
    ]
    if page.offset + returned < matched:
        links.append(
            {"href": at(page.offset + page.limit), "rel": "next", "type": GEOJSON, "title": "next"}
        )
    if page.offset > 0:
        links.append(
            {
                "href": at(max(page.offset - page.limit, 0)),
                "rel": "prev",
                "type": GEOJSON,
                "title": "previous",
            }
        )
    return links


def _items(
    request: Request,
    features: list[dict[str, Any]],
    page: Page,
    matched: int,
    collection: str,
) -> JSONResponse:
    return _json(
        {
            "type": "FeatureCollection",
            "features": features,
            "numberMatched": matched,
            "numberReturned": len(features),
            "timeStamp": datetime.now(_ctx(request).timezone).isoformat(timespec="seconds"),
            "links": _page_links(request, page, matched, len(features), _base(request), collection),
        },
        media_type=GEOJSON,
    )


# ----------------------------------------------------------------------------------- stations
def _readable(ctx: ServiceContext, principal: access.Principal) -> dict[str, Dataset]:
    """The graded datasets of the stations ``principal`` may read, by station id (blocking)."""
    return {
        d.station: d
        for d in station_datasets(ctx, None)
        if d.station is not None and access.authorize(principal, Action.READ, d)
    }


def _latest(ctx: ServiceContext, stations: list[str]) -> dict[str, dict[str, Any]]:
    """Each station's latest values (see the module): ``{"time", "values", "units"}``."""
    if not stations:
        return {}
    with ctx.store.connection() as conn:
        rows = derived.latest_complete_hours(
            conn, derived.now(conn), what="mean", scope="station", subjects=stations
        )
    found: dict[str, dict[str, Any]] = {}
    for r in rows.to_dict("records"):
        entry = found.setdefault(str(r["subject"]), {"time": None, "values": {}, "units": {}})
        start = pd.Timestamp(r["start"]).to_pydatetime()
        entry["time"] = start if entry["time"] is None else max(entry["time"], start)
        entry["values"][str(r["parameter"])] = float(r["value"])
        entry["units"][str(r["parameter"])] = str(r["unit"])
    return found


#: properties of every station feature (an attribute of the same name does not replace one)
_FIXED: Final = ("name", "kind", "simulated", "time", "units")


def _station_feature(
    ctx: ServiceContext, station: Station, latest: dict[str, Any] | None
) -> dict[str, Any]:
    when = None if latest is None else latest["time"]
    properties: dict[str, Any] = {k: v for k, v in station.attributes.items() if k not in _FIXED}
    properties |= {
        "name": station.name,
        "kind": station.kind,
        "simulated": station.simulated,
        "time": None if when is None else when.astimezone(ctx.timezone).isoformat(),
        "units": {} if latest is None else latest["units"],
    }
    if latest is not None:
        properties |= {k: v for k, v in latest["values"].items() if k not in _FIXED}
    return {
        "type": "Feature",
        "id": station.id,
        "geometry": {"type": "Point", "coordinates": [station.lon, station.lat]},
        "properties": properties,
    }


async def _audit_stations(
    request: Request, principal: access.Principal, graded: list[Dataset], page: Page
) -> None:
    """Audit a read of stations above ``public`` (one entry per request)."""
    above = sorted(d.station for d in graded if d.station is not None and d.grade > Grade.PUBLIC)
    if above:
        await audit_read(
            request,
            principal,
            stations_object(above),
            {"route": "ogc", "stations": len(above), "limit": page.limit, "offset": page.offset},
        )


async def _station_items(request: Request, principal: access.Principal, page: Page) -> JSONResponse:
    require(principal, Action.READ, access.dataset("stations"))
    ctx = _ctx(request)

    def read() -> tuple[list[dict[str, Any]], int, list[Dataset]]:
        readable = _readable(ctx, principal)
        stations = ctx.store.list_stations(ids=sorted(readable))
        if page.bbox is not None:
            box = page.bbox
            stations = [s for s in stations if box.holds(s.lon, s.lat)]
        if page.interval is None:
            matched = len(stations)
            shown = stations[page.offset : page.offset + page.limit]
            latest = _latest(ctx, [s.id for s in shown])
        else:
            latest = _latest(ctx, [s.id for s in stations])
            interval = page.interval
            stations = [s for s in stations if interval.holds(latest.get(s.id, {}).get("time"))]
            matched = len(stations)
            shown = stations[page.offset : page.offset + page.limit]
        features = [_station_feature(ctx, s, latest.get(s.id)) for s in shown]
        return features, matched, [readable[s.id] for s in shown]

    features, matched, graded = await run_in_threadpool(read)
    await _audit_stations(request, principal, graded, page)
    return _items(request, features, page, matched, STATIONS)


async def _station_item(
    request: Request, principal: access.Principal, feature_id: str
) -> JSONResponse:
    ctx = _ctx(request)
    asked = await run_in_threadpool(station_dataset, ctx, feature_id)
    require(principal, Action.READ, asked)

    def read() -> tuple[Station | None, dict[str, Any] | None]:
        station = ctx.store.get_station(feature_id)
        if station is None:
            return None, None
        return station, _latest(ctx, [station.id]).get(station.id)

    station, latest = await run_in_threadpool(read)
    if station is None:
        return _error(404, f"no station {feature_id!r} in collection stations")
    if asked.grade > Grade.PUBLIC:
        await audit_read(
            request, principal, stations_object([station.id]), {"route": "ogc", "item": station.id}
        )
    feature = _station_feature(ctx, station, latest)
    base = _base(request)
    feature["links"] = [
        {
            "href": f"{base}/collections/{STATIONS}/items/{station.id}",
            "rel": "self",
            "type": GEOJSON,
            "title": "this station",
        },
        {
            "href": f"{base}/collections/{STATIONS}",
            "rel": "collection",
            "type": JSON,
            "title": "the stations",
        },
    ]
    return _json(feature, media_type=GEOJSON)


# ------------------------------------------------------------------------------------- layers
def _layer_id(name: str) -> str:
    """A layer's collection id: its name (``layer-stations`` for a layer named ``stations``)."""
    return "layer-stations" if name == STATIONS else name


def _layer_name(collection: str) -> str:
    return STATIONS if collection == "layer-stations" else collection


def _layer_summaries(ctx: ServiceContext) -> list[dict[str, Any]]:
    from store import gis as gis_store

    with ctx.store.connection() as conn:
        return gis_store.layer_summaries(conn)


def _layer_bounds(request: Request, summary: dict[str, Any]) -> tuple[float, ...] | None:
    """A layer's CRS84 bounds, kept per application by (name, updated) (blocking)."""
    from gis.layers import in_wgs84
    from store import gis as gis_store

    state = request.app.state
    cache: dict[tuple[str, datetime], tuple[float, ...] | None] | None = getattr(
        state, "ogc_layer_bounds", None
    )
    if cache is None:
        cache = state.ogc_layer_bounds = {}
    key = (summary["name"], summary["updated"])
    if key not in cache:
        with _ctx(request).store.connection() as conn:
            layer = in_wgs84(gis_store.load_layer(conn, summary["name"]))
        bounds = tuple(float(b) for b in layer.total_bounds) if len(layer) else None
        cache[key] = bounds if bounds is None or all(map(math.isfinite, bounds)) else None
    return cache[key]


def _layer_collection(request: Request, summary: dict[str, Any]) -> dict[str, Any]:
    from gis.crs import crs_name

    name = summary["name"]
    return _collection(
        _base(request),
        _layer_id(name),
        name,
        f"Layer {name} of the one map ({summary['features']} features, source "
        f"{summary['source']}, stored in {crs_name(summary['crs'])}; served in CRS84)",
        _layer_bounds(request, summary),
    )


def _find_layer(ctx: ServiceContext, collection: str) -> dict[str, Any] | None:
    name = _layer_name(collection)
    return next((s for s in _layer_summaries(ctx) if s["name"] == name), None)


async def _layer_items(
    request: Request, principal: access.Principal, collection: str, page: Page, one: str | None
) -> JSONResponse:
    from gis.errors import GisError
    from gis.layers import feature_collection, in_wgs84
    from store import gis as gis_store

    require(principal, Action.READ, access.dataset("layers"))
    ctx = _ctx(request)
    name = _layer_name(collection)

    def read() -> tuple[list[dict[str, Any]], int]:
        with ctx.store.connection() as conn:
            layer = in_wgs84(gis_store.load_layer(conn, name))
        if one is not None:
            layer = layer[layer.index == one]
        if page.bbox is not None:
            import shapely

            hit = pd.Series(False, index=layer.index)
            for box in page.bbox.boxes():
                hit |= layer.intersects(shapely.box(*box))
            layer = layer[hit.to_numpy()]
        matched = len(layer)
        shown = layer.iloc[page.offset : page.offset + page.limit]
        return list(feature_collection(shown)["features"]), matched

    try:
        features, matched = await run_in_threadpool(read)
    except GisError:
        return _error(404, f"no collection {collection!r}")
    if one is None:
        return _items(request, features, page, matched, collection)
    if not features:
        return _error(404, f"no feature {one!r} in collection {collection}")
    feature = features[0]
    base = _base(request)
    feature["links"] = [
        {
            "href": f"{base}/collections/{collection}/items/{one}",
            "rel": "self",
            "type": GEOJSON,
            "title": "this feature",
        },
        {"href": f"{base}/collections/{collection}", "rel": "collection", "type": JSON},
    ]
    return _json(feature, media_type=GEOJSON)


# ------------------------------------------------------------------------------------- routes
@router.get("/ogc", summary="OGC API – Features: the landing page")
async def landing(request: Request, principal: Caller, f: Format = None) -> JSONResponse:
    """Links to this document, the API definition (``/openapi.json``), the conformance
    declaration and the collections."""
    try:
        _check_query(request, (), ("json",))
    except BadQuery as exc:
        return _error(400, str(exc))
    base = _base(request)
    root = base.removesuffix("/ogc")
    return _json(
        {
            "title": "EcoSense — OGC API – Features",
            "description": "Monitoring stations with their latest values, and the vector layers"
            " of the one map, as GeoJSON features (WGS 84 longitude/latitude).",
            "links": [
                {"href": base, "rel": "self", "type": JSON, "title": "this document"},
                {
                    "href": f"{root}/openapi.json",
                    "rel": "service-desc",
                    "type": "application/vnd.oai.openapi+json;version=3.1",
                    "title": "the API definition",
                },
                {"href": f"{root}/docs", "rel": "service-doc", "type": "text/html"},
                {
                    "href": f"{base}/conformance",
                    "rel": "conformance",
                    "type": JSON,
                    "title": "conformance classes",
                },
                {
                    "href": f"{base}/collections",
                    "rel": "data",
                    "type": JSON,
                    "title": "collections",
                },
            ],
        }
    )


@router.get("/ogc/conformance", summary="OGC API – Features: the conformance classes")
async def conformance(request: Request, principal: Caller, f: Format = None) -> JSONResponse:
    """``{"conformsTo": [Core, GeoJSON]}`` (OGC API – Features – Part 1, 1.0)."""
    try:
        _check_query(request, (), ("json",))
    except BadQuery as exc:
        return _error(400, str(exc))
    return _json({"conformsTo": list(CONFORMANCE)})


async def _stations_collection(request: Request, principal: access.Principal) -> dict[str, Any]:
    ctx = _ctx(request)

    def read() -> list[Station]:
        return ctx.store.list_stations(ids=sorted(_readable(ctx, principal)))

    stations = await run_in_threadpool(read)
    return _collection(
        _base(request),
        STATIONS,
        "Monitoring stations",
        "The stations whose readings the caller may read, each with its latest valid hourly"
        " values (parameter codes as properties, their units in units, the hour's start in"
        " time; datetime filters on time)",
        _points_bounds(stations),
    )


@router.get("/ogc/collections", summary="OGC API – Features: the collections")
async def collections(request: Request, principal: Caller, f: Format = None) -> JSONResponse:
    """``stations`` and one collection per stored layer, with their extents (CRS84)."""
    try:
        _check_query(request, (), ("json",))
    except BadQuery as exc:
        return _error(400, str(exc))
    ctx = _ctx(request)
    found: list[dict[str, Any]] = []
    if access.authorize(principal, Action.READ, access.dataset("stations")):
        found.append(await _stations_collection(request, principal))
    if access.authorize(principal, Action.READ, access.dataset("layers")):
        summaries = await run_in_threadpool(_layer_summaries, ctx)
        for summary in summaries:
            found.append(await run_in_threadpool(_layer_collection, request, summary))
    base = _base(request)
    return _json(
        {
            "links": [{"href": f"{base}/collections", "rel": "self", "type": JSON}],
            "collections": found,
        }
    )


@router.get(
    "/ogc/collections/{collection_id}",
    summary="OGC API – Features: one collection",
    responses={404: {"description": "no such collection"}},
)
async def collection(
    request: Request, collection_id: str, principal: Caller, f: Format = None
) -> JSONResponse:
    """The collection's id, title, extent (CRS84) and links."""
    try:
        _check_query(request, (), ("json",))
    except BadQuery as exc:
        return _error(400, str(exc))
    if collection_id == STATIONS:
        require(principal, Action.READ, access.dataset("stations"))
        return _json(await _stations_collection(request, principal))
    require(principal, Action.READ, access.dataset("layers"))
    summary = await run_in_threadpool(_find_layer, _ctx(request), collection_id)
    if summary is None:
        return _error(404, f"no collection {collection_id!r}")
    return _json(await run_in_threadpool(_layer_collection, request, summary))


@router.get(
    "/ogc/collections/{collection_id}/items",
    summary="OGC API – Features: a collection's features (GeoJSON), paged",
    responses={
        400: {"description": "an unknown query parameter or a bad value"},
        404: {"description": "no such collection"},
    },
)
async def items(
    request: Request,
    collection_id: str,
    principal: Caller,
    bbox: Annotated[
        str | None, Query(description="west,south,east,north in CRS84 (degrees)")
    ] = None,
    datetime_: Annotated[
        str | None,
        Query(
            alias="datetime",
            description="an instant, or an interval a/b, ../b, a/.. (ISO 8601; stations: the"
            " time of their latest values)",
        ),
    ] = None,
    limit: Annotated[
        str | None,
        Query(description=f"features per page, default {DEFAULT_LIMIT}, most {MAX_LIMIT}"),
    ] = None,
    offset: Annotated[
        str | None, Query(description="features to skip (the next link has it)")
    ] = None,
    f: Format = None,
) -> JSONResponse:
    """A FeatureCollection with ``numberMatched``, ``numberReturned`` and ``self``, ``next``
    and ``prev`` links (``application/geo+json``)."""
    try:
        page = parse_page(request, bbox, datetime_, limit, offset)
    except BadQuery as exc:
        return _error(400, str(exc))
    if collection_id == STATIONS:
        return await _station_items(request, principal, page)
    require(principal, Action.READ, access.dataset("layers"))
    return await _layer_items(request, principal, collection_id, page, None)


@router.get(
    "/ogc/collections/{collection_id}/items/{feature_id}",
    summary="OGC API – Features: one feature (GeoJSON)",
    responses={
        401: {"description": "a station above public, asked anonymously"},
        403: {"description": "a station above the caller's grade"},
        404: {"description": "no such collection or feature"},
    },
)
async def item(
    request: Request, collection_id: str, feature_id: str, principal: Caller, f: Format = None
) -> JSONResponse:
    """One feature: a station (``id`` the station id) or a layer's feature (``id`` its
    name)."""
    try:
        _check_query(request, (), ("json", "geojson"))
    except BadQuery as exc:
        return _error(400, str(exc))
    if collection_id == STATIONS:
        return await _station_item(request, principal, feature_id)
    require(principal, Action.READ, access.dataset("layers"))
    whole = Page(None, None, 1, 0)
    return await _layer_items(request, principal, collection_id, whole, feature_id)
