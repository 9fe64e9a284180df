"""The pure parts of the duty officer's pages (issue 14, item 5: "acknowledge and close alerts
(with a comment) … review data (invalidate/restore with a reason) … the alert life cycle
visible"): the life cycle in words, the review range on the bureau's clock, the comment rules
and who sees the forms."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import access
from dashboards import duty
from dashboards.i18n import use
from dashboards.session import Viewer
from store.alerts import MAX_COMMENT, comment_text

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _alert(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "opened_at": datetime(2026, 12, 2, 2, 0, tzinfo=UTC),
        "acknowledged_at": None,
        "acknowledged_by": None,
        "acknowledge_comment": None,
        "closed_at": None,
        "closed_by": None,
        "close_comment": None,
    }
    row.update(changes)
    return row


def test_the_life_cycle_names_who_acknowledged_and_closed_with_their_comments() -> None:
    acked = _alert(
        acknowledged_at=datetime(2026, 12, 2, 2, 5, tzinfo=UTC),
        acknowledged_by="ops",
        acknowledge_comment="on it",
    )
    closed = {
        **acked,
        "closed_at": datetime(2026, 12, 2, 2, 30, tzinfo=UTC),
        "closed_by": "ops",
        "close_comment": "sensor cleaned",
    }
    by_jobs = _alert(closed_at=datetime(2026, 12, 2, 3, 0, tzinfo=UTC))
    with use("en"):
        assert duty.lifecycle(_alert(), SHANGHAI) == "opened 2026-12-02 10:00"
        assert (
            duty.lifecycle(acked, SHANGHAI)
            == "opened 2026-12-02 10:00 → acknowledged 2026-12-02 10:05 by ops: “on it”"
        )
        assert duty.lifecycle(closed, SHANGHAI).endswith(
            "→ closed 2026-12-02 10:30 by ops: “sensor cleaned”"
        )
        assert duty.lifecycle(by_jobs, SHANGHAI).endswith("(condition cleared)")
    with use("zh"):  # 中文: one language at a time
        assert (
            duty.lifecycle(acked, SHANGHAI)
            == "开启 2026-12-02 10:00 → 确认 2026-12-02 10:05（ops）：“on it”"
        )
        assert duty.lifecycle(by_jobs, SHANGHAI).endswith("关闭 2026-12-02 11:00（条件解除）")


def test_a_review_range_is_read_on_the_bureaus_clock() -> None:
    start, end = duty.local_range(date(2026, 12, 2), time(9), date(2026, 12, 2), time(11), SHANGHAI)
    assert start == datetime(2026, 12, 2, 1, tzinfo=UTC)
    assert end == datetime(2026, 12, 2, 3, tzinfo=UTC)
    with use("en"), pytest.raises(ValueError, match="before"):
        duty.local_range(date(2026, 12, 2), time(11), date(2026, 12, 2), time(11), SHANGHAI)


def test_comments_are_stripped_checked_and_needed_to_close() -> None:
    assert comment_text("  on it ") == "on it"
    assert comment_text("   ") is None and comment_text(None) is None
    with pytest.raises(ValueError, match="needed"):
        comment_text(" ", required=True)
    with pytest.raises(ValueError, match="longer"):
        comment_text("x" * (MAX_COMMENT + 1))
    with pytest.raises(ValueError, match="NUL"):
        comment_text("a\x00b")


@pytest.mark.parametrize(
    ("role", "operate", "review"),
    [
        (None, False, False),
        (access.Role.VIEWER, False, False),
        (access.Role.ANALYST, False, False),
        (access.Role.REVIEWER, False, True),
        (access.Role.OPERATOR, True, True),
        (access.Role.ADMIN, True, True),
    ],
)
def test_the_forms_follow_the_role(role: access.Role | None, operate: bool, review: bool) -> None:
    principal = access.ANONYMOUS if role is None else access.user("u", role)
    who = Viewer(principal, None, "alerts", "127.0.0.1")  # type: ignore[arg-type]
    assert duty.may_operate_alerts(who) is operate
    assert duty.may_review(who) is review


def test_parameter_text_names_known_parameters_and_keeps_unknown_codes() -> None:
    with use("en"):
        assert duty.parameter_text("pm25") == "PM2.5 (µg/m³)"
    with use("zh"):
        assert duty.parameter_text("pm25") == "细颗粒物 PM2.5 (µg/m³)"
    assert duty.parameter_text("no-such-code") == "no-such-code"


def test_the_stores_refusals_read_in_the_pages_language() -> None:
    with use("zh"):
        assert duty.refusal("a comment is needed") == "关闭告警须填写备注"
        assert duty.refusal("alert 7 is closed") == "告警 7 已关闭"
        assert duty.refusal("comment longer than 2000 characters") == "备注超过 2000 个字符"
        assert duty.refusal("something new").startswith("操作被拒绝")
    with use("en"):
        assert duty.refusal("alert 7 is closed") == "alert 7 is closed"


def _full_alert() -> dict[str, Any]:
    return _alert(
        id=7,
        state="open",
        severity="warning",
        rule="exceedance",
        station="SIM-ZHENGZHOU",
        parameter="o3_1h",
        value=128.1,
        details={"limit": 120.0, "multiple": 0.0675, "start": "2026-12-02T01:00:00+00:00"},
        message="o3 1h mean 128.1 above the GB 3095-2026 limit 120 (7 % over the limit)",
        last_seen=datetime(2026, 12, 2, 3, 0, tzinfo=UTC),
    )


def test_every_heading_of_the_alerts_table_is_in_the_pages_language() -> None:
    """New-user trial of issue 14: the Alerts table had an English ``id`` heading on the
    Chinese page."""
    import re

    with use("zh"):
        headings = list(duty.alert_table([_full_alert()], SHANGHAI).columns)
    assert headings[0] == "编号"
    assert not [h for h in headings if re.search(r"[A-Za-z]", h)], headings
    with use("en"):
        assert duty.alert_table([_full_alert()], SHANGHAI).columns[0] == "id"
