"""Both languages, one at a time (issue 14, item 7: "Chinese labels are only "English · 中文"
pairs, many strings are English only"; "a language switch (中文 default, English) in the page
and by the address (``?lang=en``, ``?lang=zh``) … every heading, label, unit, sector name,
region name (from the admin layer), parameter name and alert message in both").

- :mod:`dashboards.i18n` picks the language; the name tables name every sector, province,
  parameter, state, category in both;
- a scan of the dashboard's sources (AST) fails on any "English · 中文" pair left in a shown
  string and on a Streamlit call whose label is a bare literal with words (it must go through
  ``tr(en, zh)``);
- alert messages are composed in both languages from the alert's fields.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from dashboards import i18n
from dashboards.i18n import parse, pick, tr, use

ROOT = Path(__file__).resolve().parents[2]
CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")
LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
#: "English · 中文": Latin words, a middle dot, Chinese (or the other way round)
PAIR = re.compile(
    r"[A-Za-z][^·\n]*\s·\s[^·\n]*[\u3400-\u9fff]|[\u3400-\u9fff][^·\n]*\s·\s[^·\n]*[A-Za-z]{2}"
)
#: the modules of the dashboard (the one map's onemap.py and mapview.py too)
PAGES = sorted(p for p in (ROOT / "dashboards").glob("*.py") if p.name != "__init__.py")
#: literals that stay as they are in both languages: names, standards' symbols, the switch
ALLOWED = {
    "AQI",
    "EcoSense",
    "CSV",
    "PDF",
    "pH",
    "CO2e",
    "t CO2e",
    "t CO2",
    "Excel (xlsx)",
    "Language · 语言",  # the language switch names itself in both, so anyone can find it
}
#: calls that put their first argument (or ``label=``/``title=``) on the page
LABELLED = {
    "title", "header", "subheader", "caption", "info", "warning", "error", "success", "write",
    "markdown", "text", "metric", "selectbox", "multiselect", "radio", "segmented_control",
    "button", "form_submit_button", "download_button", "text_input", "text_area",
    "number_input", "date_input", "time_input", "checkbox", "toggle", "slider", "expander",
    "toast", "Page", "Column", "NumberColumn", "TextColumn", "ProgressColumn", "LinkColumn",
    "DateColumn", "DatetimeColumn", "tabs", "popover",
}  # fmt: skip


def test_the_default_is_chinese_and_the_address_picks_english() -> None:
    assert i18n.lang() == "zh" and i18n.DEFAULT == "zh"
    assert tr("Water", "水质") == "水质"
    with use("en"):
        assert i18n.lang() == "en" and tr("Water", "水质") == "Water"
    assert i18n.lang() == "zh"  # use() ends with its block
    assert [parse(v) for v in ("en", "EN", "en-GB", "zh", "zh_CN", "fr", "", None, 1)] == [
        "en", "en", "en", "zh", "zh", None, None, None, None
    ]  # fmt: skip
    assert pick("en", "a", "b") == "a" and pick("zh", "a", "b") == "b"


def _shown_strings(tree: ast.AST) -> list[tuple[int, str]]:
    """Every string literal of a module except docstrings (with its line)."""
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def _literal_words(node: ast.expr) -> str | None:
    """The words of a label given as a bare literal (a string or an f-string's text parts);
    ``None`` when the label is anything else (a ``tr(…)`` call, a variable…)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        text = "".join(
            v.value for v in node.values if isinstance(v, ast.Constant) and isinstance(v.value, str)
        )
    else:
        return None
    if text.strip() in ALLOWED:
        return None
    bare = re.sub(r"`[^`]*`", "", text)  # commands and code stay as they are
    return text if LATIN_WORD.search(bare) or CJK.search(bare) else None


def untranslated(source: str) -> list[str]:
    """The problems of a dashboard module's source: "English · 中文" pairs in shown strings,
    and Streamlit calls labelled by a bare literal with words."""
    tree = ast.parse(source)
    found = [
        f"line {line}: pair {text!r}"
        for line, text in _shown_strings(tree)
        if text not in ALLOWED and PAIR.search(text)
    ]
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        if node.func.attr not in LABELLED:
            continue
        labels = node.args[:1] + [k.value for k in node.keywords if k.arg in ("label", "title")]
        for label in labels:
            words = _literal_words(label)
            if words is not None:
                found.append(f"line {node.lineno}: {node.func.attr}({words!r})")
    return found


def test_the_scan_finds_pairs_and_bare_labels() -> None:
    """The rule can fail: each kind of mistake is caught, the translated forms pass."""
    assert untranslated('st.title("Water · 水质")')  # a pair
    assert untranslated('st.subheader("Latest values")')  # English only
    assert untranslated('st.info("暂无数据")')  # Chinese only
    assert untranslated('col.metric(f"Open {n}", 1)')  # an f-string's words
    assert untranslated('x = {"hour · 时段": 1}')  # a pair as a column heading
    assert not untranslated('st.title(tr("Water", "水质"))')
    assert not untranslated("st.caption(f\"{tr('Latest', '最新')}: {t}\")")
    assert not untranslated('st.metric("AQI", 3)')
    assert not untranslated('def f():\n    """Water · 水质 in a docstring."""\n')


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_every_page_shows_one_language_at_a_time(path: Path) -> None:
    assert untranslated(path.read_text("utf-8")) == []


# --------------------------------------------------------------------------- name tables
def test_every_sector_province_parameter_and_state_is_named_in_both() -> None:
    from carbon.regions import PROVINCES
    from carbon.sectors import NAMES
    from dashboards import views
    from sensors.parameters import PARAMETERS
    from sensors.standards.aqi import CATEGORIES

    for language in i18n.LANGS:
        with use(language):
            other = CJK.search if language == "en" else LATIN_WORD.search
            for code in NAMES:
                label = views.sector_label(code)
                assert label != code and not other(label.split(" (")[0]), label
            for iso in PROVINCES.values():
                label = views.region_label(iso)
                assert label != iso and label.strip() and not other(label), label
            for p in PARAMETERS:
                name = views.parameter_name(p.code, p.domain)
                assert name.strip() and name != p.code, name
                assert language == "en" or CJK.search(name), name
            for state in views.STATES:
                assert not other(views.state_name(state))
            for level in CATEGORIES:
                assert not other(views.category_label(level))
            for risk in views.RISK_NAMES:
                assert not other(views.risk_label(risk))
    with use("zh"):
        assert views.region_label("CN-BJ") == "北京市" and views.region_label("CN") == "中国"
        assert views.region_label("320100") == "江苏省 · 320100"
        assert views.sector_label("1.A.1.a") == "公用电力和热力生产 (1.A.1.a)"
        assert views.parameter_label("codmn") == "高锰酸盐指数 (mg/L)"
        assert views.parameter_label("so2") == "二氧化硫 SO₂ (µg/m³)"
        assert views.category_label(5) == "重度污染" and views.state_name("offline") == "离线"
    with use("en"):
        assert views.region_label("CN-XJ") == "Xinjiang"
        assert views.parameter_label("codmn") == "Permanganate index (CODMn) (mg/L)"
        assert views.category_label(5) == "Heavily polluted"


def test_the_tables_the_pages_show_have_headings_in_one_language() -> None:
    from zoneinfo import ZoneInfo

    import pandas as pd

    from dashboards.views import ranking

    t0 = pd.Timestamp("2026-11-28 01:00", tz="UTC")
    rows = pd.DataFrame(
        {"subject": ["A"], "start": [t0], "value": [40], "level": [1], "label": [""]}
    )
    now = t0.to_pydatetime() + pd.Timedelta(hours=1)
    with use("zh"):
        zh = list(ranking(rows, now, ZoneInfo("Asia/Shanghai")).columns)
    with use("en"):
        en = list(ranking(rows, now, ZoneInfo("Asia/Shanghai")).columns)
    assert zh == ["排名", "城市", "AQI", "类别", "首要污染物", "时段"]
    assert en == ["rank", "city", "AQI", "category", "primary pollutant", "hour"]


# --------------------------------------------------------------------------- in a page
def _page() -> None:
    import streamlit as st

    from dashboards import i18n
    from dashboards.i18n import tr

    i18n.setup()
    i18n.switch()
    st.title(tr("Water quality", "地表水水质"))


def test_the_address_and_the_switch_pick_the_language_and_keep_it() -> None:
    """``?lang=en`` renders English, none renders 中文; the sidebar's switch changes it and
    writes ``?lang=`` back; a later run without the parameter (navigation drops it) keeps
    the choice and sets the parameter again."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_page).run()
    assert at.title[0].value == "地表水水质" and at.query_params["lang"] == "zh"

    at = AppTest.from_function(_page)
    at.query_params["lang"] = "en"
    at.run()
    assert at.title[0].value == "Water quality" and at.query_params["lang"] == "en"

    at = AppTest.from_function(_page).run()
    switch = at.sidebar.button_group[0]
    switch.set_value("en").run()
    assert at.title[0].value == "Water quality" and at.query_params["lang"] == "en"
    at.query_params.clear()  # st.navigation drops query parameters on a page switch
    at.run()
    assert at.title[0].value == "Water quality" and at.query_params["lang"] == "en"
    at.sidebar.button_group[0].set_value("zh").run()
    assert at.title[0].value == "地表水水质" and at.query_params["lang"] == "zh"


def test_the_signed_in_role_is_named_in_the_pages_language() -> None:
    """New-user trial of issue 14: the sidebar said "已登录：duty（operator）" — the role is
    named in the page's language, as the duty pages name roles (值班员（operator））."""
    from access import Role
    from dashboards.views import ROLE_NAMES_ZH, role_label

    assert {r.label for r in Role} == set(ROLE_NAMES_ZH)  # every role has a Chinese name
    with use("zh"):
        assert role_label(Role.OPERATOR) == "值班员"
        assert role_label(Role.REVIEWER) == "审核员"
        assert role_label(None) == "—"
        assert all(CJK.search(role_label(r)) for r in Role)
    with use("en"):
        assert role_label(Role.OPERATOR) == "operator"
    source = (ROOT / "dashboards" / "session.py").read_text(encoding="utf-8")
    # the sidebar and the refusal both name it by role_label
    assert "principal.role.label" not in source and "role.label if role" not in source
