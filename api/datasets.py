"""The open-data catalogue and bulk downloads (issue 16, items 1 and 2):
``GET /api/v1/datasets`` (what the caller may read, DCAT-style), ``/api/v1/datasets.jsonld``
(the same as a DCAT-AP catalogue in JSON-LD, for a national portal to harvest),
``/api/v1/datasets/{id}`` (one, with its columns) and ``/api/v1/datasets/{id}/download``.

Grades (access/grades.py): a dataset of station data is graded by its station kinds' default
(``readings-cems`` sensitive) and holds, for each caller, the rows of the stations the caller
may **export** (:func:`access.authorize` with ``export``: anonymous callers and viewers public
stations, analysts up to sensitive ones, admins all); the others carry their dataset's grade
(``region-emissions`` internal, ``alerts`` internal, ``layers`` public). The catalogue lists the
datasets the caller may read. Every download is authorised by the same function and audited
(action ``export``, one entry per download, anonymous ones included).

Downloads stream in constant memory in every format (:mod:`api.formats`, :mod:`store.export`).
The licence of the published data is ``ECOSENSE_DATA_LICENSE`` (an SPDX id, default
``CC-BY-4.0``); the publisher named in the catalogue is ``ECOSENSE_PUBLISHER``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import threading
import time as clock
from collections.abc import AsyncIterator, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final
from urllib.parse import urlencode

import pandas as pd
from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response, StreamingResponse

import access
from access import Action, Dataset, Grade
from access.grades import STATION_KIND_GRADES
from api import formats
from api.auth import Caller, require, station_datasets
from api.params import check_order, query_time
from sensors.errors import SensorsError
from sensors.observations import check_text
from sensors.parameters import lookup
from store import export, users
from store.context import ServiceContext
from store.export import Column
from store.export import Query as RowQuery
from store.postgres import PostgresStore

router = APIRouter(tags=["open data"])

TABLES: Final = ("csv", "parquet", "xlsx")
SERIES: Final = (*TABLES, "netcdf")
#: station kinds with readings in the catalogue (the meter kind feeds carbon accounting only)
KINDS: Final = tuple(STATION_KIND_GRADES)
_KIND_NAMES: Final = {
    "air": ("环境空气", "ambient air"),
    "water": ("地表水", "surface water"),
    "wastewater": ("废水污染源", "wastewater discharge"),
    "soil": ("土壤", "soil"),
    "radiation": ("辐射环境", "ambient radiation"),
    "cems": ("固定污染源烟气", "stack emissions (CEMS)"),
    "noise": ("声环境", "environmental noise"),
    "met": ("气象", "meteorology"),
}
_ACCESS_RIGHTS: Final = {
    Grade.PUBLIC: "PUBLIC",
    Grade.INTERNAL: "NON_PUBLIC",
    Grade.SENSITIVE: "RESTRICTED",
    Grade.RESTRICTED: "RESTRICTED",
}


@dataclass(frozen=True)
class Entry:
    """One dataset of the catalogue: ``id`` (short, URL-safe), ``title`` and ``description``
    as (Chinese, English), ``keywords``, ``formats``; ``kinds`` the station kinds whose rows
    it holds (graded by station) or ``dataset`` its name in ``access.DATASET_GRADES``;
    ``api`` the paged API route reading the same data; ``extent`` its key in
    :func:`store.export.table_extents` (``readings``: per kind); ``filters`` the download
    query parameters it takes."""

    id: str
    title: tuple[str, str]
    description: tuple[str, str]
    keywords: tuple[str, ...]
    formats: tuple[str, ...]
    api: str
    kinds: tuple[str, ...] = ()
    dataset: str | None = None
    extent: tuple[str, str] | None = None
    filters: frozenset[str] = frozenset({"start", "end", "station", "parameter"})

    @property
    def grade(self) -> Grade:
        """The dataset's grade: its named dataset's, else the lowest default of its kinds."""
        if self.dataset is not None:
            return access.dataset(self.dataset).grade
        return min(STATION_KIND_GRADES[k][0] for k in self.kinds)

    def as_dataset(self) -> Dataset:
        """What :func:`access.authorize` is asked about."""
        return Dataset(self.id, self.grade)


def _entries() -> dict[str, Entry]:
    out: list[Entry] = [
        Entry(
            "stations",
            ("监测站点", "Monitoring stations"),
            (
                "每个监测站点一行：编号、名称、类型、位置（WGS 84）、城市。",
                "One row per monitoring station: id, name, kind, location (WGS 84), city.",
            ),
            ("stations", "站点", "monitoring"),
            (*TABLES, "geojson"),
            "/api/v1/stations",
            kinds=KINDS,
            extent=None,
            filters=frozenset({"station"}),
        )
    ]
    for kind in KINDS:
        zh, en = _KIND_NAMES[kind]
        out.append(
            Entry(
                f"readings-{kind}",
                (f"{zh}监测数据", f"Readings: {en}"),
                (
                    f"{zh}站点的原始监测数据（当前值），含单位和数据标记。",
                    f"Raw readings of {en} stations (current values) with units and flags.",
                ),
                ("readings", kind, "监测数据"),
                SERIES,
                "/api/v1/observations",
                kinds=(kind,),
                extent=("readings", kind),
            )
        )
    for period, zh, en, word in (
        ("PT1H", "小时", "Hourly", "hourly"),
        ("P1D", "日", "Daily", "daily"),
        ("P1M", "月", "Monthly", "monthly"),
        ("P1Y", "年", "Annual", "annual"),
    ):
        out.append(
            Entry(
                f"aggregates-{word}",
                (f"站点{zh}均值", f"{en} station means"),
                (
                    f"各站点各参数的{zh}均值及其有效性（GB 3095-2026 表 4）。",
                    f"{en} means of each station and parameter with their validity"
                    " (GB 3095-2026 Table 4).",
                ),
                ("aggregates", word, "均值"),
                SERIES,
                f"/api/v1/aggregates?period={period}",
                kinds=KINDS,
                extent=("aggregates", period),
            )
        )
    for report, zh, en in (("hourly", "小时", "Hourly"), ("daily", "日", "Daily")):
        out += [
            Entry(
                f"aqi-{report}",
                (f"站点{zh}空气质量指数", f"{en} station AQI"),
                (
                    f"各空气站点的{zh} AQI、级别、首要污染物和分指数（HJ 633-2026）。",
                    f"{en} AQI, level, primary pollutants and IAQI of each air station"
                    " (HJ 633-2026).",
                ),
                ("AQI", "空气质量", "HJ 633-2026"),
                TABLES,
                f"/api/v1/aqi?report={report}",
                kinds=("air",),
                extent=("assessments", f"aqi-{report}"),
                filters=frozenset({"start", "end", "station"}),
            ),
            Entry(
                f"city-aqi-{report}",
                (f"城市{zh}空气质量指数", f"{en} city AQI"),
                (
                    f"各城市的{zh} AQI（HJ 633-2026），由公开站点计算。",
                    f"{en} AQI of each city (HJ 633-2026), from its public stations.",
                ),
                ("AQI", "city", "城市", "HJ 633-2026"),
                TABLES,
                f"/api/v1/aqi?report={report}&scope=city",
                dataset="city-aggregates",
                extent=("assessments", f"aqi-{report}"),
                filters=frozenset({"start", "end"}),
            ),
        ]
    for period, zh, en in (("daily", "日", "Daily"), ("monthly", "月", "Monthly")):
        out.append(
            Entry(
                f"water-classes-{period}",
                (f"地表水{zh}水质类别", f"{en} surface-water classes"),
                (
                    f"各断面的{zh}水质类别、超标项目和目标类别（GB 3838-2002）。",
                    f"{en} class, exceeding parameters and target class of each section"
                    " (GB 3838-2002).",
                ),
                ("water quality", "水质", "GB 3838-2002"),
                TABLES,
                f"/api/v1/water-classes?period={period}",
                kinds=("water",),
                extent=("assessments", f"water-{period}"),
                filters=frozenset({"start", "end", "station"}),
            )
        )
    out += [
        Entry(
            "soil-risk",
            ("农用地土壤风险", "Farmland soil risk"),
            (
                "每个样品的风险类别和各金属与筛选值之比（GB 15618-2018）。",
                "Each sample's risk class and metal-to-screening-value ratios (GB 15618-2018).",
            ),
            ("soil", "土壤", "GB 15618-2018"),
            TABLES,
            "/api/v1/soil-risk",
            kinds=("soil",),
            extent=("assessments", "soil"),
            filters=frozenset({"start", "end", "station"}),
        ),
        Entry(
            "region-emissions",
            ("分区域碳排放", "Carbon emissions by region"),
            (
                "各区域（县、市、省、全国）逐年、分气体、分行业的核算排放（吨）。",
                "Accounted annual emissions of each region (county, city, province, nation)"
                " by gas and sector (t).",
            ),
            ("carbon", "碳排放", "inventory"),
            TABLES,
            "/api/v1/emissions",
            dataset="region-emissions",
            filters=frozenset(),
        ),
        Entry(
            "zonal-statistics",
            ("分区统计", "Zonal statistics"),
            (
                "栅格（植被、水体、高程等）在各区域上的统计值。",
                "Statistics of rasters (vegetation, water, elevation) over each region.",
            ),
            ("zonal", "一张图", "NDVI"),
            TABLES,
            "/api/v1/zonal",
            dataset="zonal-statistics",
            extent=("zonal", ""),
            filters=frozenset(),
        ),
        Entry(
            "layers",
            ("一张图图层", "One-map layers"),
            (
                "行政区、流域、规划分区等矢量图层（GeoJSON，WGS 84）。",
                "Administrative, basin and planning boundaries (GeoJSON, WGS 84).",
            ),
            ("layers", "图层", "boundaries"),
            ("geojson",),
            "/api/v1/layers",
            dataset="layers",
            filters=frozenset({"layer"}),
        ),
        Entry(
            "alerts",
            ("告警", "Alerts"),
            (
                "超标、离线和数据质量告警及其处理状态（内部）。",
                "Exceedance, offline and data-quality alerts with their handling (internal).",
            ),
            ("alerts", "告警"),
            TABLES,
            "/api/v1/alerts",
            kinds=KINDS,
            dataset="alerts",
            extent=("alerts", ""),
        ),
    ]
    return {e.id: e for e in out}


ENTRIES: Final[Mapping[str, Entry]] = _entries()


def data_license() -> str:
    """The published data's licence (SPDX id): ``ECOSENSE_DATA_LICENSE``, default
    ``CC-BY-4.0``."""
    return os.environ.get("ECOSENSE_DATA_LICENSE", "CC-BY-4.0").strip() or "CC-BY-4.0"


def _ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


# ------------------------------------------------------------------------- the catalogue
#: seconds the extents (first and last times, bounds, last update) are kept per process
EXTENT_SECONDS: Final = 300.0
_extents_lock = threading.Lock()
_extents: dict[int, tuple[float, dict[str, Any]]] = {}


def catalogue_extents(store: PostgresStore) -> dict[str, Any]:
    """Temporal and spatial extents and last updates of the catalogue's datasets, as
    :func:`describe` reads them (cached :data:`EXTENT_SECONDS` per store): the API's routes and
    the dashboard's open-data page ask this one function."""
    key = id(store)
    with _extents_lock:
        held = _extents.get(key)
        if held is not None and clock.monotonic() - held[0] < EXTENT_SECONDS:
            return held[1]
    from store import gis as gis_store

    with store.connection() as conn:
        found: dict[str, Any] = {
            "readings": export.reading_extents(conn),
            "tables": export.table_extents(conn),
            "bounds": export.station_bounds(conn),
            "stations_updated": export.stations_updated(conn),
            "emissions": export.emission_extent(conn),
            "layers": [(s["name"], s["updated"]) for s in gis_store.layer_summaries(conn)],
        }
        bounds: list[tuple[float, float, float, float]] = []
        for name, _ in found["layers"]:
            layer = gis_store.load_layer(conn, name)
            wgs84 = layer.to_crs(4326) if layer.crs is not None else layer
            if len(wgs84):
                x0, y0, x1, y1 = (float(v) for v in wgs84.total_bounds)
                bounds.append((x0, y0, x1, y1))
        found["layer_bounds"] = _union(bounds)
    with _extents_lock:
        _extents[key] = (clock.monotonic(), found)
    return found


