"""The report tables (pure, :mod:`reports.tables`) and their rendering, without a database
(issue 14: "the daily report shows CO 0.7973 and NO₂ 34.9661 (published values are rounded as
the standard says)")."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from openpyxl import load_workbook

import access
from reports import render, tables
from sensors.standards import aqi as aqi_std

DAY = date(2026, 11, 30)
START = datetime(2026, 11, 29, 16, tzinfo=UTC)


def _aggregates(values: dict[str, float], counts: dict[str, int] | None = None) -> pd.DataFrame:
    rows = []
    for _, _, parameter, period in tables.AIR_COLUMNS:
        count = (counts or {}).get(parameter, 24)
        rows.append(
            {
                "scope": "station",
                "subject": "S1",
                "parameter": parameter,
                "period": period,
                "start": START,
                "value": values[parameter],
                "count": float(count),
                "valid": count >= 20,
            }
        )
    return pd.DataFrame(rows)


STATIONS = pd.DataFrame([{"id": "S1", "name": "天坛", "city": "Beijing"}])
VALUES = {"so2": 8.5, "no2": 34.9661, "co": 0.7973, "o3": 61.5, "pm10": 90.2, "pm25": 80.4}


def _row(report: tables.Report) -> dict[str, object]:
    table = report.tables[0]
    return dict(zip(table.headers, table.rows[-1], strict=True))


def test_concentrations_are_published_rounded_as_hj633_says() -> None:
    row = _row(tables.daily_report(DAY, STATIONS, _aggregates(VALUES)))
    # §4.2.2, GB/T 8170 round half to even: whole µg/m³, CO to 0.1 mg/m³
    assert row["NO2 (μg/m³)"] == 35 and row["CO (mg/m³)"] == 0.8
    assert row["SO2 (μg/m³)"] == 8 and row["O3-8h (μg/m³)"] == 62  # halves go to even
    expected = aqi_std.aqi(
        {"so2_24h": 8.5, "no2_24h": 34.9661, "co_24h": 0.7973, "o3_8h": 61.5,
         "pm10_24h": 90.2, "pm25_24h": 80.4},
        "daily",
    )  # fmt: skip
    assert row["空气质量指数 AQI"] == expected.aqi and row["类别 Category"] == "轻度污染"
    assert row["PM2.5 分指数 IAQI"] == expected.iaqi["pm25_24h"]
    assert row["有效小时 Valid hours"] == "24/24"


def test_gaps_are_stated_and_an_invalid_daily_mean_is_not_scored() -> None:
    report = tables.daily_report(DAY, STATIONS, _aggregates(VALUES, {"pm25": 18, "no2": 21}))
    row = _row(report)
    assert row["PM2.5 (μg/m³)"] == tables.NA and row["有效小时 Valid hours"] == "18/24"
    assert row["NO2 (μg/m³)"] == 35  # 21 of 24 hours: valid, still stated
    assert (
        "S1 天坛 PM2.5: 18 of 24 hours valid (daily mean invalid: fewer than 20 valid hours)"
        in (report.notes)
    )
    assert "S1 天坛 NO2: 21 of 24 hours valid (daily mean valid)" in report.notes


def test_renderings_carry_the_tables_and_notes() -> None:
    report = tables.daily_report(
        DAY, STATIONS, _aggregates(VALUES, {"pm25": 18}), {"S1": access.Grade.PUBLIC}
    )
    raw = render.to_csv(report)
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert "空气质量指数 AQI" in rows[4] and any("18 of 24 hours valid" in r[0] for r in rows if r)
    ws = load_workbook(io.BytesIO(render.to_xlsx(report))).worksheets[0]
    cells = [c for r in ws.iter_rows(values_only=True) for c in r if c is not None]
    assert "空气质量指数 AQI" in cells and 35 in cells
    with pytest.raises(ValueError, match="unknown report format"):
        render.render(report, "docx")


def test_monthly_water_change_and_exceedances() -> None:
    stations = pd.DataFrame(
        [{"id": "W1", "name": "入口", "water_body": "river", "target_class": 2}]
    )
    means = pd.DataFrame(
        [
            {"subject": "W1", "parameter": "codmn", "value": 5.0, "count": 12.0},
            {"subject": "W1", "parameter": "do", "value": 7.0, "count": 12.0},
        ]
    )
    this = pd.DataFrame([{"subject": "W1", "value": 3}])
    before = pd.DataFrame([{"subject": "W1", "value": 4}])
    report = tables.monthly_report(date(2026, 11, 1), stations, this, before, means, 30)
    row = dict(zip(report.tables[0].headers, report.tables[0].rows[0], strict=True))
    assert row["水质类别 Class"] == "Ⅲ" and row["目标类别 Target class"] == "Ⅱ"
    assert row["变化 Change"] == "好转 better"
    exceeding = str(row["超标项目 Items exceeding the target (times over)"])
    assert exceeding == "高锰酸盐指数 Permanganate index (CODMn) (0.25)"
    # the monthly means by name (the trial saw ``pH值 ph``, ``溶解氧 do``)
    assert report.tables[1].headers == (
        "站点 Station",
        "溶解氧 Dissolved oxygen",
        "高锰酸盐指数 Permanganate index (CODMn)",
    )
    assert "W1 入口: 12 of 30 days with data" in report.notes


def test_monthly_water_means_are_rounded_for_publication() -> None:
    """New-user trial of issue 14: monthly means not rounded (pH 7.979, DO 8.459), and the
    ``pH值`` heading without English."""
    from sensors.standards import water as water_std

    stations = pd.DataFrame(
        [{"id": "W1", "name": "入口", "water_body": "river", "target_class": 3}]
    )
    means = pd.DataFrame(
        [
            {"subject": "W1", "parameter": p, "value": v, "count": 30.0}
            for p, v in (("ph", 7.979), ("do", 8.459), ("nh3n", 0.4567), ("tp", 0.08765))
        ]
    )
    this = pd.DataFrame([{"subject": "W1", "value": 2}])
    report = tables.monthly_report(date(2026, 11, 1), stations, this, this, means, 30)
    table = report.tables[1]
    row = dict(zip(table.headers, table.rows[0], strict=True))
    assert row["pH值 pH"] == 7.98
    assert row["溶解氧 Dissolved oxygen"] == 8.5
    assert [v for k, v in row.items() if k.startswith("氨氮")] == [0.46]
    assert [v for k, v in row.items() if k.startswith("总磷")] == [0.088]
    assert water_std.publish_decimals("hg") == 5 and water_std.publish_decimals("codmn") == 1
    assert water_std.publish("do", 8.45) == 8.4  # GB/T 8170: half to even
    assert any("pH to 0.01" in n for n in report.notes)


def test_a_city_is_named_in_both_languages() -> None:
    """The report prints both languages: ``北京 Beijing``, for its city row and its stations."""
    aggregates = pd.concat(
        [_aggregates(VALUES), _aggregates(VALUES).assign(scope="city", subject="Beijing")]
    )
    table = tables.daily_report(DAY, STATIONS, aggregates).tables[0]
    assert [row[1] for row in table.rows] == ["北京 Beijing", "北京 Beijing"]
    assert table.rows[0][0] == "城市 City"


def test_a_city_row_does_not_repeat_the_city_as_its_station() -> None:
    """New-user trial of issue 14: city rows repeated the city in the "站点 Station" column."""
    aggregates = pd.concat(
        [_aggregates(VALUES), _aggregates(VALUES).assign(scope="city", subject="Beijing")]
    )
    table = tables.daily_report(DAY, STATIONS, aggregates).tables[0]
    station = table.headers.index("站点 Station")
    assert [row[station] for row in table.rows] == ["全市 City", "S1 天坛"]


def test_the_notes_cite_the_standard_the_project_follows() -> None:
    """The notes cited "GB 3095-2012 §8.3" where the rest of the project (docs/standards/air.md)
    cites GB 3095-2026 (Table 4: a daily mean needs 20 valid hourly means)."""
    report = tables.daily_report(DAY, STATIONS, _aggregates(VALUES))
    text = " ".join(report.notes)
    assert "3095-2012" not in text and "GB 3095-2026 Table 4" in text
    assert "3095-2012" not in (tables.__doc__ or "")


def test_the_workbook_shows_co_to_one_decimal() -> None:
    """Trial finding: the daily xlsx showed CO 1.0 mg/m³ as ``1`` (a float in a General cell)."""
    values = {**VALUES, "co": 1.0}
    ws = load_workbook(
        io.BytesIO(render.to_xlsx(tables.daily_report(DAY, STATIONS, _aggregates(values))))
    ).worksheets[0]
    headers = [c.value for c in ws[4]]
    (row,) = [r for r in range(5, ws.max_row + 1) if str(ws.cell(r, 3).value).startswith("S1")]
    co = ws.cell(row=row, column=headers.index("CO (mg/m³)") + 1)
    no2 = ws.cell(row=row, column=headers.index("NO2 (μg/m³)") + 1)
    assert co.value == 1.0 and co.number_format == "0.0"
    assert no2.value == 35 and no2.number_format == "0"
