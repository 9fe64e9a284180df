"""Station lists from CSV and GeoJSON."""

from __future__ import annotations

import json

import pytest

from sensors.errors import ValidationError
from sensors.stations import Station, read_stations


def test_csv_with_extra_attributes() -> None:
    text = "\ufeffid,name,kind,lon,lat,district\nS1,一号站,air,116.4,39.9,Dongcheng\n"
    [s] = read_stations(text, "stations.csv")
    assert s == Station("S1", "一号站", "air", 116.4, 39.9, {"district": "Dongcheng"})


def test_geojson_points() -> None:
    doc = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": "W1",
                "geometry": {"type": "Point", "coordinates": [120.1, 30.2]},
                "properties": {"name": "West Lake", "kind": "water", "basin": "Qiantang"},
            }
        ],
    }
    [s] = read_stations(json.dumps(doc), "x.geojson")
    assert (s.id, s.kind, s.lon, s.lat, s.attributes["basin"]) == (
        "W1",
        "water",
        120.1,
        30.2,
        "Qiantang",
    )


@pytest.mark.parametrize(
    ("text", "name", "reason"),
    [
        ("id,name,kind,lon,lat\nS1,a,volcano,1,2\n", "a.csv", "kind 'volcano'"),
        ("id,name,kind,lon,lat\nS1,a,air,200,2\n", "a.csv", "longitude"),
        ("id,name,kind,lon,lat\nS1,a,air,x,2\n", "a.csv", "numbers"),
        ("id,name,kind,lon,lat\nS 1,a,air,1,2\n", "a.csv", "invalid station id"),
        ("id,name,kind,lon,lat\nS1,a,air,1,2\nS1,b,air,1,2\n", "a.csv", "twice"),
        ("id,name\nS1,a\n", "a.csv", "missing kind, lon, lat"),
        ("{", "a.geojson", "not valid JSON"),
        ("[]", "a.geojson", "FeatureCollection"),
        ("", "a.txt", "expected a .csv"),
    ],
)
def test_bad_station_files_name_the_problem(text: str, name: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        read_stations(text, name)


@pytest.mark.parametrize("written", ["北京", "北京市", "Beijing", " beijing ", "BEIJING"])
def test_a_known_city_is_one_city_however_it_is_written(written: str) -> None:
    """Trial finding: ``examples/stations.csv`` said ``北京`` and the demo ``Beijing``, which made
    two Beijing rows in the daily report and two Beijings in the city AQI."""
    text = f"id,name,kind,lon,lat,city\nS1,一号站,air,116.4,39.9,{written}\n"
    [s] = read_stations(text, "stations.csv")
    assert s.attributes["city"] == "Beijing"
    assert Station("S2", "b", "air", 1, 1, {"city": written}).attributes["city"] == "Beijing"


def test_an_unknown_city_is_kept_as_written() -> None:
    [s] = read_stations("id,name,kind,lon,lat,city\nS1,a,air,1,1,  渭南 \n", "s.csv")
    assert s.attributes["city"] == "渭南"


def test_city_names_in_both_languages() -> None:
    from sensors import cities

    assert cities.label("Xi'an", "zh") == "西安" and cities.label("西安市", "en") == "Xi'an"
    assert cities.label("渭南", "en") == "渭南"  # unknown: as written
    assert cities.bilingual("Zhengzhou") == "郑州 Zhengzhou"
    zh = [c[0] for c in cities.CITIES]
    en = [c[1] for c in cities.CITIES]
    assert len(set(zh)) == len(zh) and len(set(en)) == len(en)
