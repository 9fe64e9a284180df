"""Errors of the GIS package."""

from __future__ import annotations


class GisError(ValueError):
    """Bad spatial input (no CRS, an empty geometry, a raster outside every polygon, …),
    with a message that names it."""
