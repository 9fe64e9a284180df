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

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

import access
from access import Action
from dashboards.session import Viewer
from dashboards.settings import DashboardSettings
from sensors.errors import SensorsError
from sensors.parameters import lookup
from store import alerts as alert_store
from store import audit as audit_log
from store import reviews
from store.errors import NotFound
from store.postgres import PostgresStore

AlertAction = Literal["acknowledge", "close"]
#: the labels of a review's actions
REVIEW_ACTIONS: Final = {
    "invalidate": "Invalidate · 标记无效",
    "restore": "Restore · 恢复有效",
}
_NOTICE: Final = "duty_notice"


# --------------------------------------------------------------------------- pure helpers
def _stamp(value: datetime, tz: Any) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def lifecycle(row: Mapping[str, Any], tz: Any) -> str:
    """An alert's life cycle in words, times in the zone ``tz``: ``opened 2026-12-02 10:00 →
    acknowledged 2026-12-02 10:05 by ops: “on it” → closed 2026-12-02 10:30 by ops: “fixed”``
    (a closing by the jobs, when the condition no longer holds: ``closed … (condition
    cleared)``)."""
    parts = [f"opened · 开启 {_stamp(row['opened_at'], tz)}"]
    if row.get("acknowledged_at") is not None:
        text = (
            f"acknowledged · 确认 {_stamp(row['acknowledged_at'], tz)}"
            f" by {row.get('acknowledged_by') or '—'}"
        )
        if row.get("acknowledge_comment"):
            text += f": “{row['acknowledge_comment']}”"
        parts.append(text)
    if row.get("closed_at") is not None:
        text = f"closed · 关闭 {_stamp(row['closed_at'], tz)}"
        if row.get("closed_by"):
            text += f" by {row['closed_by']}"
            if row.get("close_comment"):
                text += f": “{row['close_comment']}”"
        else:
            text += " (condition cleared · 条件解除)"
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
        raise ValueError("the start must be before the end · 开始时间须早于结束时间")
    return start, end


def parameter_text(code: str) -> str:
    """``PM2.5 细颗粒物 (ug/m3)`` for ``pm25``; the code itself for an unknown one."""
    try:
        p = lookup(code)
    except (SensorsError, KeyError, ValueError):
        return code
    return f"{p.name_en} {p.name_zh} ({p.unit})"


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
        return False, f"{decision.reason} · 无权操作"
    with who.store.connection() as conn:
        try:
            station = alert_store.alert_station(conn, alert_id)
        except alert_store.AlertNotFound as exc:
            _audit(who, audit_action, audit_object, "failed", {"error": str(exc)})
            return False, str(exc)
    if station and station not in who.stations:  # beyond the caller's grade, as the API's 403
        reason = f"station {station} is beyond {who.principal.actor}'s grade"
        _audit(who, audit_action, audit_object, "denied", {"reason": reason})
        return False, f"{reason} · 无权操作"
    try:
        with who.store.connection() as conn:
            if action == "acknowledge":
                row = alert_store.acknowledge(conn, alert_id, who.principal.actor, comment)
            else:
                row = alert_store.close(conn, alert_id, who.principal.actor, comment)
    except alert_store.AlertNotFound as exc:
        _audit(who, audit_action, audit_object, "failed", {"error": str(exc)})
        return False, str(exc)
    except ValueError as exc:
        _audit(who, audit_action, audit_object, "refused", {"error": str(exc)})
        return False, str(exc)
    details = {"station": row["station"], "rule": row["rule"], "comment": comment.strip()}
    _audit(who, audit_action, audit_object, "ok", details)
    done = "acknowledged · 已确认" if action == "acknowledge" else "closed · 已关闭"
    return True, f"Alert {alert_id} {done}."


def record_review(
    who: Viewer,
    station: str,
    parameter: str,
    start: datetime,
    end: datetime,
    action: str,
    reason: str,
) -> tuple[bool, str]:
    """Invalidate or restore ``parameter`` of ``station`` over ``[start, end)`` as ``who``,
    with ``reason``, audited as ``POST /api/v1/reviews`` is; return whether it was recorded
    and a message for the page."""
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
        return False, f"{why} · 无权审核"
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
        return False, str(exc)
    _audit(
        who,
        audit_action,
        audit_object,
        "ok",
        {**details, "review": review.id, "affected": affected},
    )
    return True, (
        f"Review {review.id} recorded: {affected} readings {action}d · 已记录，"
        f"涉及 {affected} 条读数。The jobs recompute the periods it touches on their next run."
    )


# --------------------------------------------------------------------------- page parts
def _notice() -> None:
    found = st.session_state.pop(_NOTICE, None)
    if found:
        ok, text = found
        (st.success if ok else st.error)(text)


