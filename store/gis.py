"""The one map in the store: vector layers (features as WKB in the layer's CRS, attributes as
JSON), the raster catalogue and zonal statistics by raster (and so by time), layer and
feature."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Final

import geopandas as gpd
import pandas as pd
import shapely
from psycopg import sql
from psycopg.types.json import Jsonb

from gis.catalogue import RasterItem
from gis.errors import GisError
from gis.layers import read_layer
from store.derived import Connection


def save_layer(
    conn: Connection, name: str, layer: gpd.GeoDataFrame, key: str | None, source: str
) -> int:
    """Store (replace) a checked layer; features are named by the ``key`` column, or their row
    number. Returns the number of features.

    Raises
    ------
    GisError
        for an unknown key column or one that does not name each feature once.
    """
    checked = read_layer(layer)
    if key is not None:
        if key not in checked.columns:
            raise GisError(f"layer {name}: no column {key!r}")
        names = checked[key].astype(str)
        if names.duplicated().any():
            raise GisError(f"layer {name}: {key} names some features twice")
    else:
        names = pd.Series([str(i) for i in range(len(checked))], index=checked.index)
    attributes = json.loads(checked.drop(columns=checked.geometry.name).to_json(orient="records"))
    with conn.transaction():
        conn.execute("DELETE FROM gis_layers WHERE name = %s", (name,))
        conn.execute(
            "INSERT INTO gis_layers (name, source, crs, key, repaired) VALUES (%s, %s, %s, %s, %s)",
            (
                name,
                source,
                checked.crs.to_wkt(),
                key or "",
                Jsonb(list(map(str, checked.attrs["repaired"]))),
            ),
        )
        with (
            conn.cursor() as cur,
            cur.copy("COPY gis_features (layer, feature, attributes, geometry) FROM STDIN") as copy,
        ):
            for feature, attrs, geom in zip(
                names, attributes, shapely.to_wkb(checked.geometry.to_numpy()), strict=True
            ):
                copy.write_row((name, feature, json.dumps(attrs, ensure_ascii=False), geom))
    return len(checked)


def load_layer(conn: Connection, name: str) -> gpd.GeoDataFrame:
    """A stored layer, indexed by feature name, with its attributes and CRS.

    Raises
    ------
    GisError
        for an unknown layer.
    """
    row = conn.execute("SELECT crs FROM gis_layers WHERE name = %s", (name,)).fetchone()
    if row is None:
        raise GisError(f"no layer {name!r}: import it with `ecosense gis layer import`")
    rows = conn.execute(
        "SELECT feature, attributes, geometry FROM gis_features WHERE layer = %s ORDER BY feature",
        (name,),
    ).fetchall()
    attrs = pd.DataFrame([r[1] for r in rows], index=pd.Index([r[0] for r in rows], name="feature"))
    geometry = shapely.from_wkb([bytes(r[2]) for r in rows])
    return gpd.GeoDataFrame(attrs, geometry=geometry, crs=row[0])


def layers(conn: Connection) -> list[str]:
    """The stored layers' names."""
    return [r[0] for r in conn.execute("SELECT name FROM gis_layers ORDER BY name").fetchall()]


def layer_summaries(conn: Connection) -> list[dict[str, Any]]:
    """Every stored layer: ``name``, ``source``, ``crs`` (as stored), ``key`` (the attribute
    naming a feature), ``features`` and ``updated``, by name."""
    rows = conn.execute(
        "SELECT l.name, l.source, l.crs, l.key, count(f.feature), l.computed_at"
        " FROM gis_layers l LEFT JOIN gis_features f ON f.layer = l.name"
        " GROUP BY l.name ORDER BY l.name"
    ).fetchall()
    keys = ("name", "source", "crs", "key", "features", "updated")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def read_zonal_page(
    conn: Connection,
    *,
    layer: str,
    raster: str | None = None,
    stat: str | None = None,
    after: tuple[str, str, str] | None = None,
    limit: int = 1000,
) -> list[tuple[str, str, str, datetime | None, float | None]]:
    """One page of the zonal results of ``layer`` — ``(raster, feature, stat, time, value)``
    ordered by (raster, feature, stat); ``after`` the key of the previous page's last row."""
    where: list[sql.Composable] = [sql.SQL("layer = %s")]
    params: list[Any] = [layer]
    for column, value in (("raster", raster), ("stat", stat)):
        if value is not None:
            where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    if after is not None:
        where.append(sql.SQL("(raster, feature, stat) > (%s, %s, %s)"))
        params.extend(after)
    query = sql.SQL(
        "SELECT raster, feature, stat, time, value FROM zonal_stats WHERE {}"
        " ORDER BY raster, feature, stat LIMIT %s"
    ).format(sql.SQL(" AND ").join(where))
    params.append(limit)
    return [tuple(r) for r in conn.execute(query, params).fetchall()]


