"""The canonical observation, and the normalisation every ingest path applies to a reading.

A reading becomes an :class:`Observation`: station, parameter (canonical code), time (UTC),
value (the parameter's canonical unit), flag, and the stream's kind (interval, statistic, basis).
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
    """An ISO 8601 time (string or datetime) as UTC; a time without offset is in ``default_tz``."""
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
    return dt.astimezone(UTC)


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
    domain: Domain | None = None,
    interval: str | None = None,
    statistic: str | None = None,
    basis: str = "measured",
) -> Observation:
    """Validate one raw reading and turn it into an :class:`Observation`.

    Checks: station and parameter are strings and the parameter is known (canonical or HJ 212
    code); the value is a finite number; the unit (optional, default: canonical) is known and
    compatible; the flag (optional, default ``N``) is an HJ 212-2017 data flag; the time is
    ISO 8601 and not more than ``max_future`` ahead of ``now``.

    Raises
    ------
    ValidationError
        with a one-line reason naming the first problem found.
    """
    if not isinstance(station, str) or not station:
        raise ValidationError("station must be a non-empty string")
    if not isinstance(parameter, str) or not parameter:
        raise ValidationError("parameter must be a non-empty string")
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
    if flag is None:
        flag = DEFAULT_FLAG
    if not isinstance(flag, str) or not is_valid_flag(flag):
        raise ValidationError(f"flag {flag!r} is not an HJ 212-2017 data flag (N F M S D C T B)")
    t = parse_time(time, default_tz)
    if t > now + max_future:
        raise ValidationError(
            f"time {t.isoformat()} is more than {max_future} ahead of the server clock"
        )
    if interval is not None and interval not in INTERVALS:
        raise ValidationError(f"interval {interval!r} is not one of {', '.join(INTERVALS)}")
    if statistic is not None and statistic not in STATISTICS:
        raise ValidationError(f"statistic {statistic!r} is not one of {', '.join(STATISTICS)}")
    if basis not in BASES:
        raise ValidationError(f"basis {basis!r} is not one of {', '.join(BASES)}")
    return Observation(station, param.code, t, canonical_value, flag, interval, statistic, basis)
