"""Who looks at the dashboard, what they may see, and the guard that keeps tracebacks off it.

- **Signing in.** The sidebar's "登录" ("Sign in") form checks a user of ``ecosense users add``
  with :func:`store.signin.sign_in`, the same core as ``POST /api/v1/auth/token`` (same hash,
  same throttling per user name and per address, same ``login`` audit, with ``"via":
  "dashboard"``). The session token it issues is kept in ``st.session_state`` (server memory,
  per browser tab) and checked on every run, so signing out, expiry
  (``ECOSENSE_TOKEN_TTL_SECONDS``) and ``ecosense users disable`` end it at once. With single
  sign-on configured (``ECOSENSE_OIDC_*``), "统一身份认证" ("Single sign-on") runs Streamlit's
  ``st.login`` and the role comes from a claim (:mod:`access.sso`).
- **Deciding.** Every page asks :class:`Viewer`, which asks :func:`access.authorize` alone:
  stations above the caller's grade are left out everywhere (map, lists, tables, layers), and
  a page whose dataset is above it shows "登录" / "Sign in" (anonymous) or why not (signed in).
- **Auditing.** A read of non-public data is audited (action ``read``, as the API does) once
  per page render and dataset — one entry naming the non-public stations shown, one per other
  dataset (``alerts``, ``facility-emissions``, …) — never per run of the live 5-second
  fragment, which only refreshes what the page render audited.
- **Errors.** :func:`guarded` turns any exception of a page into a short message (in the
  page's language, :mod:`dashboards.i18n`);
  the details go to the log (``dashboard.log`` under ``ecosense up``), never to the browser
  (``client.showErrorDetails`` is off too).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

import access
from access import Action, Dataset, Grade
from access.sso import role_from_claims, sso_name
from dashboards.i18n import tr
from dashboards.settings import DashboardSettings
from dashboards.views import role_label
from ingest.limits import parse_networks
from store import audit as audit_log
from store import signin, users
from store.postgres import PostgresStore

logger = logging.getLogger("ecosense.dashboard")
if not logger.handlers:  # to the dashboard's stderr: dashboard.log under `ecosense up`
    _handler = logging.StreamHandler()
    _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger.addHandler(_handler)
    logger.propagate = False


def sign_in() -> str:
    """ "登录" / "Sign in" (the sidebar's expander and button)."""
    return tr("Sign in", "登录")


def trouble() -> str:
    """Shown instead of a page that failed (the details are in the log)."""
    return tr(
        "This page cannot be shown right now — the database may be restarting. Please try "
        "again in a moment.",
        "页面暂时无法显示（数据库可能正在重启），请稍后重试。",
    )


def described(what: str) -> str:
    """The accessible name of a map or chart (its ``alt``): ``what`` and where its numbers are."""
    return tr(
        f"{what}; the numbers it shows are in the data table below it",
        f"{what}；所示数值见其下方的数据表",
    )


#: the grades (:class:`access.Grade`) by their Chinese names (GB/T 43697 数据分级)
GRADE_NAMES_ZH: Final = {
    Grade.PUBLIC: "公开",
    Grade.INTERNAL: "内部",
    Grade.SENSITIVE: "敏感",
    Grade.RESTRICTED: "重要",
}
#: the datasets a page may refuse (:data:`access.DATASET_GRADES`) → (English, Chinese) name
DATASET_NAMES: Final = {
    "alerts": ("alerts", "告警"),
    "webhook-events": ("webhook events", "推送事件"),
    "facility-emissions": ("facility emissions", "排放单位排放数据"),
    "facility-activity": ("facility activity", "排放单位活动数据"),
    "reviews": ("reviews", "数据审核记录"),
    "audit": ("the audit", "审计日志"),
}


def dataset_name(name: str) -> str:
    """A dataset by name in the current language (``告警`` / ``alerts``)."""
    en, zh = DATASET_NAMES.get(name, (name, name))
    return tr(en, zh)


def data_table(frame: pd.DataFrame | Styler, what: str, key: str | None = None) -> None:
    """The numbers a map or chart (``what``, in the page's language) shows, as a table in a
    collapsed expander beside it: its text alternative, which a screen reader, or anyone,
    reads there."""
    with st.expander(tr("Data table", "数据表"), icon=":material/table:"):
        st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            key=key,
            alt=tr(f"Data table: {what}", f"数据表：{what}"),
        )


_TOKEN = "ecosense_token"
_SSO_AUDITED = "ecosense_sso_audited"


