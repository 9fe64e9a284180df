"""Readings from CSV/Excel tables: long and wide layouts, sampling points with coordinates."""

from __future__ import annotations

import pandas as pd
import pytest

from ingest.files import table_readings
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
