"""An alert's message in English or Chinese, composed from its structured fields (pure).

Every alert keeps what its rule found — ``rule``, ``parameter``, ``value`` and ``details``
(:class:`sensors.alerts.Condition`) — so its message can be written in either language at
any time, old alerts included, without storing it twice: the English one is the ``message``
the rules store (an exceedance says "7 % over the limit"), the Chinese one is composed for
the API's and the webhook's ``message_zh`` and for the dashboard in Chinese. Units as the
rules use them: concentrations in µg/m³ (CO mg/m³), gamma dose rates in nGy/h, ``offline``
values in minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

Lang = Literal["zh", "en"]

#: the pollutants whose 1-hour limit the ``sustained`` rule checks (else the 24-hour one)
ONE_HOUR_LIMITS: Final = ("so2", "no2", "co", "o3")
_AVERAGING_ZH: Final = {"1h": "1小时", "24h": "24小时"}
_REPORT_ZH: Final = {"hourly": "小时", "daily": "日"}
_STATUS_ZH: Final = {"above": "高于", "below": "低于"}
_PERIOD_ZH: Final = {"day": "昼间", "night": "夜间"}


def _name_zh(code: str) -> str:
    """A parameter's Chinese name (``二氧化硫``); the code when it has none."""
    from sensors.parameters import lookup

    try:
        return lookup(code).name_zh
    except (LookupError, ValueError):
        return code


#: the time zone alert messages show their times in (China Standard Time, the bureau's day)
DISPLAY_TZ: Final = "Asia/Shanghai"


