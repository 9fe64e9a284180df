"""Every page in one language at a time (issue 14, item 7: "A language switch (中文 default,
English) in the page and by the address (``?lang=en``, ``?lang=zh``) … every heading, label,
unit … in both"): each page rendered by Streamlit's AppTest against real PostgreSQL, with the
hourly and daily jobs' results, as an admin, in 中文 (no address parameter) and in English
(``?lang=en``). In English no heading, label or table heading holds a Chinese character (the
station names are data, not labels); in 中文 every page title does; in neither is there an
"English · 中文" pair.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipelines.runner import Runner
from store.postgres import PostgresStore
from tests.integration.test_reports import SOURCE, _readings, runner  # noqa: F401  (a fixture)

pytestmark = pytest.mark.integration
CJK = re.compile(r"[\u3400-\u9fff]")
#: an English word (a zone such as ``CST`` is not one), " · ", Chinese
PAIR = re.compile(r"[A-Za-z][a-z]{2,}[^·\n]*\s·\s[^·\n]*[\u3400-\u9fff]")
PAGES = (
    "aqi", "water", "soil", "sites", "noise", "radiation", "climate", "ecology", "alerts",
    "completeness", "review", "open-data", "carbon",
)  # fmt: skip


def _page(url: str, page: str) -> None:
    """One page for an admin, in the address's language (an AppTest script: imports inside)."""
    from pathlib import Path
    from zoneinfo import ZoneInfo

    import access
    from dashboards import duty, emissions, environment, i18n, opendata, quality
    from dashboards.session import Viewer
    from dashboards.settings import DashboardSettings
    from store import users
    from store.postgres import PostgresStore

    i18n.setup()
    store = PostgresStore(url)
    principal = access.user("admin", access.Role.ADMIN)
    with store.connection() as conn:
        graded = {d.station: d for d in users.station_datasets(conn) if d.station is not None}
    settings = DashboardSettings(
        url, Path("."), ZoneInfo("Asia/Shanghai"), None, api_url="http://127.0.0.1:8080"
    )
    render = {
        "aqi": quality.aqi_page,
        "water": quality.water_page,
        "soil": quality.soil_page,
        "noise": environment.noise_page,
        "sites": environment.site_page,
        "radiation": environment.radiation_page,
        "climate": environment.climate_page,
        "ecology": environment.ecology_page,
        "alerts": quality.alerts_page,
        "completeness": quality.completeness_page,
        "review": duty.review_page,
        "carbon": emissions.carbon_page,
        "open-data": opendata.open_data_page,
    }[page]
    render(store, settings, Viewer(principal, store, page, "127.0.0.1", graded))


def _labels(at: object) -> list[str]:
    """The page's headings, widget labels and table headings (not the data in the cells)."""
    out: list[str] = []
    for kind in ("title", "header", "subheader"):
        out += [str(e.value) for e in getattr(at, kind)]
    for kind in ("selectbox", "radio", "date_input", "button", "text_area", "metric"):
        out += [str(e.label) for e in at.get(kind)]  # type: ignore[attr-defined]
    for frame in at.dataframe:  # type: ignore[attr-defined]
        out += [str(c) for c in frame.value.columns]
    return out


def _texts(at: object) -> list[str]:
    """Everything else the page writes in words: captions, notes, messages."""
    out: list[str] = []
    for kind in ("caption", "markdown", "info", "warning", "error", "success"):
        out += [str(e.value) for e in getattr(at, kind)]
    return out


def _both(database_url: str, page: str) -> tuple[object, object]:
    """``page`` in 中文 (no address parameter) and in English (``?lang=en``), checked."""
    from streamlit.testing.v1 import AppTest

    zh = AppTest.from_function(_page, args=(database_url, page), default_timeout=60)
    zh.run()
    assert not zh.exception, (page, zh.exception)
    assert CJK.search(zh.title[0].value), zh.title[0].value
    for text in _labels(zh) + _texts(zh):
        assert not PAIR.search(text), (page, text)

    en = AppTest.from_function(_page, args=(database_url, page), default_timeout=60)
    en.query_params["lang"] = "en"
    en.run()
    assert not en.exception, (page, en.exception)
    assert not CJK.search(en.title[0].value), en.title[0].value
    for text in _labels(en):
        assert not CJK.search(text), (page, text)
    for text in _texts(en):
        assert not PAIR.search(text), (page, text)
    # the same numbers in both: every table has as many rows in either language
    assert [len(f.value) for f in zh.dataframe] == [len(f.value) for f in en.dataframe]
    return zh, en


