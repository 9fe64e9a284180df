"""A batch keeps its good readings beside its bad ones (property-based over arbitrary JSON)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from ingest.batch import stations_named, validate_items
from sensors.strategies import json_values, reading_items

CST = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 28, tzinfo=UTC)


def run(items: list[Any]):  # type: ignore[no-untyped-def]
    return validate_items(
        items,
        known_station={"S1"}.__contains__,
        default_tz=CST,
        max_future=timedelta(hours=1),
        now=NOW,
    )


def test_mixed_batch_keeps_the_good_items() -> None:
    good = {"station": "S1", "parameter": "pm25", "time": "2026-11-28T07:00:00+08:00", "value": 1}
    result = run(
        [
            good,
            5,
            {**good, "station": "S9"},
            {**good, "value": None},
            {**good, "extra": 1},
            {"station": "S1"},
            {**good, "parameter": "so2"},
        ]
    )
    assert len(result.accepted) == 2
    assert [i for i, _ in result.rejected] == [1, 2, 3, 4, 5]
    answer = result.as_json()
    assert answer["accepted"] == 2 and answer["rejected"] == 5
    assert "unknown station 'S9'" in answer["errors"][1]["reason"]
    assert "missing parameter, time, value" in answer["errors"][4]["reason"]


@given(st.lists(reading_items() | json_values, max_size=20))
def test_every_item_is_either_accepted_or_rejected_never_raises(items: list[Any]) -> None:
    result = run(items)
    assert len(result.accepted) + len(result.rejected) == len(items)
    for obs in result.accepted:
        assert obs.station == "S1"
        assert obs.time.tzinfo is not None
    stations_named(items)