def _local(iso: str, *, day: bool = False) -> str:
    """An ISO 8601 instant of an alert's details in :data:`DISPLAY_TZ`: ``2026-12-02 08:00
    CST``, or the bureau's date ``2026-12-02`` for a daily period (``day``); the text as it
    is when it is not an instant."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    try:
        at = datetime.fromisoformat(iso)
    except ValueError:
        return iso
    if at.tzinfo is None:
        return iso
    local = at.astimezone(ZoneInfo(DISPLAY_TZ))
    return local.strftime("%Y-%m-%d") if day else local.strftime("%Y-%m-%d %H:%M %Z")


def primary_names(codes: str, language: Lang) -> str:
    """AQI primary pollutants (``pm25_24h,pm10_24h``) by name: ``PM2.5 (24 h), PM10 (24 h)``
    / ``细颗粒物（24小时）、可吸入颗粒物（24小时）``; an empty text for none."""
    zh = language == "zh"
    from sensors.parameters import lookup

    names = []
    for code in filter(None, (c.strip() for c in codes.split(","))):
        pollutant, _, averaging = code.rpartition("_")
        if not pollutant:
            pollutant, averaging = code, ""
        try:
            found = lookup(pollutant)
            name = found.name_zh if zh else found.name_en
        except (LookupError, ValueError):
            name = pollutant
        if averaging in ("1h", "24h", "8h"):
            span = averaging.replace("h", "小时" if zh else " h")
            name = f"{name}（{span}）" if zh else f"{name} ({span})"
        names.append(name)
    return ("、" if zh else ", ").join(names)


def percent_over(multiple: float) -> str:
    """An exceedance multiple (``(C − limit) / limit``, :mod:`sensors.standards.gb3095`) as
    a percentage for reading: ``0.0675`` → ``7``, ``2.0`` → ``200``, ``0.004`` → ``0.4``."""
    pct = multiple * 100
    if pct >= 1 or pct <= 0:
        return f"{pct:.0f}"
    return f"{pct:.1g}"


def _category_zh(level: int) -> str:
    from sensors.standards.aqi import CATEGORIES

    found = CATEGORIES.get(level)
    return "" if found is None else found[1]


def describe(
    rule: str,
    parameter: str | None,
    value: float | None,
    details: Mapping[str, Any] | None,
    lang: Lang = "en",
) -> str | None:
    """The message of an alert of ``rule`` in ``lang``; ``None`` when its fields do not say
    enough (an unknown rule, a field missing): then show the stored ``message``."""
    d = dict(details or {})
    p = parameter or ""
    zh = lang == "zh"
    try:
        if rule == "exceedance":
            pollutant, averaging = p.rsplit("_", 1)
            lim, multiple = float(d["limit"]), float(d["multiple"])
            v = float(value)  # type: ignore[arg-type]
            if zh:
                return (
                    f"{_name_zh(pollutant)} {_AVERAGING_ZH.get(averaging, averaging)}平均浓度"
                    f" {v:.4g} 超过 GB 3095-2026 限值 {lim:g}（超标 {percent_over(multiple)}%）"
                )
            return (
                f"{pollutant} {averaging} mean {v:.4g} above the GB 3095-2026"
                f" limit {lim:g} ({percent_over(multiple)} % over the limit)"
            )
        if rule == "sustained":
            span = "1h" if p in ONE_HOUR_LIMITS else "24h"
            lim, n = float(d["limit"]), int(d["hours"])
            if zh:
                return f"{_name_zh(p)} 连续 {n} 小时超过 {lim:g}（{_AVERAGING_ZH[span]}限值）"
            return f"{p} above {lim:g} ({span} limit) for {n} hours"
        if rule == "aqi":
            what = str(d.get("report") or ("daily" if p == "P1D" else "hourly"))
            level, start = int(d["level"]), _local(str(d["start"]), day=what == "daily")
            aqi = int(float(value))  # type: ignore[arg-type]
            primary = primary_names(str(d.get("primary") or ""), "zh" if zh else "en")
            if zh:
                return (
                    f"{_REPORT_ZH.get(what, what)} AQI {aqi}（{level} 级，{_category_zh(level)}），"
                    f"时段 {start}；首要污染物：{primary or '无'}"
                )
            on = "on" if what == "daily" else "at"
            return f"{what} AQI {aqi} (level {level}) {on} {start}; primary: {primary or '-'}"
        if rule == "offline":
            minutes, last = float(value), _local(str(d["last_seen"]))  # type: ignore[arg-type]
            if zh:
                return f"已 {minutes:.0f} 分钟无数据（最后一次 {last}）"
            return f"no data for {minutes:.0f} minutes (last {last})"
        if rule == "flatline":
            since = _local(str(d["since"]))
            if zh:
                return f"{_name_zh(p)}：自 {since} 起数值不变（传感器可能卡滞）"
            return f"{p}: the same value repeated (stuck sensor?) since {since}"
        if rule == "noise":
            v, lim, over = float(value), float(d["limit"]), float(d["exceedance_db"])  # type: ignore[arg-type]
            period, zone, at = str(d["period"]), str(d["zone"]), _local(str(d["start"]))
            if zh:
                what = (
                    "夜间最大声级" if p == "lmax" else f"{_PERIOD_ZH.get(period, period)}等效声级"
                )
                return (
                    f"{what} {v:.1f} dB(A) 超过 GB 3096-2008 {zone} 类区限值 {lim:g}"
                    f"（超 {over:.1f} dB，{at}）"
                )
            what = "night-time Lmax" if p == "lmax" else f"{period}-time LAeq"
            return (
                f"{what} {v:.1f} dB(A) above the GB 3096-2008 zone {zone} limit {lim:g}"
                f" (by {over:.1f} dB, {at})"
            )
        if rule == "gamma":
            low, high = (float(b) for b in d["background"])
            status = str(d["status"])
            v = float(value)  # type: ignore[arg-type]
            if zh:
                return (
                    f"γ 辐射空气吸收剂量率 {v:.4g} nGy/h {_STATUS_ZH.get(status, status)}"
                    f"本底范围 {low:g}–{high:g}"
                )
            return f"gamma dose rate {v:.4g} nGy/h {status} the background range {low:g}–{high:g}"
    except (KeyError, TypeError, ValueError):
        return None
    return None


def message_zh(row: Mapping[str, Any]) -> str:
    """The Chinese message of a stored alert ``row`` (``rule``, ``parameter``, ``value``,
    ``details``, ``message``): composed, else its stored ``message``."""
    found = describe(
        str(row.get("rule", "")), row.get("parameter"), row.get("value"), row.get("details"), "zh"
    )
    return found if found is not None else str(row.get("message") or "")
