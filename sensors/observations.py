"""The canonical observation, and the normalisation every ingest path applies to a reading.

A reading becomes an :class:`Observation`: station, parameter (canonical code), time (UTC),
value (the parameter's canonical unit), flag, and the stream's kind (interval, statistic, basis).

What no protocol may store (each a per-item rejection with a one-line reason):

- a time before :data:`TIME_FLOOR` (2000-01-01T00:00:00Z) — no monitoring network that
  reports to EcoSense predates it, and years 1 or 1900 are clock faults or backdating;
- a time more than ``max_future`` ahead of the server clock, or (devices) more than
  ``max_past`` behind it;
- a value outside the parameter's physical range (``Parameter.physical_min``/``_max``),
  e.g. a negative concentration or ``1e308``; a value outside the plausible range is stored
  and flagged by QC instead;
- a NUL character or an unpaired UTF-16 surrogate in any text (station, parameter, unit,
  flag), which PostgreSQL cannot store.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final, Literal, NamedTuple

from sensors.errors import SensorsError, ValidationError
from sensors.flags import DEFAULT_FLAG, is_valid_flag
from sensors.parameters import Domain, Parameter, lookup
from sensors.units import to_canonical

#: The earliest time a reading may carry: 2000-01-01T00:00:00Z.
TIME_FLOOR: Final = datetime(2000, 1, 1, tzinfo=UTC)

Statistic = Literal["avg", "min", "max", "cou"]
Basis = Literal["measured", "converted"]
STATISTICS: Final = ("avg", "min", "max", "cou")
BASES: Final = ("measured", "converted")
INTERVALS: Final = ("PT1M", "PT1H", "P1D")
#: How a reading reached the platform (the ``protocol`` of a :class:`Source`).
PROTOCOLS: Final = ("http", "lineprotocol", "hj212", "mqtt", "file")


@dataclass(frozen=True, slots=True)
class Source:
    """Where a batch of readings came from (its provenance), stored with every reading.

    ``protocol`` is one of :data:`PROTOCOLS`; ``device`` the registered device id that sent
    it (``None`` for file imports, and for MQTT, whose publishers the broker authenticates);
    ``user`` and ``file`` the importing user and the file name of a file import.
    """

    protocol: str
    device: str | None = None
    user: str | None = None
    file: str | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}")


class Observation(NamedTuple):
    """One reading in canonical form (immutable; a named tuple, several times cheaper to build
    than a frozen dataclass, which matters at tens of thousands of readings a second).

    ``time`` is timezone-aware UTC; ``value`` is in ``parameter``'s canonical unit;
    ``interval`` is an ISO 8601 duration (``PT1M``, ``PT1H``, ``P1D``) or ``None`` for an
    instantaneous reading; ``statistic`` is ``avg``/``min``/``max``/``cou`` or ``None``;
    ``basis`` is ``measured``, or ``converted`` for HJ 212 ``-Zs*`` (折算) values.
    """

    station: str
    parameter: str
    time: datetime
    value: float
    flag: str = DEFAULT_FLAG
    interval: str | None = None
    statistic: str | None = None
    basis: str = "measured"


def parse_time(value: Any, default_tz: tzinfo) -> datetime:
    """An ISO 8601 time (string or datetime) as UTC; a time without offset is in ``default_tz``.

    A time the zone shifts past year 1 or 9999 is clamped to that edge of datetime's range."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as exc:
            raise ValidationError(f"time {value!r} is not ISO 8601") from exc
    else:
        raise ValidationError("time must be an ISO 8601 string")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=default_tz)
    try:
        return dt.astimezone(UTC)
    except (
        OverflowError,
        ValueError,
    ):  # hours from year 1 or 9999 the zone shifts it out: clamp to that edge
        return (datetime.min if dt.year == 1 else datetime.max).replace(tzinfo=UTC)


def check_text(name: str, value: str) -> None:
    """Refuse a NUL character or an unpaired surrogate in a text field (``ValidationError``)."""
    if "\x00" in value:
        raise ValidationError(f"{name} contains a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")  # fails exactly on surrogate code points
        except UnicodeEncodeError:
            raise ValidationError(
                f"{name} contains an unpaired surrogate (not valid Unicode)"
            ) from None


def is_clean_text(value: str) -> bool:
    """Whether ``value`` holds neither NUL nor an unpaired surrogate."""
    try:
        check_text("", value)
    except ValidationError:
        return False
    return True


