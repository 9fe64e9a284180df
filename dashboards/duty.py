"""The duty officer's work in the dashboard: acknowledge and close alerts with a comment (on the
Alerts page) and review data (the Review page), for the users whose role allows it.

- **Who.** :func:`access.authorize` alone decides, for the caller of the page render
  (:class:`dashboards.session.Viewer`): acknowledging and closing need ``operate`` on
  ``alerts`` (``operator`` and up), and the alert's station readable by its grade, as
  ``POST /api/v1/alerts/{id}/acknowledge`` asks; reviewing needs ``review`` on ``reviews``
  and on the station (``reviewer`` and up; a restricted station: admin), as
  ``POST /api/v1/reviews`` asks. Anyone else sees no form.
- **What.** The same store functions as the API (:func:`store.alerts.acknowledge`,
  :func:`store.alerts.close`, :func:`store.reviews.add`): nothing is duplicated here.
- **Audit.** Each decision is audited as the API audits it (``alert.acknowledge``,
  ``alert.close`` on ``alert:<id>``; ``review.invalidate``/``review.restore`` on
  ``station:<id>``), with ``"via": "dashboard"``, the comment or reason, and the outcome
  (``ok``, ``refused``, ``failed``, ``denied``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

import access
from access import Action
from dashboards.i18n import lang, tr
from dashboards.session import Viewer
from dashboards.settings import DashboardSettings
from dashboards.views import alert_period, parameter_label, station_label
from sensors.alert_text import describe
from store import alerts as alert_store
from store import audit as audit_log
from store import reviews
from store.errors import NotFound
from store.postgres import PostgresStore

AlertAction = Literal["acknowledge", "close"]
#: a review's actions → (English, Chinese) label
REVIEW_ACTIONS: Final = {
    "invalidate": ("Invalidate", "标记无效"),
    "restore": ("Restore", "恢复有效"),
}
#: an alert's states (and webhook events) → (English, Chinese) name
ALERT_STATES: Final = {
    "open": ("open", "未处理"),
    "opened": ("opened", "开启"),
    "acknowledged": ("acknowledged", "已确认"),
    "closed": ("closed", "已关闭"),
}
SEVERITIES: Final = {"warning": ("warning", "警告"), "critical": ("critical", "严重")}
#: the alert rules (:mod:`sensors.alerts`) → (English, Chinese) name
RULES: Final = {
    "exceedance": ("exceedance", "超标"),
    "sustained": ("sustained exceedance", "持续超标"),
    "aqi": ("AQI level", "AQI 级别"),
    "offline": ("offline", "离线"),
    "flatline": ("flatline", "数值不变"),
    "gamma": ("gamma dose rate", "γ 辐射剂量率"),
}


def _named(table: Mapping[str, tuple[str, str]], key: str) -> str:
    found = table.get(key)
    return key if found is None else tr(*found)


def review_action_name(action: str) -> str:
    """``标记无效`` / ``Invalidate`` for ``invalidate``."""
    return _named(REVIEW_ACTIONS, action)


def alert_state_name(state: str) -> str:
    """An alert's state (or webhook event) in the current language."""
    return _named(ALERT_STATES, state)


def severity_name(severity: str) -> str:
    """``严重`` / ``critical``."""
    return _named(SEVERITIES, severity)


def rule_name(rule: str) -> str:
    """An alert rule's name in the current language."""
    return _named(RULES, rule)


def alert_parameter_name(parameter: str) -> str:
    """An alert's parameter by name: ``二氧化硫 (ug/m3) · 1h`` for ``so2_1h``, ``日 AQI`` /
    ``daily AQI`` for ``P1D``, ``—`` for none (an hourly AQI or offline alert)."""
    if not parameter:
        return "—"
    if parameter == "P1D":
        return tr("daily AQI", "日 AQI")
    base, _, averaging = parameter.rpartition("_")
    if averaging in ("1h", "24h") and base:
        return f"{parameter_text(base)} · {averaging}"
    return parameter_text(parameter)


