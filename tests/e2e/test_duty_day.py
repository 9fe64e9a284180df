"""A duty officer's day on the demo, in a real Chromium (issue 14, "Done when").

"A browser test walks a duty officer's day on the demo: sign in, see the latest complete hour
on every page, acknowledge an alert, invalidate a faulty hour, download the daily report; in
both languages; axe-core clean; no console errors; no outside requests." — and item 2: "Every
dashboard page shows meaningful content within 60 s of `ready` (a browser test proves it for
each page)".

One ``ecosense up --demo`` serves both walks; an operator (who may also review) is added with
``ecosense users add``. Each walk opens the dashboard at ``?lang=zh`` or ``?lang=en``, signs in
with the sidebar form and follows the sidebar to every page (one Streamlit session: the
sign-in and the language are kept while navigating). Locators are the widgets' keys and
Streamlit's test ids, not their words, so they hold in both languages.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import openpyxl
import psycopg
import pytest

from ecosense.demo import FAULTY, FAULTY_FROM_HOURS_AGO, FAULTY_HOURS
from tests.e2e.browser import assert_accessible, guarded, launch
from tests.e2e.test_platform import ecosense, ready, stop

pytestmark = pytest.mark.e2e


DUTY = "duty-e2e"
PASSWORD = "pw-duty-e2e-day"
TZ = ZoneInfo("Asia/Shanghai")
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
#: what an empty page says ("No … yet", "暂无…")
EMPTY = re.compile(r"\bNo\b[^.。·]*\byet\b|暂无|尚无")
HOUR = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}):00–\d{2}:00")
MAIN = '[data-testid="stMain"]'
DECK = '[data-testid="stDeckGlJsonChart"] canvas'
CHART = '[data-testid="stVegaLiteChart"]'
TABLE = '[data-testid="stDataFrame"]'
READY_WITHIN = 60.0  # s: every page shows meaningful content within 60 s of `ready`
LATER_WITHIN = 45.0  # s: a page reached later shows it within 45 s of the visit (2 busy cores)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``ecosense up --demo`` on free ports, and the duty officer (role ``operator``: may
    acknowledge alerts and review data) added through the CLI."""
    data_dir = tmp_path_factory.mktemp("duty-day")
    proc = ecosense(
        data_dir, "up", "--demo", "--http-port", "0", "--hj212-port", "0", "--dashboard-port", "0"
    )
    try:
        match = ready(proc, r"ready http=(\S+) hj212=(\S+) dashboard=(\S+)\n")
        ready_at = time.monotonic()
        add = ecosense(
            data_dir, "users", "add", DUTY, "--role", "operator", "--password-stdin", stdin=True
        )
        _, err = add.communicate(PASSWORD + "\n", timeout=120)
        assert add.returncode == 0, err
        yield {
            "http": match.group(1),
            "dashboard": match.group(3),
            "admin": (data_dir / "admin_token").read_text().strip(),
            "ready_at": ready_at,
            "started": datetime.now(UTC),
            "data_dir": data_dir,
        }
    finally:
        assert stop(proc, signal.SIGINT) == 0


def _latest_complete_hours(*instants: datetime) -> set[str]:
    """The latest complete hour (its start, ``YYYY-MM-DD HH`` bureau time) at each instant."""
    return {
        (t.astimezone(TZ).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)).strftime(
            "%Y-%m-%d %H"
        )
        for t in instants
    }


