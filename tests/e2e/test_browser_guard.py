"""The browser guard itself (:mod:`tests.e2e.browser`) catches what it must: a console error,
an uncaught page error, an answer of status 400 or more, a request leaving the machine, and
axe-core's serious and critical violations — and passes a clean page."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.e2e.browser import STREAMLIT_BASE_PROBE, Guard, axe_check, describe, is_local, launch

pytestmark = pytest.mark.e2e

CLEAN = """<!doctype html><html lang="en"><head><title>Clean</title></head>
<body><main><h1>A clean page · 干净的页面</h1><p>Nothing wrong here.</p>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" alt="a dot"></main></body></html>"""

BROKEN = """<!doctype html><html lang="en"><head><title>Broken</title></head>
<body><main><h1>A broken page</h1>
<button></button>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<img src="http://tiles.example.invalid/0/0/0.png" alt="an outside tile">
<script>
console.error("boom from the page");
fetch("/missing.json");
setTimeout(() => { throw new Error("uncaught in the page"); }, 0);
</script></main></body></html>"""


class _Pages(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        pages = {"/clean.html": CLEAN, "/broken.html": BROKEN}
        body = pages.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.end_headers()
        self.wfile.write((body or "not found").encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Pages)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_local_addresses() -> None:
    assert is_local("http://127.0.0.1:8501/aqi")
    assert is_local("ws://localhost:8501/_stcore/stream")
    assert is_local("http://[::1]:80/")
    assert is_local("data:image/png;base64,AAAA")
    assert is_local("blob:http://127.0.0.1:8501/3f2a")
    assert not is_local("https://unpkg.com/swagger-ui-dist/swagger-ui.css")
    assert not is_local("http://127.0.0.1.example.com/")
    # the one 404 allowed: Streamlit's probe one folder down (streamlit/streamlit#7074)
    assert STREAMLIT_BASE_PROBE.match("http://127.0.0.1:8501/alerts/_stcore/health")
    assert STREAMLIT_BASE_PROBE.match("http://127.0.0.1:8501/aqi/_stcore/host-config")
    assert not STREAMLIT_BASE_PROBE.match("http://127.0.0.1:8501/_stcore/health")
    assert not STREAMLIT_BASE_PROBE.match("http://127.0.0.1:8501/a/b/_stcore/health")
    assert not STREAMLIT_BASE_PROBE.match("http://127.0.0.1:8501/aqi/_stcore/stream")


def test_the_guard_passes_a_clean_page_and_catches_a_broken_one(site: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch(p)
        try:
            context = browser.new_context()
            # nothing may leave the machine, not even from this test: outside hosts refused
            context.route(lambda url: not is_local(url), lambda route: route.abort())
            clean, broken = Guard(), Guard()
            clean.watch(context)
            page = context.new_page()
            page.goto(site + "/clean.html")
            page.wait_for_load_state("networkidle")
            assert axe_check(page) == []
            clean.check()

            broken.watch(context)
            page.goto(site + "/broken.html")
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(300)
            violations = axe_check(page)
            context.close()
        finally:
            browser.close()
    found = broken.report()
    assert "console error: boom from the page" in found
    assert "page error: " in found and "uncaught in the page" in found
    assert f"HTTP 404: GET {site}/missing.json" in found
    assert "outside request: http://tiles.example.invalid/0/0/0.png" in found
    with pytest.raises(AssertionError, match="boom from the page"):
        broken.check()
    ids = {v["id"] for v in violations}
    assert {"button-name", "image-alt"} <= ids, describe(violations)
    assert all(v["impact"] in ("serious", "critical") for v in violations)
    assert "button-name (critical)" in describe(violations)
