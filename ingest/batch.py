"""Validate a batch of raw readings item by item.

The good ones go on; each bad one gets a reason.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Final, overload

import numpy as np
import numpy.typing as npt

from sensors.errors import SensorsError, ValidationError
from sensors.flags import DEFAULT_FLAG, is_valid_flag
from sensors.observations import (
    Observation,
    ObservationColumns,
    check_time,
    is_clean_text,
    microseconds,
    normalise,
    parse_time,
)
from sensors.parameters import Domain, Parameter, domain_of_kind, lookup
from sensors.units import to_canonical


@dataclass
class BatchResult:
    """The outcome of a batch: accepted observations and ``(index, reason)`` per rejected item."""

    accepted: Sequence[Observation] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The answer a device gets: counts and a reason per rejected item."""
        return {
            "accepted": len(self.accepted),
            "rejected": len(self.rejected),
            "errors": [{"index": i, "reason": r} for i, r in self.rejected],
        }


def validate_items(
    items: Sequence[Any],
    *,
    known_station: Callable[[str], bool],
    default_tz: tzinfo,
    max_future: timedelta,
    max_past: timedelta | None = None,
    station_kind: Callable[[str], str | None] | None = None,
    now: datetime | None = None,
) -> BatchResult:
    """Normalise JSON items ``{"station","parameter","time","value","unit"?,"flag"?}``.

    An item that is not an object, names an unknown station or parameter, has a non-finite,
    non-numeric or physically impossible value, an unknown or incompatible unit, a bad flag,
    NUL or an unpaired surrogate in a text, a time before 2000-01-01, more than
    ``max_future`` ahead of ``now`` or (``max_past`` not ``None``: devices) more than
    ``max_past`` behind it, is rejected with its reason; the others are accepted, in their
    order. ``station_kind`` gives a station's kind, whose domain resolves codes shared by media
    (``cd`` from a water station is the water metal).

    Columnar (issue 17): the batch is split into columns, and each check runs once per
    distinct station, (parameter, domain), unit, flag and time, or as one NumPy operation
    over the values (a unit factor per (parameter, unit) pair, the physical range per
    parameter). An item that fails any of them — or is not a plain object of plain values —
    goes through :func:`validate_item`, the per-item reference, which gives its reason; so
    the outcome and every reason are exactly the reference's (property-tested).
    """
    now = now or datetime.now(UTC)
    check = _Checks(known_station, station_kind, default_tz, max_future, max_past, now)
    result = BatchResult()
    columns = _plain_columns(items)
    if columns is None:  # no plain item: each through the reference
        for i, item in enumerate(items):
            _add(result, i, validate_item(item, check))
        return result
    rows, stations, parameters, times, values, units, flags = columns
    good, observed = check.columns(stations, parameters, times, values, units, flags)
    if rows is None and good.all():
        result.accepted = observed  # the usual case: every item plain and good
        return result
    position = dict(zip(range(len(items)) if rows is None else rows, itertools.count()))
    kept: list[int] = []  # positions in ``observed`` of the accepted plain items
    mixed: list[Observation] = []  # the accepted items in order, if the reference accepts any
    for i, item in enumerate(items):
        at = position.get(i)
        if at is not None and good[at]:
            kept.append(at)
            if mixed:
                mixed.append(observed[at])
            continue
        found = validate_item(item, check)
        if isinstance(found, str):
            result.rejected.append((i, found))
            continue
        if not mixed:  # not seen so far (a Mapping that is not a dict): a list from here on
            mixed = [observed[k] for k in kept]
        mixed.append(found)
    result.accepted = mixed or ObservationColumns.select(observed, kept)
    return result