def _union(boxes: list[tuple[float, float, float, float]]) -> list[float] | None:
    if not boxes:
        return None
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def _time(value: datetime | None, tz: Any) -> str | None:
    return None if value is None else value.astimezone(tz).isoformat()


#: Read routes that need a window (``start`` and ``end``): their catalogue link carries one.
_WINDOWED: Final = (
    "/api/v1/aggregates",
    "/api/v1/aqi",
    "/api/v1/water-classes",
    "/api/v1/soil-risk",
)


def _layer_names(ctx: ServiceContext) -> set[str]:
    """The names of the stored layers (blocking)."""
    from store import gis as gis_store

    with ctx.store.connection() as conn:
        return set(gis_store.layers(conn))


def api_link(
    entry: Entry,
    start: datetime | None,
    end: datetime | None,
    extents: Mapping[str, Any],
    tz: Any,
) -> str:
    """The path and query of ``entry``'s read route that answers as given: a windowed route
    with the dataset's coverage (to a day past its last period; the last day when it holds
    nothing yet), the zonal statistics with the first stored layer."""
    path = entry.api
    query: dict[str, str] = {}
    if path.startswith(_WINDOWED):
        now = datetime.now(UTC)
        first = start or now - timedelta(days=1)
        last = (end or now) + timedelta(days=1)
        query = {"start": _time(first, tz) or "", "end": _time(last, tz) or ""}
    elif path == "/api/v1/zonal" and extents["layers"]:
        query = {"layer": str(extents["layers"][0][0])}
    if not query:
        return path
    return path + ("&" if "?" in path else "?") + urlencode(query)


