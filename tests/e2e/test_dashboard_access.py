"""The dashboard's access control in a real Chromium: public data for anonymous visitors, the
sidebar sign-in form, single sign-on against a real OpenID provider, and no traceback ever.

Issue 13: "the dashboard needs no login and shows everything to anyone who reaches it: the
alerts that the API reserves for the operator, a plant's CEMS SO₂ and flue flow, facility
emissions; after a database restart its first page showed a Python traceback with file
paths". Done when: "the dashboard test in Chromium shows an anonymous visitor no sensitive
station, alert or emission, and a signed-in analyst all of them".

One dashboard (started as ``ecosense up`` starts it, :func:`ecosense.runner.start_dashboard`)
and one OpenID provider (``oidc-provider-mock``, a process of its own) serve every check. What
a visitor was sent is read from the WebSocket frames Streamlit sent to the browser, not from
the page's text alone: tables and maps are drawn on canvases, their data travel in the frames.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import psutil
import psycopg
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from psycopg import sql
from psycopg.conninfo import make_conninfo

from access import Role
from access.passwords import hash_password
from ecosense.config import load_settings
from ecosense.runner import start_dashboard
from sensors.alerts import Condition
from sensors.observations import Observation, Source
from sensors.stations import Station
from store import alerts as alert_store
from store import derived, users
from store.postgres import PostgresStore
from tests.conftest import require_service
from tests.e2e.browser import CHROMIUM, Guard, assert_accessible, is_local
from tests.e2e.test_platform import _launch

pytestmark = pytest.mark.e2e

#: what an anonymous visitor must never be sent, and a signed-in analyst must see
CEMS = "CEMS-HIDDEN-1"
ALERT = "ALERT-HIDDEN-SO2"
FACILITY = "PLANT-SECRET"
PUBLIC = "AIR-PUB-1"
CLIENT_SECRET = "client-secret-" + uuid.uuid4().hex
SSO_USER = "ana.sso"
#: the sidebar's sign-in, in either language (中文 default, ``?lang=en``)
SIGN_IN = re.compile("^(Sign in|登录)$")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer")


def _seed(store: PostgresStore) -> None:
    """A public air station and a CEMS stack with readings, an open alert on the stack, and
    a facility's emissions (the stack linked to it)."""
    now = datetime.now(UTC).replace(microsecond=0)
    store.upsert_stations(
        [
            Station(PUBLIC, "Public air one", "air", 116.40, 39.90),
            Station(CEMS, "Hidden plant stack", "cems", 116.50, 39.95, {"facility": FACILITY}),
        ]
    )
    readings = [
        Observation(station, parameter, now - timedelta(minutes=m), value)
        for m in range(0, 30, 5)
        for station, parameter, value in ((PUBLIC, "pm25", 35.0), (CEMS, "so2", 123.0))
    ]
    store.write_observations(readings, source=Source("file", None, "seed", "seed.csv"))
    months = pd.date_range(end=now, periods=18, freq="MS", tz="UTC")
    years = pd.DatetimeIndex(sorted({pd.Timestamp(m.year, 1, 1, tz="UTC") for m in months}))
    details = {"region": "110105", "sector": "1.A.1.a"}
    frame = pd.DataFrame(
        {
            "source": "calculation",
            "subject": FACILITY,
            "gas": "CO2e",
            "period": ["P1M"] * len(months) + ["P1Y"] * len(years),
            "start": [*months, *years],
            "tonnes": [100.0] * len(months) + [1200.0] * len(years),
            "substitution": "",
            "details": [details] * (len(months) + len(years)),
        }
    )
    with store.connection() as conn:
        derived.upsert(conn, "emissions", frame)
        alert_store.sync(conn, [Condition("limit", CEMS, "so2", "critical", ALERT, 123.0)])
        users.add_user(conn, "ana", Role.ANALYST, hash_password("pw-ana-dashboard"))


