"""HJ 212 codes the parameter dictionary does not know, held per device under their raw code.

A field unit may send codes that are in no table EcoSense implements (a vendor's own factor, a
typo, equipment status ``SBxxx-RS``). Such a code is never added to the shared ``parameters``
table and never becomes a stream: its readings are held in ``quarantine_readings`` under the
device and the raw code, up to ``cap`` distinct codes per device; readings of further new codes
are counted in ``quarantine_dropped`` and not kept. An operator maps a raw code to a parameter
(:func:`map_code`); the caller then re-homes the held readings through the store's normal write
path and :func:`release` removes them; later readings of that code go straight to the parameter.

Functions over one psycopg connection (a pooled one from ``PostgresStore.connection()``, or
:func:`store.db.connect`); each commits its own transaction. Every value is a bound parameter.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, NamedTuple

import psycopg

from store.errors import NotFound

Connection = psycopg.Connection[tuple[Any, ...]]

#: One reading of a raw code as parsed from its packet:
#: (code, time, value, flag, interval, statistic, basis) — ``value`` in the sender's unit.
RawTuple = tuple[str, datetime, float, str, str | None, str | None, str]

#: How many of the refused codes ``quarantine_dropped.last_codes`` keeps, as a sample.
_SAMPLE: Final = 10


@dataclass(frozen=True, slots=True)
class CodeMap:
    """An operator's mapping of a device's raw code to a parameter (canonical code).

    ``unit`` is the unit the device sends the code in; ``None``: the parameter's own unit.
    """

    device: str
    code: str
    parameter: str
    unit: str | None


@dataclass
class HoldResult:
    """What :func:`hold` did with one packet's readings of codes not in the dictionary.

    ``mapped``: readings of codes an operator has mapped, per mapping (for the caller to write
    as observations); ``held``: readings kept in the quarantine; ``new_codes``: codes held for
    the first time; ``dropped``/``dropped_codes``: readings refused, and their codes, because
    the device already holds ``cap`` codes.
    """

    mapped: list[tuple[CodeMap, list[RawTuple]]] = field(default_factory=list)
    held: int = 0
    new_codes: list[str] = field(default_factory=list)
    dropped: int = 0
    dropped_codes: list[str] = field(default_factory=list)


class HeldCode(NamedTuple):
    """A raw code held for a device: its readings held, first and last received."""

    device: str
    code: str
    readings: int
    first_seen: datetime
    last_seen: datetime


class Dropped(NamedTuple):
    """Readings of a device refused because its quarantine was full."""

    device: str
    readings: int
    first_dropped: datetime
    last_dropped: datetime
    last_codes: list[str]


class HeldReading(NamedTuple):
    """A held reading: its station, the raw reading, and when it was received."""

    station: str
    code: str
    time: datetime
    value: float
    flag: str
    interval: str | None
    statistic: str | None
    basis: str
    received_at: datetime


def _lock(conn: Connection, device: str) -> None:
    """Serialise the quarantine of one device (cap and mappings) until the transaction ends."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('ecosense.quarantine:' || %s, 0))",
        (device,),
    )


def hold(
    conn: Connection, device: str, station: str, readings: Sequence[RawTuple], *, cap: int
) -> HoldResult:
    """Hold ``readings`` of codes not in the dictionary for ``device`` (reporting for
    ``station``); readings of codes the operator has mapped are returned instead, for the
    caller to write. A device holds at most ``cap`` distinct codes: readings of further new
    codes are counted and dropped. One transaction."""
    result = HoldResult()
    if not readings:
        return result
    codes = list(dict.fromkeys(r[0] for r in readings))  # order of first appearance
    with conn.transaction():
        _lock(conn, device)
        maps = {
            m.code: m
            for m in (
                CodeMap(*r)
                for r in conn.execute(
                    "SELECT device_id, code, parameter, unit FROM raw_code_maps"
                    " WHERE device_id = %s AND code = ANY(%s)",
                    (device, codes),
                ).fetchall()
            )
        }
        held = {
            r[0]
            for r in conn.execute(
                "SELECT code FROM quarantine_codes WHERE device_id = %s", (device,)
            ).fetchall()
        }
        kept: list[str] = []
        for code in codes:
            if code in maps:
                continue
            if code not in held:
                if len(held) >= cap:
                    result.dropped_codes.append(code)
                    continue
                held.add(code)
                result.new_codes.append(code)
            kept.append(code)
        by_map: dict[str, list[RawTuple]] = {c: [] for c in maps}
        rows: dict[tuple[Any, ...], RawTuple] = {}
        dropped = set(result.dropped_codes)
        for r in readings:
            if r[0] in maps:
                by_map[r[0]].append(r)
            elif r[0] in dropped:
                result.dropped += 1
            else:
                rows[(r[0], r[1], r[4], r[5], r[6])] = r  # the last of a re-sent reading wins
        result.mapped = [(maps[c], rs) for c, rs in by_map.items() if rs]
        result.held = len(rows)
        with conn.cursor() as cur:
            if kept:
                cur.executemany(
                    "INSERT INTO quarantine_codes (device_id, code) VALUES (%s, %s)"
                    " ON CONFLICT (device_id, code) DO UPDATE SET last_seen = now()",
                    [(device, c) for c in kept],
                )
            if rows:
                cur.executemany(
                    "INSERT INTO quarantine_readings (device_id, code, station_id, time, value,"
                    " flag, interval, statistic, basis) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s)"
                    " ON CONFLICT (device_id, code, time, interval, statistic, basis)"
                    " DO UPDATE SET value = EXCLUDED.value, flag = EXCLUDED.flag,"
                    " station_id = EXCLUDED.station_id, received_at = EXCLUDED.received_at",
                    [(device, r[0], station, *r[1:]) for r in rows.values()],
                )
            if result.dropped:
                cur.execute(
                    "INSERT INTO quarantine_dropped (device_id, readings, last_codes)"
                    " VALUES (%s, %s, %s) ON CONFLICT (device_id) DO UPDATE SET"
                    " readings = quarantine_dropped.readings + EXCLUDED.readings,"
                    " last_dropped = now(), last_codes = EXCLUDED.last_codes",
                    (device, result.dropped, result.dropped_codes[-_SAMPLE:]),
                )
    return result