def describe(entry: Entry, extents: Mapping[str, Any], base: str, tz: Any) -> dict[str, Any]:
    """The catalogue item of ``entry`` (see ``GET /api/v1/datasets``)."""
    start = end = updated = None
    if entry.extent is not None and entry.extent[0] == "readings":
        span = extents["readings"].get(entry.extent[1])
        if span is not None:
            start, end = span
            updated = end
    elif entry.extent is not None:
        span = extents["tables"].get(entry.extent)
        if span is not None:
            start, end, updated = span
    elif entry.id == "region-emissions":
        start, end, updated = extents["emissions"]
    elif entry.id == "stations":
        updated = extents["stations_updated"]
    elif entry.id == "layers":
        times = [t for _, t in extents["layers"]]
        updated = max(times) if times else None
    if entry.kinds:
        boxes = [extents["bounds"][k] for k in entry.kinds if k in extents["bounds"]]
        spatial = _union(boxes)
    else:
        spatial = extents["layer_bounds"]
    links = [
        {
            "rel": "download",
            "href": f"{base}/api/v1/datasets/{entry.id}/download?format={f}",
            "type": formats.MEDIA[f][0],
            "title": f,
        }
        for f in entry.formats
    ]
    links += [
        {"rel": "describedby", "href": f"{base}/api/v1/datasets/{entry.id}",
         "type": "application/json"},
        {"rel": "api", "href": f"{base}{api_link(entry, start, end, extents, tz)}",
         "type": "application/json"},
    ]  # fmt: skip
    return {
        "id": entry.id,
        "title": {"zh": entry.title[0], "en": entry.title[1]},
        "description": {"zh": entry.description[0], "en": entry.description[1]},
        "grade": entry.grade.label,
        "license": data_license(),
        "keywords": list(entry.keywords),
        "temporal": {"start": _time(start, tz), "end": _time(end, tz)},
        "spatial": spatial,
        "formats": list(entry.formats),
        "filters": sorted(entry.filters),
        "updated": _time(updated, tz),
        "links": links,
    }


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def readable(principal: access.Principal) -> list[Entry]:
    """The catalogue's datasets ``principal`` may read (:func:`access.authorize`)."""
    return [e for e in ENTRIES.values() if access.authorize(principal, Action.READ, e.as_dataset())]


