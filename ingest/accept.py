"""Accepting raw reading items: authorisation by station, validation, durable write.

Shared by every ingest path that carries JSON-like items (HTTP JSON, line protocol, MQTT).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ingest.batch import BatchResult, stations_named, validate_items
from sensors.observations import Source
from store.context import Principal, ServiceContext


class Forbidden(Exception):
    """A device naming a station that is not its own."""


def stations_object(stations: Iterable[str], most: int = 20) -> str:
    """The audit's ``object`` of a write: ``station:S1`` or ``station:S1,S2`` (sorted, at most
    ``most`` names, then ``…``)."""
    names = sorted(stations)
    shown = ",".join(names[:most]) + (",…" if len(names) > most else "")
    return f"station:{shown}"


def source_details(source: Source) -> dict[str, str]:
    """The provenance of a write as audit details: ``protocol`` and, when known, ``device``,
    ``user`` and ``file``."""
    found = {
        "protocol": source.protocol,
        "device": source.device,
        "user": source.user,
        "file": source.file,
    }
    return {k: v for k, v in found.items() if v is not None}


def source_of(principal: Principal, protocol: str) -> Source:
    """The provenance of what ``principal`` sends through ``protocol``: its device id, or for
    the operator token the user ``operator``."""
    if principal.device is None:
        return Source(protocol, None, "operator")
    return Source(protocol, principal.device.id)


def ingest_items(
    ctx: ServiceContext,
    principal: Principal,
    items: Sequence[Any],
    source: Source,
    *,
    device: bool = False,
    address: str | None = None,
    actor: str | None = None,
) -> BatchResult:
    """Validate raw reading items and store the good ones durably (blocking), with their
    provenance ``source``.

    A device (a device token, or ``device=True`` for a path that authenticates devices
    otherwise, MQTT) may not write further back than ``ctx.max_past``; the operator may.

    The request is audited once (action ``write``; ``actor`` defaults to the principal's;
    details: the provenance ``source`` and the counts accepted/rejected), not per reading;
    ``address`` is the client's.

    Raises
    ------
    Forbidden
        when a device names another existing station (nothing is stored).
    StoreUnavailable
        when the store cannot take the batch (nothing is acknowledged).
    """
    who = actor or principal.actor
    named = stations_named(items)
    target = stations_object(named)
    kinds = ctx.store.station_kinds(named)
    known = kinds.keys()
    provenance = source_details(source)
    foreign = sorted(s for s in known if not principal.may_access(s))
    if foreign:
        assert principal.device is not None
        reason = (
            f"device {principal.device.id} may only write to station "
            f"{principal.device.station}, not {', '.join(foreign)}"
        )
        details = {**provenance, "items": len(items), "reason": reason}
        ctx.audit(who, "write", target, "denied", address, details)
        raise Forbidden(reason)
    result = validate_items(
        items,
        known_station=known.__contains__,
        station_kind=kinds.get,
        default_tz=ctx.timezone,
        max_future=ctx.max_future,
        max_past=ctx.max_past if device or not principal.is_operator else None,
    )
    try:
        ctx.write(result.accepted, source)
    except Exception as exc:
        failed = {**provenance, "items": len(items), "reason": f"{type(exc).__name__}"}
        ctx.audit(who, "write", target, "failed", address, failed)
        raise
    counts = {"accepted": len(result.accepted), "rejected": len(result.rejected)}
    ctx.audit(who, "write", target, "ok", address, {**provenance, **counts})
    return result
