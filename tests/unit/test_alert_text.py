"""Alert messages in both languages (issue 14: "alert messages are English only"; item 7:
"… parameter name and alert message in both").

Each rule's condition carries the English ``message`` it always had; the same fields compose
the Chinese one (:func:`sensors.alert_text.describe`), as the API, the webhook
(``message_zh``) and the dashboard in Chinese show it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from sensors.alert_text import describe, message_zh
from sensors.alerts import Condition, State, evaluate

NOW = datetime(2026, 11, 28, 10, 20, tzinfo=UTC)
HOUR = timedelta(hours=1)
CJK = re.compile(r"[\u4e00-\u9fff]")
LAST = pd.Timestamp(NOW).floor("h") - HOUR


def _every_rule() -> list[Condition]:
    """One condition of each of the seven rules."""
    hourly = pd.DataFrame(
        {
            "subject": ["S1", "S1", "S1", "N1"],
            "parameter": ["so2", "so2", "so2", "laeq"],
            "start": [LAST - HOUR * 2, LAST - HOUR, LAST, LAST],
            "value": [600.0, 610.0, 620.0, 58.26],
            "valid": True,
        }
    )
    aqi = pd.DataFrame(
        {"subject": ["S1"], "start": [NOW - HOUR], "value": [215], "level": [5], "label": ["pm25"]}
    )
    state = State(
        now=NOW,
        stations={
            "S1": ("air", {}),
            "R1": ("radiation", {"background": [60, 120]}),
            "N1": ("noise", {"noise_zone": "1"}),
        },
        hourly=hourly,
        daily=pd.DataFrame(columns=["subject", "parameter", "start", "value", "valid"]),
        aqi=aqi,
        last_seen={"S1": NOW - timedelta(minutes=45)},
        flatlined=pd.DataFrame(
            {"station": ["S1"], "parameter": ["no2"], "since": [pd.Timestamp(NOW - HOUR)]}
        ),
        gamma=pd.DataFrame({"station": ["R1"], "time": [NOW], "value": [150.0]}),
    )
    return evaluate(state)


def test_the_english_message_keeps_its_wording() -> None:
    """The API's and the webhook's ``message`` keep their wording; times are shown in the
    bureau's time (China Standard Time), pollutants by name."""
    found = {c.rule: c.message for c in _every_rule()}
    assert set(found) == {
        "exceedance", "sustained", "aqi", "offline", "flatline", "gamma", "noise",
    }  # fmt: skip
    assert found["exceedance"] == (
        "so2 1h mean 620 above the GB 3095-2026 limit 500 (24 % over the limit)"
    )
    assert found["sustained"] == "so2 above 500 (1h limit) for 3 hours"
    assert found["aqi"].startswith("hourly AQI 215 (level 5) at 2026-11-28 17:20 CST")
    assert found["offline"].startswith("no data for 45 minutes (last 2026-11-28 17:35 CST")
    assert found["flatline"].startswith("no2: the same value repeated (stuck sensor?) since")
    assert found["gamma"] == "gamma dose rate 150 nGy/h above the background range 60–120"
    assert found["noise"] == (
        "day-time LAeq 58.3 dB(A) above the GB 3096-2008 zone 1 limit 55"
        " (by 3.3 dB, 2026-11-28 17:00 CST)"
    )


def test_every_rule_has_a_chinese_message_from_its_fields() -> None:
    for c in _every_rule():
        zh = describe(c.rule, c.parameter, c.value, c.details, "zh")
        assert zh is not None and CJK.search(zh), c
        assert not re.search(r"[A-Za-z]{4,}", zh.replace("GB", "")), zh  # no English words
        assert describe(c.rule, c.parameter, c.value, c.details, "en") == c.message
    by_rule = {c.rule: c for c in _every_rule()}
    exceed = by_rule["exceedance"]
    assert describe(exceed.rule, exceed.parameter, exceed.value, exceed.details, "zh") == (
        "二氧化硫 1小时平均浓度 620 超过 GB 3095-2026 限值 500（超标 24%）"
    )
    aqi = by_rule["aqi"]
    assert "重度污染" in (describe(aqi.rule, aqi.parameter, aqi.value, aqi.details, "zh") or "")


def test_a_stored_alert_without_enough_fields_keeps_its_message() -> None:
    row: dict[str, Any] = {"rule": "custom", "parameter": "", "value": None, "details": {}}
    assert message_zh({**row, "message": "something odd"}) == "something odd"
    assert describe("aqi", "", 215.0, {"level": 5}, "zh") is None  # no start: not guessed


def test_a_daily_alert_names_the_bureaus_day_and_the_pollutant() -> None:
    """New-user trial of issue 14: "daily AQI 212 (level 5) at 2026-12-01T16:00:00+00:00;
    primary: pm25_24h" — the day is 2 December in Beijing, and the pollutant a code."""
    details = {"level": 5, "start": "2026-12-01T16:00:00+00:00", "primary": "pm25_24h,pm10_24h"}
    en = describe("aqi", "P1D", 212.0, {**details, "report": "daily"}, "en")
    assert en == "daily AQI 212 (level 5) on 2026-12-02; primary: PM2.5 (24 h), PM10 (24 h)"
    zh = describe("aqi", "P1D", 212.0, {**details, "report": "daily"}, "zh") or ""
    assert "时段 2026-12-02；" in zh and "细颗粒物（24小时）、可吸入颗粒物（24小时）" in zh


def test_the_exceedance_is_a_percentage_over_the_limit() -> None:
    """New-user trial of issue 14: "(0.07× over)" for 128.1 against a limit of 120 reads as
    "seven hundredths times": say "7 % over the limit" / "超标 7%"."""
    details = {
        "limit": 120.0,
        "multiple": (128.1 - 120) / 120,
        "start": "2026-12-01T00:00:00+00:00",
    }
    en = describe("exceedance", "o3_1h", 128.1, details, "en")
    zh = describe("exceedance", "o3_1h", 128.1, details, "zh")
    assert en == "o3 1h mean 128.1 above the GB 3095-2026 limit 120 (7 % over the limit)"
    assert zh is not None and zh.endswith("限值 120（超标 7%）")
    assert "×" not in en and "倍" not in zh
    triple = {**details, "multiple": 2.0}
    assert "(200 % over the limit)" in (describe("exceedance", "o3_1h", 360.0, triple) or "")
