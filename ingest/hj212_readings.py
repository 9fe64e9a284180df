"""HJ 212 uploads → canonical observations (pure).

- ``CN=2011`` real-time data: ``-Rtd`` (and ``-ZsRtd``, converted) at ``-SampleTime`` if
  given, else at ``DataTime``; instantaneous streams.
- ``CN=2051/2061/2031`` minute/hourly/daily data: ``-Min/-Avg/-Max/-Cou`` (and
  ``-ZsMin/-ZsAvg/-ZsMax``), each its own stream of that interval, at ``DataTime`` (the
  period's start). ``-Cou`` is an amount: kg, or m³ for flows.
- Times are China Standard Time; values are in the units of HJ 212-2017 Appendix B, which are
  EcoSense's canonical units (ambient air stations send µg/m³, CO mg/m³).
- Codes resolve through the parameter dictionary by the packet's system code (ST 31 → stack
  CEMS …); HJ/T 212-2005 codes are mapped to 2017 parameters. The readings of a code the
  dictionary does not know are returned apart, as :class:`RawReading` (``raw`` in the result),
  for the gateway to hold in the device's quarantine (:mod:`store.quarantine`): never an
  observation, never a parameter. :func:`rehome` turns them into observations once an operator
  has mapped the code to a parameter.
- Each pollutant's ``-Flag`` (HJ 212-2017 Table 8) is kept; a bad value, flag or time
  rejects that pollutant's readings only, with a reason: as every ingest path
  (:mod:`sensors.observations`), a time before 2000-01-01, more than ``max_future`` ahead or
  ``max_past`` behind the clock, or a value outside the parameter's physical range. Codes
  whose Appendix B unit is not the canonical one (water metals in µg/L) are converted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Final, NamedTuple

from ingest.hj212 import UPLOAD_INTERVALS, DataItem, Packet, ProtocolError, data_items, parse_time
from sensors.errors import SensorsError, UnknownParameterError, ValidationError
from sensors.flags import DEFAULT_FLAG, is_valid_flag
from sensors.observations import Observation, check_physical, check_time, normalise
from sensors.parameters import Domain, Parameter, lookup
from sensors.units import convert

#: HJ 212-2017 Table 5 system code → dictionary domain.
SYSTEM_DOMAINS: Final[dict[str, Domain]] = {
    "21": "water",
    "24": "water",
    "26": "water",
    "32": "water",
    "33": "water",
    "34": "water",
    "52": "water",
    "22": "air",
    "27": "air",
    "39": "air",
    "23": "noise",  # 声环境质量监测 (it said "air": a noise unit's Leq was an unknown code)
    "36": "noise",
    "31": "cems",
    "51": "cems",
    "25": "soil",
    "35": "soil",
    "38": "radiation",
}

#: suffix → (statistic, basis)
_SUFFIXES: Final[dict[str, tuple[str | None, str]]] = {
    "Rtd": (None, "measured"),
    "ZsRtd": (None, "converted"),
    "Min": ("min", "measured"),
    "Avg": ("avg", "measured"),
    "Max": ("max", "measured"),
    "Cou": ("cou", "measured"),
    "ZsMin": ("min", "converted"),
    "ZsAvg": ("avg", "converted"),
    "ZsMax": ("max", "converted"),
    # noise units (CN 2051/2061, Tables C.26/C.27): the level over the minute or hour
    "Data": ("avg", "measured"),
}


class RawReading(NamedTuple):
    """A reading of a code the dictionary does not know, as parsed from its packet.

    ``value`` is as sent (its unit is unknown); ``time`` is UTC; ``interval``, ``statistic``
    and ``basis`` as an :class:`~sensors.observations.Observation`'s.
    """

    code: str
    time: datetime
    value: float
    flag: str
    interval: str | None = None
    statistic: str | None = None
    basis: str = "measured"


@dataclass
class UploadReadings:
    """What an upload yields: observations, readings of codes not in the dictionary (``raw``,
    and their codes in ``unknown_codes``), and per-item problems."""

    observations: list[Observation] = field(default_factory=list)
    unknown_codes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    raw: list[RawReading] = field(default_factory=list)


def readings(
    packet: Packet,
    station: str,
    *,
    now: datetime,
    max_future: timedelta = timedelta(hours=1),
    max_past: timedelta | None = None,
    data_time: str | None = None,
) -> UploadReadings:
    """The observations of a data upload (``CN`` 2011, 2051, 2061 or 2031) for ``station``.

    ``max_past``: how far behind ``now`` a reading may be (``None``: no limit; the floor
    2000-01-01 always applies); a refused value is a problem of the result, not an error.

    ``data_time`` is used when the data area has no ``DataTime`` of its own: a later piece of
    a split upload (PNUM/PNO) that does not repeat its first piece's.

    Raises
    ------
    ProtocolError
        when the packet is not a data upload or has no valid ``DataTime``.
    """
    cn = packet.cn or ""
    if cn not in UPLOAD_INTERVALS:
        raise ProtocolError(f"CN={cn} is not a data upload")
    interval = UPLOAD_INTERVALS[cn]
    domain = SYSTEM_DOMAINS.get(packet.st or "")
    own_time, items, problems = data_items(packet)
    data_time = own_time or data_time
    if data_time is None:
        raise ProtocolError("upload has no DataTime")
    base_time = parse_time(data_time)
    out = UploadReadings(problems=list(problems))
    for item in items:
        param = _parameter(item.code, domain)
        try:
            found = _item(item, station, param, base_time, interval, cn, now, max_future, max_past)
        except ValueError as exc:
            out.problems.append(f"{item.code}: {exc}")
            continue
        if param is None:
            out.unknown_codes.append(item.code)
            out.raw += [RawReading(*o[1:]) for o in found]
        else:
            out.observations += found
    return out


@lru_cache(maxsize=4096)
def _parameter(code: str, domain: Domain | None) -> Parameter | None:
    """The dictionary's parameter for an HJ 212 code in a system's domain; ``None`` if unknown
    (memoised: a station sends the same few codes in every packet)."""
    try:
        return lookup(code, domain)
    except UnknownParameterError:
        return None


def _item(
    item: DataItem,
    station: str,
    param: Parameter | None,
    base_time: datetime,
    interval: str | None,
    cn: str,
    now: datetime,
    max_future: timedelta,
    max_past: timedelta | None,
) -> list[Observation]:
    """The observations of one data item (``param`` ``None``: a code the dictionary lacks,
    kept as sent: no unit conversion, no physical range)."""
    code = item.code if param is None else param.code
    flag = item.flag or DEFAULT_FLAG
    if not is_valid_flag(flag):
        raise ValueError(f"flag {flag!r} is not an HJ 212-2017 data flag")
    t = base_time
    if cn == "2011" and item.sample_time:
        t = parse_time(item.sample_time)
    check_time(t, now=now, max_future=max_future, max_past=max_past)
    result = []
    for suffix, text in item.values.items():
        statistic, basis = _SUFFIXES[suffix]
        if interval is None and statistic is not None:
            raise ValueError(f"-{suffix} in a real-time upload")
        if interval is not None and statistic is None:
            raise ValueError(f"-{suffix} in a {interval} upload")
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"-{suffix} value {text!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"-{suffix} value {text!r} is not finite")
        if param is not None:
            if param.hj212_unit is None:
                pass
            elif statistic == "cou":  # Appendix B gives the amounts of µg/L items in g
                value = convert(value, "g", "kg")
            else:
                value = convert(value, param.hj212_unit, param.unit)
            try:
                check_physical(param, value, statistic)
            except SensorsError as exc:
                raise ValueError(f"-{suffix}: {exc}") from None
        result.append(Observation(station, code, t, value, flag, interval, statistic, basis))
    return result


def rehome(
    station: str,
    readings: Iterable[RawReading],
    parameter: str,
    unit: str | None,
    *,
    now: datetime,
    max_future: timedelta,
    max_past: timedelta | None = None,
) -> tuple[list[Observation], list[str]]:
    """The observations of ``readings`` of a raw code an operator mapped to ``parameter`` (a
    canonical code), sent in ``unit`` (``None``: the parameter's own unit).

    Each reading goes through the checks of every ingest path (:func:`normalise`: unit
    conversion to the canonical unit, flag, time); cumulative amounts (``-Cou``: kg, or m³ for
    flows) keep their value; ``max_past`` is the device's past window (``None`` for an
    operator's re-homing). Returns the observations and one reason per refused reading.
    """
    observations: list[Observation] = []
    problems: list[str] = []
    for r in readings:
        try:
            observations.append(
                normalise(
                    station=station,
                    parameter=parameter,
                    time=r.time,
                    value=r.value,
                    unit=None if r.statistic == "cou" else unit,
                    flag=r.flag,
                    now=now,
                    max_future=max_future,
                    max_past=max_past,
                    default_tz=UTC,
                    interval=r.interval,
                    statistic=r.statistic,
                    basis=r.basis,
                )
            )
        except ValidationError as exc:
            problems.append(f"{r.code} at {r.time.isoformat()}: {exc}")
    return observations, problems


#: Equipment reports (raw names, held like codes the dictionary does not know): CN → (suffix,
#: interval).
STATUS_UPLOADS: Final[dict[str, tuple[str, str | None]]] = {
    "2021": ("RS", None),  # equipment running status (SBxxx-RS), instantaneous
    "2041": ("RT", "P1D"),  # equipment daily running time in hours (SBxxx-RT)
}


def status_readings(packet: Packet, station: str) -> UploadReadings:
    """Equipment status (2021: ``SBxxx-RS``) and daily running time (2041: ``SBxxx-RT``, hours)
    as raw readings of the codes ``SBxxx-RS`` / ``SBxxx-RT`` at ``DataTime`` (``raw``: they are
    in no parameter table, so they are held per device like any code the dictionary lacks).

    Raises
    ------
    ProtocolError
        when the packet is neither, or has no valid ``DataTime``.
    """
    if (packet.cn or "") not in STATUS_UPLOADS:
        raise ProtocolError(f"CN={packet.cn} is not an equipment report")
    suffix, interval = STATUS_UPLOADS[packet.cn or ""]
    out = UploadReadings()
    data_time = None
    values: list[tuple[str, str]] = []
    for group in packet.cp_groups():
        for name, value in group.items():
            if name == "DataTime":
                data_time = value
            elif name.endswith("-" + suffix):
                values.append((name, value))
            else:
                out.problems.append(f"field {name} is not part of CN={packet.cn}")
    if data_time is None:
        raise ProtocolError("report has no DataTime")
    t = parse_time(data_time)
    for name, text in values:
        try:
            number = float(text)
        except ValueError:
            out.problems.append(f"{name}: {text!r} is not a number")
            continue
        if not math.isfinite(number):
            out.problems.append(f"{name}: {text!r} is not finite")
            continue
        out.unknown_codes.append(name)
        out.raw.append(RawReading(name, t, number, DEFAULT_FLAG, interval, None, "measured"))
    return out
