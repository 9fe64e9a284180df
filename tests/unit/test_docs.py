"""Docs that travel with the code (issue 12, bullet 6).

"Code cites the developers' reference folder, which users of the project do not have. Write
``docs/standards/`` … and cite those instead." These tests fail when a file of the repository
(outside ``tests/`` and ``.git``) cites the developers' reference folder, when a
``docs/standards/…`` path cited anywhere does not exist, or when a page of ``docs/standards``
links to a page that does not exist or is missing from the index, or when a table on a page no
longer matches the constants or data files of the code it documents.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STANDARDS = REPO / "docs" / "standards"
#: Directories never scanned: build output, caches, data directories (names starting with a dot
#: are skipped too: ``.git``, ``.venv``, ``.ecosense`` …).
_SKIPPED_DIRS = frozenset({"__pycache__", "node_modules", "build", "dist"})
#: Larger files are data, not prose or code.
_MAX_BYTES = 20_000_000
#: the developers' reference folder, spelt in two parts so that this file does not cite it
_FORBIDDEN = b"/".join((b"shared", b"reference"))
_CITED = re.compile(rb"docs/standards/[A-Za-z0-9_./-]*[A-Za-z0-9_]")
_MD_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _files(root: Path) -> Iterator[Path]:
    """Every file under ``root``, skipping hidden and build directories and large files."""
    for folder, dirs, names in os.walk(root):
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".") and d not in _SKIPPED_DIRS and not d.endswith(".egg-info")
        ]
        for name in names:
            path = Path(folder) / name
            if path.is_file() and path.stat().st_size <= _MAX_BYTES:
                yield path


def _project_files() -> list[Path]:
    """The repository's files outside ``tests/`` (and hidden directories)."""
    tests = REPO / "tests"
    return [p for p in _files(REPO) if tests not in p.parents]


def test_no_file_cites_the_developers_reference_folder() -> None:
    """Users do not have the developers' reference folder: code, data and docs cite
    ``docs/standards``."""
    offenders = [str(p.relative_to(REPO)) for p in _project_files() if _FORBIDDEN in p.read_bytes()]
    assert offenders == [], f"cite docs/standards/… instead of {_FORBIDDEN.decode()} in {offenders}"


def test_every_cited_standards_page_exists() -> None:
    """A ``docs/standards/…`` path cited in code, data, docs or tests names an existing file."""
    this = Path(__file__).resolve()
    missing = sorted(
        f"{p.relative_to(REPO)}: {cited.decode()}"
        for p in _files(REPO)
        if p.resolve() != this
        for cited in set(_CITED.findall(p.read_bytes()))
        if not (REPO / cited.decode()).exists()
    )
    assert missing == []


def test_code_cites_the_standards_pages() -> None:
    """The modules that implement standards point their readers to the pages."""
    for module, page in [
        ("sensors/standards/aqi.py", "air.md"),
        ("sensors/standards/gb3095.py", "air.md"),
        ("sensors/standards/water.py", "water.md"),
        ("sensors/standards/soil.py", "soil.md"),
        ("sensors/standards/radiation.py", "radiation.md"),
        ("pipelines/aggregate.py", "air.md"),
        ("ingest/hj212.py", "hj212.md"),
        ("carbon/cems.py", "carbon.md"),
    ]:
        assert f"docs/standards/{page}" in (REPO / module).read_text(encoding="utf-8"), module


PAGES = sorted(p.name for p in STANDARDS.glob("*.md"))


@pytest.mark.parametrize("page", PAGES)
def test_standards_page_links_resolve(page: str) -> None:
    """Relative links between the pages (and to the code) lead somewhere."""
    text = (STANDARDS / page).read_text(encoding="utf-8")
    broken = [
        link
        for link in _MD_LINK.findall(text)
        if "://" not in link and not (STANDARDS / link).exists()
    ]
    assert broken == []


def test_index_lists_every_page() -> None:
    index = (STANDARDS / "README.md").read_text(encoding="utf-8")
    assert {"air.md", "water.md", "soil.md", "radiation.md", "hj212.md", "carbon.md"} <= set(PAGES)
    unlisted = [p for p in PAGES if p != "README.md" and f"]({p})" not in index]
    assert unlisted == []


# --- the pages' tables are the code's tables ------------------------------------------------
def _page(name: str) -> str:
    return (STANDARDS / name).read_text(encoding="utf-8")


def _num(value: float | None) -> str:
    """A constant as the pages print it: ``—`` for none, ``0.00005`` rather than ``5e-05``."""
    if value is None:
        return "—"
    text = str(value)
    return f"{value:.10f}".rstrip("0") if "e" in text else text