@dataclass
class Walk:
    """One duty officer's walk through the dashboard in one language."""

    page: Any
    base: str
    lang: str
    ready_at: float
    started: datetime
    #: English-heading failures (expected until the lang branch is merged)
    language: list[str] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)

    def main(self) -> Any:
        return self.page.locator(MAIN)

    def idle(self) -> None:
        """Wait for the script run to end (Streamlit's "running" widget gone), then a moment
        for the last elements to arrive."""
        self.page.wait_for_timeout(300)
        self.page.wait_for_function(
            "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000
        )
        self.page.wait_for_timeout(300)

    def wait_for(self, selector: str, count: int = 1) -> None:
        """At least ``count`` of ``selector`` in the page: in the Chinese walk (the first,
        started at ``ready``) by ``ready`` + 60 s, or within 45 s of the visit for a page
        reached after that (item 2); else within 60 s of the visit."""
        timeout = 60.0
        if self.lang == "zh":
            timeout = max(LATER_WITHIN, self.ready_at + READY_WITHIN - time.monotonic())
        self.page.wait_for_function(
            "([s, n]) => document.querySelectorAll(s).length >= n",
            arg=[selector, count],
            timeout=timeout * 1000,
        )

    def open(self, path: str) -> None:
        """Follow the sidebar's link to ``path`` (the same Streamlit session) and wait for
        its run to end."""
        heading = f"{MAIN} h1"
        before = self.page.locator(heading).first.inner_text() if self.seen else ""
        link = self.page.locator(f'[data-testid="stSidebarNav"] a[href*="/{path}"]')
        link.first.click()
        self.page.wait_for_url(re.compile(rf"/{path}(\?|$)"), timeout=30_000)
        self.page.wait_for_function(
            "([s, b]) => { const h = document.querySelector(s); return h && h.innerText !== b }",
            arg=[heading, before],
            timeout=60_000,
        )
        self.idle()

    def check_page(self, path: str, *, empty_ok: bool = False) -> str:
        """No exception, no "No … yet", the heading in the walk's language, axe-core clean;
        returns the main area's text."""
        self.idle()
        assert self.page.locator('[data-testid="stException"]').count() == 0, path
        text = str(self.main().inner_text())
        if not empty_ok:
            found = EMPTY.search(text)
            assert found is None, f"{path}: {found.group(0) if found else ''!r} in\n{text}"
        heading = str(self.page.locator(f"{MAIN} h1").first.inner_text())
        if self.lang == "zh" and not CJK.search(heading):
            pytest.fail(f"{path}: the Chinese page's heading has no Chinese: {heading!r}")
        if self.lang == "en" and CJK.search(heading):
            self.language.append(f"{path}: {heading!r} ({self.page.url})")
        tag = self.page.evaluate("() => document.documentElement.lang")
        assert tag == {"zh": "zh-CN", "en": "en"}[self.lang], f"{path}: <html lang={tag!r}>"
        assert_accessible(self.page, f"/{path}?lang={self.lang}")
        self.seen.add(path)
        return text

    def hours_shown(self, text: str, where: str) -> None:
        """The hours ``text`` names are the latest complete hour (of the walk's start or of
        now: the walk may cross an hour)."""
        expected = _latest_complete_hours(self.started, datetime.now(UTC))
        hours = set(HOUR.findall(text))
        assert hours, f"{where}: no hour shown in\n{text}"
        assert hours <= expected, f"{where}: shows {sorted(hours)}, expected {sorted(expected)}"

    # ------------------------------------------------------------------ the steps
    def sign_in(self) -> None:
        sidebar = self.page.locator('[data-testid="stSidebar"]')
        box = sidebar.locator('[data-testid="stExpander"]').filter(
            has=self.page.locator('input[type="password"]')
        )
        box.locator("summary").first.click()
        box.locator('input[autocomplete="username"]').fill(DUTY)
        box.locator('input[type="password"]').fill(PASSWORD)
        box.locator('[data-testid="stFormSubmitButton"] button').click()
        self.page.locator(".st-key-ecosense_sign_out").wait_for(timeout=60_000)

    def live(self) -> None:
        self.open("live")
        self.wait_for(DECK)
        self.wait_for(CHART)
        self.check_page("live")

    def aqi(self, downloads: Path) -> Path:
        """The station map and the ranking at the latest complete hour; the daily report
        downloaded (Excel)."""
        self.open("aqi")
        self.wait_for(DECK)
        self.wait_for(TABLE, 3)  # ranking, daily report, latest hourly AQI
        text = self.check_page("aqi")
        self.hours_shown(text, "aqi")
        button = self.page.locator(".st-key-report_dl_daily button")
        with self.page.expect_download(timeout=60_000) as download:
            button.click()
        path = downloads / f"daily-{self.lang}.xlsx"
        download.value.save_as(path)
        return path

    def water(self) -> None:
        self.open("water")
        self.wait_for(TABLE, 2)  # daily and monthly classes
        self.check_page("water")

    def soil(self) -> None:
        self.open("soil")
        self.wait_for(TABLE)
        self.check_page("soil")

    def sites(self) -> None:
        """The demo's development-land site: its boreholes by risk on the map, the samples
        by depth (issue 18)."""
        self.open("sites")
        self.wait_for(DECK)
        self.wait_for(TABLE)
        text = self.check_page("sites")
        assert "GB 36600-2018" in text, text

    def radiation(self) -> None:
        """The gamma stations against their background bands, a station's hours with its
        band, the aerosol filters' radionuclides (issue 18)."""
        self.open("radiation")
        self.wait_for(DECK)
        self.wait_for(CHART)
        text = self.check_page("radiation")
        assert "nGy/h" in text, text

    def climate(self) -> None:
        """A region's greenhouse-gas concentrations beside its emissions and targets."""
        self.open("climate")
        self.wait_for(CHART)
        text = self.check_page("climate")
        assert "ppm" in text, text

    def ecology(self) -> None:
        """The provinces by their NDVI trend, a province's series, land-cover change."""
        self.open("ecology")
        self.wait_for(DECK)
        self.wait_for(CHART)
        text = self.check_page("ecology")
        assert "Mann-Kendall" in text, text

    def noise(self) -> None:
        """The noise stations on the map, a station's hourly LAeq and its days' Ld and Ln
        against its zone's limits (issue 18)."""
        self.open("noise")
        self.wait_for(DECK)
        self.wait_for(CHART, 2)
        text = self.check_page("noise")
        assert "GB 3096-2008" in text, text

    def alerts(self, alert_id: int, comment: str) -> None:
        """Acknowledge alert ``alert_id`` with ``comment`` in the duty officer's form."""
        self.open("alerts")
        self.wait_for(TABLE)
        self.check_page("alerts")
        self._choose(".st-key-duty_alert_id", f"#{alert_id} ", re.compile(rf"^#{alert_id}\b"))
        self.page.locator(".st-key-duty_alert_comment textarea").fill(comment)
        form = self.page.locator('[data-testid="stForm"]').filter(
            has=self.page.locator(".st-key-duty_alert_comment")
        )
        form.get_by_role("button", name=re.compile("Acknowledge|确认")).click()
        self.page.locator('[data-testid="stAlertContentSuccess"]').first.wait_for(timeout=60_000)
        self.check_page("alerts")

    def review(self, hour: datetime, reason: str) -> None:
        """Invalidate the faulty device's PM2.5 over ``hour`` (its start, bureau time) with
        ``reason``."""
        self.open("review")
        self.page.locator(".st-key-review_station").wait_for(timeout=60_000)
        self.check_page("review", empty_ok=True)  # no review recorded yet: "No reviews yet"
        station, _parameter = FAULTY
        # stations by name, the id beside it: "成都空气站（模拟） (SIM-CHENGDU)"
        self._choose(".st-key-review_station", station, re.compile(rf"\({station}\)$"))
        self.idle()
        self._choose(".st-key-review_parameter", "PM2.5", re.compile(r"PM2\.5"))
        end = hour + timedelta(hours=1)
        self.page.locator('.st-key-review_d0 [role="spinbutton"]').first.focus()
        self.focus_visible("the review's start date")
        self._date(".st-key-review_d0", hour)
        self._time(".st-key-review_t0", hour)
        self._date(".st-key-review_d1", end)
        self._time(".st-key-review_t1", end)
        self.page.locator(".st-key-review_reason textarea").fill(reason)
        form = self.page.locator('[data-testid="stForm"]').filter(
            has=self.page.locator(".st-key-review_reason")
        )
        form.locator('[data-testid="stFormSubmitButton"] button').click()
        self.page.locator('[data-testid="stAlertContentSuccess"]').first.wait_for(timeout=60_000)
        self.wait_for(TABLE)  # the recent reviews
        self.check_page("review")

    def _choose(self, key: str, typed: str, option: re.Pattern[str]) -> None:
        """Pick ``option`` of the select box or time input ``key``, found by typing."""
        field_ = self.page.locator(f"{key} input").first
        field_.click()
        field_.fill(typed)
        self.page.get_by_role("option", name=option).first.click()

    def _date(self, key: str, day: datetime) -> None:
        """Set the date input ``key`` to the date of ``day`` (typed into its year, month and
        day fields, when it differs)."""
        value = self.page.locator(f'{key} input[type="date"]')
        wanted = f"{day:%Y-%m-%d}"
        if value.input_value() == wanted:
            return
        self.page.locator(f'{key} [role="spinbutton"]').first.click()
        self.page.keyboard.type(f"{day:%Y%m%d}")
        self.page.keyboard.press("Tab")
        assert value.input_value() == wanted
        self.focus_visible(f"after {key}")

    def focus_visible(self, where: str) -> None:
        """The element that has the keyboard focus shows it (WCAG 2.4.7; the trial found the
        date inputs' fields drawn with ``outline: none``)."""
        style = self.page.evaluate(
            "() => { const e = document.activeElement, s = getComputedStyle(e);"
            " return [e.tagName, e.getAttribute('role'), s.outlineStyle, s.outlineWidth]; }"
        )
        assert style[2] != "none" and style[3] not in ("0px", ""), (where, style)

    def _time(self, key: str, at: datetime) -> None:
        """Set the time input ``key`` to the hour of ``at`` (typed into its hour and minute
        fields, when it differs)."""
        value = self.page.locator(f'{key} input[type="hidden"]')
        wanted = f"{at:%H:%M}:00"
        if value.input_value() == wanted:
            return
        self.page.locator(f'{key} [role="spinbutton"]').first.click()
        self.page.keyboard.type(f"{at:%H%M}")
        self.page.keyboard.press("Tab")
        assert value.input_value() == wanted

    def carbon(self) -> None:
        self.open("carbon")
        self.wait_for(CHART)
        self.wait_for(TABLE, 2)  # per region, CEMS against calculation
        self.check_page("carbon")

    def onemap(self) -> None:
        """The one map with the PM2.5 surface at the latest complete hour."""
        self.open("onemap")
        self.wait_for(DECK)
        self.page.locator(MAIN).get_by_text(HOUR).first.wait_for(timeout=60_000)
        text = self.check_page("onemap")
        self.hours_shown(text, "onemap")

    def completeness(self) -> None:
        self.open("completeness")
        self.wait_for(TABLE)
        self.check_page("completeness")

    def open_data(self) -> None:
        """The portal: the city ranking at the latest complete hour, water classes, the
        catalogue with the gateway's download links."""
        self.open("open-data")
        self.wait_for(TABLE, 3)  # city ranking, water classes, catalogue
        self.wait_for('a[href*="/download?format="]')
        text = self.check_page("open-data")
        self.hours_shown(text, "open-data")