@pytest.fixture(scope="module")
def server_admin_url(embedded_admin_url: str) -> str:
    """The language of a page does not depend on the database server: the embedded one only."""
    return embedded_admin_url


def test_each_page_in_chinese_and_in_english(
    store: PostgresStore,
    database_url: str,
    runner: Runner,  # noqa: F811  (the fixture)
    tmp_path: Path,
) -> None:
    """Every page in both, after the jobs ran over a day of air and water readings
    (tests/integration/test_reports.py) and the demo's plants and targets (sectors and regions
    by name, CEMS against calculation, the targets' tracking)."""
    from ecosense.demo import demo_soil_points, demo_stations
    from ecosense.runner import _backfill_demo, _seed_demo_carbon, _seed_demo_ecology
    from pipelines.jobs import JobContext, get
    from sensors.stations import Station

    stacks = [s for s in demo_stations() if s.kind == "cems"]
    noisy = [
        s for s in demo_stations() if s.kind in ("noise", "radiation") or "measures" in s.attributes
    ]
    site = [s for s in demo_soil_points() if "land_class" in s.attributes]
    store.upsert_stations(
        [
            Station("A1", "东四", "air", 116.41, 39.93, {"city": "Beijing"}),
            Station("A2", "天坛", "air", 116.40, 39.88, {"city": "Beijing"}),
            Station("W1", "密云水库入口", "water", 116.8, 40.4, {"water_body": "river"}),
            *stacks,
            *noisy,
            *site,
        ]
    )
    store.write_observations(_readings(), source=SOURCE)
    _seed_demo_carbon(database_url, "Asia/Shanghai")
    assert _seed_demo_ecology(database_url, tmp_path, "Asia/Shanghai") == 8
    _backfill_demo(store, [*stacks, *noisy, *site], "Asia/Shanghai")
    ctx = JobContext(database_url, runner, "Asia/Shanghai")
    for job in ("hourly", "daily", "carbon-inventory", "ecology"):
        assert not get(job).run(ctx, None, None).errors
    for page in PAGES:
        zh, en = _both(database_url, page)
        if page == "noise":  # the demo's noise stations: levels and exceedances in both
            noise_zh = " ".join(_labels(zh) + _texts(zh))
            noise_en = " ".join(_labels(en) + _texts(en))
            assert "昼间与夜间声级" in noise_zh and "Day and night levels" in noise_en
            assert "No daily levels yet" not in noise_en and "No hourly levels" not in noise_en
        if page == "radiation":  # the demo's gamma stations and aerosol results, in both
            assert any(
                "aerosol" in str(c).lower() for f in en.dataframe for c in f.value.iloc[:, 1]
            )
        if page == "ecology":  # the demo's NDVI trends by province and Beijing's land cover
            ecology_en = " ".join(_labels(en) + _texts(en))
            assert "Trends by region" in ecology_en and "No trends" not in ecology_en
            assert "No land-cover change" not in ecology_en
        if page == "climate":  # Tianjin's CO2 beside its plant's emissions, in both
            climate_en = " ".join(_labels(en) + _texts(en))
            assert "Measured concentrations" in climate_en and "Peak target" in climate_en
            assert "No greenhouse-gas measurements yet" not in climate_en
        if page == "sites":  # the demo's boreholes, in both
            assert any("BH02" in str(c) for f in en.dataframe for c in f.value.iloc[:, 0])
    zh_text = " ".join(_labels(zh) + _texts(zh))
    en_text = " ".join(_labels(en) + _texts(en))
    assert "在线监测与核算对比" in zh_text and "CEMS against calculation" in en_text
    assert "差异 %" in zh_text and "difference %" in en_text