def alert_actions(who: Viewer, live: Sequence[Mapping[str, Any]], tz: Any) -> None:
    """The duty officer's form under the live alerts: pick one, write a comment, acknowledge
    or close it. Only for those who may (:func:`may_operate_alerts`); others get a line saying
    who may."""
    _notice()
    if not may_operate_alerts(who):
        st.caption(
            "An operator signed in acknowledges and closes alerts here. · 值班员（operator）登录后"
            "可在此确认、关闭告警。"
        )
        return
    if not live:
        return
    rows = {int(r["id"]): r for r in live if not r["station"] or r["station"] in who.stations}
    if not rows:
        return
    st.subheader("Acknowledge or close · 确认或关闭")
    with st.form("duty_alert", clear_on_submit=True):
        alert_id = st.selectbox(
            "Alert · 告警",
            list(rows),
            format_func=lambda i: (
                f"#{i} {rows[i]['state']} · {rows[i]['station']} · {rows[i]['message']}"
                f" · {_stamp(rows[i]['opened_at'], tz)}"
            ),
            key="duty_alert_id",
        )
        comment = st.text_area(
            "Comment · 备注 (needed to close · 关闭时必填)",
            max_chars=alert_store.MAX_COMMENT,
            key="duty_alert_comment",
        )
        left, right = st.columns(2)
        acknowledge = left.form_submit_button("Acknowledge · 确认", type="primary")
        close = right.form_submit_button("Close · 关闭")
    if (acknowledge or close) and alert_id is not None:
        action: AlertAction = "acknowledge" if acknowledge else "close"
        st.session_state[_NOTICE] = act_on_alert(who, int(alert_id), action, comment)
        st.rerun()


def review_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """Manual review (数据审核): the recent reviews (``sensitive``: analyst and up) and, for a
    reviewer, a form to invalidate or restore a station's parameter over a time range with a
    reason."""
    tz = settings.timezone
    st.title("Review · 数据审核")
    if who.refuse("reviews"):
        return
    _notice()
    if may_review(who):
        _review_form(store, who, tz)
    else:
        st.caption(
            "A reviewer signed in records reviews here. · 审核员（reviewer）登录后可在此审核数据。"
        )
    with store.connection() as conn:
        found = reviews.list_reviews(conn, limit=200)
    found = [r for r in found if r.station in who.stations]
    who.shown("reviews", {"items": len(found)})
    who.shown_stations(r.station for r in found)
    st.subheader("Recent reviews · 最近审核")
    if not found:
        st.info("No reviews yet. · 暂无审核记录。")
        return
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "id": r.id,
                    "station · 站点": r.station,
                    "parameter · 参数": parameter_text(r.parameter),
                    "from · 起": _stamp(r.start, tz),
                    "to · 止": _stamp(r.end, tz),
                    "action · 操作": REVIEW_ACTIONS.get(r.action, r.action),
                    "reason · 理由": r.reason,
                    "by · 审核人": r.by,
                    "at · 时间": _stamp(r.at, tz),
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
        st.info("No stations to review. · 暂无可审核的站点。")
        return
    st.subheader("Invalidate or restore · 标记无效或恢复")
    station = st.selectbox("Station · 站点", stations, key="review_station")
    latest = store.latest(station)
    parameters = sorted(set(latest["parameter"])) if not latest.empty else []
    if not parameters:
        st.info("This station has no readings yet. · 该站点暂无数据。")
        return
    now = datetime.now(tz).replace(minute=0, second=0, microsecond=0, tzinfo=None)
    before = now - timedelta(hours=1)
    with st.form("review_form", clear_on_submit=True):
        parameter = st.selectbox(
            "Parameter · 参数", parameters, format_func=parameter_text, key="review_parameter"
        )
        cols = st.columns(4)
        start_day = cols[0].date_input("From day · 开始日期", before.date(), key="review_d0")
        start_time = cols[1].time_input(
            "From · 开始时间", before.time(), step=timedelta(hours=1), key="review_t0"
        )
        end_day = cols[2].date_input("To day · 结束日期", now.date(), key="review_d1")
        end_time = cols[3].time_input(
            "To (not included) · 结束时间（不含）",
            now.time(),
            step=timedelta(hours=1),
            key="review_t1",
        )
        action = st.radio(
            "Action · 操作",
            list(REVIEW_ACTIONS),
            format_func=REVIEW_ACTIONS.__getitem__,
            horizontal=True,
            key="review_action",
        )
        reason = st.text_area("Reason · 理由", max_chars=reviews.MAX_REASON, key="review_reason")
        submitted = st.form_submit_button("Record the review · 提交审核", type="primary")
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