@router.get("/api/v1/datasets", summary="The open-data catalogue: the datasets the caller may read")
async def datasets_route(request: Request, principal: Caller) -> JSONResponse:
    """``{"items": [{"id", "title": {"zh", "en"}, "description": {"zh", "en"}, "grade",
    "license", "keywords", "temporal": {"start", "end"}, "spatial": [minx, miny, maxx, maxy],
    "formats", "filters", "updated", "links"}, …]}``: the datasets the caller may read
    (anonymous callers: the public ones), DCAT-style (``/api/v1/datasets.jsonld`` is the same
    in DCAT-AP). ``spatial`` in WGS 84 degrees, times in the bureau's zone; ``links`` give a
    download per format and the paged API route."""
    ctx = _ctx(request)
    extents = await run_in_threadpool(catalogue_extents, ctx.store)
    base = _base(request)
    items = [describe(e, extents, base, ctx.timezone) for e in readable(principal)]
    return JSONResponse({"items": items})


_FILE_TYPES: Final = {
    "csv": "CSV",
    "parquet": "PARQUET",
    "xlsx": "XLSX",
    "netcdf": "NETCDF",
    "geojson": "GEOJSON",
}


def _spdx(license_id: str) -> str:
    return f"http://spdx.org/licenses/{license_id}"