#: the store's refusals (:mod:`store.alerts`, :mod:`store.reviews`) → their Chinese wording
_REFUSALS: Final = (
    (re.compile(r"a comment is needed"), "关闭告警须填写备注"),
    (re.compile(r"comment longer than (\d+) characters"), r"备注超过 \1 个字符"),
    (re.compile(r"comment: NUL or unpaired surrogate characters"), "备注含有无效字符"),
    (re.compile(r"alert (\d+) is closed"), r"告警 \1 已关闭"),
    (re.compile(r"no alert (\d+)"), r"告警 \1 不存在"),
    (re.compile(r"a review needs a reason"), "审核须填写理由"),
    (re.compile(r"reason longer than (\d+) characters"), r"理由超过 \1 个字符"),
    (re.compile(r"start must be before end"), "开始时间须早于结束时间"),
    (re.compile(r"unknown station '?([^']*)'?"), r"未知站点 \1"),
    (re.compile(r"unknown parameter '?([^']*)'?"), r"未知参数 \1"),
)


def refusal(text: str) -> str:
    """A refusal of the store (``a comment is needed``…) in the current language; one it does
    not know, in Chinese, as "操作被拒绝" with the original words."""
    if tr("en", "zh") == "en":
        return text
    for pattern, zh in _REFUSALS:
        found = pattern.fullmatch(text)
        if found:
            return found.expand(zh)
    return f"操作被拒绝：{text}"


def alert_text(row: Mapping[str, Any]) -> str:
    """An alert's message in the current language, composed from its fields
    (:func:`sensors.alert_text.describe`); the stored ``message`` when they do not say enough."""
    found = describe(
        str(row.get("rule", "")), row.get("parameter"), row.get("value"), row.get("details"), lang()
    )
    return found if found is not None else str(row.get("message") or "")


_NOTICE: Final = "duty_notice"


# --------------------------------------------------------------------------- pure helpers
def _stamp(value: datetime, tz: Any) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def lifecycle(row: Mapping[str, Any], tz: Any) -> str:
    """An alert's life cycle in words (the current language), times in the zone ``tz``:
    ``opened 2026-12-02 10:00 → acknowledged 2026-12-02 10:05 by ops: “on it” → closed
    2026-12-02 10:30 by ops: “fixed”`` (a closing by the jobs, when the condition no longer
    holds: ``closed … (condition cleared)``); in Chinese ``开启 2026-12-02 10:00 → 确认 …（ops）：
    “on it”``."""
    by = tr(" by {}", "（{}）")
    parts = [f"{tr('opened', '开启')} {_stamp(row['opened_at'], tz)}"]
    if row.get("acknowledged_at") is not None:
        text = f"{tr('acknowledged', '确认')} {_stamp(row['acknowledged_at'], tz)}" + by.format(
            row.get("acknowledged_by") or "—"
        )
        if row.get("acknowledge_comment"):
            text += f"{tr(': ', '：')}“{row['acknowledge_comment']}”"
        parts.append(text)
    if row.get("closed_at") is not None:
        text = f"{tr('closed', '关闭')} {_stamp(row['closed_at'], tz)}"
        if row.get("closed_by"):
            text += by.format(row["closed_by"])
            if row.get("close_comment"):
                text += f"{tr(': ', '：')}“{row['close_comment']}”"
        else:
            text += tr(" (condition cleared)", "（条件解除）")
        parts.append(text)
    return " → ".join(parts)


def local_range(
    start_day: date, start_time: time, end_day: date, end_time: time, tz: ZoneInfo
) -> tuple[datetime, datetime]:
    """The range ``[start, end)`` a reviewer entered as days and times on the bureau's clock
    (zone ``tz``), as aware datetimes; ``ValueError`` unless start is before end."""
    start = datetime.combine(start_day, start_time, tzinfo=tz)
    end = datetime.combine(end_day, end_time, tzinfo=tz)
    if start >= end:
        raise ValueError(tr("the start must be before the end", "开始时间须早于结束时间"))
    return start, end


def parameter_text(code: str) -> str:
    """``细颗粒物 PM2.5 (ug/m3)`` / ``PM2.5 (ug/m3)`` for ``pm25``
    (:func:`dashboards.views.parameter_label`); the code itself for an unknown one."""
    return parameter_label(code)