def guarded(page: Callable[[], None]) -> Callable[[], None]:
    """``page``, with any exception shown as :func:`trouble` and logged with its traceback
    (Streamlit's own rerun/stop signals are ``BaseException`` and pass through)."""

    @functools.wraps(page)
    def run() -> None:
        try:
            page()
        except Exception:
            logger.exception("dashboard page %s failed", page.__name__)
            st.error(trouble(), icon=":material/warning:")

    return run


def client_address(peer: str | None, forwarded: str | None, trusted: str) -> str:
    """The browser's address, as the sign-in throttle and the audit see it: Streamlit's peer
    address (``peer``; it gives none for a loopback connection: then ``127.0.0.1``), or, when
    that peer is a trusted proxy (``trusted``: ``ECOSENSE_TRUSTED_PROXIES``), the client its
    ``X-Forwarded-For`` names last — as the API does (README "Listeners under abuse")."""
    address = peer or "127.0.0.1"
    if not forwarded or not trusted:
        return address
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if not any(ip in net for net in parse_networks(trusted)):
        return address
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    return hops[-1][:64] if hops else address


def _address() -> str:
    try:
        peer = st.context.ip_address
        forwarded = st.context.headers.get("X-Forwarded-For")
    except Exception:  # no browser session (a bare script run)
        return "unknown"
    return client_address(peer, forwarded, os.environ.get("ECOSENSE_TRUSTED_PROXIES", ""))