def jsonld(items: list[dict[str, Any]], base: str) -> dict[str, Any]:
    """The catalogue as a DCAT-AP ``dcat:Catalog`` in JSON-LD (``items`` as
    :func:`describe` gives them)."""

    def text(pair: Mapping[str, str]) -> list[dict[str, str]]:
        return [{"@value": pair[lang], "@language": lang} for lang in ("zh", "en")]

    def when(value: str | None) -> dict[str, str] | None:
        return None if value is None else {"@value": value, "@type": "xsd:dateTime"}

    datasets = []
    for item in items:
        grade = Grade.parse(item["grade"])
        dataset: dict[str, Any] = {
            "@id": f"{base}/api/v1/datasets/{item['id']}",
            "@type": "dcat:Dataset",
            "dct:identifier": item["id"],
            "dct:title": text(item["title"]),
            "dct:description": text(item["description"]),
            "dcat:keyword": item["keywords"],
            "dct:license": {"@id": _spdx(item["license"])},
            "dct:accessRights": {
                "@id": "http://publications.europa.eu/resource/authority/access-right/"
                + _ACCESS_RIGHTS[grade]
            },
            "dcat:distribution": [
                {
                    "@id": link["href"],
                    "@type": "dcat:Distribution",
                    "dcat:accessURL": {"@id": link["href"]},
                    "dcat:downloadURL": {"@id": link["href"]},
                    "dcat:mediaType": {
                        "@id": "http://www.iana.org/assignments/media-types/"
                        + link["type"].split(";")[0]
                    },
                    "dct:format": {
                        "@id": "http://publications.europa.eu/resource/authority/file-type/"
                        + _FILE_TYPES[link["title"]]
                    },
                    "dct:license": {"@id": _spdx(item["license"])},
                }
                for link in item["links"]
                if link["rel"] == "download"
            ],
        }
        if item["updated"] is not None:
            dataset["dct:modified"] = when(item["updated"])
        start, end = item["temporal"]["start"], item["temporal"]["end"]
        if start is not None:
            dataset["dct:temporal"] = {
                "@type": "dct:PeriodOfTime",
                "dcat:startDate": when(start),
                "dcat:endDate": when(end),
            }
        if item["spatial"] is not None:
            x0, y0, x1, y1 = item["spatial"]
            dataset["dct:spatial"] = {
                "@type": "dct:Location",
                "dcat:bbox": {
                    "@value": f"POLYGON(({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))",
                    "@type": "gsp:wktLiteral",
                },
            }
        datasets.append(dataset)
    publisher = os.environ.get("ECOSENSE_PUBLISHER", "").strip() or "EcoSense"
    return {
        "@context": {
            "dcat": "http://www.w3.org/ns/dcat#",
            "dct": "http://purl.org/dc/terms/",
            "foaf": "http://xmlns.com/foaf/0.1/",
            "xsd": "http://www.w3.org/2001/XMLSchema#",
            "gsp": "http://www.opengis.net/ont/geosparql#",
        },
        "@id": f"{base}/api/v1/datasets.jsonld",
        "@type": "dcat:Catalog",
        "dct:title": text({"zh": "生态环境开放数据", "en": "Eco-environment open data"}),
        "dct:description": text(
            {
                "zh": "生态环境监测、评价和碳排放数据目录。",
                "en": "Catalogue of eco-environment monitoring, assessment and emission data.",
            }
        ),
        "dct:publisher": {"@type": "foaf:Agent", "foaf:name": publisher},
        "dct:license": {"@id": _spdx(data_license())},
        "dcat:dataset": datasets,
    }


@router.get(
    "/api/v1/datasets.jsonld",
    summary="The catalogue in DCAT-AP (JSON-LD), for national portals to harvest",
)
async def datasets_jsonld_route(request: Request, principal: Caller) -> Response:
    """A ``dcat:Catalog`` of the datasets the caller may read, each with its distributions
    (one per download format), licence, access rights, temporal and spatial coverage.
    Served as ``application/ld+json``."""
    ctx = _ctx(request)
    extents = await run_in_threadpool(catalogue_extents, ctx.store)
    base = _base(request)
    items = [describe(e, extents, base, ctx.timezone) for e in readable(principal)]
    import json

    body = json.dumps(jsonld(items, base), ensure_ascii=False)
    return Response(body, media_type="application/ld+json")


def _entry(principal: access.Principal, name: str) -> Entry | JSONResponse:
    entry = ENTRIES.get(name)
    if entry is None:
        return _error(404, f"no dataset {name!r}: GET /api/v1/datasets lists them")
    require(principal, Action.READ, entry.as_dataset())
    return entry


@router.get(
    "/api/v1/datasets/{name}",
    summary="One dataset of the catalogue, with its columns",
    responses={404: {"description": "no such dataset"}},
)
async def dataset_route(request: Request, name: str, principal: Caller) -> JSONResponse:
    """The catalogue item (see ``GET /api/v1/datasets``) with ``columns``: ``[{"name",
    "type", "unit", "description"}, …]`` as every download format holds them."""
    entry = _entry(principal, name)
    if isinstance(entry, JSONResponse):
        return entry
    ctx = _ctx(request)
    extents = await run_in_threadpool(catalogue_extents, ctx.store)
    item = describe(entry, extents, _base(request), ctx.timezone)
    item["columns"] = [
        {"name": c.name, "type": str(c.type), "unit": c.unit, "description": c.description}
        for c in _columns(entry)
    ]
    return JSONResponse(item)


