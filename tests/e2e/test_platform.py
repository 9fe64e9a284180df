"""The whole platform: ``ecosense up`` on free ports, the simulator, the API, a real Chromium."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import require_service

pytestmark = pytest.mark.e2e
CHROMIUM = os.environ.get("ECOSENSE_TEST_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    data_dir = tmp_path_factory.mktemp("platform")
    env = {**os.environ, "ECOSENSE_DATA_DIR": str(data_dir)}
    env.pop("ECOSENSE_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecosense", "up", "--http-port", "0", "--dashboard-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    match = re.fullmatch(r"ready http=(\S+) dashboard=(\S+)\n", line)
    if not match:
        proc.kill()
        pytest.fail(f"no ready line: {line!r} {proc.stderr.read()}")
    info = {
        "http": match.group(1),
        "dashboard": match.group(2),
        "data_dir": str(data_dir),
        "admin": (data_dir / "admin_token").read_text().strip(),
    }
    try:
        yield info
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            info["exit"] = str(proc.wait(timeout=60))
        proc.stdout.close()
        proc.stderr.close()


def test_simulated_devices_reach_the_api(platform: dict[str, str]) -> None:
    env = {**os.environ, "ECOSENSE_DATA_DIR": platform["data_dir"]}
    env.pop("ECOSENSE_DATABASE_URL", None)
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "ecosense",
            "simulate",
            "--protocol",
            "http",
            "--devices",
            "3",
            "--rate",
            "5",
            "--duration",
            "4",
            "--url",
            platform["http"],
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    sent = int(re.search(r"sent (\d+) readings, (\d+) accepted", r.stdout).group(2))  # type: ignore[union-attr]
    assert sent >= 15
    headers = {"Authorization": f"Bearer {platform['admin']}"}
    total = 0
    params: dict[str, str | int] = {"limit": 10_000}
    for station in ("SIM-BEIJING", "SIM-SHANGHAI", "SIM-GUANGZHOU"):
        page = httpx.get(
            platform["http"] + "/api/v1/observations",
            headers=headers,
            params={**params, "station": station},
        ).json()
        total += len(page["items"])
    assert total == sent  # stored once each
    stations = httpx.get(platform["http"] + "/api/v1/stations").json()["items"]
    assert len(stations) == 3 and all(s["simulated"] for s in stations)


def simulate(platform: dict[str, str], *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "ECOSENSE_DATA_DIR": platform["data_dir"]}
    env.pop("ECOSENSE_DATABASE_URL", None)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ecosense",
            "simulate",
            "--protocol",
            "http",
            "--url",
            platform["http"],
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_dashboard_shows_map_and_chart_in_a_real_browser(
    platform: dict[str, str], tmp_path: Path
) -> None:
    require_service("Chromium", Path(CHROMIUM).exists())
    from playwright.sync_api import sync_playwright

    feeder = simulate(platform, "--devices", "3", "--rate", "9", "--duration", "40")
    errors: list[str] = []
    outside: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                ],
            )
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1100})
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.on(
                    "request",
                    lambda req: (
                        outside.append(req.url)
                        if not re.match(r"^(https?://127\.0\.0\.1[:/]|data:|blob:)", req.url)
                        else None
                    ),
                )
                page.goto(platform["dashboard"])
                page.wait_for_selector('[data-testid="stDeckGlJsonChart"] canvas', timeout=60_000)
                page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=60_000)
                assert "SIM-BEIJING" in page.content()  # the default station: first with data
                latest = page.get_by_text("Latest reading")
                first = latest.inner_text()
                # The page refreshes itself while data arrive: the latest reading moves on.
                page.wait_for_function(
                    "t => [...document.querySelectorAll('[data-testid=\"stCaptionContainer\"]')]"
                    ".some(e => e.innerText.includes('Latest reading') && e.innerText !== t)",
                    arg=first,
                    timeout=30_000,
                )
                page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
                assert page.locator('[data-testid="stException"]').count() == 0
            finally:
                browser.close()
    finally:
        feeder.terminate()
        feeder.communicate(timeout=30)
    assert errors == []
    assert outside == [], "the dashboard must work with no internet"


def test_sigterm_stops_everything_including_the_embedded_database(
    platform: dict[str, str],
) -> None:
    pid_file = Path(platform["data_dir"]) / "pg" / "postmaster.pid"
    assert pid_file.exists()
    postmaster = int(pid_file.read_text().split()[0])
    ups = [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"]
        and "up" in p.info["cmdline"]
        and any(platform["data_dir"] in str(e) for e in p.environ().values())
    ]
    assert len(ups) == 1
    ups[0].send_signal(signal.SIGTERM)
    assert ups[0].wait(timeout=60) == 0
    psutil.wait_procs([psutil.Process(postmaster)], timeout=30)
    assert not psutil.pid_exists(postmaster)


def test_demo_seeds_stations_and_streams_readings(tmp_path: Path) -> None:
    env = {**os.environ, "ECOSENSE_DATA_DIR": str(tmp_path)}
    env.pop("ECOSENSE_DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ecosense", "up", "--demo", "--http-port", "0", "--no-dashboard"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.fullmatch(r"ready http=(\S+)\n", line)
        assert match, line
        stations = httpx.get(match.group(1) + "/api/v1/stations").json()["items"]
        assert len(stations) >= 20 and all(s["simulated"] for s in stations)
        assert all(73 < s["lon"] < 136 and 18 < s["lat"] < 54 for s in stations)
        headers = {"Authorization": "Bearer " + (tmp_path / "admin_token").read_text().strip()}
        deadline = time.monotonic() + 30
        kinds: set[str] = set()
        by_id = {s["id"]: s["kind"] for s in stations}
        while time.monotonic() < deadline and len(kinds) < 4:
            items = httpx.get(
                match.group(1) + "/api/v1/observations", headers=headers, params={"limit": 10_000}
            ).json()["items"]
            kinds = {by_id[i["station"]] for i in items}
            time.sleep(1)
        assert kinds == {"air", "water", "cems", "radiation"}
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
