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

import functools
import itertools
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final, Literal, NamedTuple, overload

import numpy as np
import numpy.typing as npt

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


_EPOCH_US: Final = datetime(1970, 1, 1, tzinfo=UTC)
_build: Final = functools.partial(tuple.__new__, Observation)


class ObservationColumns(Sequence[Observation]):
    """Observations held as columns (issue 17): what the columnar validation of a batch gives
    and the store copies without Python code per reading.

    A ``Sequence[Observation]``: indexing, iterating and comparing build the
    :class:`Observation` named tuples on demand, so every consumer of observations takes it
    unchanged; :meth:`store.postgres.PostgresStore.write_batches` reads the columns instead.
    ``time`` holds the UTC datetimes (often the same objects: one per distinct time of a
    batch) and ``time_us`` the same instants as microseconds since 1970 (int64); ``value`` is
    in each parameter's canonical unit (float64); ``interval``, ``statistic`` and ``basis``
    are one value for every reading, or a list of one each.
    """

    __slots__ = (
        "basis",
        "flag",
        "interval",
        "parameter",
        "station",
        "statistic",
        "time",
        "time_us",
        "value",
    )

    def __init__(
        self,
        station: list[str],
        parameter: list[str],
        time: list[datetime],
        time_us: npt.NDArray[np.int64],
        value: npt.NDArray[np.float64],
        flag: list[str],
        interval: str | list[str | None] | None = None,
        statistic: str | list[str | None] | None = None,
        basis: str | list[str] = "measured",
    ) -> None:
        n = len(station)
        if not (len(parameter) == len(time) == len(time_us) == len(value) == len(flag) == n):
            raise ValueError("columns of different lengths")
        self.station = station
        self.parameter = parameter
        self.time = time
        self.time_us = time_us
        self.value = value
        self.flag = flag
        self.interval = interval
        self.statistic = statistic
        self.basis = basis

    def column(self, name: str) -> list[Any]:
        """``interval``, ``statistic`` or ``basis`` as one value per reading."""
        found = getattr(self, name)
        return found if isinstance(found, list) else [found] * len(self.station)

    def _fields(self) -> Iterator[tuple[Any, ...]]:
        def each(name: str) -> Iterable[Any]:
            found = getattr(self, name)
            return found if isinstance(found, list) else itertools.repeat(found)

        return zip(
            self.station,
            self.parameter,
            self.time,
            self.value.tolist(),
            self.flag,
            each("interval"),
            each("statistic"),
            each("basis"),
            strict=False,  # the constant columns repeat without end
        )

    def __len__(self) -> int:
        return len(self.station)

    def __iter__(self) -> Iterator[Observation]:
        return map(_build, self._fields())

    @overload
    def __getitem__(self, index: int) -> Observation: ...
    @overload
    def __getitem__(self, index: slice) -> list[Observation]: ...
    def __getitem__(self, index: int | slice) -> Observation | list[Observation]:
        if isinstance(index, slice):
            return list(self)[index]
        i = range(len(self))[index]  # IndexError as a list gives it
        return Observation(
            self.station[i],
            self.parameter[i],
            self.time[i],
            float(self.value[i]),
            self.flag[i],
            self.column("interval")[i],
            self.column("statistic")[i],
            self.column("basis")[i],
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable columns, as a list

    def __repr__(self) -> str:
        return f"ObservationColumns({list(self)!r})"

    @classmethod
    def of(cls, observations: Iterable[Observation]) -> ObservationColumns:
        """Observations as columns (a time's microseconds computed once per distinct time)."""
        rows = list(observations)
        if not rows:
            return cls([], [], [], np.zeros(0, np.int64), np.zeros(0), [])
        fields = map(list, zip(*rows, strict=True))
        station, parameter, time, value, flag, interval, statistic, basis = fields
        micro = {t: microseconds(t) for t in dict.fromkeys(time)}
        return cls(
            station,
            parameter,
            time,
            np.fromiter(map(micro.__getitem__, time), dtype=np.int64, count=len(rows)),
            np.asarray(value, dtype=np.float64),
            flag,
            interval,
            statistic,
            basis,
        )

    @classmethod
    def select(cls, columns: ObservationColumns, rows: Sequence[int]) -> ObservationColumns:
        """The readings ``rows`` (indexes, in that order) of ``columns``."""
        pick = list(rows)

        def take(values: list[Any]) -> list[Any]:
            return [values[i] for i in pick]

        def scalar_or(name: str) -> Any:
            found = getattr(columns, name)
            return take(found) if isinstance(found, list) else found

        at = np.asarray(pick, dtype=np.intp)
        return cls(
            take(columns.station),
            take(columns.parameter),
            take(columns.time),
            columns.time_us[at],
            columns.value[at],
            take(columns.flag),
            scalar_or("interval"),
            scalar_or("statistic"),
            scalar_or("basis"),
        )


def microseconds(t: datetime) -> int:
    """A timezone-aware time as whole microseconds since 1970-01-01T00:00:00Z."""
    return (t - _EPOCH_US) // timedelta(microseconds=1)
