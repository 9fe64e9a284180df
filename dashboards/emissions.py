"""The carbon page: emissions by sector, region and time against the regional targets, and a
facility's CEMS-measured against calculated CO₂. It only reads what the ``carbon-inventory``
and ``hourly`` jobs stored."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from carbon.errors import CarbonError
from carbon.targets import track_region
from dashboards.i18n import tr
from dashboards.session import Viewer, data_table, described
from dashboards.settings import DashboardSettings
from dashboards.views import (
    annual_by_part,
    dashes,
    emission_table,
    emissions_by,
    left_out_of,
    region_label,
    sector_label,
    station_label,
    target_chart,
    time_chart,
)
from pipelines.carbon import DIFFERENCE, WITHOUT_CALCULATION, cems_check
from store import activity, derived
from store.activity import stacks
from store.postgres import PostgresStore

GASES = ("CO2e", "CO2", "CH4", "N2O")
#: region levels → (English, Chinese) name
LEVELS = {"province": ("province", "省级"), "city": ("city", "市级"), "county": ("county", "县级")}


def _level_name(level: str) -> str:
    en, zh = LEVELS[level]
    return tr(en, zh)


def _chart_table(frame: pd.DataFrame, index: str, fmt: str) -> pd.DataFrame:
    """A chart's numbers (index: times) as a table: the times as ``fmt`` text first."""
    out = frame.copy()
    out.index = [pd.Timestamp(t).strftime(fmt) for t in out.index]
    return out.round(1).rename_axis(index).reset_index()


