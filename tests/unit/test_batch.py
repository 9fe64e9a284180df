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


# ----------------------------------------------------------------------------- columnar
# validate_items checks columns once per distinct value (issue 17); validate_item is the
# per-item reference. Both must give the same observations (bit for bit) and the same reasons.
_KINDS = {"S1": "air", "S2": "water", "S3": "cems"}
_plain_items = st.fixed_dictionaries(
    {
        "station": st.sampled_from(["S1", "S2", "S3", "S9", "", "S\x00"]),
        "parameter": st.sampled_from(
            ["pm25", "so2", "co", "cd", "ph", "temp", "a21026", "w01001", "xx", "PM25", ""]
        ),
        "time": st.sampled_from(
            [
                "2026-11-28T07:00:00+08:00",
                "2026-11-28T07:00:00",
                "2026-11-27T23:00:00Z",
                "1999-12-31T23:59:59Z",
                "2026-11-28T03:00:00Z",
                "2026-10-01T00:00:00Z",
                "not a time",
                "2026-11-28T07:00:00\x00",
            ]
        )
        | st.datetimes(
            min_value=datetime(1999, 1, 1),
            max_value=datetime(2027, 1, 1),
            timezones=st.sampled_from([None, UTC, CST]),
        ),
        "value": st.floats(allow_nan=True, allow_infinity=True)
        | st.integers(min_value=-(10**400), max_value=10**400)
        | st.floats(min_value=-1, max_value=2000),
    },
    optional={
        "unit": st.sampled_from(
            ["ug/m3", "µg/m³", "mg/m3", "ppb", "ppm", "mg/L", "ug/L", "%", "", "degC", "degF", "K"]
        )
        | st.none(),
        "flag": st.sampled_from([*"NFMSDCTB", "?", "n"]) | st.none(),
    },
)


def _reference(items: list[Any], max_past: timedelta | None) -> tuple[list[Any], list[Any]]:
    from ingest.batch import _Checks, validate_item

    check = _Checks(
        {"S1", "S2", "S3"}.__contains__, _KINDS.get, CST, timedelta(hours=1), max_past, NOW
    )
    accepted, rejected = [], []
    for i, item in enumerate(items):
        found = validate_item(item, check)
        if isinstance(found, str):
            rejected.append((i, found))
        else:
            accepted.append(found)
    return accepted, rejected


@given(
    st.lists(_plain_items, max_size=40) | st.lists(_plain_items | reading_items(), max_size=20),
    st.sampled_from([None, timedelta(days=30)]),
)
def test_the_columns_give_the_references_observations_and_reasons(
    items: list[Any], max_past: timedelta | None
) -> None:
    result = validate_items(
        items,
        known_station={"S1", "S2", "S3"}.__contains__,
        station_kind=_KINDS.get,
        default_tz=CST,
        max_future=timedelta(hours=1),
        max_past=max_past,
        now=NOW,
    )
    accepted, rejected = _reference(items, max_past)
    assert result.rejected == rejected
    assert result.accepted == accepted
    assert [type(o.value) for o in result.accepted] == [float] * len(accepted)


def test_the_columns_convert_units_once_per_pair_and_keep_order() -> None:
    """A batch of several stations, parameters and units: canonical values as the reference,
    a shared code resolved by the station's kind (cd from a water station is mg/L), order
    kept, a bad item among good ones rejected alone."""
    items: list[Any] = []
    for minute in range(30):
        t = f"2026-11-28T06:{minute:02d}:00+08:00"
        items += [
            {"station": "S1", "parameter": "so2", "time": t, "value": minute, "unit": "ppb"},
            {"station": "S1", "parameter": "pm25", "time": t, "value": 1.5 * minute},
            {"station": "S2", "parameter": "cd", "time": t, "value": 2, "unit": "ug/L"},
            {"station": "S3", "parameter": "a21026", "time": t, "value": 10.0, "unit": "mg/m3"},
        ]
    items[57] = {**items[57], "value": -5}  # a negative concentration: rejected alone
    result = validate_items(
        items,
        known_station={"S1", "S2", "S3"}.__contains__,
        station_kind=_KINDS.get,
        default_tz=CST,
        max_future=timedelta(hours=1),
        now=NOW,
    )
    accepted, rejected = _reference(items, None)
    assert result.accepted == accepted and result.rejected == rejected
    assert [i for i, _ in rejected] == [57] and "physically impossible" in rejected[0][1]
    assert len(result.accepted) == 119
    water = [o for o in result.accepted if o.station == "S2"]
    assert {o.parameter for o in water} == {"water_cd"} and water[0].value == 0.002