# ------------------------------------------------------------------------------ downloads
_REGION_COLUMNS: Final = (
    Column("level", export.TEXT, description="county, city, province or nation"),
    Column("region", export.TEXT, description="CN, ISO 3166-2 province, GB/T 2260 code"),
    Column("year", export.INT, description="the bureau's calendar year (current: to date)"),
    Column("gas", export.TEXT, description="CO2, CH4, N2O or CO2e"),
    Column("sector", export.TEXT),
    Column("tonnes", export.FLOAT, "t", "t of the gas (CO2e: t CO2e)"),
    Column("facilities", export.INT, description="facilities the total holds"),
)


def _columns(entry: Entry) -> tuple[Column, ...]:
    if entry.id == "region-emissions":
        return _REGION_COLUMNS
    if entry.id == "layers":
        return ()  # GeoJSON features: each layer's own attributes
    return _query(entry, [], {}).columns


def _query(entry: Entry, stations: list[str], f: Mapping[str, Any]) -> RowQuery:
    """The rows of ``entry`` for ``stations`` (the ones the caller may export) and filters."""
    start, end, parameter = f.get("start"), f.get("end"), f.get("parameter")
    name = entry.id
    if name == "stations":
        return export.stations(stations)
    if name.startswith("readings-"):
        return export.readings(entry.kinds[0], stations, start=start, end=end, parameter=parameter)
    if name.startswith("aggregates-"):
        period = {"hourly": "PT1H", "daily": "P1D", "monthly": "P1M", "annual": "P1Y"}
        return export.aggregates(
            period[name.split("-")[1]], stations, start=start, end=end, parameter=parameter
        )
    if name.startswith("aqi-"):
        return export.assessments(name, "station", stations, start=start, end=end)
    if name.startswith("city-aqi-"):
        return export.assessments(name[5:], "city", None, start=start, end=end)
    if name.startswith("water-classes-"):
        return export.assessments(f"water-{name[14:]}", "station", stations, start=start, end=end)
    if name == "soil-risk":
        return export.assessments("soil", "station", stations, start=start, end=end)
    if name == "zonal-statistics":
        return export.zonal()
    if name == "alerts":
        return export.alerts(stations, start=start, end=end, parameter=parameter)
    raise KeyError(name)  # pragma: no cover - every entry is above


def exportable(
    ctx: ServiceContext, principal: access.Principal, kinds: tuple[str, ...]
) -> list[str]:
    """The stations of ``kinds`` whose data ``principal`` may export (blocking)."""
    from access.grades import station_dataset as graded

    with ctx.store.connection() as conn:
        rows = users.station_grades(conn)
    return [
        r.station
        for r in rows
        if r.kind in kinds
        and access.authorize(principal, Action.EXPORT, graded(r.station, r.kind, r.override))
    ]


def _region_frame(ctx: ServiceContext) -> pd.DataFrame:
    from carbon.inventory import LEVELS, region_totals
    from store import derived

    with ctx.store.connection() as conn:
        rows = derived.read_facility_years(conn, str(ctx.timezone))
    parts = [region_totals(rows, level=level).assign(level=level) for level in LEVELS]
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    return frame[[c.name for c in _REGION_COLUMNS]]


def _frame_chunks(frame: pd.DataFrame) -> Iterator[bytes]:
    yield frame.to_csv(index=False, lineterminator="\n").encode()


def _layers_body(ctx: ServiceContext, layer: str | None) -> Iterator[bytes]:
    """Every stored layer (or ``layer``) as one FeatureCollection in WGS 84, each feature's
    ``id`` ``layer/feature`` and its layer in ``properties.layer``."""
    import json

    from store import gis as gis_store

    with ctx.store.connection() as conn:
        names = gis_store.layers(conn) if layer is None else [layer]
    yield b'{"type": "FeatureCollection", "features": ['
    first = True
    for name in names:
        with ctx.store.connection() as conn:
            try:
                frame = gis_store.load_layer(conn, name)
            except Exception:  # an unknown layer: no feature (checked before streaming)
                continue
        wgs84 = frame.to_crs(4326) if frame.crs is not None else frame
        collection = json.loads(wgs84.to_json(drop_id=True))
        for feature, key in zip(collection["features"], wgs84.index, strict=True):
            feature["id"] = f"{name}/{key}"
            feature["properties"] = {"layer": name, "feature": str(key)} | (
                feature.get("properties") or {}
            )
            yield (b"" if first else b", ") + json.dumps(feature, ensure_ascii=False).encode()
            first = False
    yield b"]}"


