"""Coordinate reference systems as people read them (pure; pyproj imported when used)."""

from __future__ import annotations


def crs_name(crs: str | None) -> str:
    """A CRS as a person reads it: its authority code (``EPSG:32613``) when it has one, else
    its name; the stored text (WKT) is kept for the jobs, not printed."""
    if not crs:
        return ""
    from pyproj import CRS
    from pyproj.exceptions import CRSError

    try:
        parsed = CRS.from_user_input(crs)
    except CRSError:
        return crs
    found = parsed.to_authority(min_confidence=90)
    return ":".join(found) if found else str(parsed.name)