def check_time(
    t: datetime, *, now: datetime, max_future: timedelta, max_past: timedelta | None = None
) -> None:
    """Refuse a time before :data:`TIME_FLOOR`, more than ``max_future`` ahead of ``now``, or
    more than ``max_past`` behind it (``None``: no past limit).

    Raises
    ------
    ValidationError
        with the reason.
    """
    if t < TIME_FLOOR:
        raise ValidationError(f"time {t.isoformat()} is before 2000-01-01T00:00:00Z")
    if t > now + max_future:
        raise ValidationError(
            f"time {t.isoformat()} is more than {max_future} ahead of the server clock"
        )
    if max_past is not None and t < now - max_past:
        raise ValidationError(
            f"time {t.isoformat()} is more than {max_past.days} days in the past"
            " (devices may not write further back; an operator may re-send it)"
        )


def check_physical(param: Parameter, value: float, statistic: str | None = None) -> None:
    """Refuse a value (canonical unit) outside ``param``'s physical range; a cumulative amount
    (``statistic="cou"``: kg or m³) only needs to be non-negative and finite."""
    if statistic == "cou":
        if not (math.isfinite(value) and value >= 0):
            raise ValidationError(f"{param.code}: cumulative amount {value:g} is not possible")
        return
    if not param.physically_possible(value):
        raise ValidationError(
            f"{param.code}: {value:g} {param.unit} is physically impossible (outside"
            f" {param.physical_min:g} to {param.physical_max:g} {param.unit})"
        )


def normalise(
    *,
    station: Any,
    parameter: Any,
    time: Any,
    value: Any,
    unit: Any = None,
    flag: Any = None,
    now: datetime,
    max_future: timedelta,
    default_tz: tzinfo,
    max_past: timedelta | None = None,
    domain: Domain | None = None,
    interval: str | None = None,
    statistic: str | None = None,
    basis: str = "measured",
) -> Observation:
    """Validate one raw reading and turn it into an :class:`Observation`.

    Checks: station, parameter, unit and flag hold no NUL nor unpaired surrogate; station and
    parameter are strings and the parameter is known (canonical or HJ 212 code; a code shared
    by media resolves in ``domain``, the sending station's); the value is a finite number;
    the unit (optional, default: canonical) is known, compatible and per the parameter's
    medium; the value in the canonical unit is physically possible; the flag (optional,
    default ``N``) is an HJ 212-2017 data flag; the time is ISO 8601, not before 2000-01-01,
    not more than ``max_future`` ahead of ``now`` and, unless ``max_past`` is ``None`` (the
    operator, file imports), not more than ``max_past`` behind it.

    Raises
    ------
    ValidationError
        with a one-line reason naming the first problem found.
    """
    if not isinstance(station, str) or not station:
        raise ValidationError("station must be a non-empty string")
    check_text("station", station)
    if not isinstance(parameter, str) or not parameter:
        raise ValidationError("parameter must be a non-empty string")
    check_text("parameter", parameter)
    for name, text in (("unit", unit), ("flag", flag), ("time", time)):
        if isinstance(text, str):
            check_text(name, text)
    try:
        param: Parameter = lookup(parameter, domain)
    except SensorsError as exc:
        raise ValidationError(str(exc)) from exc
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"value must be a number, got {type(value).__name__}")
    try:
        value = float(value)
    except OverflowError as exc:
        raise ValidationError("value is too large for a double") from exc
    if not math.isfinite(value):
        raise ValidationError(f"value {value} is not finite")
    if unit is not None and not isinstance(unit, str):
        raise ValidationError("unit must be a string")
    try:
        canonical_value = float(to_canonical(float(value), unit, param))
    except SensorsError as exc:
        raise ValidationError(f"{param.code}: {exc}") from exc
    check_physical(param, canonical_value, statistic)
    if flag is None:
        flag = DEFAULT_FLAG
    if not isinstance(flag, str) or not is_valid_flag(flag):
        raise ValidationError(f"flag {flag!r} is not an HJ 212-2017 data flag (N F M S D C T B)")
    t = parse_time(time, default_tz)
    check_time(t, now=now, max_future=max_future, max_past=max_past)
    if interval is not None and interval not in INTERVALS:
        raise ValidationError(f"interval {interval!r} is not one of {', '.join(INTERVALS)}")
    if statistic is not None and statistic not in STATISTICS:
        raise ValidationError(f"statistic {statistic!r} is not one of {', '.join(STATISTICS)}")
    if basis not in BASES:
        raise ValidationError(f"basis {basis!r} is not one of {', '.join(BASES)}")
    return Observation(station, param.code, t, canonical_value, flag, interval, statistic, basis)
