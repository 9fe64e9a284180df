"""The duty officer's pages (issue 14, item 5): "Duty work happens outside the dashboard:
alerts are acknowledged with curl, … no way to review data in the page" — now acknowledged
and closed with a comment on the Alerts page, and reviewed on the Review page, for the roles
that may (operator, reviewer), audited; the alert life cycle visible. The pages run in
Streamlit's AppTest against the real database, as the dashboard's own role
(``ecosense_reader``), so its grants are proven too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from dashboards.i18n import use
from sensors.alerts import Condition
from sensors.observations import Observation, Source
from sensors.stations import Station
from store import alerts as alert_store
from store import audit
from store import reviews as review_store
from store.postgres import PostgresStore
from tests.integration.test_db_roles import RoleUrl, role_url  # noqa: F401  (a fixture)

pytestmark = pytest.mark.integration


def _page(url: str, role: str, page: str) -> None:
    """The Alerts or Review page rendered for user ``u`` with ``role`` (an AppTest script:
    imports inside)."""
    from pathlib import Path
    from zoneinfo import ZoneInfo

    import access
    from dashboards import duty, quality
    from dashboards.session import Viewer, readable_stations
    from dashboards.settings import DashboardSettings
    from store.postgres import PostgresStore

    store = PostgresStore(url)
    principal = access.user(role, access.Role.parse(role))
    graded = readable_stations(store, principal)
    settings = DashboardSettings(url, Path("."), ZoneInfo("Asia/Shanghai"), None)
    render = quality.alerts_page if page == "alerts" else duty.review_page
    render(store, settings, Viewer(principal, store, page, "127.0.0.1", graded))


def _alert(store: PostgresStore, database_url: str) -> int:
    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    with psycopg.connect(database_url, autocommit=True) as conn:
        alert_store.sync(conn, [Condition("offline", "S1", "", "warning", "no data", 45.0)])
        return int(alert_store.list_alerts(conn, "live")[0]["id"])


def _button(at: object, label: str) -> object:
    found = [b for b in at.button if b.label == label]  # type: ignore[attr-defined]
    assert len(found) == 1, [b.label for b in at.button]  # type: ignore[attr-defined]
    return found[0]


def test_an_operator_acknowledges_and_closes_with_a_comment_a_viewer_sees_no_buttons(
    store: PostgresStore,
    database_url: str,
    role_url: RoleUrl,  # noqa: F811  (the fixture)
) -> None:
    """ "alerts are acknowledged with curl": on the Alerts page an operator acknowledges with a
    comment and closes with one, both audited; a viewer sees the alert, no form."""
    from streamlit.testing.v1 import AppTest

    alert_id = _alert(store, database_url)
    reader = role_url("reader")

    viewer = AppTest.from_function(_page, args=(reader, "viewer", "alerts"), default_timeout=60)
    viewer.run()
    assert not viewer.exception
    assert len(viewer.button) == 0 and len(viewer.text_area) == 0
    assert "no data" in viewer.dataframe[0].value.to_string()

    at = AppTest.from_function(_page, args=(reader, "operator", "alerts"), default_timeout=60)
    at.run()
    assert not at.exception
    at.text_area(key="duty_alert_comment").input("on it: calling the site")
    _button(at, "确认").click().run()  # type: ignore[attr-defined]  (中文, the default)
    assert not at.exception
    assert any("已确认" in s.value for s in at.success)
    with store.connection() as conn:
        row = alert_store.list_alerts(conn, "live")[0]
        assert row["state"] == "acknowledged" and row["acknowledged_by"] == "operator"
        assert row["acknowledge_comment"] == "on it: calling the site"
        entries = audit.read(conn, action="alert.acknowledge")
    assert [(e.actor, e.object, e.outcome) for e in entries] == [
        ("operator", f"alert:{alert_id}", "ok")
    ]
    assert entries[0].details is not None
    assert entries[0].details["comment"] == "on it: calling the site"
    assert entries[0].details["via"] == "dashboard"
    life = at.dataframe[0].value["处理过程"].iloc[0]
    assert "（operator）：“on it: calling the site”" in life

    # closing needs a comment: refused (and audited) without one
    _button(at, "关闭").click().run()  # type: ignore[attr-defined]
    assert any("关闭告警须填写备注" in e.value for e in at.error)
    at.text_area(key="duty_alert_comment").input("site power restored")
    _button(at, "关闭").click().run()  # type: ignore[attr-defined]
    assert not at.exception
    with store.connection() as conn:
        assert alert_store.list_alerts(conn, "live") == []
        closed = alert_store.list_alerts(conn, "closed")[0]
        outcomes = [e.outcome for e in audit.read(conn, action="alert.close")]
        events = [e["event"] for e in alert_store.list_notifications(conn, "pending", limit=10)]
    assert closed["closed_by"] == "operator" and closed["close_comment"] == "site power restored"
    assert outcomes == ["ok", "refused"]  # newest first
    assert sorted(events) == ["acknowledged", "closed", "opened"]
    life = " ".join(at.dataframe[-1].value["处理过程"])
    assert "确认 " in life and "关闭 " in life
    assert "（operator）：“site power restored”" in life
    assert len(at.button) == 0  # nothing live is left to act on


def test_acting_without_the_role_or_beyond_the_grade_is_denied_and_audited(
    store: PostgresStore, database_url: str
) -> None:
    """The page's form is not the only guard: the action itself asks access.authorize (a
    viewer may not operate; an operator may not touch a restricted station's alert)."""
    import access
    from dashboards import duty
    from dashboards.session import Viewer
    from store import users

    alert_id = _alert(store, database_url)
    viewer = Viewer(access.user("v", access.Role.VIEWER), store, "alerts", "127.0.0.1")
    with use("en"):
        done, message = duty.act_on_alert(viewer, alert_id, "acknowledge", "x")
    assert not done and "operator" in message
    with store.connection() as conn:
        users.set_station_grade(conn, "S1", access.Grade.RESTRICTED)
    operator = Viewer(access.user("op", access.Role.OPERATOR), store, "alerts", "127.0.0.1")
    done, message = duty.act_on_alert(operator, alert_id, "close", "done")  # S1 not readable
    assert not done and "超出您的数据权限" in message  # 中文, the default
    with store.connection() as conn:
        assert alert_store.list_alerts(conn, "live")[0]["state"] == "open"
        entries = audit.read(conn, action="alert.close") + audit.read(
            conn, action="alert.acknowledge"
        )
    assert sorted((e.actor, e.outcome) for e in entries) == [("op", "denied"), ("v", "denied")]