@router.get(
    "/api/v1/datasets/{name}/download",
    summary="Download a dataset in bulk (csv, parquet, xlsx, netcdf, geojson), streamed",
    responses={
        200: {"description": "the file (Content-Disposition: attachment)"},
        400: {"description": "a format or filter the dataset does not have; xlsx too long"},
        404: {"description": "no such dataset"},
    },
)
async def download_route(
    request: Request,
    name: str,
    principal: Caller,
    format: Annotated[str, Query(description="csv, parquet, xlsx, netcdf or geojson")] = "csv",
    start: Annotated[str | None, Query(description="ISO 8601, inclusive")] = None,
    end: Annotated[str | None, Query(description="ISO 8601, exclusive")] = None,
    station: Annotated[str | None, Query(description="one station's rows")] = None,
    parameter: Annotated[str | None, Query(description="canonical or HJ 212 code")] = None,
    layer: Annotated[str | None, Query(description="layers: one layer")] = None,
) -> Response:
    """The dataset's rows the caller may export, as one file in ``format`` (the dataset's
    ``formats``): one header row, times ISO 8601 with the bureau's offset (typed in Parquet
    and NetCDF), the CSV in UTF-8 with a byte-order mark, NetCDF as CF station time series,
    GeoJSON in WGS 84. Streamed: any size in constant memory (xlsx up to a sheet's
    1,048,576 rows; beyond, a 400 that points to CSV or Parquet)."""
    ctx = _ctx(request)
    entry = ENTRIES.get(name)
    if entry is None:
        return _error(404, f"no dataset {name!r}: GET /api/v1/datasets lists them")
    if format not in entry.formats:
        return _error(400, f"{name} downloads as {', '.join(entry.formats)}, not {format!r}")
    given = {
        k: v
        for k, v in (
            ("start", start),
            ("end", end),
            ("station", station),
            ("parameter", parameter),
            ("layer", layer),
        )
        if v is not None
    }
    unknown = sorted(set(given) - entry.filters)
    if unknown:
        takes = ", ".join(sorted(entry.filters)) or "no filter"
        return _error(400, f"{name} does not take {', '.join(unknown)} (it takes {takes})")
    require(principal, Action.EXPORT, entry.as_dataset())
    try:
        for what, text in given.items():
            check_text(what, text)
        filters: dict[str, Any] = {
            "start": query_time(start, ctx.timezone) if start else None,
            "end": query_time(end, ctx.timezone) if end else None,
            "parameter": lookup(parameter).code if parameter else None,
        }
        check_order(filters["start"], filters["end"])
    except (SensorsError, ValueError) as exc:
        return _error(400, str(exc))
    stations: list[str] = []
    graded: list[str] = []
    if entry.kinds:
        if station is not None:
            found = await run_in_threadpool(station_datasets, ctx, [station])
            if not found:
                return _error(404, f"no station {station!r}: GET /api/v1/stations lists them")
            require(principal, Action.EXPORT, found[0])
            stations = [station]
        else:
            stations = await run_in_threadpool(exportable, ctx, principal, entry.kinds)
        grades = await run_in_threadpool(_station_grades, ctx, stations)
        graded = sorted(s for s, g in grades.items() if g > Grade.PUBLIC)
    media, ext = formats.MEDIA[format]
    tz = str(ctx.timezone)
    if entry.id == "layers":
        if layer is not None and layer not in await run_in_threadpool(_layer_names, ctx):
            return _error(404, f"no layer {layer!r}: GET /api/v1/layers lists them")
        body: Iterator[bytes] = _layers_body(ctx, layer)
    else:
        query: RowQuery | None = None
        columns: tuple[Column, ...] = _REGION_COLUMNS
        if entry.id != "region-emissions":
            query = _query(entry, stations, filters)
            columns = query.columns
        if format == "xlsx" and query is not None:
            rows = await run_in_threadpool(_count, ctx, query)
            if rows > formats.XLSX_ROWS:
                return _error(
                    400,
                    f"this download has {rows:,} rows: an xlsx sheet holds "
                    f"{formats.XLSX_ROWS:,} below its header; use format=csv or format=parquet"
                    " (or narrow it with start, end, station or parameter)",
                )
        body = _body(ctx, entry, query, columns, format, tz)
    await run_in_threadpool(
        ctx.audit,
        principal.actor,
        "export",
        _audit_object(entry, graded),
        "ok",
        request.client.host if request.client else None,
        {"dataset": entry.id, "format": format, "grade": entry.grade.label, **given},
    )
    return StreamingResponse(
        in_one_thread(body),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{entry.id}.{ext}"'},
    )