def save_raster(conn: Connection, item: RasterItem) -> None:
    """Register (or update) a raster in the catalogue."""
    row = asdict(item)
    columns = list(row)
    query = sql.SQL(
        "INSERT INTO gis_rasters ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {},"
        " computed_at = now()"
    ).format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        sql.SQL(", ").join(
            sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c)) for c in columns[1:]
        ),
    )
    conn.execute(query, [row[c] for c in columns])


def load_rasters(conn: Connection, ids: Sequence[str] | None = None) -> list[RasterItem]:
    """Catalogue items (all, or those of ``ids``), by time then id.

    Raises
    ------
    GisError
        for an id that is not in the catalogue.
    """
    columns = sql.SQL(", ").join(map(sql.Identifier, RasterItem.__dataclass_fields__))
    where = sql.SQL("TRUE")
    params: list[Any] = []
    if ids is not None:
        where = sql.SQL("id = ANY(%s)")
        params.append(list(ids))
    query = sql.SQL("SELECT {} FROM gis_rasters WHERE {} ORDER BY time NULLS FIRST, id")
    rows = conn.execute(query.format(columns, where), params).fetchall()
    found = [RasterItem(*r) for r in rows]
    if ids is not None:
        unknown = set(ids) - {r.id for r in found}
        if unknown:
            raise GisError(f"rasters not in the catalogue: {', '.join(sorted(unknown))}")
    return found


def save_zonal(conn: Connection, rows: pd.DataFrame) -> int:
    """Upsert zonal results (``raster, layer, feature, stat, time, value``)."""
    if rows.empty:
        return 0
    with conn.transaction():
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS zonal_staging (LIKE zonal_stats INCLUDING DEFAULTS)"
            " ON COMMIT DELETE ROWS"
        )
        with (
            conn.cursor() as cur,
            cur.copy(
                "COPY zonal_staging (raster, layer, feature, stat, time, value) FROM STDIN"
            ) as copy,
        ):
            for r in rows[["raster", "layer", "feature", "stat", "time", "value"]].itertuples(
                index=False, name=None
            ):
                copy.write_row([None if isinstance(v, float) and pd.isna(v) else v for v in r])
        cur = conn.execute(
            "INSERT INTO zonal_stats (raster, layer, feature, stat, time, value)"
            " SELECT raster, layer, feature, stat, time, value FROM zonal_staging"
            " ON CONFLICT (raster, layer, feature, stat) DO UPDATE SET time = EXCLUDED.time,"
            " value = EXCLUDED.value, computed_at = now()"
            " WHERE (zonal_stats.time, zonal_stats.value) IS DISTINCT FROM"
            " (EXCLUDED.time, EXCLUDED.value)"
        )
        return cur.rowcount


def read_zonal(
    conn: Connection,
    *,
    layer: str,
    stat: str | None = None,
    feature: str | None = None,
    raster: str | None = None,
) -> pd.DataFrame:
    """Zonal results of ``layer`` (optionally of one ``stat``, ``feature`` or ``raster``):
    ``raster, feature, stat, time, value``."""
    where: list[sql.Composable] = [sql.SQL("layer = %s")]
    params: list[Any] = [layer]
    for column, value in (("stat", stat), ("feature", feature), ("raster", raster)):
        if value is not None:
            where.append(sql.SQL("{} = %s").format(sql.Identifier(column)))
            params.append(value)
    query = sql.SQL(
        "SELECT raster, feature, stat, time, value FROM zonal_stats WHERE {}"
        " ORDER BY time, raster, feature, stat"
    ).format(sql.SQL(" AND ").join(where))
    rows = conn.execute(query, params)
    return pd.DataFrame(rows.fetchall(), columns=["raster", "feature", "stat", "time", "value"])


