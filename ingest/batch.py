"""Validate a batch of raw readings item by item.

The good ones go on; each bad one gets a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sensors.errors import ValidationError
from sensors.observations import Observation, is_clean_text, normalise
from sensors.parameters import domain_of_kind


@dataclass
class BatchResult:
    """The outcome of a batch: accepted observations and ``(index, reason)`` per rejected item."""

    accepted: list[Observation] = field(default_factory=list)
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
    ``max_past`` behind it, is rejected with its reason; the others are accepted.
    ``station_kind`` gives a station's kind, whose domain resolves codes shared by media
    (``cd`` from a water station is the water metal).
    """
    now = now or datetime.now(UTC)
    result = BatchResult()
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            result.rejected.append((i, "item must be a JSON object"))
            continue
        unknown_keys = set(item) - _ITEM_KEYS
        if unknown_keys:
            result.rejected.append(
                (i, f"unknown fields: {', '.join(sorted(map(str, unknown_keys)))}")
            )
            continue
        missing = [k for k in ("station", "parameter", "time", "value") if k not in item]
        if missing:
            result.rejected.append((i, f"missing {', '.join(missing)}"))
            continue
        station = item["station"]
        kind = station_kind(station) if station_kind and isinstance(station, str) else None
        try:
            obs = normalise(
                station=item["station"],
                parameter=item["parameter"],
                time=item["time"],
                value=item["value"],
                unit=item.get("unit"),
                flag=item.get("flag"),
                now=now,
                max_future=max_future,
                max_past=max_past,
                default_tz=default_tz,
                domain=domain_of_kind(kind),
            )
        except ValidationError as exc:
            result.rejected.append((i, str(exc)))
            continue
        if not known_station(obs.station):
            result.rejected.append((i, f"unknown station {obs.station!r}"))
            continue
        result.accepted.append(obs)
    return result


_ITEM_KEYS = frozenset({"station", "parameter", "time", "value", "unit", "flag"})


def stations_named(items: Iterable[Any]) -> set[str]:
    """The station ids named by the well-formed items of a batch (an id holding NUL or an
    unpaired surrogate is left out: its item is rejected, and the database is not asked)."""
    return {
        item["station"]
        for item in items
        if isinstance(item, Mapping)
        and isinstance(item.get("station"), str)
        and is_clean_text(item["station"])
    }