class RawColumns(Sequence[dict[str, Any]]):
    """Raw reading items held as columns, as a parser that reads straight into columns makes
    them (line protocol, the typed JSON body): a ``Sequence`` of items whose item ``i`` is
    made only when asked (``{"station", "parameter", "time", "value", "unit", "flag"}``), so
    every path that takes items takes it, and :func:`validate_items` reads the columns as
    they are. The maker guarantees plain values: text where text belongs, a number (not a
    bool) as value, a string or a datetime as time, ``None`` or text as unit and flag."""

    __slots__ = ("flags", "parameters", "stations", "times", "units", "values")

    def __init__(
        self,
        stations: list[str],
        parameters: list[str],
        times: list[str | datetime],
        values: list[float | int],
        units: list[str | None],
        flags: list[str | None],
    ) -> None:
        n = len(stations)
        if not all(len(c) == n for c in (parameters, times, values, units, flags)):
            raise ValueError("columns of different lengths")
        self.stations = stations
        self.parameters = parameters
        self.times = times
        self.values = values
        self.units = units
        self.flags = flags

    def __len__(self) -> int:
        return len(self.stations)

    def select(self, rows: Sequence[int]) -> RawColumns:
        """The items at ``rows``, in that order."""
        pick = operator.itemgetter(*rows) if rows else None

        def chosen(column: list[Any]) -> list[Any]:
            if pick is None:
                return []
            return [pick(column)] if len(rows) == 1 else list(pick(column))

        return RawColumns(
            chosen(self.stations),
            chosen(self.parameters),
            chosen(self.times),
            chosen(self.values),
            chosen(self.units),
            chosen(self.flags),
        )

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return {
            "station": self.stations[index],
            "parameter": self.parameters[index],
            "time": self.times[index],
            "value": self.values[index],
            "unit": self.units[index],
            "flag": self.flags[index],
        }


def _add(result: BatchResult, index: int, found: Observation | str) -> None:
    if isinstance(found, str):
        result.rejected.append((index, found))
    else:
        assert isinstance(result.accepted, list)
        result.accepted.append(found)


_Columns = tuple[
    list[int] | None,
    list[str],
    list[str],
    list[str | datetime],
    list[float | int],
    list[str | None],
    list[str | None],
]
_PLAIN_TEXT: Final = frozenset({str})
_PLAIN_NUMBER: Final = frozenset({float, int})
_PLAIN_TIME: Final = frozenset({str, datetime})
_PLAIN_OPTION: Final = frozenset({str, type(None)})


def _plain_columns(items: Sequence[Any]) -> _Columns | None:
    """The plain items of a batch as columns: ``(rows, station, parameter, time, value, unit,
    flag)``, ``rows`` the items' indexes (``None``: every item, in order; the usual case, found
    without Python code per item). A plain item is a ``dict`` with only the item keys, all four
    required ones, text where text belongs, a number (not a bool) as value and a string or a
    datetime as time; the others are left to the reference (``None``: no plain item)."""
    if not items:
        return None
    if isinstance(items, RawColumns):
        return (
            None,
            items.stations,
            items.parameters,
            items.times,
            items.values,
            items.units,
            items.flags,
        )
    get = operator.itemgetter
    try:
        if set(map(type, items)) == {dict} and _ITEM_KEYS.issuperset(
            itertools.chain.from_iterable(items)
        ):
            stations = list(map(get("station"), items))
            parameters = list(map(get("parameter"), items))
            times = list(map(get("time"), items))
            values = list(map(get("value"), items))
            units = list(map(operator.methodcaller("get", "unit"), items))
            flags = list(map(operator.methodcaller("get", "flag"), items))
            if (
                set(map(type, stations)) <= _PLAIN_TEXT
                and set(map(type, parameters)) <= _PLAIN_TEXT
                and set(map(type, times)) <= _PLAIN_TIME
                and set(map(type, values)) <= _PLAIN_NUMBER
                and set(map(type, units)) <= _PLAIN_OPTION
                and set(map(type, flags)) <= _PLAIN_OPTION
            ):
                return None, stations, parameters, times, values, units, flags
    except KeyError:  # an item without a required key: item by item below
        pass
    rows: list[int] = []
    stations, parameters, times, values, units, flags = [], [], [], [], [], []
    for i, item in enumerate(items):
        if type(item) is not dict or not (item.keys() <= _ITEM_KEYS and item.keys() >= _NEEDED):
            continue  # the reference says why
        s, p, t, v = item["station"], item["parameter"], item["time"], item["value"]
        u, f = item.get("unit"), item.get("flag")
        if (
            type(s) is not str
            or type(p) is not str
            or (type(v) is not float and type(v) is not int)
            or (type(t) is not str and type(t) is not datetime)
            or (u is not None and type(u) is not str)
            or (f is not None and type(f) is not str)
        ):
            continue
        rows.append(i)
        stations.append(s)
        parameters.append(p)
        times.append(t)
        values.append(v)
        units.append(u)
        flags.append(f)
    return (rows, stations, parameters, times, values, units, flags) if rows else None