# --------------------------------------------------------------------------- decisions
def may_operate_alerts(who: Viewer) -> bool:
    """Whether ``who`` may acknowledge and close alerts (``operate`` on ``alerts``)."""
    return bool(access.authorize(who.principal, Action.OPERATE, access.dataset("alerts")))


def may_review(who: Viewer) -> bool:
    """Whether ``who`` may record reviews (``review`` on ``reviews``)."""
    return bool(access.authorize(who.principal, Action.REVIEW, access.dataset("reviews")))


def _audit(who: Viewer, action: str, object: str, outcome: str, details: Mapping[str, Any]) -> None:
    audit_log.record(
        who.store,
        who.principal.actor,
        action,
        object,
        outcome,
        who.address,
        {"via": "dashboard", "page": who.page, **details},
    )


def act_on_alert(who: Viewer, alert_id: int, action: AlertAction, comment: str) -> tuple[bool, str]:
    """Acknowledge or close alert ``alert_id`` as ``who``, with ``comment`` (needed to
    close), audited; return whether it was done and a message for the page."""
    audit_action = f"alert.{action}"
    audit_object = f"alert:{alert_id}"
    decision = access.authorize(who.principal, Action.OPERATE, access.dataset("alerts"))
    if not decision:
        _audit(who, audit_action, audit_object, "denied", {"reason": decision.reason})
        return False, tr(decision.reason, "您的角色无权操作告警。")
    with who.store.connection() as conn:
        try:
            station = alert_store.alert_station(conn, alert_id)
        except alert_store.AlertNotFound as exc:
            _audit(who, audit_action, audit_object, "failed", {"error": str(exc)})
            return False, refusal(str(exc))
    if station and station not in who.stations:  # beyond the caller's grade, as the API's 403
        reason = f"station {station} is beyond {who.principal.actor}'s grade"
        _audit(who, audit_action, audit_object, "denied", {"reason": reason})
        return False, tr(reason, f"站点 {station} 超出您的数据权限。")
    try:
        with who.store.connection() as conn:
            if action == "acknowledge":
                row = alert_store.acknowledge(conn, alert_id, who.principal.actor, comment)
            else:
                row = alert_store.close(conn, alert_id, who.principal.actor, comment)
    except alert_store.AlertNotFound as exc:
        _audit(who, audit_action, audit_object, "failed", {"error": str(exc)})
        return False, refusal(str(exc))
    except ValueError as exc:
        _audit(who, audit_action, audit_object, "refused", {"error": str(exc)})
        return False, refusal(str(exc))
    details = {"station": row["station"], "rule": row["rule"], "comment": comment.strip()}
    _audit(who, audit_action, audit_object, "ok", details)
    if action == "acknowledge":
        return True, tr(f"Alert {alert_id} acknowledged.", f"告警 {alert_id} 已确认。")
    return True, tr(f"Alert {alert_id} closed.", f"告警 {alert_id} 已关闭。")


def record_review(
    who: Viewer,
    station: str,
    parameter: str,
    start: datetime,
    end: datetime,
    action: str,
    reason: str,
) -> tuple[bool, str, bool]:
    """Invalidate or restore ``parameter`` of ``station`` over ``[start, end)`` as ``who``,
    with ``reason``, audited as ``POST /api/v1/reviews`` is; return whether it was recorded,
    a message for the page and whether that message is a warning (a review covering no
    stored reading)."""
    audit_action = f"review.{action}"
    audit_object = f"station:{station}"
    details: dict[str, Any] = {
        "parameter": parameter,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "reason": reason,
    }
    dataset = who.graded.get(station)
    decision = (
        access.authorize(who.principal, Action.REVIEW, dataset)
        if dataset is not None
        else access.authorize(who.principal, Action.REVIEW, access.dataset("reviews"))
    )
    if dataset is None or not decision:
        why = decision.reason if not decision else f"station {station} is not readable"
        _audit(who, audit_action, audit_object, "denied", {**details, "reason": why})
        return False, tr(why, f"无权审核站点 {station} 的数据。"), False
    try:
        with who.store.connection() as conn:
            review, affected = reviews.add(
                conn,
                station=station,
                parameter=parameter,
                start=start,
                end=end,
                action=action,
                reason=reason,
                by=who.principal.actor,
            )
    except (NotFound, ValueError) as exc:
        _audit(who, audit_action, audit_object, "failed", {**details, "error": str(exc)})
        return False, refusal(str(exc)), False
    _audit(
        who,
        audit_action,
        audit_object,
        "ok",
        {**details, "review": review.id, "affected": affected},
    )
    if not affected:  # recorded, but most likely not what the reviewer meant: say so
        return (
            True,
            tr(
                "Warning: " + reviews.no_readings_warning(review, start.tzinfo) + ".",
                f"注意：审核 {review.id} 已记录，但该时段内没有 {station} 的 {parameter} 读数："
                "请检查站点、参数和时段。该审核仍然有效，之后到达的该时段读数也受其约束。",
            ),
            True,
        )
    return (
        True,
        tr(
            f"Review {review.id} recorded: {affected} readings {action}d. The jobs recompute the"
            " periods it touches on their next run.",
            f"审核 {review.id} 已记录，涉及 {affected} 条读数（{review_action_name(action)}）。"
            "计算任务将在下次运行时重新计算受影响的时段。",
        ),
        False,
    )


