"""The JSON reading batch: msgspec's typed path gives what the standard library's gives."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.batch import RawColumns, validate_items
from ingest.jsonbatch import BodyError, decode_batch

_TEXTS = st.sampled_from(["S1", "S2", "pm25", "so2", "ug/m3", "mg/m3", "N", "x", "", "a\x00"])
_TIMES = st.sampled_from(
    ["2026-12-04T08:00:00+08:00", "2026-12-04T01:00:00", "2026-12-04T00:00:00Z", "yesterday", ""]
)
_VALUES = (
    st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-(10**30), 10**30)
    | st.booleans()
    | st.none()
    | st.just("12")
)
_ITEMS = st.fixed_dictionaries(
    {"station": _TEXTS, "parameter": _TEXTS, "time": _TIMES | st.integers(), "value": _VALUES},
    optional={"unit": _TEXTS | st.none(), "flag": _TEXTS | st.none(), "extra": st.just(1)},
) | st.sampled_from([[], "x", 1, None, {}])


@given(st.lists(_ITEMS, max_size=8), st.booleans())
def test_typed_decoding_gives_the_standard_librarys_items(items: list[Any], extra: bool) -> None:
    """Whatever the body holds, the items decode_batch gives validate exactly as the items
    ``json.loads`` gives (accepted readings and every reason)."""
    doc: dict[str, Any] = {"observations": items}
    if extra:
        doc["meta"] = {"gateway": "g1"}
    body = json.dumps(doc).encode()
    decoded = decode_batch(body)
    reference = json.loads(body)["observations"]
    now = datetime(2026, 12, 4, 2, tzinfo=UTC)
    settings: dict[str, Any] = {
        "known_station": lambda s: s == "S1",
        "default_tz": UTC,
        "max_future": timedelta(hours=1),
        "max_past": None,
        "now": now,
    }
    ours, theirs = validate_items(decoded, **settings), validate_items(reference, **settings)
    assert list(ours.accepted) == list(theirs.accepted)
    assert ours.rejected == theirs.rejected


def test_a_plain_body_is_columns() -> None:
    body = json.dumps(
        {
            "observations": [
                {
                    "station": "S1",
                    "parameter": "pm25",
                    "time": "2026-12-04T08:00:00+08:00",
                    "value": 35,
                },
                {
                    "station": "S1",
                    "parameter": "so2",
                    "time": "2026-12-04T08:00:00+08:00",
                    "value": 4.5,
                    "unit": "ug/m3",
                    "flag": "N",
                },
            ]
        }
    ).encode()
    items = decode_batch(body)
    assert isinstance(items, RawColumns)
    assert items.values == [35.0, 4.5] and items.units == [None, "ug/m3"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{", "body is not valid JSON"),
        (b"\xff", "body is not valid JSON"),
        (b"[1]", 'body must be an object {"observations": [...]}'),
        (b'{"observations": 1}', 'body must be an object {"observations": [...]}'),
        (b"[" * 100_000, "body is nested too deeply"),
    ],
)
def test_a_body_that_is_not_a_batch_says_why(body: bytes, detail: str) -> None:
    with pytest.raises(BodyError, match=detail.replace("[", r"\[").replace("{", r"\{")):
        decode_batch(body)


def test_non_finite_and_odd_values_keep_their_reasons() -> None:
    body = (
        b'{"observations": [{"station": "S1", "parameter": "pm25",'
        b' "time": "2026-12-04T00:00:00Z", "value": NaN}]}'
    )
    items = decode_batch(body)
    assert not isinstance(items, RawColumns)
    assert items[0]["value"] != items[0]["value"]
