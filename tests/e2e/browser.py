"""The browser tests' shared guard (issue 14, items 7 and 8): Chromium started the same way
everywhere, a page may not log a console error, throw, fail a request, get an answer of status
400 or more, or ask anything of a host other than this machine; and axe-core, run in the page,
finds no serious or critical accessibility violation.

- :func:`launch` starts the Chromium of ``ECOSENSE_TEST_CHROMIUM`` with the fontconfig file of
  ``ECOSENSE_TEST_FONTCONFIG`` (``scripts/services.sh``: the system's fonts and the Noto Sans
  CJK font EcoSense installs), so pages and screenshots show real Chinese.
- :class:`Guard` listens to a whole browser context (every page, popup and redirect in it);
  :func:`guarded` fails the test at the end with everything it saw (or adds it to the failure
  the test already had).
- :func:`axe_check` injects npm's ``axe-core`` (``ECOSENSE_TEST_AXE``, installed by
  ``scripts/services.sh``) into the page and returns its serious and critical violations;
  :func:`assert_accessible` asserts there are none, listing rule, impact, help and elements.

Nothing is ignored wholesale: a console message or axe rule that must be allowed is allowed by
its exact text or a precise selector, with the reason beside it (:data:`ALLOWED_CONSOLE`,
:data:`AXE_EXCLUDE`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.conftest import require_service

CHROMIUM = os.environ.get("ECOSENSE_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: npm's axe-core (``axe.min.js``), installed by ``scripts/services.sh``
AXE = os.environ.get("ECOSENSE_TEST_AXE", "")
#: the fontconfig file adding a CJK font for Chromium, written by ``scripts/services.sh``
FONTCONFIG = os.environ.get("ECOSENSE_TEST_FONTCONFIG", "")
#: the hosts a page may ask: this machine only (the dashboard must work with no internet)
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
#: schemes that never leave the page
LOCAL_SCHEMES = frozenset({"data", "blob", "about", "chrome-extension"})
#: console errors allowed, by exact text → why. None so far.
ALLOWED_CONSOLE: Mapping[str, str] = {}
#: Streamlit's frontend, opened at a page's own address (``/alerts``), first looks for its
#: server one folder down — ``GET /alerts/_stcore/health`` and ``/alerts/_stcore/host-config``,
#: answered 404 (and logged by Chromium as "Failed to load resource … 404") — before it asks
#: ``/_stcore/…``: streamlit/streamlit#7074 (confirmed, open). Allowed for exactly those two
#: addresses one folder deep, 404 only; any other 404 fails.
STREAMLIT_BASE_PROBE = re.compile(r"^http://[^/]+/[A-Za-z0-9_-]+/_stcore/(health|host-config)$")
PROBE_404 = "Failed to load resource: the server responded with a status of 404 (Not Found)"
#: the impacts that fail a page
FAILING_IMPACTS = frozenset({"serious", "critical"})
#: elements axe leaves out, by precise selector → why
AXE_EXCLUDE: Mapping[str, str] = {
    # A disabled widget's label (e.g. the one map's "Stored layers" with no layer stored) is
    # drawn faded: WCAG 2 (1.4.3) exempts text of an inactive user interface component, but
    # Streamlit marks it with a `disabled` attribute on the <label> (not a form control), which
    # axe-core does not recognise, so its color-contrast rule reports it. Only such labels.
    'label[data-testid="stWidgetLabel"][disabled]': "label of a disabled widget (WCAG 1.4.3)",
}


def launch(playwright: Any) -> Any:
    """Chromium (``ECOSENSE_TEST_CHROMIUM``) with the CJK font of ``ECOSENSE_TEST_FONTCONFIG``;
    a missing Chromium or font skips the test (fails it in CI)."""
    require_service("Chromium", Path(CHROMIUM).exists())
    require_service(
        "a CJK font for Chromium (ECOSENSE_TEST_FONTCONFIG)",
        bool(FONTCONFIG) and Path(FONTCONFIG).is_file(),
    )
    env = {**os.environ, "FONTCONFIG_FILE": FONTCONFIG}
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env=env)


def is_local(url: str) -> bool:
    """Whether ``url`` stays on this machine (loopback host, or a data:/blob: address)."""
    parts = urlsplit(url)
    if parts.scheme in LOCAL_SCHEMES:
        return True
    return (parts.hostname or "") in LOCAL_HOSTS


@dataclass
class Guard:
    """What went wrong in one browser context: console errors, uncaught page errors, failed
    requests, answers with status ≥ 400 and requests leaving the machine (one line each)."""

    problems: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    #: origins of stand-ins for third parties that are not under test (a test's mock OpenID
    #: provider's sign-in page): what their pages do is not checked
    foreign: tuple[str, ...] = ()
    #: main-frame navigations so far, per page; requests aborted (net::ERR_ABORTED) with the
    #: navigation count of their page when they were made
    _navigations: dict[int, int] = field(default_factory=dict)
    _started: dict[int, tuple[Any, int]] = field(default_factory=dict)  # kept alive: id unique
    _aborted: list[tuple[Any, str]] = field(default_factory=list)

    def _of_foreign(self, page: Any) -> bool:
        return bool(self.foreign) and page is not None and page.url.startswith(self.foreign)

    def _page_of(self, request: Any) -> Any:
        try:
            return request.frame.page
        except Exception:  # a service worker's request has no frame
            return None

    def watch(self, context: Any) -> None:
        context.on("page", self._page)
        context.on("console", self._console)
        context.on("weberror", self._weberror)
        context.on("request", self._request)
        context.on("requestfailed", self._failed)
        context.on("response", self._response)

    def _console(self, message: Any) -> None:
        if message.type != "error" or message.text in ALLOWED_CONSOLE:
            return
        if self._of_foreign(message.page):
            return
        where = message.location.get("url", "") if message.location else ""
        if message.text == PROBE_404 and STREAMLIT_BASE_PROBE.match(where):
            return  # streamlit/streamlit#7074 (see STREAMLIT_BASE_PROBE)
        self.problems.append(f"console error: {message.text} ({where})")

    def _weberror(self, error: Any) -> None:
        self.problems.append(f"page error: {error.error}")

    def _page(self, page: Any) -> None:
        def navigated(frame: Any) -> None:
            if frame == page.main_frame:
                self._navigations[id(page)] = self._navigations.get(id(page), 0) + 1

        page.on("framenavigated", navigated)

    def _request(self, request: Any) -> None:
        page = self._page_of(request)
        if page is not None:
            self._started[id(request)] = (request, self._navigations.get(id(page), 0))
        if not is_local(request.url) and not self._of_foreign(self._page_of(request)):
            self.outside.append(request.url)

    def _failed(self, request: Any) -> None:
        if not is_local(request.url) or self._of_foreign(self._page_of(request)):
            return  # listed as an outside request already, or not under test
        if request.failure == "net::ERR_ABORTED" and request.url.startswith("blob:"):
            # an in-memory object (deck.gl's images of a map) whose load the page cancelled,
            # replacing the layer or leaving the page: nothing was asked of a server
            return
        line = f"request failed: {request.method} {request.url}: {request.failure}"
        if request.failure == "net::ERR_ABORTED":
            self._aborted.append((request, line))  # decided in report(): see there
            return
        self.problems.append(f"request failed: {request.method} {request.url}: {request.failure}")

    def _response(self, response: Any) -> None:
        if response.status == 404 and STREAMLIT_BASE_PROBE.match(response.url):
            return  # streamlit/streamlit#7074 (see STREAMLIT_BASE_PROBE)
        if response.status >= 400 and not self._of_foreign(self._page_of(response.request)):
            method = response.request.method
            self.problems.append(f"HTTP {response.status}: {method} {response.url}")

    def _left_behind(self, request: Any) -> bool:
        """Whether ``request`` was aborted because its page navigated away after it was made
        (the browser cancels what the old page still loaded: not a failure)."""
        page = self._page_of(request)
        if page is None or id(request) not in self._started:
            return False
        return self._navigations.get(id(page), 0) > self._started[id(request)][1]

    def report(self) -> str:
        """Everything seen, one line each ("" when nothing)."""
        aborted = [line for request, line in self._aborted if not self._left_behind(request)]
        lines = [*self.problems, *aborted, *(f"outside request: {u}" for u in self.outside)]
        return "\n".join(lines)

    def check(self) -> None:
        """Fail when anything was seen."""
        found = self.report()
        assert not found, "the browser saw:\n" + found


@contextmanager
def guarded(context: Any) -> Iterator[Guard]:
    """Watch ``context`` while the block runs; fail the test at the end if the guard saw
    anything (when the block failed already, what the guard saw is added to that failure)."""
    guard = Guard()
    guard.watch(context)
    try:
        yield guard
    except BaseException as exc:
        found = guard.report()
        if found:
            exc.add_note("the browser also saw:\n" + found)
        raise
    guard.check()


#: Streamlit fades the elements of a page while a script run replaces them ("stale"); a
#: page is checked between runs (the live page's fragment reruns every 5 s)
STALE = '[data-stale="true"]'


#: axe-core run while watching for Streamlit's stale marks (an element faded while a script
#: run replaces it): ``{violations, stale}``
_AXE_RUN = """async ([context, staleSelector]) => {
  let stale = document.querySelector(staleSelector) !== null;
  const watch = new MutationObserver((changes) => {
    if (changes.some((c) => c.target.getAttribute("data-stale") === "true")) stale = true;
  });
  watch.observe(document.body, {subtree: true, attributes: true, attributeFilter: ["data-stale"]});
  const results = await axe.run(context.exclude.length ? context : document,
                                {resultTypes: ["violations"]});
  watch.disconnect();
  stale = stale || document.querySelector(staleSelector) !== null;
  return {violations: results.violations, stale};
}"""


def axe_check(page: Any, exclude: Sequence[str] = (), tries: int = 5) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations on ``page`` (every frame checked), with
    the elements of :data:`AXE_EXCLUDE` and ``exclude`` left out. The page is checked between
    Streamlit's script runs: a run fades the elements it replaces (:data:`STALE`), which is
    not the page — a check during which any element was stale is taken again (up to
    ``tries`` times; the last one counts). Each violation is axe's: ``id``, ``impact``,
    ``help``, ``helpUrl``, ``nodes`` (``target``, ``html``, ``failureSummary``)."""
    require_service("npm's axe-core (ECOSENSE_TEST_AXE)", bool(AXE) and Path(AXE).is_file())
    context = {"exclude": [[s] for s in [*AXE_EXCLUDE, *exclude]]}
    results: dict[str, Any] = {}
    for _ in range(tries):
        page.wait_for_function(
            "s => !document.querySelector(s)", arg=STALE, timeout=30_000, polling=100
        )
        for frame in page.frames:
            if not frame.evaluate("() => typeof window.axe !== 'undefined'"):
                frame.add_script_tag(path=AXE)
        results = page.evaluate(_AXE_RUN, [context, STALE])
        if not results["stale"]:
            break
    return [v for v in results["violations"] if v.get("impact") in FAILING_IMPACTS]


def describe(violations: Sequence[Mapping[str, Any]]) -> str:
    """One paragraph per violation: rule id, impact, help, the elements' selectors."""
    parts = []
    for v in violations:
        nodes = "\n".join(
            f"    {' '.join(map(str, n.get('target', [])))}: "
            + str(n.get("failureSummary", "")).replace("\n", " ")[:300]
            for n in v.get("nodes", [])[:10]
        )
        parts.append(f"{v['id']} ({v['impact']}): {v['help']} <{v.get('helpUrl', '')}>\n{nodes}")
    return "\n".join(parts)


def assert_accessible(page: Any, where: str, exclude: Sequence[str] = ()) -> None:
    """No serious or critical axe-core violation on ``page`` (``where`` names it)."""
    violations = axe_check(page, exclude)
    assert not violations, f"axe-core on {where}:\n{describe(violations)}"