# --------------------------------------------------------------------------- page parts
def _notice() -> None:
    found = st.session_state.pop(_NOTICE, None)
    if found:
        ok, text, *warn = found  # (done, message[, only with a warning])
        (st.error if not ok else st.warning if any(warn) else st.success)(text)


def alert_table(
    rows: Sequence[Mapping[str, Any]], tz: Any, names: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The alerts page's table of ``rows`` (stored alerts), every heading in the page's
    language (编号, 状态, 级别 … / id, state, severity …), the station by its name in
    ``names`` (station id → stored name) with its id beside it."""
    names = names or {}
    return pd.DataFrame(
        [
            {
                tr("id", "编号"): r["id"],
                tr("state", "状态"): alert_state_name(r["state"]),
                tr("severity", "级别"): severity_name(r["severity"]),
                tr("rule", "规则"): rule_name(r["rule"]),
                tr("station", "站点"): station_label(r["station"], names),
                tr("parameter", "参数"): alert_parameter_name(r["parameter"]),
                tr("message", "内容"): alert_text(r),
                tr("hour or day", "时段"): alert_period(r["parameter"], r["details"], tz),
                tr("opened", "开启时间"): r["opened_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                tr("last seen", "最近出现"): r["last_seen"]
                .astimezone(tz)
                .strftime("%Y-%m-%d %H:%M"),
                tr("life cycle", "处理过程"): lifecycle(r, tz),
            }
            for r in rows
        ]
    )


def alert_actions(
    who: Viewer,
    live: Sequence[Mapping[str, Any]],
    tz: Any,
    names: Mapping[str, str] | None = None,
) -> None:
    """The duty officer's form under the live alerts: pick one, write a comment, acknowledge
    or close it. Only for those who may (:func:`may_operate_alerts`); others get a line saying
    who may."""
    _notice()
    if not may_operate_alerts(who):
        st.caption(
            tr(
                "An operator signed in acknowledges and closes alerts here.",
                "值班员（operator）登录后可在此确认、关闭告警。",
            )
        )
        return
    if not live:
        return
    rows = {int(r["id"]): r for r in live if not r["station"] or r["station"] in who.stations}
    if not rows:
        return
    st.subheader(tr("Acknowledge or close", "确认或关闭"))
    with st.form("duty_alert", clear_on_submit=True):
        alert_id = st.selectbox(
            tr("Alert", "告警"),
            list(rows),
            format_func=lambda i: (
                f"#{i} {alert_state_name(rows[i]['state'])}"
                f" · {station_label(rows[i]['station'], names or {})}"
                f" · {alert_text(rows[i])} · {_stamp(rows[i]['opened_at'], tz)}"
            ),
            key="duty_alert_id",
        )
        comment = st.text_area(
            tr("Comment (needed to close)", "备注（关闭时必填）"),
            max_chars=alert_store.MAX_COMMENT,
            key="duty_alert_comment",
        )
        left, right = st.columns(2)
        acknowledge = left.form_submit_button(tr("Acknowledge", "确认"), type="primary")
        close = right.form_submit_button(tr("Close", "关闭"))
    if (acknowledge or close) and alert_id is not None:
        action: AlertAction = "acknowledge" if acknowledge else "close"
        st.session_state[_NOTICE] = act_on_alert(who, int(alert_id), action, comment)
        st.rerun()


def review_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """Manual review (数据审核): the recent reviews (``sensitive``: analyst and up) and, for a
    reviewer, a form to invalidate or restore a station's parameter over a time range with a
    reason."""
    tz = settings.timezone
    st.title(tr("Data review", "数据审核"))
    if who.refuse("reviews"):
        return
    _notice()
    if may_review(who):
        _review_form(store, who, tz)
    else:
        st.caption(
            tr(
                "A reviewer signed in records reviews here.",
                "审核员（reviewer）登录后可在此审核数据。",
            )
        )
    with store.connection() as conn:
        found = reviews.list_reviews(conn, limit=200)
    names = {s.id: s.name for s in store.list_stations()}
    found = [r for r in found if r.station in who.stations]
    who.shown("reviews", {"items": len(found)})
    who.shown_stations(r.station for r in found)
    st.subheader(tr("Recent reviews", "最近审核"))
    if not found:
        st.info(tr("No reviews yet.", "暂无审核记录。"))
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    tr("id", "编号"): r.id,
                    tr("station", "站点"): station_label(r.station, names),
                    tr("parameter", "参数"): parameter_text(r.parameter),
                    tr("from", "起"): _stamp(r.start, tz),
                    tr("to", "止"): _stamp(r.end, tz),
                    tr("action", "操作"): review_action_name(r.action),
                    tr("reason", "理由"): r.reason,
                    tr("by", "审核人"): r.by,
                    tr("at", "时间"): _stamp(r.at, tz),
                }
                for r in found
            ]
        ),
        hide_index=True,
        width="stretch",
    )


def _review_form(store: PostgresStore, who: Viewer, tz: ZoneInfo) -> None:
    stations = sorted(
        s for s, d in who.graded.items() if access.authorize(who.principal, Action.REVIEW, d)
    )
    if not stations:
        st.info(tr("No stations to review.", "暂无可审核的站点。"))
        return
    st.subheader(tr("Invalidate or restore", "标记无效或恢复"))
    names = {s.id: s.name for s in store.list_stations()}
    station = st.selectbox(
        tr("Station", "站点"),
        stations,
        key="review_station",
        format_func=lambda sid: station_label(sid, names),
    )
    latest = store.latest(station)
    parameters = sorted(set(latest["parameter"])) if not latest.empty else []
    if not parameters:
        st.info(tr("This station has no readings yet.", "该站点暂无数据。"))
        return
    now = datetime.now(tz).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    before = now - timedelta(hours=1)
    with st.form("review_form", clear_on_submit=True):
        parameter = st.selectbox(
            tr("Parameter", "参数"),
            parameters,
            format_func=parameter_text,
            key="review_parameter",
        )
        cols = st.columns(4)
        start_day = cols[0].date_input(tr("From day", "开始日期"), before.date(), key="review_d0")
        start_time = cols[1].time_input(
            tr("From", "开始时间"), before.time(), step=timedelta(hours=1), key="review_t0"
        )
        end_day = cols[2].date_input(tr("To day", "结束日期"), now.date(), key="review_d1")
        end_time = cols[3].time_input(
            tr("To (not included)", "结束时间（不含）"),
            now.time(),
            step=timedelta(hours=1),
            key="review_t1",
        )
        action = st.radio(
            tr("Action", "操作"),
            list(REVIEW_ACTIONS),
            format_func=review_action_name,
            horizontal=True,
            key="review_action",
        )
        reason = st.text_area(
            tr("Reason", "理由"), max_chars=reviews.MAX_REASON, key="review_reason"
        )
        submitted = st.form_submit_button(tr("Record the review", "提交审核"), type="primary")
    if not submitted:
        return
    try:
        start, end = local_range(start_day, start_time, end_day, end_time, tz)
    except ValueError as exc:
        st.error(str(exc))
        return
    st.session_state[_NOTICE] = record_review(
        who, station, str(parameter), start, end, str(action), reason
    )
    st.rerun()