def _recorder(store: PostgresStore) -> signin.Audit:
    def record(
        actor: str,
        action: str,
        object: str,
        outcome: str = "ok",
        address: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        return audit_log.record(store, actor, action, object, outcome, address, details)

    return record


@dataclass
class Viewer:
    """The caller of one page render: its ``principal`` and the stations it may read (with
    their graded datasets), and the page's reads to audit."""

    principal: access.Principal
    store: PostgresStore
    page: str
    address: str
    #: station id → its graded dataset, for the stations the principal may read
    graded: dict[str, Dataset] = field(default_factory=dict)
    audited: set[str] = field(default_factory=set)

    @property
    def signed_in(self) -> bool:
        return self.principal.kind != "anonymous"

    @property
    def stations(self) -> frozenset[str]:
        """The ids of the stations the principal may read."""
        return frozenset(self.graded)

    def readable(self, frame: pd.DataFrame, column: str) -> pd.DataFrame:
        """The rows of ``frame`` whose ``column`` names a station the principal may read."""
        if frame.empty:
            return frame
        return frame[frame[column].isin(self.graded)]

    def may(self, name: str) -> bool:
        """Whether the principal may read the dataset ``name`` of
        :data:`access.DATASET_GRADES`."""
        return bool(access.authorize(self.principal, Action.READ, access.dataset(name)))

    def refuse(self, name: str) -> bool:
        """Unless the principal may read ``name``: show why (anonymous: :func:`sign_in`) and
        audit the refusal of a signed-in user; return whether it was refused."""
        target = access.dataset(name)
        decision = access.authorize(self.principal, Action.READ, target)
        if decision:
            return False
        if self.signed_in:
            role = self.principal.effective_role
            st.warning(
                tr(
                    decision.reason,
                    f"{dataset_name(target.name)}为{GRADE_NAMES_ZH[target.grade]}数据，"
                    f"您的角色（{role_label(role)}）无权查看。",
                ),
                icon=":material/lock:",
            )
            self._record(name, "denied", {"reason": decision.reason})
        else:
            st.info(
                tr(
                    f"🔒 **{sign_in()}** — {dataset_name(target.name)} is"
                    f" {target.grade.label} data: sign in in the sidebar to see it.",
                    f"🔒 **{sign_in()}** — {dataset_name(target.name)}为"
                    f"{GRADE_NAMES_ZH[target.grade]}数据，不公开，请在侧栏登录后查看。",
                )
            )
        return True

    def shown(self, name: str, details: Mapping[str, Any] | None = None) -> None:
        """Audit that the page showed the dataset ``name`` (when it is not public)."""
        if access.dataset(name).grade > Grade.PUBLIC:
            self._record(name, "ok", details)

    def shown_stations(self, stations: Iterable[str]) -> None:
        """Audit that the page showed data of ``stations``: one entry naming those above
        ``public`` (none when all are public)."""
        above = sorted(
            {s for s in stations if s in self.graded and self.graded[s].grade > Grade.PUBLIC}
        )
        if above:
            from ingest.accept import stations_object

            self._record(stations_object(above), "ok", {"stations": len(above)})

    def _record(self, object: str, outcome: str, details: Mapping[str, Any] | None) -> None:
        if object in self.audited:  # once per page render and dataset
            return
        self.audited.add(object)
        audit_log.record(
            self.store,
            self.principal.actor,
            "read",
            object,
            outcome,
            self.address,
            {"via": "dashboard", "page": self.page, **(details or {})},
        )


def _principal(store: PostgresStore, settings: DashboardSettings) -> access.Principal:
    """Who this browser session is: a user signed in with the form (a live session token),
    an SSO identity with a mapped role, else anonymous."""
    token = st.session_state.get(_TOKEN)
    if token:
        found = signin.session_user(store, token)
        if found is not None:
            return access.user(found.name, found.role)
        del st.session_state[_TOKEN]
        st.session_state["ecosense_notice"] = tr(
            "Your sign-in has ended (expired, signed out or disabled).",
            "登录已失效（已过期、已退出或账号已停用）。",
        )
    if settings.sso and st.user.is_logged_in:
        claims = st.user.to_dict()
        name = sso_name(claims)
        role = role_from_claims(claims, settings.role_claim, settings.roles)
        if name is not None and role is not None:
            if not st.session_state.get(_SSO_AUDITED):
                st.session_state[_SSO_AUDITED] = True
                details = {"role": role.label, "via": "sso"}
                audit_log.record(store, name, "login", f"user:{name}", "ok", _address(), details)
            return access.user(name, role)
        st.session_state["ecosense_notice"] = tr(
            f"Your single sign-on account has no EcoSense role (claim "
            f"“{settings.role_claim}”): public data only.",
            f"该统一身份认证账号未分配 EcoSense 角色（声明 “{settings.role_claim}”），"
            "仅可查看公开数据。",
        )
    return access.ANONYMOUS


def current(store: PostgresStore, settings: DashboardSettings) -> access.Principal:
    """The principal of this run (the live fragment asks again on each refresh, so a
    disabled user's page stops showing data within one refresh)."""
    return _principal(store, settings)


def viewer(store: PostgresStore, settings: DashboardSettings, page: str) -> Viewer:
    """The caller of this page render, after the sidebar's sign-in box was drawn."""
    principal = _principal(store, settings)
    _sidebar(store, settings, principal)
    return Viewer(principal, store, page, _address(), readable_stations(store, principal))


def readable_stations(store: PostgresStore, principal: access.Principal) -> dict[str, Dataset]:
    """Station id → its graded dataset, for the stations ``principal`` may read."""
    with store.connection() as conn:
        datasets = users.station_datasets(conn)
    return {
        d.station: d
        for d in datasets
        if d.station is not None and access.authorize(principal, Action.READ, d)
    }


def _sidebar(
    store: PostgresStore, settings: DashboardSettings, principal: access.Principal
) -> None:
    """Sign in (the form, and single sign-on when configured) or sign out."""
    with st.sidebar:
        notice = st.session_state.pop("ecosense_notice", None)
        if notice:
            st.warning(notice)
        if principal.kind == "user":
            role = role_label(principal.role)
            st.caption(
                tr(
                    f"Signed in as **{principal.name}** ({role})",
                    f"已登录：**{principal.name}**（{role}）",
                )
            )
            if st.button(tr("Sign out", "退出"), key="ecosense_sign_out"):
                _sign_out(store)
            return
        with st.expander(sign_in(), expanded=False, icon=":material/key:"):
            with st.form("ecosense_sign_in", clear_on_submit=True, border=False):
                name = st.text_input(
                    tr("User name", "用户名"), autocomplete="username", key="ecosense_user"
                )
                password = st.text_input(
                    tr("Password", "密码"),
                    type="password",
                    autocomplete="current-password",
                    key="ecosense_password",
                )
                submitted = st.form_submit_button(sign_in())
            if submitted:
                done = signin.sign_in(
                    store,
                    _recorder(store),
                    name.strip(),
                    password,
                    _address(),
                    settings.token_ttl,
                    via="dashboard",
                )
                if done:
                    st.session_state[_TOKEN] = done.token
                    st.rerun()
                elif done.outcome == "throttled":
                    st.error(
                        tr(
                            f"Too many failed sign-ins: try again in {done.retry_after} s.",
                            f"登录失败次数过多，请 {done.retry_after} 秒后再试。",
                        )
                    )
                else:
                    st.error(tr("Wrong user name or password.", "用户名或密码错误。"))
            if settings.sso and st.button(tr("Single sign-on", "统一身份认证"), key="ecosense_sso"):
                st.login()


def _sign_out(store: PostgresStore) -> None:
    token = st.session_state.pop(_TOKEN, None)
    if token:
        found = signin.session_user(store, token)
        signin.sign_out(store, token)
        if found is not None:
            audit_log.record(
                store, found.name, "logout", f"user:{found.name}", "ok", _address(),
                {"via": "dashboard"},
            )  # fmt: skip
        st.rerun()
    if st.user.is_logged_in:
        st.session_state.pop(_SSO_AUDITED, None)
        st.logout()
