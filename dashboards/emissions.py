"""The carbon page: emissions by sector, region and time against the regional targets, and a
facility's CEMS-measured against calculated CO₂. It only reads what the ``carbon-inventory``
and ``hourly`` jobs stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from carbon.errors import CarbonError
from carbon.targets import track_region
from dashboards.session import Viewer
from dashboards.settings import DashboardSettings
from dashboards.views import (
    annual_by_part,
    emission_table,
    emissions_by,
    left_out_of,
    region_label,
    sector_label,
    target_chart,
    time_chart,
)
from pipelines.carbon import cems_check
from store import activity, derived
from store.activity import stacks
from store.postgres import PostgresStore

GASES = ("CO2e", "CO2", "CH4", "N2O")
LEVELS = ("province", "city", "county")


def carbon_page(store: PostgresStore, settings: DashboardSettings, who: Viewer) -> None:
    """Emissions by sector, region and time; the targets; CEMS against calculation. Facility
    emissions are ``sensitive``: anonymous visitors are asked to sign in; a CEMS stack is
    compared only when ``who`` may read its station."""
    tz = settings.timezone
    st.title("Carbon · 碳排放")
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
    linked = {f: stations for f, stations in linked.items() if stations}
    if not check.empty:  # the comparison is derived from the stacks' readings
        check = check[check["facility"].isin(linked)]
    table = emission_table(rows, tz)
    if table.empty:
        st.info(
            "No emissions yet: store facilities and activity records with `ecosense carbon "
            "import`; the scheduler in `ecosense up` (or `ecosense jobs run carbon-inventory`) "
            "accounts them."
        )
        return
    who.shown("facility-emissions", {"facilities": int(table["facility"].nunique())})
    who.shown_stations(s for stations in linked.values() for s in stations)
    c1, c2 = st.columns(2)
    gas = c1.radio("Gas · 气体", GASES, horizontal=True, key="carbon_gas")
    level = c2.radio("Regions · 区域级别", LEVELS, horizontal=True, key="carbon_level")
    of_gas = table[table["gas"] == gas]
    monthly = of_gas[of_gas["period"] == "P1M"]
    annual = of_gas[of_gas["period"] == "P1Y"]
    unit = "t CO2e" if gas == "CO2e" else f"t {gas}"
    latest = annual["start"].max()
    cols = st.columns(3)
    so_far = " to date · 截至目前" if latest.year == now.astimezone(tz).year else ""
    cols[0].metric(
        f"{latest.year}{so_far} · 年度排放 ({unit})",
        f"{annual[annual['start'] == latest]['tonnes'].sum():,.0f}",
    )
    cols[1].metric("Facilities · 排放单位", of_gas["facility"].nunique())
    cols[2].metric("CEMS findings · 监测核算差异", int(check["finding"].sum()))

    st.subheader("By sector, per month · 分行业月度排放")
    by_sector = emissions_by(monthly, "sector")
    by_sector.index = pd.DatetimeIndex(by_sector.index).tz_localize(None)
    by_sector.columns = [sector_label(str(c)) for c in by_sector.columns]  # names, not codes
    st.altair_chart(
        time_chart(by_sector, y_label=unit, x_label=f"month ({tz.key})", mark="bar", fmt="%Y-%m"),
        width="stretch",
    )
    st.subheader(f"By {level}, per year · 分区域年度排放")
    by_region = emissions_by(annual, "region", level)
    by_region.index = [t.year for t in by_region.index]
    by_region.columns = [region_label(str(c)) for c in by_region.columns]
    st.dataframe(by_region.round(1), width="stretch")
    left_out = left_out_of(annual, level)
    if not left_out.empty:
        st.caption(
            f"Not in any {level} (their region is coarser) · 区域层级不足: "
            + ", ".join(f"{f} ({t:,.1f} {unit})" for f, t in left_out.items())
        )

    st.subheader("Against the targets · 达峰与中和目标")
    if not targets:
        st.info("No regional targets: add them with `ecosense carbon import --targets FILE`.")
    all_gases = table[table["gas"] == "CO2e"]
    for target in targets:
        by_part = annual_by_part(all_gases, target.region)
        if not by_part.empty:  # complete years only
            by_part = by_part[by_part.index < now.astimezone(tz).year]
        try:
            tracking = track_region(by_part, target)
        except CarbonError as exc:  # the message names the region (once)
            st.warning(f"**{region_label(target.region)}** · {exc}")
            continue
        st.markdown(
            f"**{region_label(target.region)}** ({target.region}) — peak by {target.peak_year},"
            f" neutrality by {target.neutral_year} ({tracking.method}; years whose data cover"
            " the whole region)"
        )
        m = st.columns(3)
        m[0].metric(
            "Projected peak · 预计达峰",
            tracking.projected_peak_year,
            "on track · 按期" if tracking.peak_on_track else "late · 滞后",
            delta_color="normal" if tracking.peak_on_track else "inverse",
        )
        m[1].metric("Trend · 趋势 (t CO2e/yr)", f"{tracking.slope_t_per_year:,.0f}")
        m[2].metric(
            f"Gap in {target.neutral_year} · 中和缺口 (t CO2e)", f"{tracking.neutrality_gap_t:,.0f}"
        )
        chart = target_chart(tracking.history, tracking.projection, tracking.required)
        chart.index = pd.to_datetime(chart.index.astype(str), format="%Y")  # a time axis
        st.altair_chart(
            time_chart(chart, y_label="t CO2e", x_label="year", fmt="%Y"), width="stretch"
        )

    st.subheader("CEMS against calculation · 在线监测与核算对比")
    if not linked:
        st.info(
            "No CEMS stack is linked to a facility: give the stack's station the attribute "
            "`facility` (its facility id)."
        )
        return
    if not check.empty:
        st.dataframe(
            check.assign(relative_difference=(100 * check["relative_difference"]).round(2)),
            hide_index=True,
            width="stretch",
            column_config={"relative_difference": st.column_config.NumberColumn("difference %")},
        )
    facility = st.selectbox("Facility · 排放单位", list(linked), key="carbon_facility")
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
            "CEMS measured": measured.groupby(
                pd.DatetimeIndex(measured["start"]).tz_convert(tz).to_period("M")
            )["tonnes"].sum(),
            "calculated (scope 1)": pd.Series(
                {pd.Timestamp(t).to_period("M"): v for t, v in by_month.items() if t >= year_ago}
            ),
        }
    )
    if frame.dropna(how="all").empty or calc.empty:
        st.info(f"{facility}: no CEMS hours or calculated months in the last 12 months.")
        return
    frame.index = pd.PeriodIndex(frame.index).to_timestamp()
    st.altair_chart(
        time_chart(
            frame,
            y_label="t CO2",
            x_label=f"month ({tz.key})",
            mark="bar",
            fmt="%Y-%m",
            stack=False,
        ),
        width="stretch",
    )