def carbon_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """Emissions by sector, region and time; the targets; CEMS against calculation. Facility
    emissions are ``sensitive``: anonymous visitors are asked to sign in; a CEMS stack is
    compared only when ``who`` may read its station."""
    tz = settings.timezone
    st.title(tr("Carbon emissions", "碳排放"))
    if who.refuse("facility-emissions"):
        return
    now = datetime.now(UTC)
    with store.connection() as conn:
        rows = derived.read_emissions(
            conn, source="calculation", start=datetime(1990, 1, 1, tzinfo=UTC), end=now
        )
        targets = activity.load_targets(conn)
        year_ago = now - timedelta(days=365)
        check = cems_check(conn, year_ago, now)
        linked = {
            f: [s for s in stations if s in who.stations] for f, stations in stacks(conn).items()
        }
        plants = {f.id: f.name for f in activity.load_facilities(conn)}
    station_names = {s.id: s.name for s in store.list_stations()}
    linked = {f: stations for f, stations in linked.items() if stations}
    if not check.empty:  # the comparison is derived from the stacks' readings
        check = check[check["facility"].isin(linked)]
    table = emission_table(rows, tz)
    if table.empty:
        st.info(
            tr(
                "No emissions yet: store facilities and activity records with `ecosense carbon "
                "import`; the scheduler in `ecosense up` (or `ecosense jobs run "
                "carbon-inventory`) accounts them.",
                "暂无排放：用 `ecosense carbon import` 导入排放单位和活动数据；`ecosense up` 的"
                "调度器（或 `ecosense jobs run carbon-inventory`）会核算排放。",
            )
        )
        return
    who.shown("facility-emissions", {"facilities": int(table["facility"].nunique())})
    who.shown_stations(s for stations in linked.values() for s in stations)
    c1, c2 = st.columns(2)
    gas = c1.radio(tr("Gas", "气体"), GASES, horizontal=True, key="carbon_gas")
    level = c2.radio(
        tr("Regions", "区域级别"),
        list(LEVELS),
        horizontal=True,
        key="carbon_level",
        format_func=_level_name,
    )
    of_gas = table[table["gas"] == gas]
    monthly = of_gas[of_gas["period"] == "P1M"]
    annual = of_gas[of_gas["period"] == "P1Y"]
    unit = "t CO2e" if gas == "CO2e" else f"t {gas}"
    latest = annual["start"].max()
    cols = st.columns(3)
    so_far = latest.year == now.astimezone(tz).year
    cols[0].metric(
        tr(
            f"{latest.year}{' to date' if so_far else ''} emissions ({unit})",
            f"{latest.year} 年{'截至目前' if so_far else '度'}排放 ({unit})",
        ),
        f"{annual[annual['start'] == latest]['tonnes'].sum():,.0f}",
    )
    cols[1].metric(tr("Facilities", "排放单位"), of_gas["facility"].nunique())
    cols[2].metric(tr("CEMS findings", "监测核算差异"), int(check["finding"].sum()))

    st.subheader(tr("By sector, per month", "分行业月度排放"))
    by_sector = emissions_by(monthly, "sector")
    by_sector.index = pd.DatetimeIndex(by_sector.index).tz_localize(None)
    by_sector.columns = [sector_label(str(c)) for c in by_sector.columns]  # names, not codes
    month = tr("month", "月份")
    what = tr(f"Monthly emissions by sector ({unit})", f"分行业月度排放 ({unit})")
    st.altair_chart(
        time_chart(by_sector, y_label=unit, x_label=f"{month} ({tz.key})", mark="bar", fmt="%Y-%m"),
        width="stretch",
        alt=described(what),
    )
    data_table(_chart_table(by_sector, month, "%Y-%m"), what, key="carbon_sector_table")
    st.subheader(
        tr(f"By {_level_name(level)}, per year", f"分区域（{_level_name(level)}）年度排放")
    )
    by_region = emissions_by(annual, "region", level)
    by_region.index = [t.year for t in by_region.index]
    by_region.columns = [region_label(str(c)) for c in by_region.columns]
    st.dataframe(by_region.round(1).rename_axis(tr("year", "年份")), width="stretch")
    left_out = left_out_of(annual, level)
    if not left_out.empty:
        st.caption(
            tr(
                f"Not in any {_level_name(level)} region (their region is coarser): ",
                f"未计入任何{_level_name(level)}区域（所在区域层级较粗）：",
            )
            + ", ".join(f"{f} ({t:,.1f} {unit})" for f, t in left_out.items())
        )

    st.subheader(tr("Against the targets", "达峰与中和目标"))
    if not targets:
        st.info(
            tr(
                "No regional targets: add them with `ecosense carbon import --targets FILE`.",
                "暂无区域目标：用 `ecosense carbon import --targets FILE` 添加。",
            )
        )
    all_gases = table[table["gas"] == "CO2e"]
    for target in targets:
        by_part = annual_by_part(all_gases, target.region)
        if not by_part.empty:  # complete years only
            by_part = by_part[by_part.index < now.astimezone(tz).year]
        try:
            tracking = track_region(by_part, target)
        except CarbonError as exc:  # the message names the region (once)
            st.warning(
                tr(
                    f"**{region_label(target.region)}** · {exc}",
                    f"**{region_label(target.region)}**：覆盖全区域的连续年份数据不足"
                    "（至少 2 年），无法评估达峰与中和目标。",
                )
            )
            continue
        st.markdown(
            tr(
                f"**{region_label(target.region)}** ({target.region}) — peak by"
                f" {target.peak_year}, neutrality by {target.neutral_year} ({tracking.method};"
                " years whose data cover the whole region)",
                f"**{region_label(target.region)}**（{target.region}）— {target.peak_year} 年前"
                f"达峰，{target.neutral_year} 年前碳中和（{_method(tracking.method)}；仅用数据"
                "覆盖全区域的年份）",
            )
        )
        m = st.columns(3)
        m[0].metric(
            tr("Projected peak", "预计达峰"),
            tracking.projected_peak_year,
            tr("on track", "按期") if tracking.peak_on_track else tr("late", "滞后"),
            delta_color="normal" if tracking.peak_on_track else "inverse",
        )
        m[1].metric(
            tr("Trend (t CO2e/yr)", "趋势 (t CO2e/年)"), f"{tracking.slope_t_per_year:,.0f}"
        )
        m[2].metric(
            tr(
                f"Gap in {target.neutral_year} (t CO2e)",
                f"{target.neutral_year} 年中和缺口 (t CO2e)",
            ),
            f"{tracking.neutrality_gap_t:,.0f}",
        )
        chart = target_chart(tracking.history, tracking.projection, tracking.required)
        chart.index = pd.to_datetime(chart.index.astype(str), format="%Y")  # a time axis
        what = tr(
            f"{region_label(target.region)}: emissions against the target path (t CO2e)",
            f"{region_label(target.region)}：排放与目标路径 (t CO2e)",
        )
        st.altair_chart(
            time_chart(chart, y_label="t CO2e", x_label=tr("year", "年份"), fmt="%Y"),
            width="stretch",
            alt=described(what),
        )
        data_table(
            _chart_table(chart, tr("year", "年份"), "%Y"),
            what,
            key=f"carbon_target_{target.region}",
        )

    st.subheader(tr("CEMS against calculation", "在线监测与核算对比"))
    if not linked:
        st.info(
            tr(
                "No CEMS stack is linked to a facility: give the stack's station the attribute "
                "`facility` (its facility id).",
                "暂无与排放单位关联的 CEMS 排放口：为排放口站点设置属性 `facility`"
                "（排放单位编号）。",
            )
        )
        return
    if not check.empty:
        st.dataframe(
            dashes(cems_table(check, plants, station_names), precision=2),
            hide_index=True,
            width="stretch",
        )
    facility = st.selectbox(
        tr("Facility", "排放单位"),
        list(linked),
        key="carbon_facility",
        format_func=lambda f: station_label(f, plants),
    )
    plant = station_label(facility, plants)
    stations = linked[facility]
    with store.connection() as conn:
        measured = pd.concat(
            derived.read_emissions(conn, source="cems", start=year_ago, end=now, subject=s)
            for s in stations
        )
    measured = measured[(measured["period"] == "PT1H") & (measured["gas"] == "CO2")]
    calc = table[
        (table["facility"] == facility) & (table["gas"] == "CO2") & (table["period"] == "P1M")
    ]
    calc = calc[calc["start"] >= year_ago]
    scope1 = rows[
        (rows["subject"] == facility) & (rows["gas"] == "CO2") & (rows["period"] == "P1M")
    ]
    by_month = {
        pd.Timestamp(s).tz_convert(tz): float(d.get("scope", {}).get("1", 0.0))
        for s, d in zip(scope1["start"], scope1["details"], strict=True)
    }
    frame = pd.DataFrame(
        {
            tr("CEMS measured", "CEMS 实测"): measured.groupby(
                pd.DatetimeIndex(measured["start"]).tz_convert(tz).tz_localize(None).to_period("M")
            )["tonnes"].sum(),
            tr("calculated (scope 1)", "核算（范围一）"): pd.Series(
                {
                    pd.Timestamp(t).tz_localize(None).to_period("M"): v
                    for t, v in by_month.items()
                    if t >= year_ago
                }
            ),
        }
    )
    if frame.dropna(how="all").empty or calc.empty:
        st.info(
            tr(
                f"{plant}: no CEMS hours or calculated months in the last 12 months.",
                f"{plant}：最近 12 个月内没有 CEMS 小时数据或核算月份。",
            )
        )
        return
    frame.index = pd.PeriodIndex(frame.index).to_timestamp()
    what = tr(
        f"{plant}: CEMS-measured against calculated CO2 per month (t)",
        f"{plant}：CEMS 实测与核算的月度 CO2 (t)",
    )
    st.altair_chart(
        time_chart(
            frame,
            y_label="t CO2",
            x_label=f"{month} ({tz.key})",
            mark="bar",
            fmt="%Y-%m",
            stack=False,
        ),
        width="stretch",
        alt=described(what),
    )
    data_table(dashes(_chart_table(frame, month, "%Y-%m")), what, key="carbon_cems_table")


