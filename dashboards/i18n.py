"""The language of the current dashboard render: 中文 (default) or English, one at a time.

- **Choosing.** ``?lang=zh`` / ``?lang=en`` in the address picks it; the sidebar's switch
  "中文 | English" sets the same query parameter. The choice is kept in ``st.session_state``
  and written back to ``st.query_params`` on every run (:func:`setup`), because
  ``st.navigation`` drops query parameters when switching pages. The page's ``<html lang>``
  follows it (``zh-CN`` or ``en``), so that a screen reader reads it in the right voice.
- **Using.** Each call site writes both texts inline, ``tr("Water quality", "地表水水质")``, and
  gets the current language's; :func:`lang` says which one it is (``"zh"`` or ``"en"``).
- **Outside a page** (unit tests, the pure helpers of :mod:`dashboards.views` called from a
  script), the language is the one :func:`use` sets, else the default ``zh``.

Streamlit is imported lazily, only when a page is running, so the pure helpers that call
:func:`tr` stay testable without a Streamlit session.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Final, Literal

Lang = Literal["zh", "en"]
LANGS: Final[tuple[Lang, ...]] = ("zh", "en")
DEFAULT: Final[Lang] = "zh"
#: the query parameter and the session-state key holding the language
PARAM: Final = "lang"
_STATE: Final = "ecosense_lang"
_SWITCH: Final = "ecosense_lang_switch"
#: how the switch names each language (in its own language)
NAMES: Final[dict[Lang, str]] = {"zh": "中文", "en": "English"}
#: each language's BCP 47 tag, for ``<html lang>`` (screen readers pick their voice by it)
TAGS: Final[dict[Lang, str]] = {"zh": "zh-CN", "en": "en"}

_forced: ContextVar[Lang | None] = ContextVar("ecosense_lang", default=None)


def parse(value: object) -> Lang | None:
    """The language a query parameter names (``en``, ``EN``, ``en-GB``, ``zh``, ``zh-CN``…),
    ``None`` for anything else."""
    if not isinstance(value, str):
        return None
    head = value.strip().lower().replace("_", "-").split("-")[0]
    for known in LANGS:
        if head == known:
            return known
    return None


def pick(language: Lang, en: str, zh: str) -> str:
    """``en`` or ``zh``, as ``language`` says (pure)."""
    return en if language == "en" else zh


def _running() -> bool:
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:  # pragma: no cover - streamlit is a dependency of the dashboard
        return False
    return get_script_run_ctx(suppress_warning=True) is not None


def lang() -> Lang:
    """The language of the current render: the one :func:`use` forces, else the page's
    (session state, set by :func:`setup`), else :data:`DEFAULT`."""
    forced = _forced.get()
    if forced is not None:
        return forced
    if not _running():
        return DEFAULT
    import streamlit as st

    return parse(st.session_state.get(_STATE)) or DEFAULT


def tr(en: str, zh: str) -> str:
    """The text of the current language (:func:`lang`): ``tr("Station", "站点")``."""
    return pick(lang(), en, zh)


@contextlib.contextmanager
def use(language: Lang) -> Iterator[None]:
    """Render in ``language`` inside the ``with`` block (tests, scripts)."""
    token = _forced.set(language)
    try:
        yield
    finally:
        _forced.reset(token)


def setup() -> Lang:
    """Decide this run's language, at the top of every run of the app: ``?lang=`` when the
    address names one, else the session's earlier choice, else :data:`DEFAULT`; then write it
    back to the address (navigation drops it)."""
    import streamlit as st

    chosen = parse(st.query_params.get(PARAM)) or parse(st.session_state.get(_STATE)) or DEFAULT
    st.session_state[_STATE] = chosen
    if st.query_params.get(PARAM) != chosen:
        st.query_params[PARAM] = chosen
    # Streamlit's page says <html lang="en"> whatever it shows (WCAG 3.1.1, language of the
    # page): set it to this run's language. The script is this module's constant text with one
    # of TAGS' values, never user input; in the sidebar, so the main area is unchanged.
    st.sidebar.html(
        f"<script>document.documentElement.lang = {TAGS[chosen]!r};</script>",
        unsafe_allow_javascript=True,
    )
    return chosen


def _switched() -> None:
    import streamlit as st

    chosen = parse(st.session_state.get(_SWITCH))
    if chosen is None:  # the segmented control was clicked off: keep the language
        return
    st.session_state[_STATE] = chosen
    st.query_params[PARAM] = chosen


def switch() -> None:
    """The sidebar's language switch, "中文 | English" (sets ``?lang=``)."""
    import streamlit as st

    st.session_state[_SWITCH] = lang()
    with st.sidebar:
        st.segmented_control(
            "Language · 语言",
            list(LANGS),
            format_func=NAMES.__getitem__,
            required=True,
            key=_SWITCH,
            on_change=_switched,
        )
