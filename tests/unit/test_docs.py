"""Docs that travel with the code (issue 12, bullet 6).

"Code cites ``../shared/reference/...``, which users of the project do not have. Write
``docs/standards/`` … and cite those instead." These tests fail when a file of the repository
(outside ``tests/`` and ``.git``) cites the developers' reference folder, when a
``docs/standards/…`` path cited anywhere does not exist, or when a page of ``docs/standards``
links to a page that does not exist or is missing from the index.
"""

from __future__ import annotations

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
_FORBIDDEN = b"shared/reference"
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
    """Users do not have ``../shared/reference``: code, data and docs cite ``docs/standards``."""
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