def held_codes(conn: Connection, device: str | None = None) -> list[HeldCode]:
    """The codes held (of one device, or of all), with their readings held and when first and
    last received; ordered by device and code."""
    rows = conn.execute(
        "SELECT c.device_id, c.code, count(r.time), c.first_seen, c.last_seen"
        " FROM quarantine_codes c LEFT JOIN quarantine_readings r"
        " ON (r.device_id, r.code) = (c.device_id, c.code)"
        " WHERE %(device)s::text IS NULL OR c.device_id = %(device)s"
        " GROUP BY c.device_id, c.code ORDER BY c.device_id, c.code",
        {"device": device},
    ).fetchall()
    return [HeldCode(r[0], r[1], int(r[2]), r[3], r[4]) for r in rows]


def dropped(conn: Connection, device: str | None = None) -> list[Dropped]:
    """Per device (one, or all), the readings refused because its quarantine was full."""
    rows = conn.execute(
        "SELECT device_id, readings, first_dropped, last_dropped, last_codes"
        " FROM quarantine_dropped WHERE %(device)s::text IS NULL OR device_id = %(device)s"
        " ORDER BY device_id",
        {"device": device},
    ).fetchall()
    return [Dropped(r[0], int(r[1]), r[2], r[3], list(r[4])) for r in rows]


def require_device(conn: Connection, device: str) -> None:
    """:class:`NotFound` unless ``device`` is a registered device."""
    if conn.execute("SELECT 1 FROM devices WHERE id = %s", (device,)).fetchone() is None:
        raise NotFound(f"unknown device {device!r}")


def map_code(
    conn: Connection, device: str, code: str, parameter: str, unit: str | None = None
) -> CodeMap:
    """Remember that ``device``'s raw ``code`` is ``parameter`` (a canonical code), sent in
    ``unit`` (``None``: the parameter's unit). From the commit on, :func:`hold` returns the
    code's readings as mapped instead of holding them.

    Raises
    ------
    NotFound
        when the device or the parameter does not exist.
    """
    with conn.transaction():
        require_device(conn, device)
        if (
            conn.execute("SELECT 1 FROM parameters WHERE code = %s", (parameter,)).fetchone()
            is None
        ):
            raise NotFound(f"unknown parameter {parameter!r}")
        _lock(conn, device)
        conn.execute(
            "INSERT INTO raw_code_maps (device_id, code, parameter, unit) VALUES (%s,%s,%s,%s)"
            " ON CONFLICT (device_id, code) DO UPDATE SET parameter = EXCLUDED.parameter,"
            " unit = EXCLUDED.unit, mapped_at = now()",
            (device, code, parameter, unit),
        )
    return CodeMap(device, code, parameter, unit)


def held_readings(conn: Connection, device: str, code: str) -> list[HeldReading]:
    """The readings held for ``device``'s raw ``code``, in time order."""
    rows = conn.execute(
        "SELECT station_id, code, time, value, flag, interval, statistic, basis, received_at"
        " FROM quarantine_readings WHERE device_id = %s AND code = %s ORDER BY time",
        (device, code),
    ).fetchall()
    return [HeldReading(*r) for r in rows]


def release(conn: Connection, device: str, code: str) -> int:
    """Remove ``device``'s raw ``code`` and its held readings from the quarantine (once they
    are re-homed); return how many readings were removed."""
    with conn.transaction():
        _lock(conn, device)
        count = conn.execute(
            "DELETE FROM quarantine_readings WHERE device_id = %s AND code = %s", (device, code)
        ).rowcount
        conn.execute(
            "DELETE FROM quarantine_codes WHERE device_id = %s AND code = %s", (device, code)
        )
    return count