def _row(cells: list[float | None] | tuple[float | None, ...]) -> str:
    return " | ".join(_num(c) for c in cells)


def test_air_page_has_the_code_s_aqi_breakpoints_and_limits() -> None:
    """HJ 633-2026 Table 3, HJ 633-2012's IAQI-100 row and GB 3095-2026 Table 1, as the code
    holds them (``TABLES``, ``LIMITS``)."""
    from sensors.standards.aqi import IAQI_STEPS, TABLES
    from sensors.standards.gb3095 import LIMITS

    text = _page("air.md")
    table = TABLES["HJ633-2026"]
    columns = ["so2_24h", "so2_1h", "no2_24h", "no2_1h", "co_24h", "co_1h", "o3_8h", "o3_1h"]
    columns += ["pm10_24h", "pm25_24h"]
    for k, step in enumerate(IAQI_STEPS):
        assert f"| {step} | {_row([table[c][k] for c in columns])} |" in text, step
    old = TABLES["HJ633-2012"]
    assert f"PM10 **{old['pm10_24h'][2]}** and PM2.5 **{old['pm25_24h'][2]}**" in text
    names = {"so2": "SO₂", "no2": "NO₂", "co": "CO", "o3": "O₃", "pm10": "PM10", "pm25": "PM2.5"}
    for (pollutant, averaging), ((t1, t2), (f1, f2)) in LIMITS.items():
        pattern = (
            rf"\| {re.escape(names[pollutant])} \| [^|]*{averaging}[^|]* \| "
            rf"{t1} / {t2} \| {f1} / {f2} \|"
        )
        assert re.search(pattern, text), (pollutant, averaging)


def test_water_page_has_the_code_s_table_1() -> None:
    from sensors.standards.water import DO_MINIMUMS, TP_LAKE, UPPER_LIMITS

    text = _page("water.md")
    rows = [(key, limits) for key, limits in UPPER_LIMITS.items()]
    rows += [("do", DO_MINIMUMS), ("tp`, `lake", TP_LAKE)]
    for key, limits in rows:
        pattern = rf"`{re.escape(key)}`[^|]*\| {re.escape(_row(limits))} \|"
        assert re.search(pattern, text), key


def test_soil_page_has_the_code_s_screening_and_intervention_values() -> None:
    from sensors.standards.soil import INTERVENTION, SCREENING

    text = _page("soil.md")
    uses = {"paddy": "paddy", "orchard": "orchard", "other": "other"}
    for metal, by_use in SCREENING.items():
        for use, values in by_use.items():
            shown = "all" if len(by_use) == 1 else uses[use]
            assert f"| {metal.capitalize()} | {shown} | {_row(values)} |" in text, (metal, use)
    for metal, values in INTERVENTION.items():
        assert f"| {metal.capitalize()} | {_row(values)} |" in text, metal


def _csv(name: str) -> list[dict[str, str]]:
    with (REPO / "carbon" / "data" / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_carbon_page_has_the_shipped_factors() -> None:
    """Every default of ``combustion.csv``, ``process.csv`` and ``grid.csv`` is on the page."""
    text = _page("carbon.md")
    combustion = _csv("combustion.csv")
    ipcc = {(r["fuel"], r["quantity"]): r["value"] for r in combustion if r["method"] == "ipcc"}
    for (fuel, quantity), ncv in ipcc.items():
        if quantity == "ncv":
            ef = f"{int(float(ipcc[(fuel, 'co2_ef')])):,}"
            assert re.search(rf"\(`{fuel}`\) \| {re.escape(ncv)} \| {ef} \|", text), fuel
    china: dict[str, dict[str, str]] = {}
    for r in combustion:
        if r["method"] == "china" and r["year"] == "2022":
            china.setdefault(r["fuel"], {})[r["quantity"]] = r["value"]
    for fuel, values in china.items():
        if "ncv" in values:  # coal has a carbon content only (its NCV must be measured)
            cells = rf"\| {re.escape(values['ncv'])} GJ/[^|]*\| {values['carbon_content']} \| "
            assert re.search(cells + rf"{values['oxidation']} \|", text), fuel
    for r in _csv("process.csv"):
        assert f"| `{r['process']}` | {r['value']} |" in text, r["process"]
    for r in _csv("grid.csv"):
        region, value = r["region"], r["value"]
        if region == "CN":
            assert f"| {r['year']} | {value} |" in text, r["id"]
        elif region.startswith("grid:"):
            assert re.search(rf"{region[5:]} [0-9./ —]*{re.escape(value)}", text), r["id"]
        else:
            assert re.search(rf"\| {region} [^|]+ \| {re.escape(value)} \|", text), r["id"]
