"""The one map in the store: vector layers (features as WKB in the layer's CRS, attributes as
JSON), the raster catalogue and zonal statistics by raster (and so by time), layer and
feature."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

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
