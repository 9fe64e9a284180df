"""InfluxDB line protocol codec (pure): ``measurement[,tag=v…] field=v[,field=v…] [timestamp]``.

Escaping as InfluxDB defines it: in measurements, ``\\,`` and ``\\ ``; in tag keys, tag values
and field keys, ``\\,``, ``\\=`` and ``\\ ``; string field values are double-quoted with ``\\"``
and ``\\\\``. Field types: float (``1``, ``-1.5e3``), integer (``1i``), unsigned (``1u``),
string (``"…"``) and boolean (``t``/``true``/``True``/``TRUE``, ``f``/``false``/…). Lines
starting with ``#`` and blank lines are skipped. ``parse`` returns the good lines and an error
per bad line (1-based line numbers), so that a batch keeps its valid lines.
``points_to_items`` turns points into EcoSense's raw reading items (measurement = station,
field = parameter, tags ``unit`` and ``flag``); ``parse_items`` does both at once, straight into
columns (issue 17), and is property-tested equal to the two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from ingest.batch import RawColumns
from sensors.observations import is_clean_text

FieldValue = float | int | str | bool

#: Nanoseconds per unit of each precision of the write API.
PRECISIONS: Final[dict[str, int]] = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}

_TRUE: Final = frozenset({"t", "T", "true", "True", "TRUE"})
_FALSE: Final = frozenset({"f", "F", "false", "False", "FALSE"})
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
#: Characters escaped with a backslash in measurements, and in tag keys, tag values and field
#: keys. The backslash itself is escaped as influxdb-client does, so that a name holding
#: ``\=`` survives a round trip; a lone backslash before any other character is literal.
_MEASUREMENT_SPECIALS: Final = ", \\"
_KEY_SPECIALS: Final = ",= \\"


class LineProtocolError(ValueError):
    """A line that is not valid line protocol."""


@dataclass(frozen=True)
class Point:
    """One parsed line; ``timestamp`` is in the request's precision, or ``None``."""

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    timestamp: int | None


def _split_unescaped(text: str, sep: str, limit: int = -1) -> list[str]:
    """Split on ``sep`` where it is not escaped by a backslash (no quote handling)."""
    parts: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            current.append(text[i : i + 2])
            i += 2
            continue
        if c == sep and (limit < 0 or len(parts) < limit):
            parts.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current))
    return parts


def _scan_fields(text: str, start: int) -> tuple[list[tuple[str, str]], int]:
    """The ``key=value`` pairs of the field set beginning at ``text[start]``, and the index
    where the field set ends (an unescaped space outside a string value, or the end)."""
    pairs: list[tuple[str, str]] = []
    i, n = start, len(text)
    while True:
        key: list[str] = []
        while i < n and text[i] != "=":
            if text[i] == "\\" and i + 1 < n:
                key.append(text[i : i + 2])
                i += 2
                continue
            if text[i] in ", ":
                raise LineProtocolError(f"invalid field {''.join(key)!r}")
            key.append(text[i])
            i += 1
        if i >= n:
            raise LineProtocolError(f"invalid field {''.join(key)!r}")
        i += 1  # '='
        value: list[str] = []
        if i < n and text[i] == '"':
            value.append('"')
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    value.append(text[i : i + 2])
                    i += 2
                    continue
                value.append(text[i])
                i += 1
            if i >= n:
                raise LineProtocolError("unterminated string")
            value.append('"')
            i += 1
        else:
            while i < n and text[i] not in ", ":
                value.append(text[i])
                i += 1
        pairs.append(("".join(key), "".join(value)))
        if i < n and text[i] == ",":
            i += 1
            continue
        return pairs, i


