"""Accepting raw reading items: authorisation by station, validation, durable write.

Shared by every ingest path that carries JSON-like items (HTTP JSON, line protocol, MQTT).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ingest.batch import BatchResult, stations_named, validate_items
from sensors.observations import Source
from store.context import Principal, ServiceContext


class Forbidden(Exception):
    """A device naming a station that is not its own."""


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
) -> BatchResult:
    """Validate raw reading items and store the good ones durably (blocking), with their
    provenance ``source``.

    A device (a device token, or ``device=True`` for a path that authenticates devices
    otherwise, MQTT) may not write further back than ``ctx.max_past``; the operator may.

    Raises
    ------
    Forbidden
        when a device names another existing station (nothing is stored).
    StoreUnavailable
        when the store cannot take the batch (nothing is acknowledged).
    """
    kinds = ctx.store.station_kinds(stations_named(items))
    known = kinds.keys()
    foreign = sorted(s for s in known if not principal.may_access(s))
    if foreign:
        assert principal.device is not None
        raise Forbidden(
            f"device {principal.device.id} may only write to station "
            f"{principal.device.station}, not {', '.join(foreign)}"
        )
    result = validate_items(
        items,
        known_station=known.__contains__,
        station_kind=kinds.get,
        default_tz=ctx.timezone,
        max_future=ctx.max_future,
        max_past=ctx.max_past if device or not principal.is_operator else None,
    )
    ctx.write(result.accepted, source)
    return result
