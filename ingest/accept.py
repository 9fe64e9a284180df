"""Accepting raw reading items: authorisation by station, validation, durable write.

Shared by every ingest path that carries JSON-like items (HTTP JSON, line protocol, MQTT).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ingest.batch import BatchResult, stations_named, validate_items
from store.context import Principal, ServiceContext


class Forbidden(Exception):
    """A device naming a station that is not its own."""


def stations_object(stations: Iterable[str], most: int = 20) -> str:
    """The audit's ``object`` of a write: ``station:S1`` or ``station:S1,S2`` (sorted, at most
    ``most`` names, then ``…``)."""
    names = sorted(stations)
    shown = ",".join(names[:most]) + (",…" if len(names) > most else "")
    return f"station:{shown}"


def ingest_items(
    ctx: ServiceContext,
    principal: Principal,
    items: Sequence[Any],
    *,
    protocol: str = "http",
    address: str | None = None,
    actor: str | None = None,
) -> BatchResult:
    """Validate raw reading items and store the good ones durably (blocking).

    The request is audited once (action ``write``; ``actor`` defaults to the principal's;
    details: ``protocol`` and the counts accepted/rejected), not per reading.

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
    known = ctx.store.existing_station_ids(named)
    foreign = sorted(s for s in known if not principal.may_access(s))
    if foreign:
        assert principal.device is not None
        reason = (
            f"device {principal.device.id} may only write to station "
            f"{principal.device.station}, not {', '.join(foreign)}"
        )
        details = {"protocol": protocol, "items": len(items), "reason": reason}
        ctx.audit(who, "write", target, "denied", address, details)
        raise Forbidden(reason)
    result = validate_items(
        items, known_station=known.__contains__, default_tz=ctx.timezone, max_future=ctx.max_future
    )
    counts = {"protocol": protocol, "accepted": len(result.accepted)}
    try:
        ctx.write(result.accepted)
    except Exception as exc:
        failed = {"protocol": protocol, "items": len(items), "reason": f"{type(exc).__name__}"}
        ctx.audit(who, "write", target, "failed", address, failed)
        raise
    ctx.audit(who, "write", target, "ok", address, {**counts, "rejected": len(result.rejected)})
    return result