def cems_table(
    check: pd.DataFrame, plants: Mapping[str, str], station_names: Mapping[str, str]
) -> pd.DataFrame:
    """The CEMS check (:func:`pipelines.carbon.cems_check`) as the page shows it: plants and
    stacks by name (their ids beside them), the difference and its threshold both in %
    (18.62 against 5), the reasons in words, the headings in the page's language."""
    stacks_shown = [
        ", ".join(station_label(s.strip(), station_names) for s in str(ids).split(",") if s)
        for ids in check["stations"]
    ]
    return check.assign(
        facility=[station_label(f, plants) for f in check["facility"]],
        stations=stacks_shown,
        relative_difference=(100 * check["relative_difference"].astype(float)).round(2),
        threshold=(100 * check["threshold"].astype(float)).round(2),
        reason=check["reason"].map(_reason),
    ).rename(columns=lambda c: _check_heading(str(c)))


#: the CEMS check's columns (:func:`pipelines.carbon.cems_check`) → (English, Chinese) heading
_CHECK_HEADINGS = {
    "facility": ("facility", "排放单位"),
    "stations": ("stacks", "排放口"),
    "measured_t": ("CEMS measured (t CO2)", "CEMS 实测 (t CO2)"),
    "substituted_hours": ("substituted hours", "替代小时数"),
    "calculated_t": ("calculated (t CO2)", "核算 (t CO2)"),
    "relative_difference": ("difference %", "差异 %"),
    "finding": ("finding", "存在差异"),
    "threshold": ("threshold %", "阈值 %"),
    "reason": ("reason", "原因"),
    "compared_hours": ("compared hours", "比对小时数"),
}
#: the CEMS check's reasons (:data:`pipelines.carbon.DIFFERENCE`, …) → (English, Chinese)
_REASONS = {
    DIFFERENCE: (DIFFERENCE, "差异超过阈值"),
    WITHOUT_CALCULATION: (WITHOUT_CALCULATION, "有 CEMS 实测但无核算"),
}


def _reason(text: str) -> str:
    en, zh = _REASONS.get(text, (text, text))
    return tr(en, zh)


def _method(text: str) -> str:
    """The projection method (:data:`carbon.targets.PROJECTION_METHOD`) in Chinese."""
    found = re.fullmatch(r"least-squares linear trend of the last (\d+) years", text)
    return f"最近 {found.group(1)} 年的最小二乘线性趋势" if found else text


def _check_heading(column: str) -> str:
    en, zh = _CHECK_HEADINGS.get(column, (column, column))
    return tr(en, zh)