#: chunks a download's producer thread may be ahead of the client
AHEAD: Final = 4
#: downloads produced at once per process (more wait their turn): their threads are reused,
#: so their allocator caches are too
DOWNLOADS: Final = 8
_PRODUCERS: Final = ThreadPoolExecutor(DOWNLOADS, thread_name_prefix="download")


async def in_one_thread(body: Iterator[bytes]) -> AsyncIterator[bytes]:
    """``body`` produced in a thread of its own, at most :data:`AHEAD` chunks ahead of the
    client; closed (and its database connection returned) when the client goes away.

    Starlette would run each step of a synchronous iterator in whichever thread of its pool
    is free: a long download then touches every thread's allocator caches, and the server's
    memory creeps up with the download's length. One thread, from a small pool of its own
    (:data:`DOWNLOADS`), keeps it flat."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(AHEAD)
    stop = threading.Event()
    handed: queue.SimpleQueue[None] = queue.SimpleQueue()

    def put(item: bytes | BaseException | None) -> None:
        future = asyncio.run_coroutine_threadsafe(ready.put(item), loop)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                future.result(timeout=0.5)
                return
        future.cancel()

    def produce() -> None:
        try:
            for chunk in body:
                if stop.is_set():
                    break
                put(chunk)
            else:
                put(None)
        except BaseException as exc:  # handed to the response, which ends the download
            put(exc)
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            handed.put(None)

    _PRODUCERS.submit(produce)
    try:
        while True:
            item = await ready.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while not ready.empty():
            ready.get_nowait()


def _audit_object(entry: Entry, graded: list[str]) -> str:
    from api.routes import stations_object

    return stations_object(graded) if graded else f"dataset:{entry.id}"


def _station_grades(ctx: ServiceContext, stations: list[str]) -> dict[str, Grade]:
    with ctx.store.connection() as conn:
        return {d.station: d.grade for d in users.station_datasets(conn, stations) if d.station}


def _count(ctx: ServiceContext, query: RowQuery) -> int:
    with ctx.store.connection() as conn:
        return export.count(conn, query)


def _body(
    ctx: ServiceContext,
    entry: Entry,
    query: RowQuery | None,
    columns: tuple[Column, ...],
    format: str,
    tz: str,
) -> Iterator[bytes]:
    """The file, produced while it is sent (a connection is held until it ends)."""
    meta = {
        "dataset": entry.id,
        "title": entry.title[1],
        "title_zh": entry.title[0],
        "license": data_license(),
        "source": "EcoSense",
    }
    with ctx.store.connection() as conn:
        chunks: Iterator[bytes] = (
            _frame_chunks(_region_frame(ctx)) if query is None else export.copy_csv(conn, query, tz)
        )
        # A client that goes away closes this generator: a COPY still streaming is cancelled
        # and the rows' generator closed here, before the connection goes back to the pool
        # (a reader of the rows — CSV headings, record batches — does not close it; the pool's
        # rollback of a connection in the middle of a COPY waited for ever, and every
        # download thread with it).
        try:
            if format == "csv":
                yield from formats.csv_body(chunks, columns)
                return
            schema = formats.arrow_schema(columns, tz, meta)
            rows = formats.batches(chunks, columns, tz)
            if format == "parquet":
                yield from formats.parquet_body(rows, schema)
            elif format == "xlsx":
                yield from formats.xlsx_body(rows, schema, entry.id)
            elif format == "geojson":
                yield from formats.geojson_body(rows)
            else:
                stations = _station_meta(conn, query)
                yield from formats.netcdf_body(
                    rows,
                    stations=stations,
                    time="time" if entry.id.startswith("readings-") else "start",
                    attributes={
                        "title": entry.title[1],
                        "title_zh": entry.title[0],
                        "license": data_license(),
                        "source": "EcoSense",
                        "institution": (
                            os.environ.get("ECOSENSE_PUBLISHER", "").strip() or "EcoSense"
                        ),
                    },
                    names=_parameter_name,
                )
        finally:
            export.cancel_streaming(conn)
            close = getattr(chunks, "close", None)
            if close is not None:
                with contextlib.suppress(ValueError):  # being read ahead: ends by the cancel
                    close()


def _station_meta(conn: Any, query: RowQuery | None) -> list[tuple[str, str, float, float]]:
    """(id, name, lon, lat) of the stations of a readings or aggregates query (its second
    parameter), by id: the instance dimension of the NetCDF file."""
    return export.station_meta(conn, [] if query is None else query.params[1])


def _parameter_name(code: str) -> str:
    try:
        p = lookup(code)
    except SensorsError:
        return code
    return f"{p.name_en} ({p.name_zh})"