class _Checks:
    """The settings of one batch's validation, and its per-distinct-value caches."""

    def __init__(
        self,
        known_station: Callable[[str], bool],
        station_kind: Callable[[str], str | None] | None,
        default_tz: tzinfo,
        max_future: timedelta,
        max_past: timedelta | None,
        now: datetime,
    ) -> None:
        self.known_station = known_station
        self.station_kind = station_kind
        self.default_tz = default_tz
        self.max_future = max_future
        self.max_past = max_past
        self.now = now

    def domain(self, station: Any) -> Domain | None:
        if self.station_kind is None or not isinstance(station, str):
            return None
        return domain_of_kind(self.station_kind(station))

    def columns(
        self,
        stations: list[str],
        parameters: list[str],
        times: list[str | datetime],
        values: list[float | int],
        units: list[str | None],
        flags: list[str | None],
    ) -> tuple[npt.NDArray[np.bool_], ObservationColumns]:
        """Which items pass every check (the others may not: the reference decides), and the
        observations of all (meaningless where an item does not pass). Python code runs per
        distinct value, not per item."""
        n = len(stations)
        # stations: clean, known; their domains
        domains: dict[str, Domain | None] = {}
        for s in dict.fromkeys(stations):
            if s and is_clean_text(s) and self.known_station(s):
                domains[s] = self.domain(s)
        good = np.fromiter(map(domains.__contains__, stations), dtype=bool, count=n)
        # parameters, once per (code, domain): an index into ``found`` per item
        keys: dict[tuple[str, Domain | None], int] = {}
        slot = np.fromiter(
            map(
                keys.setdefault,
                zip(parameters, map(domains.get, stations), strict=True),
                itertools.count(),
            ),
            dtype=np.intp,
            count=n,
        )
        found: list[Parameter | None] = [None] * (max(keys.values(), default=-1) + 1)
        for (code, domain), k in keys.items():
            if code and is_clean_text(code):
                with contextlib.suppress(SensorsError):
                    found[k] = lookup(code, domain)
        known = np.array([p is not None for p in found], dtype=bool)
        good &= known[slot]
        # flags (one of HJ 212's) and units: clean
        flag_of: dict[str | None, str | None] = {None: DEFAULT_FLAG}
        for f in dict.fromkeys(flags):
            if f is not None:
                flag_of[f] = f if is_clean_text(f) and is_valid_flag(f) else None
        canonical_flags = list(map(flag_of.__getitem__, flags))
        if None in canonical_flags:
            good &= np.fromiter(
                map(operator.is_not, canonical_flags, itertools.repeat(None)), dtype=bool, count=n
            )
        unit_ok = {u: u is None or is_clean_text(u) for u in dict.fromkeys(units)}
        if not all(unit_ok.values()):
            good &= np.fromiter(map(unit_ok.__getitem__, units), dtype=bool, count=n)
        # times: parsed and checked once per distinct time
        when = {t: self.time(t) for t in dict.fromkeys(times)}
        utc = list(map(when.__getitem__, times))
        micro = {t: 0 if u is None else microseconds(u) for t, u in when.items()}
        time_us = np.fromiter(map(micro.__getitem__, times), dtype=np.int64, count=n)
        if None in when.values():
            good &= np.fromiter(
                map(operator.is_not, utc, itertools.repeat(None)), dtype=bool, count=n
            )
        # values: numbers that fit a double, finite
        try:
            raw = np.array(values, dtype=np.float64)
        except OverflowError:  # an integer beyond a double: the reference says so
            raw = np.array([_as_double(v) for v in values], dtype=np.float64)
        good &= np.isfinite(raw)
        # units: one conversion per (parameter, unit), then the physical range
        canonical = raw.copy()
        codes: list[str] = [""] * len(found)
        for unit in unit_ok:
            on_unit = good if unit is None and len(unit_ok) == 1 else good & _is(units, unit)
            for k in np.unique(slot[on_unit]).tolist():
                param = found[k]
                assert param is not None
                codes[k] = param.code
                at = np.flatnonzero(on_unit & (slot == k))
                if unit is not None:
                    try:
                        converted = np.asarray(to_canonical(raw[at], unit, param), dtype=np.float64)
                    except SensorsError:
                        good[at] = False
                        continue
                    canonical[at] = converted
                v = canonical[at]
                good[at] = (param.physical_min <= v) & (v <= param.physical_max)
        observed = ObservationColumns(
            stations,
            list(map(codes.__getitem__, slot.tolist())),
            utc,  # type: ignore[arg-type]  # None only where an item does not pass
            time_us,
            canonical,
            canonical_flags,  # type: ignore[arg-type]
        )
        return good, observed

    def time(self, value: str | datetime) -> datetime | None:
        """``value`` as UTC if it is a clean ISO 8601 time within the window, else ``None``."""
        if isinstance(value, str) and not is_clean_text(value):
            return None
        try:
            t = parse_time(value, self.default_tz)
            check_time(t, now=self.now, max_future=self.max_future, max_past=self.max_past)
        except ValidationError:
            return None
        return t


