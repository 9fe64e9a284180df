"""Normalising one reading: the checks every ingest path applies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sensors.errors import ValidationError
from sensors.observations import Observation, normalise

CST = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 28, 0, 0, tzinfo=UTC)


def norm(**kw: object) -> object:
    base: dict[str, object] = {
        "station": "S1",
        "parameter": "pm25",
        "time": "2026-11-28T08:00:00+08:00",
        "value": 35.2,
    }
    base.update(kw)
    return normalise(now=NOW, max_future=timedelta(hours=1), default_tz=CST, **base)  # type: ignore[arg-type]


def test_a_good_reading_becomes_canonical_utc() -> None:
    obs = norm(parameter="a34004", unit="µg/m³", flag="N")
    assert obs.parameter == "pm25"  # type: ignore[attr-defined]
    assert obs.time == NOW  # type: ignore[attr-defined]
    assert obs.value == 35.2  # type: ignore[attr-defined]


def test_units_are_converted_to_the_canonical_unit() -> None:
    assert norm(parameter="pm25", value=0.035, unit="mg/m3").value == pytest.approx(35.0)  # type: ignore[attr-defined]
    assert norm(parameter="so2", value=10, unit="ppb").value == pytest.approx(26.186, rel=1e-4)  # type: ignore[attr-defined]


def test_time_without_offset_is_bureau_time() -> None:
    assert norm(time="2026-11-28T08:00:00").time == NOW  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"value": float("nan")}, "not finite"),
        ({"value": float("inf")}, "not finite"),
        ({"value": "35"}, "must be a number"),
        ({"value": True}, "must be a number"),
        ({"value": 10**400}, "too large"),
        ({"parameter": "nope"}, "unknown parameter"),
        ({"unit": "m/s"}, "cannot convert"),
        ({"unit": "parsecs^^"}, "unknown unit"),
        ({"flag": "X"}, "HJ 212-2017 data flag"),
        ({"time": "yesterday"}, "ISO 8601"),
        ({"time": "2026-11-28T09:00:01+00:00"}, "ahead of the server clock"),
        ({"station": ""}, "station"),
    ],
)
def test_bad_readings_are_rejected_with_a_reason(change: dict[str, object], reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        norm(**change)


def test_one_hour_ahead_is_still_accepted() -> None:
    assert norm(time="2026-11-28T01:00:00+00:00").time == NOW + timedelta(hours=1)  # type: ignore[attr-defined]


def test_observation_columns_are_a_sequence_of_observations() -> None:
    """What the columnar validation gives is taken by every consumer of observations: it
    indexes, slices, iterates and compares as the list of its named tuples."""
    import numpy as np

    from sensors.observations import ObservationColumns

    rows = [
        Observation("S1", "pm25", NOW, 1.5),
        Observation("S1", "so2", NOW, 2.0, "M"),
        Observation("S2", "pm25", NOW - timedelta(hours=1), 3.25, "N", "PT1H", "avg"),
    ]
    columns = ObservationColumns.of(rows)
    assert len(columns) == 3 and list(columns) == rows and columns == rows
    assert columns[1] == rows[1] and columns[-1] == rows[-1] and columns[:2] == rows[:2]
    assert type(columns[0].value) is float and columns[2].interval == "PT1H"
    assert columns.time_us.tolist() == [
        int((t.time - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 10**6 for t in rows
    ]
    picked = ObservationColumns.select(columns, [2, 0])
    assert list(picked) == [rows[2], rows[0]] and picked.time_us.dtype == np.int64
    assert ObservationColumns.of([]) == [] and not ObservationColumns.of([])
    with pytest.raises(IndexError):
        columns[3]
    with pytest.raises(ValueError, match="lengths"):
        ObservationColumns(["S1"], [], [], np.zeros(0, np.int64), np.zeros(0), [])
