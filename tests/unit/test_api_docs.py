"""``/docs`` and ``/redoc`` work with no way out (issue 14, item 8: "`/docs` is blank on an
intranet (Swagger UI is fetched from a CDN)"): every asset the pages reference is served by
the gateway itself, and no outside address is referenced."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import pytest
from fastapi.testclient import TestClient

from ecosense.app import create_app

#: src/href attributes and the OpenAPI document's address in Swagger UI's start-up script
_REFS = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_the_server_itself(page: str) -> None:
    """Before: /docs loaded swagger-ui-bundle.js and its CSS from a CDN (a blank page on an
    intranet). Now each reference is a path on this server that answers 200."""
    client = TestClient(create_app(None))  # type: ignore[arg-type]
    r = client.get(page)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert not re.search(r"https?:|[\"']//", html), "an outside address"
    refs = [a or b for a, b in _REFS.findall(html)]
    scripts = [x for x in refs if x.endswith(".js")]
    assert scripts, f"{page} references no script"
    assert "/openapi.json" in refs
    for ref in refs:
        assert ref.startswith("/") and not ref.startswith("//"), ref
        asset = client.get(urljoin("http://testserver", ref))
        assert asset.status_code == 200, ref
        assert len(asset.content) > 100, ref
    for script in scripts:  # the real bundle, not a stub, naming no outside address
        body = client.get(script).content
        assert len(body) > 500_000
        assert b"https://cdn." not in body and b"fonts.googleapis" not in body, script


def test_redoc_names_no_outside_font() -> None:
    html = TestClient(create_app(None)).get("/redoc").text  # type: ignore[arg-type]
    assert "fonts.googleapis" not in html and "cdn." not in html


def test_assets_outside_the_folder_are_not_served() -> None:
    client = TestClient(create_app(None))  # type: ignore[arg-type]
    assert client.get("/docs-assets/../../__init__.py").status_code == 404
    assert client.get("/docs-assets/nothing.js").status_code == 404
