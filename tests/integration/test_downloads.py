"""The open-data catalogue and bulk downloads (issue 16, items 1 and 2) against the real store:
each dataset downloads in each of its formats with the same rows (CSV with a BOM and one header
row, Parquet read back with pyarrow, NetCDF with xarray and its CF attributes checked, xlsx
with openpyxl, GeoJSON); anonymous callers never get a non-public row; every download is
audited; xlsx beyond a sheet is refused with a pointer to CSV or Parquet."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from access import Grade, Role
from access.passwords import hash_password
from api import formats
from api.datasets import ENTRIES
from ecosense.app import create_app
from sensors.observations import Observation, Source
from sensors.stations import Station
from store import derived, users
from store.context import ServiceContext
from store.postgres import PostgresStore, hash_secret

pytestmark = pytest.mark.integration
ADMIN = "break-glass-secret"
CST = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 27, 16, tzinfo=UTC)  # 2026-11-28 00:00 in China Standard Time
SOURCE = Source("http")
HOURS = 6
_PUBLIC_DATA = {
    "stations",
    "readings-air",
    "readings-water",
    "aggregates-hourly",
    "aqi-hourly",
    "city-aqi-daily",
    "water-classes-daily",
    "zonal-statistics",
    "layers",
}
#: the datasets the fixture fills, per caller
HOLDING = {
    "anonymous": _PUBLIC_DATA,
    "admin": _PUBLIC_DATA | {"readings-cems", "soil-risk", "region-emissions", "alerts"},
}


@pytest.fixture
def world(store: PostgresStore) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """Public air stations A1 and A2, an air station graded internal (A3), a CEMS stack (C1,
    sensitive), a river section (W1), a soil point (S1); six hours of readings, their hourly
    means and AQIs, a day's water class, a soil sample, a city AQI, facility emissions, a layer
    with zonal statistics and an alert."""
    store.upsert_stations(
        [
            Station("A1", "东四", "air", 116.4, 39.9, {"city": "Beijing"}),
            Station("A2", 'Tiantan, "south"', "air", 116.41, 39.88, {"city": "Beijing"}),
            Station("A3", "Internal", "air", 116.3, 39.95, {"city": "Beijing"}),
            Station("C1", "Stack", "cems", 116.5, 39.8),
            Station("W1", "River", "water", 116.2, 39.7),
            Station("S1", "Paddy", "soil", 113.0, 28.2),
        ]
    )
    readings = [
        Observation(s, p, T0 + timedelta(hours=h, minutes=m), float(10 * h + m), interval=None)
        for s in ("A1", "A2", "A3")
        for p in ("pm25", "so2")
        for h in range(HOURS)
        for m in (0, 30)
    ]
    readings += [Observation("A1", "co", T0 + timedelta(hours=1), 0.8)]  # mg/m3
    readings += [Observation("C1", "flue_so2", T0 + timedelta(hours=h), 35.0) for h in range(HOURS)]
    readings += [Observation("W1", "do", T0 + timedelta(hours=h), 7.5) for h in range(HOURS)]
    assert store.write_observations(readings, source=SOURCE) == len(readings)
    aggregates = pd.DataFrame(
        [
            {
                "scope": "station",
                "subject": s,
                "parameter": "pm25",
                "period": "PT1H",
                "start": T0 + timedelta(hours=h),
                "value": 10.0 * h + 15,
                "count": 2.0,
                "valid": h > 0,
                "unit": "ug/m3",
            }
            for s in ("A1", "A3", "C1")
            for h in range(HOURS)
        ]
    )
    assessments = [
        {
            "scope": "station",
            "subject": s,
            "kind": "aqi-hourly",
            "start": T0 + timedelta(hours=h),
            "value": 50 + h,
            "level": 1,
            "label": "pm25",
            "details": {"pm25": 50 + h, "c_pm25": 30.0},
        }
        for s in ("A1", "A3")
        for h in range(HOURS)
    ]
    assessments += [
        {
            "scope": "city",
            "subject": "Beijing",
            "kind": "aqi-daily",
            "start": T0,
            "value": 95,
            "level": 2,
            "label": "pm25",
            "details": {"pm25": 95, "c_pm25": 71.0},
        },
        {
            "scope": "station",
            "subject": "W1",
            "kind": "water-daily",
            "start": T0,
            "value": 4,
            "level": 4,
            "label": "cod",
            "details": {"water_body": "river", "target_class": 3, "classes": {"cod": 4}},
        },
        {
            "scope": "station",
            "subject": "S1",
            "kind": "soil",
            "start": T0,
            "value": 2,
            "level": 2,
            "label": "安全利用类",
            "details": {"ph": 6.1, "land_use": "paddy", "ratios": {"cd": 1.4}},
        },
    ]
    emissions = pd.DataFrame(
        [
            {
                "source": "calculation",
                "subject": f,
                "gas": "CO2e",
                "period": "P1Y",
                "start": datetime(2025, 1, 1, tzinfo=CST).astimezone(UTC),
                "tonnes": t,
                "substitution": "",
                "details": {"region": r, "sector": "power"},
            }
            for f, t, r in (("F1", 100.0, "110105"), ("F2", 50.0, "310115"))
        ]
    )
    with store.connection() as conn:
        derived.upsert(conn, "aggregates", aggregates)
        derived.upsert(conn, "assessments", pd.DataFrame(assessments))
        derived.upsert(conn, "emissions", emissions)
        conn.execute("INSERT INTO station_grades (station_id, grade) VALUES ('A3', 'internal')")
        conn.execute(
            "INSERT INTO alerts (rule, station_id, parameter, message, value)"
            " VALUES ('exceedance', 'A1', 'pm25', 'PM2.5 over the limit', 120.0),"
            " ('exceedance', 'C1', 'flue_so2', 'SO2 over the limit', 300.0)"
        )
        users.add_user(conn, "analyst", Role.ANALYST, hash_password("pw-analyst"))
        users.add_user(conn, "viewer", Role.VIEWER, hash_password("pw-viewer"))
    _layer(store)
    ctx = ServiceContext(store, hash_secret(ADMIN), CST)
    with TestClient(create_app(ctx)) as c:
        tokens = {}
        for name in ("analyst", "viewer"):
            r = c.post("/api/v1/auth/token", data={"username": name, "password": f"pw-{name}"})
            assert r.status_code == 200, r.text
            tokens[name] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        tokens["admin"] = {"Authorization": f"Bearer {ADMIN}"}
        yield c, tokens


def _layer(store: PostgresStore) -> None:
    import geopandas as gpd
    import shapely

    from gis.catalogue import RasterItem
    from store import gis as gis_store

    boxes = gpd.GeoDataFrame(
        {"name": ["north", "south"]},
        geometry=[shapely.box(116.0, 39.9, 116.6, 40.2), shapely.box(116.0, 39.5, 116.6, 39.9)],
        crs=4326,
    )
    with store.connection() as conn:
        gis_store.save_layer(conn, "districts", boxes, "name", "test")
        gis_store.save_raster(
            conn,
            RasterItem("ndvi", "/nowhere/ndvi.tif", None, 1, T0, "EPSG:4326", 0.1, 0.1, 10, 10),
        )
        gis_store.save_zonal(
            conn,
            pd.DataFrame(
                [
                    {"raster": "ndvi", "layer": "districts", "feature": f, "stat": "mean",
                     "time": T0, "value": v}
                    for f, v in (("north", 0.61), ("south", float("nan")))
                ]
            ),
        )  # fmt: skip


def _rows(body: bytes, fmt: str) -> pd.DataFrame:
    """A downloaded file as a frame (NetCDF: one row per value held)."""
    if fmt == "csv":
        assert body.startswith(formats.BOM)
        frame = pd.read_csv(io.BytesIO(body[len(formats.BOM) :]), encoding="utf-8", dtype=str)
        return frame.rename(columns=lambda h: str(h).split(" (")[0])  # units as in xlsx
    if fmt == "parquet":
        return pq.read_table(io.BytesIO(body)).to_pandas()
    if fmt == "xlsx":
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(body), read_only=True).active
        values = list(sheet.iter_rows(values_only=True))
        heads = [str(h).split(" (")[0] for h in values[0]]
        padded = [list(v) + [None] * (len(heads) - len(v)) for v in values[1:]]
        return pd.DataFrame(padded, columns=heads)
    if fmt == "geojson":
        features = json.loads(body)["features"]
        return pd.DataFrame([{"id": f["id"]} | f["properties"] for f in features])
    assert fmt == "netcdf"
    import xarray as xr

    with xr.open_dataset(io.BytesIO(body), engine="h5netcdf") as ds:
        assert ds.attrs["featureType"] == "timeSeries"
        assert ds.attrs["Conventions"].startswith("CF-")
        assert ds["station_id"].attrs["cf_role"] == "timeseries_id"
        assert ds["station_index"].attrs["instance_dimension"] == "station"
        # CF's axis attribute is X, Y, Z or T (the trial found "O" and "A")
        assert (ds["lon"].attrs["axis"], ds["lat"].attrs["axis"]) == ("X", "Y")
        ids = [str(s) for s in ds["station_id"].values]
        out = []
        for i in range(ds.sizes["obs"]):
            station = ids[int(ds["station_index"].values[i])]
            out.append({"station": station, "parameter": str(ds["parameter"].values[i])})
        for name, var in ds.data_vars.items():
            if "parameter" in var.attrs:
                assert var.attrs["units"] and "coordinates" in var.encoding, name
        held = sum(
            int(var.notnull().sum()) for var in ds.data_vars.values() if "parameter" in var.attrs
        )
        assert held == ds.sizes["obs"]  # one value per row
        return pd.DataFrame(out, columns=["station", "parameter"])


def _download(
    c: TestClient, name: str, fmt: str, headers: dict[str, str] | None = None, **query: str
) -> pd.DataFrame:
    r = c.get(
        f"/api/v1/datasets/{name}/download",
        params={"format": fmt, **query},
        headers=headers or {},
    )
    assert r.status_code == 200, (name, fmt, r.text)
    assert r.headers["content-type"].startswith(formats.MEDIA[fmt][0].split(";")[0])
    assert f'filename="{name}.' in r.headers["content-disposition"]
    return _rows(r.content, fmt)


def _station_column(frame: pd.DataFrame) -> str | None:
    for column in ("station", "id"):
        if column in frame.columns:
            return column
    return None


def test_every_dataset_in_every_format_holds_the_same_rows(
    world: tuple[TestClient, dict[str, str]],
) -> None:
    c, tokens = world
    for who, headers in (("anonymous", {}), ("admin", tokens["admin"])):
        for entry in ENTRIES.values():
            if who == "anonymous" and entry.grade > Grade.PUBLIC:
                continue
            frames = {f: _download(c, entry.id, f, headers) for f in entry.formats}
            sizes = {f: len(frame) for f, frame in frames.items()}
            assert len(set(sizes.values())) == 1, (who, entry.id, sizes)
            if entry.id in HOLDING[who]:
                assert next(iter(sizes.values())) > 0, (who, entry.id)
            column = _station_column(frames[entry.formats[0]])
            if who == "anonymous" and column is not None and entry.kinds:
                for f, frame in frames.items():
                    seen = set(frame[column].astype(str))
                    assert seen <= {"A1", "A2", "W1"}, (entry.id, f, seen)


def test_readings_csv_parquet_netcdf(world: tuple[TestClient, dict[str, str]]) -> None:
    c, _ = world
    r = c.get("/api/v1/datasets/readings-air/download", params={"format": "csv"})
    text = r.content.decode("utf-8-sig")
    lines = text.splitlines()
    assert lines[0] == "station,parameter,time,value,unit,flag,interval,statistic,basis"
    assert lines[1] == "A1,co,2026-11-28T01:00:00+08:00,0.8,mg/m3,N,,,measured"
    assert lines[2] == "A1,pm25,2026-11-28T00:00:00+08:00,0,ug/m3,N,,,measured"
    assert sum(1 for line in lines if line.startswith("A3,")) == 0  # internal: not anonymous
    assert len(lines) == 1 + 2 * 2 * HOURS * 2 + 1  # A1 and A2, two parameters, + A1's CO
    # a filter: one station, one parameter, a window
    one = _download(
        c,
        "readings-air",
        "parquet",
        station="A1",
        parameter="pm25",
        start="2026-11-28T01:00",
        end="2026-11-28T03:00",
    )
    assert len(one) == 4 and set(one["station"]) == {"A1"}
    table = pq.read_table(
        io.BytesIO(
            c.get("/api/v1/datasets/readings-air/download", params={"format": "parquet"}).content
        )
    )
    assert str(table.schema.field("time").type) == "timestamp[us, tz=Asia/Shanghai]"
    assert str(table.schema.field("value").type) == "double"
    assert table.schema.metadata[b"dataset"] == b"readings-air"
    assert table.schema.field("lon" if "lon" in table.schema.names else "time").metadata
    import xarray as xr

    body = c.get("/api/v1/datasets/readings-air/download", params={"format": "netcdf"}).content
    with xr.open_dataset(io.BytesIO(body), engine="h5netcdf") as ds:
        assert ds["pm25"].attrs["units"] == "ug m-3"
        assert ds["pm25"].attrs["standard_name"].startswith("mass_concentration_of_pm2p5")
        assert ds["co"].attrs["units"] == "mg m-3"
        assert ds["lon"].attrs["standard_name"] == "longitude"
        assert ds["time"].attrs["standard_name"] == "time"
        assert pd.Timestamp(ds["time"].values.min()) == pd.Timestamp("2026-11-27T16:00")  # UTC
        assert sorted(str(s) for s in ds["station_id"].values) == ["A1", "A2"]
        assert int(ds["pm25"].notnull().sum()) == 2 * HOURS * 2


def test_grades_apply_to_downloads(world: tuple[TestClient, dict[str, str]]) -> None:
    """Anonymous callers: public rows only; a non-public dataset or station is a 401; a viewer
    exports public rows only (export of non-public data needs an analyst); the analyst gets
    the CEMS stack."""
    c, tokens = world
    assert c.get("/api/v1/datasets/readings-cems/download").status_code == 401
    assert c.get("/api/v1/datasets/alerts/download").status_code == 401
    assert c.get("/api/v1/datasets/region-emissions/download").status_code == 401
    r = c.get("/api/v1/datasets/readings-air/download", params={"station": "A3"})
    assert r.status_code == 401
    viewer = _download(c, "aggregates-hourly", "csv", tokens["viewer"])
    assert set(viewer["station"]) == {"A1"}
    analyst = _download(c, "aggregates-hourly", "csv", tokens["analyst"])
    assert set(analyst["station"]) == {"A1", "A3", "C1"}
    assert (
        c.get("/api/v1/datasets/alerts/download", headers=tokens["viewer"]).status_code == 403
    )  # internal: a viewer reads alerts, but exporting needs an analyst
    alerts = _download(c, "alerts", "csv", tokens["analyst"])
    assert set(alerts["station"]) == {"A1", "C1"}
    stations = _download(c, "stations", "geojson")
    assert set(stations["id"]) == {"A1", "A2", "W1"}


def test_downloads_are_audited(
    world: tuple[TestClient, dict[str, str]], store: PostgresStore
) -> None:
    c, tokens = world
    _download(c, "readings-air", "csv")
    _download(c, "aggregates-hourly", "parquet", tokens["analyst"])
    with store.connection() as conn:
        rows = conn.execute(
            "SELECT actor, action, object, details->>'format' FROM audit_log"
            " WHERE action = 'export' ORDER BY id"
        ).fetchall()
    assert ("anonymous", "export", "dataset:readings-air", "csv") in rows
    # the non-public stations the download may hold (S1 has no hourly means)
    assert ("analyst", "export", "station:A3,C1,S1", "parquet") in rows


def test_bad_downloads(world: tuple[TestClient, dict[str, str]]) -> None:
    c, _ = world
    for path, query, status, message in (
        ("nowhere", {}, 404, "no dataset"),
        ("readings-air", {"format": "geojson"}, 400, "downloads as csv, parquet, xlsx, netcdf"),
        ("stations", {"parameter": "pm25"}, 400, "does not take parameter"),
        ("readings-air", {"start": "soon"}, 400, "soon"),
        ("readings-air", {"parameter": "unobtainium"}, 400, "unobtainium"),
        ("readings-air", {"start": "2026-11-29", "end": "2026-11-28"}, 400, "is after end"),
        # the new user's trial: an unknown station or layer was an empty file
        ("readings-air", {"station": "NOPE"}, 404, "no station 'NOPE'"),
        ("layers", {"format": "geojson", "layer": "nope"}, 404, "no layer 'nope'"),
    ):
        r = c.get(f"/api/v1/datasets/{path}/download", params=query)
        assert r.status_code == status and message in r.json()["detail"], (path, r.text)


def test_xlsx_beyond_a_sheet_is_refused(
    world: tuple[TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    c, _ = world
    monkeypatch.setattr(formats, "XLSX_ROWS", 10)  # a sheet's 1,048,575 rows, made small
    r = c.get("/api/v1/datasets/readings-air/download", params={"format": "xlsx"})
    assert r.status_code == 400
    assert "use format=csv or format=parquet" in r.json()["detail"]
    assert "49 rows" in r.json()["detail"]
    ok = c.get(
        "/api/v1/datasets/readings-air/download",
        params={"format": "xlsx", "station": "A1", "parameter": "so2", "end": "2026-11-28T05:00"},
    )
    assert ok.status_code == 200, ok.text


def test_catalogue(world: tuple[TestClient, dict[str, str]]) -> None:
    c, tokens = world
    public = {i["id"]: i for i in c.get("/api/v1/datasets").json()["items"]}
    assert {"stations", "readings-air", "aqi-hourly", "city-aqi-daily", "layers"} <= set(public)
    assert not {"readings-cems", "alerts", "region-emissions", "soil-risk"} & set(public)
    assert all(i["grade"] == "public" for i in public.values())
    air = public["readings-air"]
    assert air["title"] == {"zh": "环境空气监测数据", "en": "Readings: ambient air"}
    assert air["license"] == "CC-BY-4.0" and air["formats"] == ["csv", "parquet", "xlsx", "netcdf"]
    assert air["temporal"]["start"] == "2026-11-28T00:00:00+08:00"
    assert air["temporal"]["end"] == "2026-11-28T05:30:00+08:00"
    assert air["spatial"] == [116.3, 39.88, 116.41, 39.95]
    assert air["updated"] is not None
    downloads = [link for link in air["links"] if link["rel"] == "download"]
    assert len(downloads) == 4
    assert downloads[0]["href"].endswith("/api/v1/datasets/readings-air/download?format=csv")
    assert public["layers"]["spatial"] == [116.0, 39.5, 116.6, 40.2]
    admin_items = c.get("/api/v1/datasets", headers=tokens["admin"]).json()["items"]
    assert {i["id"] for i in admin_items} == set(ENTRIES)
    # every read-route link answers as given (the new user's trial: windowed routes gave 422)
    for item in admin_items:
        (api,) = [link["href"] for link in item["links"] if link["rel"] == "api"]
        r = c.get(api, headers=tokens["admin"])
        assert r.status_code == 200, (item["id"], api, r.text)
    aqi = next(link["href"] for link in public["aqi-hourly"]["links"] if link["rel"] == "api")
    assert "start=2026-11-28T00%3A00%3A00%2B08%3A00" in aqi
    one = c.get("/api/v1/datasets/readings-air").json()
    assert [col["name"] for col in one["columns"]][:4] == ["station", "parameter", "time", "value"]
    assert c.get("/api/v1/datasets/alerts").status_code == 401
    ld = c.get("/api/v1/datasets.jsonld")
    assert ld.headers["content-type"].startswith("application/ld+json")
    doc = ld.json()
    assert doc["@type"] == "dcat:Catalog" and doc["@context"]["dcat"].endswith("/dcat#")
    by_id = {d["dct:identifier"]: d for d in doc["dcat:dataset"]}
    assert set(by_id) == set(public)
    d = by_id["readings-air"]
    assert {"@value": "Readings: ambient air", "@language": "en"} in d["dct:title"]
    assert d["dct:license"]["@id"].endswith("/CC-BY-4.0")
    assert d["dct:accessRights"]["@id"].endswith("/PUBLIC")
    assert len(d["dcat:distribution"]) == 4
    assert d["dct:temporal"]["dcat:startDate"]["@value"] == "2026-11-28T00:00:00+08:00"
    assert d["dct:spatial"]["dcat:bbox"]["@value"].startswith("POLYGON((116.3 39.88")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_download_abandoned_mid_copy_frees_its_connection(store: PostgresStore, fmt: str) -> None:
    """The new user's trial of issue 16: downloads abandoned by their clients left every
    download thread waiting for ever (the pool rolled back a connection whose COPY was still
    streaming: the rows' reader had not closed it), and ``ecosense up`` then could not stop.
    Closing a download in the middle of its COPY returns its connection at once."""
    import threading

    from psycopg import sql

    from api.datasets import _body
    from store import export

    ctx = ServiceContext(store, hash_secret(ADMIN), CST)
    columns = (export.Column("station", export.TEXT), export.Column("parameter", export.TEXT))
    many = sql.SQL(
        "SELECT g::text AS station, g::text AS parameter FROM generate_series(1, 3000000) g"
    )
    body = _body(ctx, ENTRIES["readings-air"], export.Query(many, [], columns), columns, fmt, "UTC")
    assert next(body)  # the download has begun; the COPY streams on
    closed = threading.Event()

    def close() -> None:
        body.close()
        closed.set()

    threading.Thread(target=close, daemon=True).start()
    assert closed.wait(30), "closing an abandoned download hung"
    with store.connection(timeout=5) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
