"""Dashboard helpers: station states, the shipped offline base map, the map's style."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pandas as pd

from dashboards.views import basemap, deck, default_choice, map_style, station_state, station_table

NOW = datetime(2026, 11, 28, tzinfo=UTC)


def test_station_states_by_age() -> None:
    assert station_state(NOW - timedelta(minutes=1), NOW) == "online"
    assert station_state(NOW - timedelta(minutes=30), NOW) == "delayed"
    assert station_state(NOW - timedelta(hours=2), NOW) == "offline"
    assert station_state(None, NOW) == "no_data"


def test_basemap_has_every_provincial_division_with_iso_codes() -> None:
    provinces = [f for f in basemap()["features"] if f["properties"]["kind"] == "province"]
    codes = {f["properties"]["code"] for f in provinces}
    assert len(codes) == 34  # 23 provinces, 5 autonomous regions, 4 municipalities, 2 SARs
    assert {"CN-BJ", "CN-XJ", "CN-HK", "CN-MO", "CN-TW", "CN-HI"} <= codes
    assert "Natural Earth" in basemap()["source"]


def test_map_needs_no_internet() -> None:
    spec = json.loads(deck(pd.DataFrame(columns=["id", "lon", "lat", "colour"])).to_json())
    style = spec["mapStyle"]
    assert style.startswith("data:application/json;base64,")
    decoded = json.loads(base64.b64decode(style.split(",", 1)[1]))
    assert decoded["sources"] == {}
    assert "http" not in json.dumps(decoded)


def test_tile_server_is_used_when_configured() -> None:
    style = map_style("http://tiles.local/{z}/{x}/{y}.png")
    assert style["sources"]["tiles"]["tiles"] == ["http://tiles.local/{z}/{x}/{y}.png"]


def test_station_table_and_default_choice() -> None:
    stations = pd.DataFrame(
        {
            "id": ["A", "B"],
            "name": ["a", "b"],
            "kind": ["air", "water"],
            "lon": [116.0, 120.0],
            "lat": [40.0, 30.0],
        }
    )
    latest = pd.DataFrame(
        {
            "station": ["B", "B"],
            "parameter": ["ph", "do"],
            "time": pd.to_datetime([NOW, NOW - timedelta(minutes=2)], utc=True),
        }
    )
    table = station_table(stations, latest, NOW)
    assert list(table["state"]) == ["no_data", "online"]
    assert default_choice(latest, ["A", "B"]) == ("B", "do")
    assert default_choice(latest.iloc[0:0], ["A", "B"]) == ("A", None)