def test_a_reviewer_invalidates_a_range_in_the_page_and_an_analyst_only_reads(
    store: PostgresStore,
    database_url: str,
    role_url: RoleUrl,  # noqa: F811  (the fixture)
) -> None:
    """ "no way to review data in the page": a reviewer invalidates an hour of PM2.5 with a
    reason on the Review page (store.reviews, audited as the API does); an analyst sees the
    reviews and no form; a viewer is refused the page."""
    from streamlit.testing.v1 import AppTest

    store.upsert_stations([Station("S1", "One", "air", 116.4, 39.9)])
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    store.write_observations(
        [Observation("S1", "pm25", now - timedelta(minutes=30), 35.0)],
        source=Source("http", "test-device"),
    )
    reader = role_url("reader")
    at = AppTest.from_function(_page, args=(reader, "reviewer", "review"), default_timeout=60)
    at.run()
    assert not at.exception
    at.text_area(key="review_reason").input("faulty device: stuck pump")
    _button(at, "提交审核").click().run()  # type: ignore[attr-defined]
    assert not at.exception
    assert any("涉及 1 条读数" in s.value for s in at.success)
    with store.connection() as conn:
        found = review_store.list_reviews(conn)
        entries = audit.read(conn, action="review.invalidate")
    assert [(r.station, r.parameter, r.action, r.by) for r in found] == [
        ("S1", "pm25", "invalidate", "reviewer")
    ]
    assert found[0].end - found[0].start == timedelta(hours=1)
    assert [(e.actor, e.object, e.outcome) for e in entries] == [("reviewer", "station:S1", "ok")]
    assert entries[0].details is not None and entries[0].details["affected"] == 1
    assert "faulty device: stuck pump" in at.dataframe[0].value.to_string()
    # a range without readings is recorded with a warning, not a success (a trial finding)
    for key in ("review_d0", "review_d1"):
        day = at.date_input(key=key).value
        at.date_input(key=key).set_value(day - timedelta(days=2))
    at.text_area(key="review_reason").input("maintenance")
    _button(at, "提交审核").click().run()  # type: ignore[attr-defined]
    assert not at.exception and not at.success
    assert any("没有 S1 的 pm25 读数" in w.value for w in at.warning), at.warning

    analyst = AppTest.from_function(_page, args=(reader, "analyst", "review"), default_timeout=60)
    analyst.run()
    assert not analyst.exception and len(analyst.button) == 0
    assert "stuck pump" in analyst.dataframe[0].value.to_string()
    viewer = AppTest.from_function(_page, args=(reader, "viewer", "review"), default_timeout=60)
    viewer.run()
    assert len(viewer.button) == 0 and len(viewer.dataframe) == 0