def _is(units: list[str | None], unit: str | None) -> npt.NDArray[np.bool_]:
    """Which items have ``unit``."""
    same = operator.is_ if unit is None else operator.eq
    return np.fromiter(map(same, units, itertools.repeat(unit)), dtype=bool, count=len(units))


def _present(column: Sequence[object]) -> npt.NDArray[np.bool_]:
    """Which items are not ``None``."""
    found = map(operator.is_not, column, itertools.repeat(None))
    return np.fromiter(found, dtype=bool, count=len(column))


def _as_double(value: float | int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.nan


def validate_item(item: Any, check: _Checks) -> Observation | str:
    """One item, the reference of :func:`validate_items`: its observation, or why not."""
    if not isinstance(item, Mapping):
        return "item must be a JSON object"
    unknown_keys = set(item) - _ITEM_KEYS
    if unknown_keys:
        return f"unknown fields: {', '.join(sorted(map(str, unknown_keys)))}"
    missing = [k for k in ("station", "parameter", "time", "value") if k not in item]
    if missing:
        return f"missing {', '.join(missing)}"
    try:
        obs = normalise(
            station=item["station"],
            parameter=item["parameter"],
            time=item["time"],
            value=item["value"],
            unit=item.get("unit"),
            flag=item.get("flag"),
            now=check.now,
            max_future=check.max_future,
            max_past=check.max_past,
            default_tz=check.default_tz,
            domain=check.domain(item["station"]),
        )
    except ValidationError as exc:
        return str(exc)
    if not check.known_station(obs.station):
        return f"unknown station {obs.station!r}"
    return obs


_ITEM_KEYS = frozenset({"station", "parameter", "time", "value", "unit", "flag"})
_NEEDED = frozenset({"station", "parameter", "time", "value"})


def stations_named(items: Iterable[Any]) -> set[str]:
    """The station ids named by the well-formed items of a batch (an id holding NUL or an
    unpaired surrogate is left out: its item is rejected, and the database is not asked)."""
    if isinstance(items, RawColumns):
        return {s for s in set(items.stations) if is_clean_text(s)}
    return {
        item["station"]
        for item in items
        if isinstance(item, Mapping)
        and isinstance(item.get("station"), str)
        and is_clean_text(item["station"])
    }
