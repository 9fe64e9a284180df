"""Readings from CSV/Excel tables: long and wide layouts, sampling points with coordinates."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.files import read_table, table_readings
from sensors.errors import ValidationError


def test_long_layout() -> None:
    t = pd.DataFrame(
        {
            "station": ["S1", "S1"],
            "parameter": ["pm25", "a34002"],
            "time": ["2026-11-28T08:00:00+08:00"] * 2,
            "value": ["35", "0.06"],
            "unit": ["", "mg/m3"],
            "flag": ["", "M"],
        }
    )
    r = table_readings(t)
    assert r.items == [
        {"station": "S1", "time": "2026-11-28T08:00:00+08:00", "parameter": "pm25", "value": 35.0},
        {
            "station": "S1",
            "time": "2026-11-28T08:00:00+08:00",
            "parameter": "a34002",
            "value": 0.06,
            "unit": "mg/m3",
            "flag": "M",
        },
    ]
    assert r.rows == [2, 3]


def test_wide_layout_with_units_and_station_option() -> None:
    t = pd.DataFrame(
        {
            "time": ["2026-11-28 08:00", "2026-11-28 09:00"],
            "pm25": ["35", ""],
            "SO2": ["10", "12"],
            "unit:so2": ["ppb", "ppb"],
        }
    )
    r = table_readings(t, station="S1")
    assert [(i["parameter"], i["value"], i.get("unit")) for i in r.items] == [
        ("pm25", 35.0, None),
        ("so2", 10.0, "ppb"),
        ("so2", 12.0, "ppb"),
    ]


def test_soil_samples_become_stations() -> None:
    t = pd.DataFrame(
        {
            "id": ["P1", "P2"],
            "lon": ["5.758", "5.759"],
            "lat": ["50.99", "50.98"],
            "time": ["2026-10-01"] * 2,
            "cd": ["11.7", "8.6"],
            "pb": ["299", "277"],
        }
    )
    r = table_readings(t)
    assert [(s.id, s.kind, s.lon) for s in r.stations] == [
        ("P1", "soil", 5.758),
        ("P2", "soil", 5.759),
    ]
    assert len(r.items) == 4


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        (pd.DataFrame({"station": ["S"], "pm25": ["1"]}), "time column"),
        (pd.DataFrame({"time": ["x"], "pm25": ["1"]}), "station column"),
        (pd.DataFrame({"station": ["S"], "time": ["x"], "colour": ["red"]}), "not a parameter"),
    ],
)
def test_unusable_tables_say_why(table: pd.DataFrame, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        table_readings(table)


# ------------------------------------------------------------- ids as text (issue 12)
_IDS = st.text(alphabet="0123456789", min_size=1, max_size=8) | st.sampled_from(
    ["001", "011", "0", "00", "1e3", "1.50", "007A", "inf", "nan"]
)


def _write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_station_001_and_code_011_stay_as_written(tmp_path: Path) -> None:
    """Issue 12: "`ecosense import` turns station `001` into `1.0` and the HJ/T 212-2005 code
    `011` into `11.0`"."""
    csv = _write_csv(
        tmp_path / "r.csv",
        "station,parameter,time,value",
        ["001,011,2026-11-28T08:00:00+08:00,25.5"],
    )
    r = table_readings(read_table(csv))
    assert r.items == [
        {"station": "001", "parameter": "011", "time": "2026-11-28T08:00:00+08:00", "value": 25.5}
    ]


def test_excel_ids_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "r.xlsx"
    pd.DataFrame(
        {
            "station": ["001", 7],  # a text cell, and a number typed into a cell
            "parameter": ["011", "pm25"],
            "time": ["2026-11-28T08:00:00+08:00"] * 2,
            "value": [25.5, 3],
        }
    ).to_excel(path, index=False)
    r = table_readings(read_table(path))
    assert [(i["station"], i["parameter"], i["value"]) for i in r.items] == [
        ("001", "011", 25.5),
        ("7", "pm25", 3),
    ]


def test_station_0_is_not_credited_to_the_station_option() -> None:
    """Issue 12: "a station id `0` is silently credited to `--station`"."""
    t = pd.DataFrame(
        {"station": ["0", ""], "time": ["2026-11-28T08:00:00+08:00"] * 2, "pm25": ["1", "2"]}
    )
    r = table_readings(t, station="S9")
    assert [i["station"] for i in r.items] == ["0", "S9"]


@given(station=_IDS, code=st.sampled_from(["011", "001", "060", "a34004", "pm25"]))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=50)
def test_any_id_cell_round_trips_through_csv(tmp_path: Path, station: str, code: str) -> None:
    csv = _write_csv(
        tmp_path / "r.csv", "station,parameter,time,value", [f"{station},{code},2026-01-01,1"]
    )
    (item,) = table_readings(read_table(csv)).items
    assert (item["station"], item["parameter"]) == (station, code)