@pytest.fixture(scope="module")
def world(embedded_admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A seeded database, a running OpenID provider and the dashboard with SSO configured."""
    require_service("Chromium", Path(CHROMIUM).exists())
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(embedded_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(embedded_admin_url, dbname=name)
    store = PostgresStore(url)
    store.migrate()
    _seed(store)
    data_dir = tmp_path_factory.mktemp("dashboard")
    idp_port, port = _free_port(), _free_port()
    claims = {"sub": SSO_USER, "preferred_username": SSO_USER, "groups": ["eco-analysts"]}
    argv = ["--port", str(idp_port), "--user-claims", json.dumps(claims)]
    with open(data_dir / "idp.log", "wb") as idp_log:
        idp = subprocess.Popen(
            [sys.executable, "-m", "oidc_provider_mock", *argv],
            stdout=subprocess.DEVNULL,
            stderr=idp_log,
        )
    issuer = f"http://127.0.0.1:{idp_port}"
    settings = load_settings(
        {
            "ECOSENSE_DATA_DIR": str(data_dir),
            "ECOSENSE_OIDC_ISSUER": issuer,
            "ECOSENSE_OIDC_CLIENT_ID": "ecosense-dashboard",
            "ECOSENSE_OIDC_CLIENT_SECRET": CLIENT_SECRET,
            "ECOSENSE_OIDC_ROLES": "eco-analysts=analyst,eco-admins=admin",
        }
    )
    gateway = f"http://127.0.0.1:{_free_port()}"  # the open-data page's links (never followed)
    dashboard = start_dashboard(settings, url, "127.0.0.1", port, gateway)
    try:
        _wait(issuer + "/.well-known/openid-configuration")
        _wait(f"http://127.0.0.1:{port}/_stcore/health")
        yield {
            "url": f"http://127.0.0.1:{port}",
            "database": url,
            "admin": embedded_admin_url,
            "name": name,
            "data_dir": data_dir,
            "pid": dashboard.pid,
            "issuer": issuer,
            "gateway": gateway,
        }
    finally:
        for proc in (dashboard, idp):
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        store.close()
        with psycopg.connect(embedded_admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


class Visitor:
    """One browser context (its own cookies, its own Streamlit sessions), every frame
    Streamlit sent it, and the guard over it (no console error, failed request or request
    leaving the machine: checked by :meth:`close`)."""

    def __init__(self, browser: Any, base: str, foreign: tuple[str, ...] = ()) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.guard = Guard(foreign=foreign)  # foreign: the mock provider's pages (not ours)
        self.guard.watch(self.context)
        # nothing leaves the machine, not even the mock provider's style sheet (a CDN)
        self.context.route(lambda url: not is_local(url), lambda route: route.abort())
        self.page = self.context.new_page()
        self.frames: list[bytes] = []
        self.page.on("websocket", self._watch)

    def _watch(self, ws: Any) -> None:
        ws.on(
            "framereceived",
            lambda f: self.frames.append(f if isinstance(f, bytes) else f.encode()),
        )

    def sent(self, text: str) -> bool:
        """Whether any frame so far carried ``text``."""
        needle = text.encode()
        return any(needle in f for f in self.frames)

    def text(self, text: str, timeout: float = 60_000) -> None:
        self.page.get_by_text(text).first.wait_for(state="attached", timeout=timeout)

    def settle(self) -> None:
        """A moment for the last frames of a run drawn up to its last element."""
        self.page.wait_for_timeout(400)

    def refused(self) -> None:
        """The page asks to sign in (its run stops there)."""
        main = self.page.locator('[data-testid="stMain"]')
        main.get_by_text(SIGN_IN).first.wait_for(timeout=60_000)
        self.settle()

    def nav(self, title: str) -> None:
        """Follow a sidebar link (the same Streamlit session: a sign-in is kept)."""
        nav = self.page.locator('[data-testid="stSidebarNav"]')
        nav.get_by_text(title, exact=True).click()

    def sign_in(self, name: str, password: str) -> None:
        """The sidebar's form, in either language."""
        sidebar = self.page.locator('[data-testid="stSidebar"]')
        sidebar.get_by_text(SIGN_IN).first.click()
        sidebar.get_by_label(re.compile("^(User name|用户名)$")).fill(name)
        sidebar.get_by_label(re.compile("^(Password|密码)$")).fill(password)
        sidebar.get_by_role("button", name=SIGN_IN).click()

    def no_traceback(self) -> None:
        content = self.page.content()
        assert "Traceback" not in content and 'File "' not in content
        assert self.page.locator('[data-testid="stException"]').count() == 0

    def accessible(self, where: str) -> None:
        """No serious or critical axe-core violation on the page as it is now."""
        assert_accessible(self.page, where)

    def close(self) -> None:
        """Close the context; fail if the guard saw anything."""
        self.context.close()
        self.guard.check()


def _audit(world: dict[str, Any], actor: str) -> list[tuple[str, str, str]]:
    with psycopg.connect(world["database"]) as conn:
        rows = conn.execute(
            "SELECT action, object, outcome FROM audit_log WHERE actor = %s ORDER BY id", (actor,)
        ).fetchall()
    return [(str(a), str(o), str(c)) for a, o, c in rows]


def test_dashboard_access_in_chromium(world: dict[str, Any], tmp_path: Path) -> None:
    """Anonymous (中文, the default): the public station only, "登录" on alerts and carbon, every
    page still in the navigation; an analyst (``?lang=en``, kept from page to page) signed in
    with the sidebar form: the CEMS stack, its alert and the facility's emissions, audited;
    disabled: back to public data at once; single sign-on through the OpenID provider maps the
    ``groups`` claim to analyst; after a database restart the first page shows a short message,
    no traceback, and the next one works."""
    from playwright.sync_api import sync_playwright

    base = world["url"]
    with sync_playwright() as p:
        browser = _launch(p)
        try:
            # ---------------------------------------------------------------- anonymous
            anon = Visitor(browser, base)
            anon.page.goto(base + "/")
            anon.page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=60_000)
            anon.settle()
            assert anon.sent(PUBLIC)
            assert not anon.sent(CEMS), "a sensitive station reached an anonymous visitor"
            anon.accessible("live, anonymous")
            nav = anon.page.locator('[data-testid="stSidebarNav"]')
            for title in ("告警", "碳排放", "土壤", "水质", "数据开放"):
                assert nav.get_by_text(title, exact=True).count() == 1, title
            for path in ("alerts", "carbon"):
                anon.page.goto(f"{base}/{path}")
                anon.refused()
                anon.accessible(f"{path}, anonymous")
            for path, title in (("soil", "GB 15618-2018"), ("completeness", "数据有效率")):
                anon.page.goto(f"{base}/{path}")
                anon.text(title)
                anon.settle()
                anon.no_traceback()
                anon.accessible(f"{path}, anonymous")
            # the open-data portal: public datasets, each format a link to the gateway
            anon.page.goto(f"{base}/open-data")
            anon.text("今日空气质量：城市排名")
            anon.page.locator('a[href*="/download?format="]').first.wait_for(timeout=60_000)
            anon.settle()
            anon.no_traceback()
            anon.accessible("open-data, anonymous")
            hrefs = anon.page.locator('[data-testid="stMain"] a').evaluate_all(
                "links => links.map(a => a.href)"
            )
            downloads = [h for h in hrefs if "/download?format=" in h]
            assert all(h.startswith(world["gateway"] + "/api/v1/datasets/") for h in downloads)
            assert f"{world['gateway']}/api/v1/datasets/readings-air/download?format=csv" in hrefs
            assert f"{world['gateway']}/api/v1/datasets.jsonld" in hrefs
            for hidden in ("readings-cems", "soil-risk", "alerts", "region-emissions"):
                assert not any(f"/{hidden}/" in h for h in hrefs), hidden
                assert not anon.sent(f"`{hidden}`"), f"{hidden} listed to an anonymous visitor"
            assert anon.sent(PUBLIC)
            assert not anon.sent(CEMS), "a sensitive station reached an anonymous visitor"
            assert not anon.sent(ALERT), "an internal alert reached an anonymous visitor"
            assert not anon.sent(FACILITY), "facility emissions reached an anonymous visitor"
            assert [e for e in _audit(world, "anonymous") if e[0] == "read"] == []
            anon.close()

            # ----------------------------------------------- analyst, via the sidebar form
            ana = Visitor(browser, base)
            ana.page.goto(base + "/alerts?lang=en")  # a light page: no map redrawn every 5 s
            ana.refused()
            ana.sign_in("ana", "pw-ana-dashboard")
            ana.text("Signed in as")
            ana.text("Live alerts")
            ana.settle()
            assert ana.sent(ALERT)
            ana.accessible("alerts, analyst")
            ana.nav("Carbon")  # the navigation drops ?lang=: English is kept all the same
            ana.text("CEMS against calculation")
            assert "lang=en" in ana.page.url
            ana.settle()
            assert ana.sent(FACILITY)
            ana.no_traceback()
            ana.accessible("carbon, analyst")
            ana.nav("Live")
            ana.page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=60_000)
            ana.settle()
            assert ana.sent(CEMS)
            entries = _audit(world, "ana")
            assert ("login", "user:ana", "ok") in entries
            objects = {o for a, o, c in entries if a == "read" and c == "ok"}
            assert {f"station:{CEMS}", "alerts", "facility-emissions"} <= objects
            # disabled: the session stops working at the next page
            ana.nav("Alerts")
            ana.text("Live alerts")
            with psycopg.connect(world["database"], autocommit=True) as conn:
                users.disable(conn, "ana")
            before = len(ana.frames)
            ana.nav("Carbon")
            ana.text("Your sign-in has ended")
            ana.refused()
            assert not any(FACILITY.encode() in f for f in ana.frames[before:])
            ana.close()

            # -------------------------------------------- single sign-on (OpenID Connect)
            sso = Visitor(browser, base, foreign=(world["issuer"] + "/",))
            sso.page.goto(base + "/alerts?lang=en")
            sso.refused()
            sidebar = sso.page.locator('[data-testid="stSidebar"]')
            sidebar.get_by_text(SIGN_IN).first.click()
            sso_button = sidebar.get_by_role("button", name="Single sign-on")
            for attempt in range(3):  # a click landing while the page reruns can be lost
                sso_button.click()
                try:
                    sso.page.wait_for_url("**/oauth2/authorize**", timeout=20_000)
                    break
                except PlaywrightTimeout:
                    if attempt == 2 or "oauth2" in sso.page.url:
                        raise
            sso.page.get_by_placeholder("sub").fill(SSO_USER)
            sso.page.get_by_role("button", name="Authorize").first.click()
            sso.page.wait_for_url(base + "/**", timeout=60_000)
            sso.page.goto(base + "/alerts?lang=en")  # the login cookie holds across page loads
            sso.text(f"sso:{SSO_USER}")
            sso.text("Live alerts")
            sso.settle()
            assert sso.sent(ALERT)
            assert ("login", f"user:sso:{SSO_USER}", "ok") in _audit(world, f"sso:{SSO_USER}")
            sso.close()

            # ------------------------------------ the database restarts under the dashboard
            with psycopg.connect(world["admin"], autocommit=True) as conn:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    (world["name"],),
                )
            after = Visitor(browser, base)
            after.page.goto(base + "/soil?lang=en")
            after.text("cannot be shown right now")
            after.settle()
            after.no_traceback()
            after.accessible("soil, database restarting")
            after.page.screenshot(path=str(tmp_path / "restart.png"), full_page=True)
            time.sleep(1.2)  # the store probes the database again after a second
            after.page.reload()
            after.text("GB 15618-2018")
            after.settle()
            after.no_traceback()
            assert "cannot be shown right now" not in after.page.content()
            after.close()
        finally:
            browser.close()
    # secrets: in a 0600 file, never on the dashboard's command line nor in its environment
    secrets_file = world["data_dir"] / "dashboard-secrets.toml"
    assert secrets_file.stat().st_mode & 0o777 == 0o600
    assert CLIENT_SECRET in secrets_file.read_text()
    proc = psutil.Process(world["pid"])
    assert not any(CLIENT_SECRET in arg for arg in proc.cmdline())
    assert CLIENT_SECRET not in "".join(proc.environ().values())
    log = (world["data_dir"] / "dashboard.log").read_text(errors="replace")
    assert "Traceback" in log, "the details of the failed page belong in the log"


def test_live_opens_at_its_own_address(world: dict[str, Any]) -> None:
    """Issue 14: "``/live`` opens with 'Page not found'": ``/live`` shows the live page (map
    and chart), and the root address opens it too, at ``/live``, keeping the query."""
    from playwright.sync_api import sync_playwright

    base = world["url"]
    with sync_playwright() as p:
        browser = _launch(p)
        try:
            visitor = Visitor(browser, base)
            visitor.page.goto(base + "/live")
            visitor.page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=60_000)
            visitor.text("EcoSense 生态环境感知")  # 中文, the default
            assert visitor.page.get_by_text("Page not found").count() == 0
            visitor.no_traceback()
            visitor.accessible("/live")
            visitor.page.goto(base + "/?station=" + PUBLIC)
            visitor.page.wait_for_url("**/live?station=*", timeout=60_000)
            visitor.page.wait_for_selector('[data-testid="stVegaLiteChart"]', timeout=60_000)
            assert visitor.page.get_by_text("Page not found").count() == 0
            visitor.close()
        finally:
            browser.close()
