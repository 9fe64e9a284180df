"""Validate a batch of raw readings item by item.

The good ones go on; each bad one gets a reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from sensors.errors import ValidationError
from sensors.observations import Observation, normalise


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
    now: datetime | None = None,
) -> BatchResult:
    """Normalise JSON items ``{"station","parameter","time","value","unit"?,"flag"?}``.

    An item that is not an object, names an unknown station or parameter, has a non-finite
    or non-numeric value, an unknown or incompatible unit, a bad flag, or a time more than
    ``max_future`` ahead of ``now`` is rejected with its reason; the others are accepted.
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
                default_tz=default_tz,
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
    """The station ids named by the well-formed items of a batch."""
    return {
        item["station"]
        for item in items
        if isinstance(item, Mapping) and isinstance(item.get("station"), str)
    }