def _unescape(text: str, chars: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in chars:
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _field_value(raw: str) -> FieldValue:
    if not raw:
        raise LineProtocolError("missing field value")
    if raw[0] == '"':
        if len(raw) < 2 or raw[-1] != '"':
            raise LineProtocolError("unterminated string field")
        return _unescape(raw[1:-1], '"\\')
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    if raw[-1] in "iu":
        try:
            value = int(raw[:-1])
        except ValueError:
            raise LineProtocolError(f"invalid integer {raw!r}") from None
        if raw[-1] == "u" and not 0 <= value < 2**64:
            raise LineProtocolError(f"unsigned integer {raw!r} out of range")
        if raw[-1] == "i" and not _INT_MIN <= value <= _INT_MAX:
            raise LineProtocolError(f"integer {raw!r} out of range")
        return value
    try:
        number = float(raw)
    except ValueError:
        raise LineProtocolError(f"invalid field value {raw!r}") from None
    if raw.lower().lstrip("+-") in ("nan", "inf", "infinity"):
        raise LineProtocolError(f"invalid field value {raw!r}")
    return number


def parse_line(line: str) -> Point:
    """One line of line protocol.

    Raises
    ------
    LineProtocolError
        with a reason, when the line is not valid.
    """
    if "\\" in line or '"' in line:
        return _parse_line_general(line)
    # No escapes and no strings (nearly every reading): split with str methods, several
    # times faster than scanning; property-tested equal to the general scanner.
    series, _, rest = line.partition(" ")
    rest = rest.lstrip(" ")
    if not rest:
        raise LineProtocolError("expected a measurement and at least one field")
    field_text, _, tail = rest.partition(" ")
    measurement, *tag_texts = series.split(",")
    if not measurement:
        raise LineProtocolError("missing measurement")
    tags: dict[str, str] = {}
    for tag in tag_texts:
        kv = tag.split("=")
        if len(kv) != 2 or not kv[0] or not kv[1]:
            raise LineProtocolError(f"invalid tag {tag!r}")
        tags[kv[0]] = kv[1]
    fields: dict[str, FieldValue] = {}
    for pair in field_text.split(","):
        key, sep, raw = pair.partition("=")
        if not sep:
            raise LineProtocolError(f"invalid field {key!r}")
        if not key:
            raise LineProtocolError("empty field key")
        fields[key] = _field_value(raw)
    return Point(measurement, tags, fields, _timestamp(tail.strip()))


def _timestamp(tail: str) -> int | None:
    if not tail:
        return None
    if " " in tail:
        raise LineProtocolError("unexpected text after the timestamp")
    try:
        return int(tail)
    except ValueError:
        raise LineProtocolError(f"invalid timestamp {tail!r}") from None


def _parse_line_general(line: str) -> Point:
    """:func:`parse_line` for any line: scans escapes and quoted strings."""
    series_end, n = 0, len(line)
    while series_end < n and line[series_end] != " ":
        series_end += 2 if line[series_end] == "\\" and series_end + 1 < n else 1
    series = line[:series_end]
    rest = series_end
    while rest < n and line[rest] == " ":
        rest += 1
    if rest >= n:
        raise LineProtocolError("expected a measurement and at least one field")
    series_parts = _split_unescaped(series, ",")
    measurement = _unescape(series_parts[0], _MEASUREMENT_SPECIALS)
    if not measurement:
        raise LineProtocolError("missing measurement")
    tags: dict[str, str] = {}
    for tag in series_parts[1:]:
        kv = _split_unescaped(tag, "=")
        if len(kv) != 2 or not kv[0] or not kv[1]:
            raise LineProtocolError(f"invalid tag {tag!r}")
        tags[_unescape(kv[0], _KEY_SPECIALS)] = _unescape(kv[1], _KEY_SPECIALS)
    pairs, end = _scan_fields(line, rest)
    fields: dict[str, FieldValue] = {}
    for key, raw in pairs:
        if not key:
            raise LineProtocolError("empty field key")
        fields[_unescape(key, _KEY_SPECIALS)] = _field_value(raw)
    return Point(measurement, tags, fields, _timestamp(line[end:].strip()))


def parse(body: str) -> tuple[list[tuple[int, Point]], list[tuple[int, str]]]:
    """``(points, errors)`` of a request body: ``(line number, point)`` for each good line,
    ``(line number, reason)`` for each bad one."""
    points: list[tuple[int, Point]] = []
    errors: list[tuple[int, str]] = []
    for number, raw in enumerate(body.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            points.append((number, parse_line(line.strip())))
        except LineProtocolError as exc:
            errors.append((number, str(exc)))
    return points, errors


def _escape(text: str, chars: str) -> str:
    return "".join("\\" + c if c in chars else c for c in text)


def encode_line(point: Point) -> str:
    """The line protocol text of ``point`` (inverse of :func:`parse_line`)."""
    series = _escape(point.measurement, _MEASUREMENT_SPECIALS)
    for key, tag in point.tags.items():
        series += f",{_escape(key, _KEY_SPECIALS)}={_escape(tag, _KEY_SPECIALS)}"
    fields = []
    for key, v in point.fields.items():
        if isinstance(v, bool):
            text = "true" if v else "false"
        elif isinstance(v, int):
            text = f"{v}i"
        elif isinstance(v, float):
            text = repr(v)
        else:
            text = '"' + _escape(v, '"\\') + '"'
        fields.append(f"{_escape(key, _KEY_SPECIALS)}={text}")
    line = f"{series} {','.join(fields)}"
    return line if point.timestamp is None else f"{line} {point.timestamp}"


def points_to_items(
    points: list[tuple[int, Point]],
    ns_per_unit: int,
    errors: list[tuple[int, str]],
    now: datetime | None = None,
) -> tuple[list[dict[str, Any]], list[int]]:
    """One raw reading item per numeric field, and the line number of each; a non-numeric
    field, an impossible timestamp or a tag holding NUL (or a lone surrogate) is added to
    ``errors``. A line without a timestamp is at ``now`` (default: the present)."""
    now = now or datetime.now(UTC)
    items: list[dict[str, Any]] = []
    origins: list[int] = []
    for number, point in points:
        bad_tag = next(
            (k for k, v in point.tags.items() if not (is_clean_text(k) and is_clean_text(v))), None
        )
        if bad_tag is not None:
            errors.append((number, f"tag {bad_tag!r} holds a NUL character or a lone surrogate"))
            continue
        if point.timestamp is None:
            when = now
        else:
            try:
                when = _EPOCH + timedelta(microseconds=point.timestamp * ns_per_unit // 1000)
            except OverflowError:
                errors.append((number, f"timestamp {point.timestamp} out of range"))
                continue
        for name, value in point.fields.items():
            if isinstance(value, bool | str):
                errors.append(
                    (number, f"field {name}: {type(value).__name__} values are not readings")
                )
                continue
            items.append(
                {
                    "station": point.measurement,
                    "parameter": name,
                    "time": when,
                    "value": value,
                    "unit": point.tags.get("unit"),
                    "flag": point.tags.get("flag"),
                }
            )
            origins.append(number)
    return items, origins


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_items(
    body: str, ns_per_unit: int, now: datetime | None = None
) -> tuple[RawColumns, list[int], list[tuple[int, str]]]:
    """``(items, origins, errors)`` of a request body: what ``points_to_items(*parse(body))``
    gives (the same items in the same order, the same errors), read straight into columns.

    A line without escapes or quotes (nearly every reading) is split with ``str`` methods and
    its fields go to the columns without a :class:`Point` or a dict; each field value is read
    with ``float`` first, and only a value ``float`` refuses or finds not finite is read again
    by the general rules (``1i``, ``t``, ``"text"``, ``nan``). Any other line goes through
    :func:`parse_line` and the rules of :func:`points_to_items`. ``errors`` are in line order.
    """
    now = now or datetime.now(UTC)
    stations: list[str] = []
    parameters: list[str] = []
    times: list[str | datetime] = []
    values: list[float | int] = []
    units: list[str | None] = []
    flags: list[str | None] = []
    origins: list[int] = []
    errors: list[tuple[int, str]] = []
    clean = is_clean_text(body)  # then every tag is clean
    when_of: dict[int, datetime | None] = {}

    def time_of(number: int, timestamp: int | None) -> datetime | None:
        if timestamp is None:
            return now
        when = when_of.get(timestamp)
        if when is None and timestamp not in when_of:
            try:
                when = _EPOCH + timedelta(microseconds=timestamp * ns_per_unit // 1000)
            except OverflowError:
                when = None
            when_of[timestamp] = when
        if when is None:
            errors.append((number, f"timestamp {timestamp} out of range"))
        return when

    def add_point(number: int, point: Point) -> None:
        bad_tag = next(
            (k for k, v in point.tags.items() if not (is_clean_text(k) and is_clean_text(v))), None
        )
        if bad_tag is not None:
            errors.append((number, f"tag {bad_tag!r} holds a NUL character or a lone surrogate"))
            return
        add_fields(
            number,
            point.measurement,
            point.timestamp,
            point.tags.get("unit"),
            point.tags.get("flag"),
            point.fields,
        )

    def add_fields(
        number: int,
        measurement: str,
        timestamp: int | None,
        unit: str | None,
        flag: str | None,
        fields: Mapping[str, FieldValue],
    ) -> None:
        """A line's numeric fields into the columns; its other fields, or an impossible
        timestamp, into ``errors``."""
        when = time_of(number, timestamp)
        if when is None:
            return
        for name, value in fields.items():
            if isinstance(value, bool | str):
                errors.append(
                    (number, f"field {name}: {type(value).__name__} values are not readings")
                )
                continue
            stations.append(measurement)
            parameters.append(name)
            times.append(when)
            values.append(value)
            units.append(unit)
            flags.append(flag)
            origins.append(number)

    for number, raw in enumerate(body.split("\n"), start=1):
        line = raw.rstrip("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        line = line.strip()
        if "\\" in line or '"' in line or not clean:
            try:
                add_point(number, parse_line(line))
            except LineProtocolError as exc:
                errors.append((number, str(exc)))
            continue
        # parse_line's fast path, into the columns
        series, _, rest = line.partition(" ")
        rest = rest.lstrip(" ")
        if not rest:
            errors.append((number, "expected a measurement and at least one field"))
            continue
        field_text, _, tail = rest.partition(" ")
        measurement, *tag_texts = series.split(",")
        if not measurement:
            errors.append((number, "missing measurement"))
            continue
        unit = flag = None
        fields: dict[str, FieldValue] = {}
        try:
            if tag_texts:
                tags: dict[str, str] = {}
                for tag in tag_texts:
                    kv = tag.split("=")
                    if len(kv) != 2 or not kv[0] or not kv[1]:
                        raise LineProtocolError(f"invalid tag {tag!r}")
                    tags[kv[0]] = kv[1]
                unit, flag = tags.get("unit"), tags.get("flag")
            for pair in field_text.split(","):
                key, sep, text = pair.partition("=")
                if not sep:
                    raise LineProtocolError(f"invalid field {key!r}")
                if not key:
                    raise LineProtocolError("empty field key")
                try:
                    number_value = float(text)
                except ValueError:
                    fields[key] = _field_value(text)
                    continue
                fields[key] = number_value if math.isfinite(number_value) else _field_value(text)
            timestamp = _timestamp(tail.strip())
        except LineProtocolError as exc:
            errors.append((number, str(exc)))
            continue
        add_fields(number, measurement, timestamp, unit, flag, fields)
    return RawColumns(stations, parameters, times, values, units, flags), origins, errors
