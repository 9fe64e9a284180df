"""InfluxDB line protocol: InfluxDB's own syntax and escaping rules, every field type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingest.batch import validate_items
from ingest.lineprotocol import (
    LineProtocolError,
    Point,
    _parse_line_general,
    encode_line,
    parse,
    parse_items,
    parse_line,
    points_to_items,
)
from sensors.parameters import lookup


def test_contract_example() -> None:
    p = parse_line("S1,unit=ug/m3 pm25=35.2,pm10=61 1795824000")
    assert p == Point("S1", {"unit": "ug/m3"}, {"pm25": 35.2, "pm10": 61.0}, 1795824000)


def test_field_types() -> None:
    p = parse_line('m i=-5i,u=7u,f=1.5e3,s="a \\"q\\" \\\\ b",t=true,F=F,T=TRUE,x=t')
    assert p.fields == {
        "i": -5,
        "u": 7,
        "f": 1500.0,
        "s": 'a "q" \\ b',
        "t": True,
        "F": False,
        "T": True,
        "x": True,
    }
    assert isinstance(p.fields["i"], int) and p.timestamp is None


def test_escaping_in_measurement_tags_and_fields() -> None:
    p = parse_line(r"my\ station\,1,tag\ key=a\=b\,c field\ one=1,f\,2=2")
    assert p.measurement == "my station,1"
    assert p.tags == {"tag key": "a=b,c"}
    assert p.fields == {"field one": 1.0, "f,2": 2.0}


def test_strings_may_hold_spaces_commas_and_equals() -> None:
    assert parse_line('m s="a b,c=d" 5').fields == {"s": "a b,c=d"}


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("m", "at least one field"),
        ("m f=", "missing field value"),
        ("m f=abc", "invalid field value"),
        ("m f=1x", "invalid field value"),
        ("m f=NaN", "invalid field value"),
        ("m f=9223372036854775808i", "out of range"),
        ("m f=-1u", "out of range"),
        ('m f="open', "unterminated"),
        ("m,t f=1", "invalid tag"),
        ("m f=1 12.5", "invalid timestamp"),
        ("m f=1 1 2", "after the timestamp"),
        (",t=1 f=1", "missing measurement"),
    ],
)
def test_bad_lines_have_reasons(line: str, reason: str) -> None:
    with pytest.raises(LineProtocolError, match=reason):
        parse_line(line)


def test_a_body_keeps_good_lines_beside_bad_ones() -> None:
    points, errors = parse("a v=1\n# comment\n\nb\r\nc v=2 3\nd v=oops\n")
    assert [(n, p.measurement) for n, p in points] == [(1, "a"), (5, "c")]
    assert [n for n, _ in errors] == [4, 6]


_name = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=10
).filter(lambda s: not s.startswith("#") and s.strip() == s and not s.endswith("\\"))
_values = (
    st.floats(allow_nan=False, allow_infinity=False)
    | st.integers(-(2**63), 2**63 - 1)
    | st.booleans()
    | st.text(max_size=10).filter(lambda s: not s.endswith("\\"))
)


@given(
    measurement=_name,
    tags=st.dictionaries(_name, _name, max_size=3),
    fields=st.dictionaries(_name, _values, min_size=1, max_size=4),
    timestamp=st.none() | st.integers(0, 2**62),
)
def test_encode_then_parse_round_trips(
    measurement: str, tags: dict[str, str], fields: dict[str, object], timestamp: int | None
) -> None:
    point = Point(measurement, tags, fields, timestamp)  # type: ignore[arg-type]
    assert parse_line(encode_line(point)) == point


@given(st.text(max_size=300))
def test_arbitrary_text_gives_points_or_reasons_never_exceptions(body: str) -> None:
    points, errors = parse(body)
    assert all(isinstance(n, int) for n, _ in [*points, *errors])


def _outcome(parse_one: Callable[[str], Point], line: str) -> Point | str:
    try:
        return parse_one(line)
    except LineProtocolError:
        return "error"


@given(st.text(alphabet="ab1.-e,= iutf\t", max_size=40))
def test_fast_path_agrees_with_the_general_scanner(line: str) -> None:
    """Lines without escapes or strings take a str.split path; it must parse exactly as the
    general scanner does, errors included."""
    assert _outcome(parse_line, line) == _outcome(_parse_line_general, line)


# ------------------------------------------------------------- validation (issue 12)
def _validated(body: str, precision: int = 1) -> tuple[list[Any], list[tuple[int, str]]]:
    points, errors = parse(body)
    items, origins = points_to_items(points, precision, errors)
    result = validate_items(
        items,
        known_station=lambda _s: True,
        default_tz=UTC,
        max_future=timedelta(hours=1),
        max_past=timedelta(days=30),
    )
    errors += [(origins[i], reason) for i, reason in result.rejected]
    return result.accepted, errors


def test_year_1_with_precision_s_is_rejected_beside_a_good_line() -> None:
    """Issue 12: "One reading stamped `-62135596800` (line protocol, year 1)"."""
    now_s = int(datetime.now(UTC).timestamp())
    accepted, errors = _validated(
        f"S1 pm25=300 -62135596800\nS1 pm25=35 {now_s}", precision=1_000_000_000
    )
    assert [o.value for o in accepted] == [35.0]
    assert errors == [(1, "time 0001-01-01T00:00:00+00:00 is before 2000-01-01T00:00:00Z")]


def test_a_nul_in_a_tag_rejects_its_line_only() -> None:
    accepted, errors = _validated("S1,site=a\x00b pm25=1\nS1 pm25=2")
    assert [o.value for o in accepted] == [2.0]
    assert errors == [(1, "tag 'site' holds a NUL character or a lone surrogate")]


@given(st.text(max_size=200))
def test_arbitrary_bodies_store_only_clean_recent_possible_readings(body: str) -> None:
    accepted, errors = _validated(body)
    now = datetime.now(UTC)
    for o in accepted:
        assert "\x00" not in o.station and now - timedelta(days=31) < o.time
        assert lookup(o.parameter).physically_possible(o.value)
    assert all(isinstance(n, int) and reason for n, reason in errors)


# ------------------------------------------------------------- columns (issue 17)
_VALUE_TEXTS = st.sampled_from(
    [
        "1",
        "-2.5",
        "1e3",
        "1e400",
        "nan",
        "inf",
        "-Infinity",
        "1i",
        "7u",
        "-1u",
        "t",
        "false",
        '"text"',
        '"a\\"b"',
        "1_0",
        "",
        "\t",
        "x",
        "1.5.2",
        "99999999999999999999i",
    ]
) | st.floats(allow_nan=True).map(repr)
_STRUCTURED_LINES = st.tuples(
    st.sampled_from(["S1", "S2", "s\\ 1", "", "#S1", " S1"]),
    st.lists(
        st.sampled_from(
            ["unit=ug/m3", "unit=mg/m3", "flag=N", "flag=x", "unit=", "site=a\x00b", "a"]
        ),
        max_size=2,
    ),
    st.lists(
        st.tuples(st.sampled_from(["pm25", "pm10", "so2", "a", "", "pm25"]), _VALUE_TEXTS),
        max_size=4,
    ),
    st.sampled_from(["", " 1795824000", " -62135596800", " 99999999999999999999", "  7 8", " x"]),
    st.sampled_from(["", "\r", " "]),
).map(
    lambda p: (
        p[0]
        + "".join("," + t for t in p[1])
        + " "
        + ",".join(f"{k}={v}" for k, v in p[2])
        + p[3]
        + p[4]
    )
)
_BODIES = st.lists(_STRUCTURED_LINES, max_size=6).map("\n".join)


def _reference(body: str, precision: int, now: datetime) -> tuple[list[Any], Any, Any]:
    points, errors = parse(body)
    items, origins = points_to_items(points, precision, errors, now)
    return items, origins, sorted(errors)


@given(st.one_of(_BODIES, st.text(max_size=200)), st.sampled_from([1, 1_000, 10**9]))
def test_columns_are_the_points_items(body: str, precision: int) -> None:
    """``parse_items`` (straight into columns) gives exactly what ``parse`` and
    ``points_to_items`` give: the same items in the same order, the same line numbers, the
    same errors."""
    now = datetime(2026, 12, 4, tzinfo=UTC)
    items, origins, errors = parse_items(body, precision, now)
    expected_items, expected_origins, expected_errors = _reference(body, precision, now)
    assert list(items) == expected_items
    assert origins == expected_origins
    # the same errors; within a line parse_items lists them in field order (the reference's
    # are sorted: "S1 pm25=t,pm10=t" names pm25 first, sorted pm10 first)
    assert sorted(errors) == expected_errors
    assert errors == sorted(errors, key=lambda e: e[0])


def test_columns_of_a_plain_body() -> None:
    items, origins, errors = parse_items(
        "S1,unit=ug/m3 pm25=35.2,pm10=61i 1795824000\n\nS2 so2=4,x=t 1795824001", 10**9
    )
    assert items.stations == ["S1", "S1", "S2"]
    assert items.parameters == ["pm25", "pm10", "so2"]
    assert items.values == [35.2, 61, 4.0]
    assert items.units == ["ug/m3", "ug/m3", None]
    assert items.times[2] == datetime.fromtimestamp(1795824001, UTC)
    assert origins == [1, 1, 3]
    assert errors == [(3, "field x: bool values are not readings")]
    assert items.select([2, 0]).stations == ["S2", "S1"]
    assert items.select([]).stations == []


@given(st.one_of(_BODIES, st.text(max_size=200)))
def test_columns_validate_as_items_do(body: str) -> None:
    """Validation of the columns is the validation of the items they hold."""
    now = datetime.now(UTC)
    columns, _, _ = parse_items(body, 1, now)
    settings: dict[str, Any] = {
        "known_station": lambda s: s != "S2",
        "default_tz": UTC,
        "max_future": timedelta(hours=1),
        "max_past": timedelta(days=30),
        "now": now,
    }
    by_columns = validate_items(columns, **settings)
    by_items = validate_items(list(columns), **settings)
    assert list(by_columns.accepted) == list(by_items.accepted)
    assert by_columns.rejected == by_items.rejected
