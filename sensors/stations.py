"""Stations: where readings come from, and how station lists are read (CSV, GeoJSON)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from sensors.cities import canonical
from sensors.errors import ValidationError

#: Station kinds of the contract.
KINDS: Final = (
    "air", "water", "wastewater", "soil", "radiation", "cems", "noise", "met", "meter",
)  # fmt: skip

#: Kinds whose stations are sampled (a soil sampling point: a lab result now and then), not
#: streaming: they have no "online"/"offline" state and raise no ``offline`` alert.
SAMPLED_KINDS: Final = frozenset({"soil"})


def is_continuous(kind: str) -> bool:
    """Whether stations of ``kind`` stream readings (and so can be "offline")."""
    return kind not in SAMPLED_KINDS


_ID_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


@dataclass(frozen=True, slots=True)
class Station:
    """A monitoring station at a point (WGS 84 longitude and latitude, degrees)."""

    id: str
    name: str
    kind: str
    lon: float
    lat: float
    attributes: Mapping[str, Any] = field(default_factory=dict)
    simulated: bool = False

    def __post_init__(self) -> None:
        validate_station_id(self.id)
        if not self.name:
            raise ValidationError(f"station {self.id}: empty name")
        if self.kind not in KINDS:
            raise ValidationError(
                f"station {self.id}: kind {self.kind!r} is not one of {', '.join(KINDS)}"
            )
        if not (math.isfinite(self.lon) and -180 <= self.lon <= 180):
            raise ValidationError(f"station {self.id}: longitude {self.lon} out of range")
        if not (math.isfinite(self.lat) and -90 <= self.lat <= 90):
            raise ValidationError(f"station {self.id}: latitude {self.lat} out of range")
        zone = self.attributes.get("noise_zone")
        if self.kind == "noise" and zone not in (None, ""):
            from sensors.standards.noise import ZONES, normalise_zone

            try:
                normalise_zone(zone)
            except ValueError:
                raise ValidationError(
                    f"station {self.id}: noise_zone {zone!r} is not one of {', '.join(ZONES)}"
                    " (GB 3096-2008)"
                ) from None
        city = self.attributes.get("city")
        if isinstance(city, str) and city != canonical(city):  # one spelling per known city
            object.__setattr__(self, "attributes", {**self.attributes, "city": canonical(city)})


def validate_station_id(station_id: str) -> str:
    """Return ``station_id`` if it is 1–64 characters of letters, digits, ``-``, ``_``, ``.``."""
    if not station_id or len(station_id) > 64 or not set(station_id) <= _ID_CHARS:
        raise ValidationError(
            f"invalid station id {station_id!r}: use 1-64 letters, digits, '-', '_' or '.'"
        )
    return station_id


_CORE_KEYS: Final = {"id", "name", "kind", "lon", "lat", "simulated"}


def _station_from_mapping(row: Mapping[str, Any], where: str) -> Station:
    missing = [k for k in ("id", "name", "kind", "lon", "lat") if row.get(k) in (None, "")]
    if missing:
        raise ValidationError(f"{where}: missing {', '.join(missing)}")
    try:
        lon, lat = float(row["lon"]), float(row["lat"])
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{where}: lon/lat must be numbers") from exc
    attributes = {k: v for k, v in row.items() if k not in _CORE_KEYS and v not in (None, "")}
    simulated = str(row.get("simulated", "")).strip().lower() in {"1", "true", "yes"}
    try:
        return Station(
            str(row["id"]).strip(),
            str(row["name"]).strip(),
            str(row["kind"]).strip().lower(),
            lon,
            lat,
            attributes,
            simulated,
        )
    except ValidationError as exc:
        raise ValidationError(f"{where}: {exc}") from exc


def read_stations_csv(text: str) -> list[Station]:
    """Stations from CSV text with a header ``id,name,kind,lon,lat[,more attributes…]``."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    if reader.fieldnames is None:
        raise ValidationError("empty CSV: expected a header id,name,kind,lon,lat")
    return [_station_from_mapping(row, f"line {i + 2}") for i, row in enumerate(reader)]


def read_stations_geojson(text: str) -> list[Station]:
    """Stations from a GeoJSON FeatureCollection of Points with ``id``, ``name``, ``kind``."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not valid JSON: {exc}") from exc
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, list):
        raise ValidationError("GeoJSON: expected a FeatureCollection")
    out: list[Station] = []
    for i, feat in enumerate(features):
        where = f"feature {i}"
        geom = feat.get("geometry") if isinstance(feat, dict) else None
        if not isinstance(geom, dict) or geom.get("type") != "Point":
            raise ValidationError(f"{where}: geometry must be a Point")
        coords = geom.get("coordinates")
        if not isinstance(coords, list) or len(coords) < 2:
            raise ValidationError(f"{where}: bad coordinates")
        props = dict(feat.get("properties") or {})
        props.setdefault("id", feat.get("id"))
        props["lon"], props["lat"] = coords[0], coords[1]
        out.append(_station_from_mapping(props, where))
    return out


def read_stations(text: str, filename: str) -> list[Station]:
    """Stations from a file's text, by its extension (``.csv``, ``.geojson`` or ``.json``)."""
    lower = filename.lower()
    if lower.endswith(".csv"):
        stations = read_stations_csv(text)
    elif lower.endswith((".geojson", ".json")):
        stations = read_stations_geojson(text)
    else:
        raise ValidationError(f"{filename}: expected a .csv or .geojson file")
    _check_unique(stations)
    return stations


def _check_unique(stations: Iterable[Station]) -> None:
    seen: set[str] = set()
    for s in stations:
        if s.id in seen:
            raise ValidationError(f"station {s.id} appears twice")
        seen.add(s.id)