def _cjk_fonts(page: Any, selector: str) -> set[str]:
    """The platform fonts Chromium drew the text of ``selector`` (and its descendants) with."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    nodes = cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": selector})["nodeIds"]
    fonts: set[str] = set()
    for node in nodes:
        for font in cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]:
            fonts.add(str(font["familyName"]))
    cdp.detach()
    return fonts


def _open_alert(demo: dict[str, Any]) -> int:
    """The id of the oldest open alert (the first run of the jobs may end after ``ready``:
    waited for up to 60 s)."""
    headers = {"Authorization": f"Bearer {demo['admin']}"}
    deadline = time.monotonic() + 60
    while True:
        found = httpx.get(
            demo["http"] + "/api/v1/alerts", headers=headers, params={"state": "open"}
        ).json()["items"]
        if found or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert found, "no open alert on the demo"
    return min(int(a["id"]) for a in found)


def _check_report(path: Path) -> None:
    """The downloaded daily report is an Excel workbook that opens, with an AQI column whose
    values show the demo's pollution episode (a daily AQI above 200, 重度污染)."""
    assert path.read_bytes()[:2] == b"PK", "not an xlsx (zip) file"
    book = openpyxl.load_workbook(path, read_only=True)
    rows = [row for row in book.worksheets[0].iter_rows(values_only=True)]
    book.close()
    heading = next(
        (r for r in rows if any(re.search(r"\bAQI\b", str(c or "")) for c in r[2:])), None
    )
    assert heading is not None, rows[:6]
    column = next(i for i, c in enumerate(heading) if re.search(r"\bAQI\b", str(c or "")))
    values = [r[column] for r in rows[rows.index(heading) + 1 :] if isinstance(r[column], int)]
    assert values and max(values) > 200, values


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_duty_officers_day(demo: dict[str, Any], lang: str, tmp_path: Path) -> None:
    """Sign in; every page shows real content (the Chinese walk: within 60 s of ``ready``)
    with the latest complete hour on the AQI and one-map pages; acknowledge an alert with a
    comment; invalidate one of the faulty device's stuck hours with a reason; download the
    daily report and open it; the API and the database show the acknowledgement and the
    review. In Chinese and in English (the heading has no Chinese), axe-core clean, no console
    error, failed request or request leaving the machine."""
    from playwright.sync_api import sync_playwright

    # one of the stuck hours (bureau time) of its own for each walk
    offset = {"zh": 5, "en": 6}[lang]
    # the hour starting `offset` hours before now holds readings `offset` ± 1 hours old
    assert FAULTY_FROM_HOURS_AGO - FAULTY_HOURS + 1 < offset < FAULTY_FROM_HOURS_AGO
    hour = (demo["started"] - timedelta(hours=offset)).astimezone(TZ)
    hour = hour.replace(minute=0, second=0, microsecond=0)  # fully inside the stuck hours
    comment = f"on it ({lang}) · 已处理"
    reason = f"PM2.5 analyser stuck ({lang}) · 传感器卡值"

    alert: dict[str, int] = {}  # the open alert this walk acknowledges (chosen on the way)
    with sync_playwright() as p:
        browser = launch(p)
        try:
            context = browser.new_context(
                viewport={"width": 1400, "height": 1100}, accept_downloads=True
            )
            with guarded(context):
                page = context.new_page()
                page.goto(f"{demo['dashboard']}/alerts?lang={lang}")
                walk = Walk(page, demo["dashboard"], lang, demo["ready_at"], demo["started"])
                page.locator(f"{MAIN} h1").first.wait_for(timeout=60_000)
                walk.sign_in()
                steps: list[Callable[[], Any]] = [
                    walk.live,
                    lambda: walk.aqi(tmp_path),
                    walk.water,
                    walk.soil,
                    walk.sites,
                    walk.noise,
                    walk.radiation,
                    walk.carbon,
                    walk.climate,
                    walk.ecology,
                    walk.onemap,
                    walk.completeness,
                    walk.open_data,
                    lambda: walk.alerts(int(alert.setdefault("id", _open_alert(demo))), comment),
                    lambda: walk.review(hour, reason),
                ]
                for step in steps:
                    began = time.monotonic()
                    try:
                        step()
                        print(f"{lang} step {steps.index(step)}: {time.monotonic() - began:.1f} s")
                    except BaseException as exc:
                        shot = tmp_path / f"failure-{lang}.png"
                        page.screenshot(path=str(shot), full_page=True)
                        exc.add_note(f"at {page.url}, screenshot {shot}")
                        raise
                if lang == "zh":
                    page.screenshot(path=str(tmp_path / "review-zh.png"), full_page=True)
                    fonts = _cjk_fonts(page, f"{MAIN} h1, {MAIN} h1 *")
                    assert any("CJK" in f for f in fonts), f"no CJK font drew the heading: {fonts}"
            context.close()
        finally:
            browser.close()
    assert walk.seen == {
        "live", "aqi", "water", "soil", "sites", "noise", "radiation", "carbon", "climate",
        "ecology", "onemap", "completeness", "open-data", "alerts", "review",
    }  # fmt: skip
    _check_report(tmp_path / f"daily-{lang}.xlsx")

    # the API and the database show the acknowledgement and the review
    headers = {"Authorization": f"Bearer {demo['admin']}"}
    found = httpx.get(
        demo["http"] + "/api/v1/alerts", headers=headers, params={"state": "acknowledged"}
    ).json()["items"]
    acknowledged = {int(a["id"]): a for a in found}
    assert int(alert["id"]) in acknowledged
    assert acknowledged[int(alert["id"])]["acknowledged_by"] == DUTY
    reviews = httpx.get(
        demo["http"] + "/api/v1/reviews", headers=headers, params={"station": FAULTY[0]}
    ).json()["items"]
    mine = [r for r in reviews if r["reason"] == reason]
    assert len(mine) == 1, reviews
    assert mine[0]["by"] == DUTY and mine[0]["action"] == "invalidate"
    assert mine[0]["parameter"] == FAULTY[1]
    assert datetime.fromisoformat(mine[0]["start"]) == hour
    assert datetime.fromisoformat(mine[0]["end"]) == hour + timedelta(hours=1)
    socket_dir = (demo["data_dir"] / "pg" / "postmaster.pid").read_text().splitlines()[4]
    with psycopg.connect(f"host={socket_dir} dbname=ecosense user=postgres") as conn:
        row = conn.execute(
            "SELECT state, acknowledged_by, acknowledge_comment FROM alerts WHERE id = %s",
            (int(alert["id"]),),
        ).fetchone()
        assert row == ("acknowledged", DUTY, comment)
        audit = conn.execute(
            "SELECT action FROM audit_log WHERE actor = %s AND outcome = 'ok'"
            " AND details->>'via' = 'dashboard'",
            (DUTY,),
        ).fetchall()
    actions = {str(a) for (a,) in audit}
    assert {"login", "alert.acknowledge", "review.invalidate"} <= actions, actions

    if walk.language:
        pytest.fail("pages with headings in the other language:\n" + "\n".join(walk.language))