def zonal_results(conn: Connection) -> pd.DataFrame:
    """What zonal results are stored: one row per ``layer, raster, stat`` with its number of
    ``features`` (those with a value) and ``time`` (the raster's), by layer, raster, stat."""
    rows = conn.execute(
        "SELECT layer, raster, stat, count(value) AS features, max(time) AS time"
        " FROM zonal_stats GROUP BY layer, raster, stat ORDER BY layer, raster, stat"
    ).fetchall()
    return pd.DataFrame(rows, columns=["layer", "raster", "stat", "features", "time"])


# --------------------------------------------------------------------------- ecology
#: the ecology job's statistics: the stored ``stat`` of each quantity, and the rasters' own
#: quantity it comes from (FVC is computed from the NDVI rasters)
ECOLOGY_STATS: Final = {
    "ndvi": ("ndvi", "mean"),
    "fvc": ("ndvi", "fvc_mean"),
    "ndwi": ("ndwi", "mean"),
}


def ecology_todo(
    conn: Connection,
    since: datetime | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[tuple[RasterItem, str]]:
    """(raster, layer) pairs the ecology job computes: the NDVI and NDWI rasters over every
    layer — those whose raster or layer was registered (again) after ``since`` (incremental;
    ``None``: all), or, with ``start``/``end``, every raster whose time is in [start, end)."""
    layers = {
        str(name): when
        for name, when in conn.execute(
            "SELECT name, computed_at FROM gis_layers ORDER BY name"
        ).fetchall()
    }
    registered: dict[str, datetime] = dict(
        conn.execute(
            "SELECT id, computed_at FROM gis_rasters WHERE quantity IN ('ndvi', 'ndwi')"
            " AND time IS NOT NULL"
        ).fetchall()
    )
    rasters = load_rasters(conn, list(registered)) if registered else []
    if start is not None or end is not None:
        lo = start or datetime.min.replace(tzinfo=UTC)
        hi = end or datetime.max.replace(tzinfo=UTC)
        return [(r, n) for r in rasters if r.time is not None and lo <= r.time < hi for n in layers]
    return [
        (r, n)
        for r in rasters
        for n, layer_time in layers.items()
        if since is None or registered[r.id] > since or layer_time > since
    ]


def ecology_series(conn: Connection, layer: str, quantity: str) -> pd.DataFrame:
    """Each feature's series of ``quantity`` (``ndvi``, ``fvc``, ``ndwi``: the regional mean)
    over ``layer``: ``feature, time, value, raster``, by time."""
    source, stat = ECOLOGY_STATS[quantity]
    rows = conn.execute(
        "SELECT z.feature, z.time, z.value, z.raster FROM zonal_stats z"
        " JOIN gis_rasters r ON r.id = z.raster"
        " WHERE z.layer = %s AND z.stat = %s AND r.quantity = %s AND z.time IS NOT NULL"
        " ORDER BY z.time, z.feature",
        (layer, stat, source),
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["feature", "time", "value", "raster"])
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame


#: the columns of ``ecology_trends`` a trend row fills (besides layer, feature, quantity)
TREND_COLUMNS: Final = (
    "n", "first_time", "last_time", "slope_per_year", "intercept", "tau", "z", "p", "trend",
    "significant",
)  # fmt: skip


def save_trends(conn: Connection, layer: str, quantity: str, trends: pd.DataFrame) -> int:
    """Replace the stored trends of ``quantity`` over ``layer`` with ``trends`` (a row per
    feature: ``feature`` and :data:`TREND_COLUMNS`); returns the rows written."""
    with conn.transaction():
        conn.execute(
            "DELETE FROM ecology_trends WHERE layer = %s AND quantity = %s", (layer, quantity)
        )
        if trends.empty:
            return 0
        columns = ["layer", "feature", "quantity", *TREND_COLUMNS]
        with conn.cursor() as cur:
            cur.executemany(
                sql.SQL("INSERT INTO ecology_trends ({}) VALUES ({})").format(
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                    sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                ),
                [
                    [layer, str(r["feature"]), quantity]
                    + [None if _missing(r[c]) else _plain(r[c]) for c in TREND_COLUMNS]
                    for r in trends.to_dict("records")
                ],
            )
    return len(trends)


def _missing(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _plain(value: Any) -> Any:
    """A NumPy or pandas scalar as the Python value psycopg adapts."""
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value.item() if hasattr(value, "item") else value


def read_trends(conn: Connection, layer: str | None = None) -> pd.DataFrame:
    """Stored trends (of one layer, or all): ``layer, feature, quantity`` and
    :data:`TREND_COLUMNS`."""
    columns = ["layer", "feature", "quantity", *TREND_COLUMNS]
    query = sql.SQL("SELECT {} FROM ecology_trends{} ORDER BY layer, quantity, feature").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(" WHERE layer = %s") if layer is not None else sql.SQL(""),
    )
    rows = conn.execute(query, [layer] if layer is not None else []).fetchall()
    return pd.DataFrame(rows, columns=columns)


def landcover_todo(
    conn: Connection, since: datetime | None = None
) -> list[tuple[RasterItem, RasterItem, str]]:
    """(earlier, later, layer) triples the ecology job compares: each pair of consecutive
    land-cover rasters (by time) over every layer — those with a raster or the layer
    registered (again) after ``since`` (``None``: all)."""
    layers: dict[str, datetime] = dict(
        conn.execute("SELECT name, computed_at FROM gis_layers").fetchall()
    )
    registered: dict[str, datetime] = dict(
        conn.execute(
            "SELECT id, computed_at FROM gis_rasters WHERE quantity = 'landcover'"
            " AND time IS NOT NULL"
        ).fetchall()
    )
    rasters = load_rasters(conn, list(registered)) if registered else []
    pairs = list(itertools.pairwise(rasters))  # by time (load_rasters' order)
    return [
        (a, b, str(n))
        for a, b in pairs
        for n, layer_time in sorted(layers.items())
        if since is None or max(registered[a.id], registered[b.id], layer_time) > since
    ]


def save_landcover(
    conn: Connection, layer: str, earlier: str, later: str, changes: pd.DataFrame
) -> int:
    """Replace the land-cover changes of ``layer`` between rasters ``earlier`` and ``later``
    with ``changes`` (``region, from_class, to_class, start_year, end_year, area`` in ha, as
    :func:`gis.landcover.transitions` gives them); returns the rows written."""
    new = {
        (str(r["region"]), str(r["from_class"]), str(r["to_class"]), int(r["start_year"]),
         int(r["end_year"]), round(float(r["area"]), 9))
        for r in changes.to_dict("records")
    }  # fmt: skip
    old = {
        (str(f), str(c0), str(c1), int(y0), int(y1), round(float(a), 9))
        for f, c0, c1, y0, y1, a in conn.execute(
            "SELECT feature, from_class, to_class, start_year, end_year, area_ha"
            " FROM landcover_changes WHERE layer = %s AND from_raster = %s AND to_raster = %s",
            (layer, earlier, later),
        ).fetchall()
    }
    if new == old:  # computed again, the same: nothing written
        return 0
    with conn.transaction():
        conn.execute(
            "DELETE FROM landcover_changes WHERE layer = %s AND from_raster = %s"
            " AND to_raster = %s",
            (layer, earlier, later),
        )
        if changes.empty:
            return 0
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO landcover_changes (layer, feature, from_raster, to_raster,"
                " from_class, to_class, start_year, end_year, area_ha)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [
                    (
                        layer,
                        str(r["region"]),
                        earlier,
                        later,
                        str(r["from_class"]),
                        str(r["to_class"]),
                        int(r["start_year"]),
                        int(r["end_year"]),
                        float(r["area"]),
                    )
                    for r in changes.to_dict("records")
                ],
            )
    return len(changes)


def read_landcover(conn: Connection, layer: str) -> pd.DataFrame:
    """The stored land-cover changes of ``layer``: ``feature, from_raster, to_raster,
    from_class, to_class, start_year, end_year, area_ha``."""
    columns = [
        "feature", "from_raster", "to_raster", "from_class", "to_class", "start_year",
        "end_year", "area_ha",
    ]  # fmt: skip
    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM landcover_changes WHERE layer = %s"
            " ORDER BY start_year, feature, from_class, to_class"
        ).format(sql.SQL(", ").join(map(sql.Identifier, columns))),
        (layer,),
    ).fetchall()
    return pd.DataFrame(rows, columns=columns)


def ecology_layers(conn: Connection) -> list[str]:
    """The layers with ecology results (trends or land-cover changes), by name."""
    rows = conn.execute(
        "SELECT layer FROM ecology_trends UNION SELECT layer FROM landcover_changes ORDER BY 1"
    ).fetchall()
    return [str(r[0]) for r in rows]
