"""``ecosense report daily|monthly`` (issue 14, item 6: "there is no daily or monthly report to
hand to the director"; "the daily report shows CO 0.7973 and NO₂ 34.9661 (published values are
rounded as the standard says)"; "Gaps and invalid hours are stated in the report, which still
exits 0"): readings written through the store, the real ``hourly`` and ``daily`` jobs on real
PostgreSQL, then the CLI; the xlsx opened with openpyxl, the PDF's pages rendered to images and
its text read back, the CSV's byte-order mark checked."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
import pytest
from openpyxl import load_workbook

import access
from ecosense import cli
from pipelines.jobs import JobContext, get
from pipelines.runner import Runner
from reports import data, render
from sensors.observations import Observation, Source
from sensors.standards import aqi as aqi_std
from sensors.stations import Station
from store import audit, derived, users
from store.postgres import PostgresStore

pytestmark = pytest.mark.integration
SOURCE = Source("http", "test-device")
DAY = date(2026, 11, 30)
#: 00:00 China Standard Time of DAY
T0 = datetime(2026, 11, 29, 16, tzinfo=UTC)
#: A2 reads constants whose daily means need rounding for publication
A2 = {"pm25": 80.0, "pm10": 90.0, "so2": 8.4, "no2": 34.9661, "co": 0.7973, "o3": 60.0}
#: A1 loses PM2.5 from 10:00 to 16:00: 18 of 24 hours valid, an invalid daily mean
GAP = (T0 + timedelta(hours=10), T0 + timedelta(hours=16))


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    with Runner(local="threads", workers=2) as r:
        yield r


def _readings() -> list[Observation]:
    rng = np.random.default_rng(3)
    out = []
    for m in range(0, 24 * 60, 5):
        t = T0 + timedelta(minutes=m)
        wobble = 1.05 if m // 5 % 2 else 0.95  # each hour's mean is the constant (QC: not stuck)
        for parameter, value in A2.items():
            out.append(Observation("A2", parameter, t, value * wobble))
            if parameter == "pm25" and GAP[0] <= t < GAP[1]:
                continue
            noisy = value * (0.6 + 0.05 * rng.normal())
            out.append(Observation("A1", parameter, t, round(noisy, 3)))
    # water: October (class II) and November (CODMn class IV: over the target, Class III)
    for month_day, codmn in ((T0 - timedelta(days=30), 3.0), (T0, 7.0)):
        for h in range(0, 24, 4):
            t = month_day + timedelta(hours=h)
            wobble = 1.02 if h // 4 % 2 else 0.98
            for parameter, value in {"do": 6.5, "codmn": codmn, "nh3n": 0.4, "ph": 7.2}.items():
                out.append(Observation("W1", parameter, t, value * wobble))
    return out


@pytest.fixture
def computed(store: PostgresStore, database_url: str, runner: Runner) -> PostgresStore:
    store.upsert_stations(
        [
            Station("A1", "东四", "air", 116.41, 39.93, {"city": "Beijing"}),
            Station("A2", "天坛", "air", 116.40, 39.88, {"city": "Beijing"}),
            Station("A3", "Plant fence", "air", 116.50, 39.90, {"city": "Beijing"}),
            Station("W1", "密云水库入口", "water", 116.8, 40.4, {"water_body": "river"}),
        ]
    )
    with store.connection() as conn:
        users.set_station_grade(conn, "A3", access.Grade.INTERNAL)
    store.write_observations(_readings(), source=SOURCE)
    ctx = JobContext(database_url, runner, "Asia/Shanghai", overlap=timedelta(0))
    for job in ("hourly", "daily"):
        assert get(job).run(ctx, None, None).errors == []
    return store


def _report(cli_env: Path, kind: str, fmt: str) -> Path:
    out = cli_env / f"{kind}.{fmt}"
    assert (
        cli.main(["report", kind, "--date", DAY.isoformat(), "--format", fmt, "--out", str(out)])
        == 0
    )
    return out


def _sheet_rows(path: Path) -> list[list[object]]:
    ws = load_workbook(path).worksheets[0]
    return [list(r) for r in ws.iter_rows(values_only=True)]


def test_daily_report_rounds_for_publication_and_states_the_gaps(
    computed: PostgresStore, cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _report(cli_env, "daily", "xlsx")
    assert "wrote the daily report of 2026-11-30" in capsys.readouterr().out
    rows = _sheet_rows(path)
    assert rows[0][0] == "空气质量日报 Daily air quality report"
    headers = [str(h) for h in rows[3]]
    assert "空气质量指数 AQI" in headers and "首要污染物 Primary pollutant" in headers
    by_station = {str(r[2]): dict(zip(headers, r, strict=False)) for r in rows[4:] if r[2]}
    a2 = by_station["A2 天坛"]
    # published as HJ 633-2026 §4.2.2 rounds: NO2 whole µg/m³, CO to 0.1 mg/m³
    assert a2["NO2 (μg/m³)"] == 35 and a2["CO (mg/m³)"] == 0.8 and a2["SO2 (μg/m³)"] == 8
    with computed.connection() as conn:
        stored = derived.read_assessments(
            conn, kind="aqi-daily", start=T0, end=T0 + timedelta(hours=1), subjects=["A2"]
        )
    expected = aqi_std.aqi(
        {"pm25_24h": 80, "pm10_24h": 90, "so2_24h": 8, "no2_24h": 35, "co_24h": 0.8, "o3_8h": 60},
        "daily",
    )
    assert a2["空气质量指数 AQI"] == expected.aqi == int(stored["value"].iloc[0])
    assert a2["首要污染物 Primary pollutant"] == "PM2.5"
    assert (a2["类别 Category"], a2["Category"]) == ("轻度污染", "Lightly polluted")
    assert a2["PM2.5 分指数 IAQI"] == expected.iaqi["pm25_24h"]
    assert a2["有效小时 Valid hours"] == "24/24"
    a1 = by_station["A1 东四"]
    assert a1["PM2.5 (μg/m³)"] == "—" and a1["有效小时 Valid hours"] == "18/24"
    assert "城市 City" in {str(r[0]) for r in rows[4:]}
    notes = [str(r[0]) for r in rows if r and r[0]]
    assert any("A1 东四 PM2.5: 18 of 24 hours valid (daily mean invalid" in n for n in notes)
    assert any("A3 Plant fence: 0 of 24 hours valid (no data)" in n for n in notes)
    with computed.connection() as conn:
        entry = audit.read(conn, action="export", limit=1)[0]
    assert entry.actor.startswith("cli:") and entry.object == "report:daily:2026-11-30"
    assert entry.details is not None and entry.details["grade"] == "internal"
    _check_pdf_and_csv(cli_env)


def _check_pdf_and_csv(cli_env: Path) -> None:
    """The PDF's pages rendered to images and its text read back; the CSV starts with a BOM."""
    pdf = pdfium.PdfDocument(_report(cli_env, "daily", "pdf"))
    text = "".join(page.get_textpage().get_text_range() for page in pdf)
    assert "空气质量日报" in text and "天坛" in text and "轻度污染" in text
    assert "18 of 24 hours valid" in text
    for page in pdf:  # every page rendered to an image: real glyphs, not empty boxes
        image = np.asarray(page.render(scale=1).to_pil().convert("L"))
        assert (image < 128).sum() > 2000, "a page renders no text"
    assert b"NotoSansCJKSC" in (cli_env / "daily.pdf").read_bytes()  # the project's CJK font
    raw = _report(cli_env, "daily", "csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert rows[0] == ["空气质量日报 Daily air quality report"]
    assert any("空气质量指数 AQI" in r for r in rows)


def test_monthly_water_report_and_reports_carry_their_grades(
    computed: PostgresStore, cli_env: Path
) -> None:
    rows = _sheet_rows(_report(cli_env, "monthly", "xlsx"))
    headers = [str(h) for h in rows[3]]
    w1 = dict(zip(headers, rows[4], strict=False))
    assert w1["站点 Station"] == "W1 密云水库入口"
    assert w1["水质类别 Class"] == "Ⅳ" and w1["上月类别 Last month"] == "Ⅱ"
    assert w1["目标类别 Target class"] == "Ⅲ" and w1["变化 Change"] == "变差 worse"
    assert "高锰酸盐指数" in str(w1["超标项目 Items exceeding the target (times over)"])
    assert "(0.17)" in str(w1["超标项目 Items exceeding the target (times over)"])  # (7-6)/6
    notes = [str(r[0]) for r in rows if r and r[0]]
    assert any("W1 密云水库入口: 1 of 30 days with data" in n for n in notes)
    _check_grades(computed)


def _check_grades(computed: PostgresStore) -> None:
    """Reports carry their stations' grades: anonymous callers get public stations only."""
    anon = data.build(computed, "daily", DAY, "Asia/Shanghai", access.ANONYMOUS)
    assert set(anon.stations) == {"A1", "A2"} and anon.grade == access.Grade.PUBLIC
    viewer = data.build(
        computed, "daily", DAY, "Asia/Shanghai", access.user("v", access.Role.VIEWER)
    )
    assert "A3" not in viewer.stations  # a viewer reads internal data but may not export it
    analyst = access.user("a", access.Role.ANALYST)
    full = data.build(computed, "daily", DAY, "Asia/Shanghai", analyst)
    assert "A3" in full.stations and full.grade == access.Grade.INTERNAL
    assert "A3 Plant fence" not in render.to_csv(anon).decode("utf-8-sig")


def test_a_report_that_cannot_be_written_exits_non_zero(cli_env: Path) -> None:
    out = cli_env / "missing" / "daily.xlsx"
    assert cli.main(["report", "daily", "--date", "2026-11-30", "--out", str(out)]) != 0
    assert (
        cli.main(["report", "daily", "--date", "30/11/2026", "--out", str(cli_env / "x.pdf")]) != 0
    )


def _page(url: str, role: str, page: str = "water") -> None:
    """A quality page rendered for a caller (an AppTest script: imports inside)."""
    from pathlib import Path
    from zoneinfo import ZoneInfo

    import access
    from dashboards import quality
    from dashboards.session import Viewer, readable_stations
    from dashboards.settings import DashboardSettings
    from store.postgres import PostgresStore

    store = PostgresStore(url)
    principal = access.ANONYMOUS if role == "" else access.user("u", access.Role.parse(role))
    graded = readable_stations(store, principal)
    settings = DashboardSettings(url, Path("."), ZoneInfo("Asia/Shanghai"), None)
    render = quality.water_page if page == "water" else quality.aqi_page
    render(store, settings, Viewer(principal, store, page, "127.0.0.1", graded))


def test_the_pages_offer_the_reports_and_a_non_public_download_is_audited(
    computed: PostgresStore, database_url: str
) -> None:
    """The same report downloadable from the page; a non-public one is audited on download."""
    from streamlit.testing.v1 import AppTest

    with computed.connection() as conn:
        users.set_station_grade(conn, "W1", access.Grade.SENSITIVE)
    at = AppTest.from_function(_page, args=(database_url, "analyst"), default_timeout=60)
    at.run()
    at.date_input(key="water_month").set_value(DAY).run()
    assert not at.exception
    buttons = at.get("download_button")
    assert len(buttons) == 1 and "2026-11" in str(buttons[0].proto.label)
    assert "1 个站点" in " ".join(c.value for c in at.caption)
    anonymous = AppTest.from_function(_page, args=(database_url, ""), default_timeout=60)
    anonymous.run()
    anonymous.date_input(key="water_month").set_value(DAY).run()
    assert "0 个站点" in " ".join(c.value for c in anonymous.caption)
    air = AppTest.from_function(_page, args=(database_url, "", "aqi"), default_timeout=60)
    air.run()
    air.date_input(key="aqi_day").set_value(DAY).run()
    assert not air.exception and len(air.get("download_button")) == 1
    assert "2 个站点" in " ".join(c.value for c in air.caption)  # A1, A2: public
    # the button's on_click: a download above public is audited like an export
    from dashboards.downloads import _audit
    from dashboards.session import Viewer

    analyst = access.user("ana", access.Role.ANALYST)
    report = data.build(computed, "monthly", DAY, "Asia/Shanghai", analyst)
    assert report.grade == access.Grade.SENSITIVE
    _audit(Viewer(analyst, computed, "water", "127.0.0.1"), report, "pdf")
    public = data.build(computed, "monthly", DAY, "Asia/Shanghai", access.ANONYMOUS)
    _audit(Viewer(access.ANONYMOUS, computed, "water", "127.0.0.1"), public, "pdf")
    with computed.connection() as conn:
        entries = audit.read(conn, action="export")
    assert [(e.actor, e.object) for e in entries] == [("ana", "report:monthly:2026-11")]
    assert entries[0].details is not None and entries[0].details["via"] == "dashboard"
